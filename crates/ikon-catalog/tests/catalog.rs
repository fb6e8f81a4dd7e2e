//! The catalog suite, run on both engines: every test gets a fresh SQLite file and a fresh
//! PostgreSQL database (from `IKON_TEST_DATABASE_URL`, which `scripts/test.sh` sets after
//! starting a server; the tests fail, not skip, without it).

use ikon_catalog::{
    Catalog, Category, DeleteOutcome, DiskRef, Image, ImageChange, ImageQuery, NewTask,
    TaskOutcome, TaskState,
};
mod common;

use common::unique;

fn image(id: &str, kind: &str, owner: &str, region: &str, name: &str, created: i64) -> Image {
    Image {
        image_id: id.into(),
        kind: kind.into(),
        owner: owner.into(),
        region: region.into(),
        name: name.into(),
        description: String::new(),
        os_name: "Ubuntu Server 22.04 LTS 64bit".into(),
        os_type: "Linux".into(),
        platform: "Ubuntu".into(),
        architecture: "x86_64".into(),
        size_bytes: 10 << 30,
        state: "NORMAL".into(),
        state_reason: String::new(),
        source: "OFFICIAL".into(),
        license_type: "TencentCloud".into(),
        family: String::new(),
        deprecated: false,
        cloudinit: true,
        sync_percent: None,
        share_count: 0,
        disks: vec![DiskRef {
            disk_id: format!("d-{id}"),
            version: 1,
            usage: "SYSTEM_DISK".into(),
            size_bytes: 10 << 30,
            snapshot_id: format!("snap-{}", &id[4..]),
        }],
        origin: String::new(),
        created_at: created,
        updated_at: created,
        version: 1,
        tags: vec![],
    }
}

fn q(viewer: &str, region: &str, cats: &[Category]) -> ImageQuery {
    ImageQuery {
        viewer: viewer.into(),
        region: region.into(),
        categories: cats.to_vec(),
        limit: 100,
        ..ImageQuery::default()
    }
}

const ALL: &[Category] = &[
    Category::Private,
    Category::Shared,
    Category::Public,
    Category::Market,
];

async fn ids(c: &Catalog, query: &ImageQuery) -> (i64, Vec<String>) {
    let (n, imgs) = c
        .query_images(query)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (n, imgs.into_iter().map(|i| i.image_id).collect())
}

async fn visibility_and_filters(c: Catalog) {
    let ins = |img: Image| {
        let c = c.clone();
        async move {
            // Custom images count against their owner's quota (the service's rule).
            let quota = (img.kind == "PRIVATE").then_some(10);
            assert!(c
                .insert_image(&img, quota)
                .await
                .unwrap_or_else(|e| panic!("{e}")))
        }
    };
    ins(image(
        "img-pub00001",
        "PUBLIC",
        "",
        "ap-guangzhou",
        "ubuntu-22",
        100,
    ))
    .await;
    let mut tagged = image(
        "img-alice001",
        "PRIVATE",
        "alice",
        "ap-guangzhou",
        "web-server",
        200,
    );
    tagged.tags = vec![("team".into(), "blue".into())];
    tagged.platform = "CentOS".into();
    ins(tagged).await;
    ins(image(
        "img-alice002",
        "PRIVATE",
        "alice",
        "ap-beijing",
        "db-server",
        300,
    ))
    .await;
    ins(image(
        "img-bob00001",
        "PRIVATE",
        "bob",
        "ap-guangzhou",
        "bob-image",
        400,
    ))
    .await;

    // Alice in Guangzhou: public + her own Guangzhou image; not Beijing's, not Bob's.
    let (n, v) = ids(&c, &q("alice", "ap-guangzhou", ALL)).await;
    assert_eq!(
        (n, v),
        (
            2,
            vec!["img-alice001".to_string(), "img-pub00001".to_string()]
        )
    );
    // Public images are visible in every region.
    let (_, v) = ids(&c, &q("alice", "ap-beijing", ALL)).await;
    assert_eq!(v, ["img-alice002", "img-pub00001"]);
    // Share Bob's image to Alice: she sees it in Guangzhou only.
    assert!(c
        .share_image("img-bob00001", &["alice".into()], 50, 500)
        .await
        .unwrap_or(false));
    let (_, v) = ids(&c, &q("alice", "ap-guangzhou", &[Category::Shared])).await;
    assert_eq!(v, ["img-bob00001"]);
    let (_, v) = ids(&c, &q("alice", "ap-beijing", &[Category::Shared])).await;
    assert!(v.is_empty());
    // Filters: name (fuzzy, case-insensitive, LIKE metacharacters literal), platform, tags.
    let mut f = q("alice", "ap-guangzhou", ALL);
    f.names = vec!["SERVER".into()];
    assert_eq!(ids(&c, &f).await.1, ["img-alice001"]);
    f.names = vec!["%".into()];
    assert!(ids(&c, &f).await.1.is_empty());
    let mut f = q("alice", "ap-guangzhou", ALL);
    f.platforms = vec!["centos".into()];
    assert_eq!(ids(&c, &f).await.1, ["img-alice001"]);
    let mut f = q("alice", "ap-guangzhou", ALL);
    f.tags = vec![("team".into(), vec!["blue".into(), "red".into()])];
    assert_eq!(ids(&c, &f).await.1, ["img-alice001"]);
    f.tags = vec![("team".into(), vec!["red".into()])];
    assert!(ids(&c, &f).await.1.is_empty());
    let mut f = q("alice", "ap-guangzhou", ALL);
    f.ids = Some(vec!["img-bob00001".into(), "img-alice002".into()]);
    assert_eq!(ids(&c, &f).await.1, ["img-bob00001"]);
    // Pagination: total ignores the page.
    let mut f = q("alice", "ap-guangzhou", ALL);
    f.limit = 1;
    f.offset = 1;
    let (n, v) = ids(&c, &f).await;
    assert_eq!((n, v.len()), (3, 1));
    let img = c
        .image("img-alice001")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(img.tags, [("team".to_string(), "blue".to_string())]);
    assert_eq!(img.disks[0].disk_id, "d-img-alice001");
}
both!(
    visibility_and_filters_on_both_engines,
    visibility_and_filters
);

async fn quota_is_atomic(c: Catalog) {
    let mut handles = Vec::new();
    for i in 0..24 {
        let c = c.clone();
        handles.push(tokio::spawn(async move {
            let img = image(
                &format!("img-q{i:07}"),
                "PRIVATE",
                "carol",
                "ap-shanghai",
                &format!("n{i}"),
                i,
            );
            c.insert_image(&img, Some(10))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap_or(false) {
            ok += 1;
        }
    }
    assert_eq!(ok, 10, "exactly the quota may be created under concurrency");
    assert_eq!(c.quota_used("carol", "ap-shanghai").await.unwrap_or(-1), 10);
    // Other regions have their own quota.
    assert!(c
        .insert_image(
            &image("img-qother1", "PRIVATE", "carol", "ap-beijing", "x", 1),
            Some(10)
        )
        .await
        .unwrap_or(false));
    // Deleting releases one unit.
    let (_, v) = ids(&c, &q("carol", "ap-shanghai", &[Category::Private])).await;
    assert_eq!(
        c.delete_image(&v[0], &["NORMAL"])
            .await
            .unwrap_or(DeleteOutcome::NotFound),
        DeleteOutcome::Deleted
    );
    assert_eq!(c.quota_used("carol", "ap-shanghai").await.unwrap_or(-1), 9);
    assert!(c
        .insert_image(
            &image("img-qagain1", "PRIVATE", "carol", "ap-shanghai", "again", 1),
            Some(10)
        )
        .await
        .unwrap_or(false));
    // An image stored without a quota unit releases none when deleted.
    assert!(c
        .insert_image(
            &image("img-qfree001", "PRIVATE", "carol", "ap-shanghai", "free", 1),
            None
        )
        .await
        .unwrap_or(false));
    assert_eq!(c.quota_used("carol", "ap-shanghai").await.unwrap_or(-1), 10);
    assert_eq!(
        c.delete_image("img-qfree001", &["NORMAL"])
            .await
            .unwrap_or(DeleteOutcome::NotFound),
        DeleteOutcome::Deleted
    );
    assert_eq!(c.quota_used("carol", "ap-shanghai").await.unwrap_or(-1), 10);
    // Names are unique per owner and region.
    let dup = image("img-qdup0001", "PRIVATE", "carol", "ap-beijing", "x", 1);
    assert!(matches!(
        c.insert_image(&dup, None).await,
        Err(ikon_catalog::Error::Conflict(_))
    ));
}
both!(quota_is_atomic_on_both_engines, quota_is_atomic);

async fn shares_and_deletion(c: Catalog) {
    assert!(c
        .insert_image(
            &image("img-share001", "PRIVATE", "dave", "ap-guangzhou", "s", 1),
            Some(10)
        )
        .await
        .unwrap_or(false));
    let accounts: Vec<String> = (0..60).map(|i| format!("{i:012}")).collect();
    let mut handles = Vec::new();
    for chunk in accounts.chunks(3) {
        let c = c.clone();
        let chunk = chunk.to_vec();
        handles.push(tokio::spawn(async move {
            c.share_image("img-share001", &chunk, 50, 2)
                .await
                .unwrap_or(false)
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let shares = c.shares("img-share001").await.unwrap_or_default();
    assert!(
        shares.len() <= 50 && shares.len() >= 48,
        "{} shares",
        shares.len()
    );
    let img = c
        .image("img-share001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(usize::try_from(img.share_count).unwrap_or(0), shares.len());
    assert_eq!(
        c.delete_image("img-share001", &["NORMAL"]).await.ok(),
        Some(DeleteOutcome::Shared)
    );
    let all: Vec<String> = shares.iter().map(|s| s.account_id.clone()).collect();
    assert_eq!(
        c.unshare_image("img-share001", &all).await.unwrap_or(0),
        i64::try_from(all.len()).unwrap_or(0)
    );
    assert_eq!(
        c.delete_image("img-share001", &["CREATING"]).await.ok(),
        Some(DeleteOutcome::BadState)
    );
    assert_eq!(
        c.delete_image("img-share001", &["NORMAL"]).await.ok(),
        Some(DeleteOutcome::Deleted)
    );
    assert_eq!(
        c.delete_image("img-share001", &["NORMAL"]).await.ok(),
        Some(DeleteOutcome::NotFound)
    );
    assert!(c
        .shares("img-share001")
        .await
        .unwrap_or_default()
        .is_empty());
}
both!(shares_and_deletion_on_both_engines, shares_and_deletion);

async fn states_and_counters(c: Catalog) {
    let mut img = image("img-state001", "PRIVATE", "erin", "ap-guangzhou", "s", 1);
    img.state = "CREATING".into();
    assert!(c.insert_image(&img, Some(10)).await.unwrap_or(false));
    assert!(!c
        .transition_image("img-state001", &["SYNCING"], "NORMAL", "", None, 2)
        .await
        .unwrap_or(true));
    assert!(c
        .transition_image("img-state001", &["CREATING"], "NORMAL", "", None, 2)
        .await
        .unwrap_or(false));
    let i = c
        .image("img-state001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!((i.state.as_str(), i.version), ("NORMAL", 2));
    assert!(c
        .update_image_attributes(
            "img-state001",
            Some("renamed"),
            None,
            Some("fam"),
            Some(true),
            3
        )
        .await
        .unwrap_or(false));
    let i = c
        .image("img-state001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(
        (i.name.as_str(), i.family.as_str(), i.deprecated),
        ("renamed", "fam", true)
    );

    let mut handles = Vec::new();
    for _ in 0..12 {
        let c = c.clone();
        handles.push(tokio::spawn(async move {
            c.count_daily_op("erin", "ap-guangzhou", "2026-11-23", 5)
                .await
                .unwrap_or(false)
        }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap_or(false) {
            ok += 1;
        }
    }
    assert_eq!(ok, 5);
    assert!(c
        .count_daily_op("erin", "ap-guangzhou", "2026-11-24", 5)
        .await
        .unwrap_or(false));
    assert!(c
        .count_daily_op("erin", "ap-beijing", "2026-11-23", 5)
        .await
        .unwrap_or(false));
}
both!(states_and_counters_on_both_engines, states_and_counters);

fn task(id: &str, resource: &str) -> NewTask {
    NewTask {
        task_id: id.into(),
        kind: "import".into(),
        account_id: "frank".into(),
        region: "ap-guangzhou".into(),
        resource_id: resource.into(),
        payload: "{}".into(),
        max_attempts: 2,
    }
}

async fn task_leases(c: Catalog) {
    let mut img = image("img-task0001", "PRIVATE", "frank", "ap-guangzhou", "t", 1);
    img.state = "IMPORTING".into();
    assert!(c.insert_image(&img, Some(10)).await.unwrap_or(false));
    c.enqueue_task(&task("task-00000001", "img-task0001"), 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Many workers race for one task: exactly one wins.
    let mut handles = Vec::new();
    for w in 0..8 {
        let c = c.clone();
        handles.push(tokio::spawn(async move {
            c.claim_task(&format!("w{w}"), &["import"], 10, 100)
                .await
                .unwrap_or(None)
        }));
    }
    let mut winners = Vec::new();
    for h in handles {
        if let Ok(Some(t)) = h.await {
            winners.push(t);
        }
    }
    assert_eq!(winners.len(), 1);
    let first = winners[0].lease_owner.clone();
    assert!(c
        .heartbeat_task("task-00000001", &first, 10, 40, 105)
        .await
        .unwrap_or(false));
    // The worker dies; after its lease (115) another claims it (attempt 2).
    assert!(c
        .claim_task("w-late", &["import"], 10, 110)
        .await
        .unwrap_or(None)
        .is_none());
    let t = c
        .claim_task("w-late", &["import"], 10, 116)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("not reclaimed"));
    assert_eq!(
        (t.attempts, t.lease_owner.as_str(), t.progress),
        (2, "w-late", 40)
    );
    // The dead worker's heartbeat and result are refused.
    assert!(!c
        .heartbeat_task("task-00000001", &first, 10, 50, 117)
        .await
        .unwrap_or(true));
    let ok = TaskOutcome {
        error: None,
        retry: false,
        retry_after: 0,
        result: "{}",
        image: None,
    };
    assert!(!c
        .finish_task("task-00000001", &first, &ok, 117)
        .await
        .unwrap_or(true));
    // The second worker dies too: attempts are used up, nobody may claim it again, and
    // recovery fails it terminally together with its image.
    assert!(c
        .claim_task("w3", &["import"], 10, 200)
        .await
        .unwrap_or(None)
        .is_none());
    let ex = c.exhausted_tasks(200).await.unwrap_or_default();
    assert_eq!(ex.len(), 1);
    assert!(c
        .fail_task(
            "task-00000001",
            "worker died",
            Some(("img-task0001", &["IMPORTING"], "IMPORTFAILED")),
            200
        )
        .await
        .unwrap_or(false));
    let t = c
        .task("task-00000001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(t.state, TaskState::Failed);
    let i = c
        .image("img-task0001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(
        (i.state.as_str(), i.state_reason.as_str()),
        ("IMPORTFAILED", "worker died")
    );

    // Success path: the image turns NORMAL in the same transaction as the task.
    let mut img = image("img-task0002", "PRIVATE", "frank", "ap-guangzhou", "t2", 1);
    img.state = "IMPORTING".into();
    assert!(c.insert_image(&img, Some(10)).await.unwrap_or(false));
    c.enqueue_task(&task("task-00000002", "img-task0002"), 300)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t = c
        .claim_task("w4", &["import"], 10, 300)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no task"));
    // A retryable failure goes back to PENDING (attempt 1 of 2) and leaves the image alone.
    let change = ImageChange {
        image_id: "img-task0002",
        from: &["IMPORTING"],
        to: "IMPORTFAILED",
        reason: "net",
    };
    let retry = TaskOutcome {
        error: Some("net"),
        retry: true,
        retry_after: 5,
        result: "",
        image: Some(change),
    };
    assert!(c
        .finish_task(&t.task_id, "w4", &retry, 301)
        .await
        .unwrap_or(false));
    assert_eq!(
        c.image("img-task0002")
            .await
            .ok()
            .flatten()
            .map(|i| i.state),
        Some("IMPORTING".into())
    );
    assert!(
        c.claim_task("w5", &["import"], 10, 303)
            .await
            .unwrap_or(None)
            .is_none(),
        "retry waits for run_after"
    );
    let t = c
        .claim_task("w5", &["import"], 10, 306)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no retry"));
    let change = ImageChange {
        image_id: "img-task0002",
        from: &["IMPORTING"],
        to: "NORMAL",
        reason: "",
    };
    let ok = TaskOutcome {
        error: None,
        retry: false,
        retry_after: 0,
        result: "{\"ok\":1}",
        image: Some(change),
    };
    assert!(c
        .finish_task(&t.task_id, "w5", &ok, 307)
        .await
        .unwrap_or(false));
    let t = c
        .task("task-00000002")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(
        (t.state, t.progress, t.result.as_str()),
        (TaskState::Succeeded, 100, "{\"ok\":1}")
    );
    assert_eq!(
        c.image("img-task0002")
            .await
            .ok()
            .flatten()
            .map(|i| i.state),
        Some("NORMAL".into())
    );
}
both!(task_leases_on_both_engines, task_leases);

/// Images and the task that finishes them are stored together or not at all.
async fn images_and_their_task_are_one_write(c: Catalog) {
    use ikon_catalog::{Inserted, TaskStart};
    let mut a = image("img-atom0001", "PRIVATE", "gina", "ap-guangzhou", "a", 1);
    a.state = "IMPORTING".into();
    let mut b = image("img-atom0002", "PRIVATE", "gina", "ap-guangzhou", "b", 1);
    b.state = "IMPORTING".into();
    // The second image is over quota (one unit left): neither image nor the task is stored,
    // and the first image's unit is not kept.
    assert!(c
        .insert_image(
            &image("img-atom0000", "PRIVATE", "gina", "ap-guangzhou", "z", 1),
            Some(2)
        )
        .await
        .unwrap_or(false));
    let got = c
        .insert_images_with_task(
            &[(&a, Some(2)), (&b, Some(2))],
            &task("task-atom0001", "img-atom0001"),
            TaskStart::Pending,
            100,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, Inserted::QuotaFull(1));
    assert!(c
        .image("img-atom0001")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    assert!(c
        .task("task-atom0001")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    assert_eq!(c.quota_used("gina", "ap-guangzhou").await.unwrap_or(-1), 1);
    // A taken name: the same.
    b.name = "z".into();
    let got = c
        .insert_images_with_task(
            &[(&a, None), (&b, None)],
            &task("task-atom0002", "img-atom0001"),
            TaskStart::Pending,
            100,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, Inserted::NameTaken(1));
    assert!(c
        .image("img-atom0001")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    assert!(c
        .task("task-atom0002")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    // Both fit: both images and the claimed task are stored.
    b.name = "b".into();
    let got = c
        .insert_images_with_task(
            &[(&a, Some(3)), (&b, None)],
            &task("task-atom0003", "img-atom0001"),
            TaskStart::Claimed {
                worker: "admin-1",
                lease_secs: 30,
            },
            100,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, Inserted::All);
    assert!(c
        .image("img-atom0002")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_some());
    let t = c
        .task("task-atom0003")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no task"));
    assert_eq!(t.state, ikon_catalog::TaskState::Running);
    assert_eq!(t.lease_owner, "admin-1");
    // Claimed: no other worker can take it while its lease runs.
    assert!(c
        .claim_task("w9", &["import"], 10, 101)
        .await
        .unwrap_or(None)
        .is_none());
    assert_eq!(c.quota_used("gina", "ap-guangzhou").await.unwrap_or(-1), 2);
}
both!(
    images_and_their_task_are_one_write_on_both_engines,
    images_and_their_task_are_one_write
);

async fn accounts_and_schema(c: Catalog) {
    let a = ikon_catalog::Account {
        account_id: "100000000001".into(),
        name: "gina".into(),
        is_admin: false,
        created_at: 1,
        disabled: false,
    };
    c.create_account(&a).await.unwrap_or_else(|e| panic!("{e}"));
    let dup = ikon_catalog::Account {
        account_id: "100000000002".into(),
        ..a.clone()
    };
    assert!(matches!(
        c.create_account(&dup).await,
        Err(ikon_catalog::Error::Conflict(_))
    ));
    let k = ikon_catalog::ApiKey {
        secret_id: "AKIDx".into(),
        secret_key: "s".into(),
        account_id: a.account_id.clone(),
        enabled: true,
    };
    c.create_key(&k, 1).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.key("AKIDx").await.ok().flatten(), Some(k.clone()));
    assert!(c.set_key_enabled("AKIDx", false).await.unwrap_or(false));
    assert_eq!(
        c.key("AKIDx").await.ok().flatten().map(|k| k.enabled),
        Some(false)
    );
    assert_eq!(
        c.account_by_name("gina").await.ok().flatten(),
        Some(a.clone())
    );
    // A disabled account: its key reads as belonging to a disabled account.
    assert!(c
        .set_account_disabled(&a.account_id, true)
        .await
        .unwrap_or(false));
    assert_eq!(
        c.key_with_account("AKIDx")
            .await
            .ok()
            .flatten()
            .map(|(_, a)| a.disabled),
        Some(true)
    );
    assert!(!c
        .set_account_disabled("999999999999", true)
        .await
        .unwrap_or(true));
    assert!(c.meta_set_if_absent("k", "v1").await.unwrap_or(false));
    assert!(!c.meta_set_if_absent("k", "v2").await.unwrap_or(true));
    assert_eq!(c.meta_get("k").await.ok().flatten(), Some("v1".into()));
    assert_eq!(
        c.meta_get("schema_version").await.ok().flatten(),
        Some(ikon_catalog::schema::MIGRATIONS.len().to_string())
    );
}
both!(accounts_and_schema_on_both_engines, accounts_and_schema);

#[tokio::test]
async fn reconnecting_keeps_data_and_schema() {
    let dir = std::env::temp_dir().join(unique("ikon_cat_re"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("sqlite://{}", dir.join("c.db").display());
    let c = Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c
        .insert_image(
            &image("img-keep0001", "PUBLIC", "", "ap-guangzhou", "k", 1),
            None
        )
        .await
        .unwrap_or(false));
    drop(c);
    let c = Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.image_count().await.unwrap_or(0), 1);
    assert!(Catalog::connect("mysql://x").await.is_err());
}
