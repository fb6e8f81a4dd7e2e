//! Image facts, on both engines: NORMAL images without facts are found by one query; asking
//! for them stores one PENDING row and one task per manifest (a second image with the same
//! content is only marked), never a task without its row; computed facts replace the row.

mod common;

use ikon_catalog::{fstate, Catalog, DiskRef, Facts, Image, NewTask};

fn image(id: &str, disk: &str, state: &str) -> Image {
    Image {
        image_id: id.into(),
        kind: "PRIVATE".into(),
        owner: "100000000001".into(),
        region: "ap-guangzhou".into(),
        name: id.into(),
        description: String::new(),
        os_name: String::new(),
        os_type: String::new(),
        platform: String::new(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 30,
        state: state.into(),
        state_reason: String::new(),
        source: "IMPORT".into(),
        license_type: "TencentCloud".into(),
        family: String::new(),
        deprecated: false,
        cloudinit: false,
        sync_percent: None,
        share_count: 0,
        disks: vec![DiskRef {
            disk_id: disk.into(),
            version: 3,
            usage: "SYSTEM_DISK".into(),
            size_bytes: 1 << 30,
            snapshot_id: String::new(),
        }],
        origin: String::new(),
        created_at: 1,
        updated_at: 1,
        version: 1,
        tags: vec![],
    }
}

fn task(id: &str, image: &str) -> NewTask {
    NewTask {
        task_id: id.into(),
        kind: "scan".into(),
        account_id: "100000000001".into(),
        region: "ap-guangzhou".into(),
        resource_id: image.into(),
        payload: "{}".into(),
        max_attempts: 3,
    }
}

async fn wanting(c: &Catalog) -> Vec<String> {
    c.images_wanting_facts(100)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|w| w.image_id)
        .collect()
}

async fn facts_once_per_manifest(c: Catalog) {
    for img in [
        image("img-fact0001", "d-shared", "NORMAL"),
        image("img-fact0002", "d-shared", "NORMAL"),
        image("img-fact0003", "d-other", "IMPORTING"),
    ] {
        assert!(c.insert_image(&img, None).await.unwrap_or(false));
    }
    assert_eq!(wanting(&c).await, ["img-fact0001", "img-fact0002"]);
    let first = c
        .request_facts(
            "img-fact0001",
            Some(("d-shared", 3)),
            &task("task-f1", "img-fact0001"),
            10,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first, "the first image of a manifest stores the task");
    let second = c
        .request_facts(
            "img-fact0002",
            Some(("d-shared", 3)),
            &task("task-f2", "img-fact0002"),
            11,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!second, "the same content is scanned once");
    assert!(c.task("task-f1").await.ok().flatten().is_some());
    assert!(c.task("task-f2").await.ok().flatten().is_none());
    assert!(wanting(&c).await.is_empty());
    let f = c
        .facts("d-shared", 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no facts row"));
    assert_eq!((f.state.as_str(), f.created_at), (fstate::PENDING, 10));
    // The importing image turns NORMAL: it is wanted now.
    assert!(c
        .transition_image("img-fact0003", &["IMPORTING"], "NORMAL", "", None, 20)
        .await
        .unwrap_or(false));
    assert_eq!(wanting(&c).await, ["img-fact0003"]);
    // An image without a manifest is only marked.
    assert!(!c
        .request_facts("img-fact0003", None, &task("task-f3", "img-fact0003"), 21)
        .await
        .unwrap_or(true));
    assert!(wanting(&c).await.is_empty());
    // Computed facts replace the PENDING row.
    let done = Facts {
        state: fstate::DONE.into(),
        inspection: "{}".into(),
        scan: "{\"findings\":[]}".into(),
        updated_at: 30,
        ..f
    };
    c.put_facts(&done).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.facts("d-shared", 3).await.ok().flatten(), Some(done));
    assert!(c.facts("d-shared", 4).await.ok().flatten().is_none());
}
both!(
    facts_once_per_manifest_on_both_engines,
    facts_once_per_manifest
);
