//! Instances, disks and snapshots on both engines: batch insertion is all or nothing, disks
//! keep their order, content references move, re-install is one transaction, termination
//! deletes only delete-with-instance disks, snapshots find the images built on them,
//! snapshot deletion is all or nothing, and the live manifest set covers images, disks and
//! snapshots.

mod common;

use ikon_catalog::{Catalog, Disk, DiskRef, Image, Instance, ResourceQuery, Snapshot, Usage};

fn usage(id: &str, at: i64) -> Usage {
    Usage {
        instance_id: id.into(),
        account_id: "acc1".into(),
        region: "r1".into(),
        image_id: "img-base0001".into(),
        billed_image_id: String::new(),
        price_micros: 0,
        started_at: at,
        ended_at: None,
    }
}

fn inst(id: &str, owner: &str) -> Instance {
    Instance {
        instance_id: id.into(),
        owner: owner.into(),
        region: "r1".into(),
        zone: "r1-1".into(),
        name: format!("name-{id}"),
        instance_type: "S5.MEDIUM4".into(),
        image_id: "img-base0001".into(),
        origin: String::new(),
        state: "RUNNING".into(),
        latest_operation: String::new(),
        latest_operation_state: String::new(),
        latest_operation_request_id: String::new(),
        created_at: 100,
        updated_at: 100,
    }
}

fn disk(id: &str, instance: &str, slot: i64, mdisk: &str, dwi: bool) -> Disk {
    Disk {
        disk_id: id.into(),
        owner: "acc1".into(),
        region: "r1".into(),
        zone: "r1-1".into(),
        instance_id: instance.into(),
        usage: if slot == 0 {
            "SYSTEM_DISK"
        } else {
            "DATA_DISK"
        }
        .into(),
        disk_type: "CLOUD_PREMIUM".into(),
        size_bytes: 20 << 30,
        manifest_disk: mdisk.into(),
        manifest_version: u64::from(!mdisk.is_empty()),
        delete_with_instance: dwi,
        slot,
        created_at: 100,
        updated_at: 100,
        version: 1,
    }
}

fn image(id: &str, snap: &str) -> Image {
    Image {
        image_id: id.into(),
        kind: "PRIVATE".into(),
        owner: "acc1".into(),
        region: "r1".into(),
        name: format!("n-{id}"),
        description: String::new(),
        os_name: String::new(),
        os_type: String::new(),
        platform: String::new(),
        architecture: "x86_64".into(),
        size_bytes: 20 << 30,
        state: "CREATING".into(),
        state_reason: String::new(),
        source: "CREATE_IMAGE".into(),
        license_type: "TencentCloud".into(),
        family: String::new(),
        deprecated: false,
        cloudinit: false,
        sync_percent: None,
        share_count: 0,
        disks: vec![DiskRef {
            disk_id: "disk-sys00001".into(),
            version: 2,
            usage: "SYSTEM_DISK".into(),
            size_bytes: 20 << 30,
            snapshot_id: snap.into(),
        }],
        origin: String::new(),
        created_at: 100,
        updated_at: 100,
        version: 1,
        tags: Vec::new(),
    }
}

fn snap(id: &str, image: &str, mdisk: &str, version: u64) -> Snapshot {
    Snapshot {
        snapshot_id: id.into(),
        owner: "acc1".into(),
        region: "r1".into(),
        zone: "r1-1".into(),
        disk_id: "disk-sys00001".into(),
        usage: "SYSTEM_DISK".into(),
        size_bytes: 20 << 30,
        manifest_disk: mdisk.into(),
        manifest_version: version,
        name: "s".into(),
        state: "NORMAL".into(),
        image_id: image.into(),
        deadline: 0,
        created_at: 100,
    }
}

fn q(owner: &str) -> ResourceQuery {
    ResourceQuery {
        owner: owner.into(),
        region: "r1".into(),
        limit: 100,
        ..ResourceQuery::default()
    }
}

async fn lifecycle(c: Catalog) {
    // A batch with a duplicate id stores nothing.
    let bad = vec![
        (
            inst("ins-a0000001", "acc1"),
            vec![disk("disk-x0000001", "ins-a0000001", 0, "img-m", true)],
        ),
        (inst("ins-a0000001", "acc1"), vec![]),
    ];
    assert!(c.insert_instances(&bad, &[]).await.is_err());
    assert_eq!(
        c.query_instances(&q("acc1")).await.map(|r| r.0).ok(),
        Some(0)
    );
    let items = vec![(
        inst("ins-a0000001", "acc1"),
        vec![
            disk("disk-sys00001", "ins-a0000001", 0, "img-m", true),
            disk("disk-dat00002", "ins-a0000001", 2, "", false),
            disk("disk-dat00001", "ins-a0000001", 1, "", true),
        ],
    )];
    c.insert_instances(&items, &[usage("ins-a0000001", 100)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let disks = c
        .instance_disks("ins-a0000001")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<&str> = disks.iter().map(|d| d.disk_id.as_str()).collect();
    assert_eq!(order, ["disk-sys00001", "disk-dat00001", "disk-dat00002"]);
    assert_eq!(
        c.query_instances(&q("acc2")).await.map(|r| r.0).ok(),
        Some(0),
        "owner isolation"
    );

    // Writing moves the content reference.
    assert!(c
        .set_disk_manifest("disk-sys00001", "disk-sys00001", 2, 200)
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!c
        .set_disk_manifest("disk-gone0001", "x", 1, 200)
        .await
        .unwrap_or(true));
    let d = c
        .disk("disk-sys00001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("disk"));
    assert_eq!(
        (d.manifest_disk.as_str(), d.manifest_version, d.version),
        ("disk-sys00001", 2, 2)
    );

    // An image with a snapshot of that content, in one transaction, within quota.
    let s = snap("snap-s0000001", "img-i0000001", "disk-sys00001", 2);
    assert!(c
        .insert_image_with_snapshots(&image("img-i0000001", "snap-s0000001"), Some(1), &[s], None)
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    let s2 = snap("snap-s0000002", "img-i0000002", "disk-sys00001", 2);
    assert!(
        !c.insert_image_with_snapshots(
            &image("img-i0000002", "snap-s0000002"),
            Some(1),
            &[s2],
            None
        )
        .await
        .unwrap_or_else(|e| panic!("{e}")),
        "over quota"
    );
    assert!(
        c.snapshot("snap-s0000002").await.ok().flatten().is_none(),
        "over quota stored a snapshot"
    );
    let imgs = c
        .images_of_snapshot("snap-s0000001")
        .await
        .unwrap_or_default();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].0, "img-i0000001");
    c.insert_snapshot(&snap("snap-u0000001", "", "img-m", 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c
        .images_of_snapshot("snap-u0000001")
        .await
        .unwrap_or_default()
        .is_empty());
    let (n, list) = c
        .query_snapshots(&ResourceQuery {
            parents: vec!["disk-sys00001".into()],
            ..q("acc1")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((n, list.len()), (2, 2));

    // The live set covers the image, the disks and the snapshots (deduplicated).
    let live = c.live_manifests().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        live,
        vec![("disk-sys00001".to_string(), 2), ("img-m".to_string(), 1)]
    );

    // Re-install: instance and system disk change together.
    let mut i = inst("ins-a0000001", "acc1");
    i.image_id = "img-other001".into();
    i.latest_operation = "ResetInstance".into();
    let mut sys = disk("disk-sys00001", "ins-a0000001", 0, "img-m", true);
    sys.size_bytes = 30 << 30;
    assert!(c
        .reset_instance(&i, &sys, &usage("ins-a0000001", 200))
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    let got = c
        .instance("ins-a0000001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("inst"));
    assert_eq!(
        (got.image_id.as_str(), got.latest_operation.as_str()),
        ("img-other001", "ResetInstance")
    );
    let d = c
        .disk("disk-sys00001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("disk"));
    assert_eq!(
        (d.manifest_disk.as_str(), d.size_bytes),
        ("img-m", 30 << 30)
    );
    assert!(!c
        .reset_instance(
            &inst("ins-none0001", "acc1"),
            &sys,
            &usage("ins-none0001", 250)
        )
        .await
        .unwrap_or(true));

    // Snapshot deletion is all or nothing.
    assert!(!c
        .delete_snapshots(&["snap-u0000001".into(), "snap-none0001".into()])
        .await
        .unwrap_or(true));
    assert!(c.snapshot("snap-u0000001").await.ok().flatten().is_some());
    assert_eq!(
        c.delete_image_snapshots("img-i0000001")
            .await
            .unwrap_or_default(),
        vec!["snap-s0000001".to_string()]
    );

    // Termination deletes delete-with-instance disks and detaches the others.
    let gone = c
        .delete_instances(&["ins-a0000001".into()], 300)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut gone = gone;
    gone.sort();
    assert_eq!(gone, ["disk-dat00001", "disk-sys00001"]);
    let kept = c
        .disk("disk-dat00002")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("kept"));
    assert_eq!(kept.instance_id, "");
    assert!(c.instance("ins-a0000001").await.ok().flatten().is_none());
    // Usage: one span per installed image, closed by re-install and termination.
    let spans = c
        .usage("acc1", 0, 1000)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(i64, Option<i64>)> = spans.iter().map(|u| (u.started_at, u.ended_at)).collect();
    assert_eq!(got, vec![(100, Some(200)), (200, Some(300))]);
    assert!(c
        .usage("acc1", 300, 1000)
        .await
        .unwrap_or_default()
        .is_empty());
}
both!(instances_on_both_engines, lifecycle);
