//! Disk listing (attached / detached, by instance) and the region of one's own resource,
//! which dialects use for requests that name a resource but no region.

use ikon_catalog::DiskRef;
use ikon_service::{ids, Caller, Config, DataDiskSpec, DiskFilter, Image, RunRequest, Service};

async fn service() -> Service {
    let dir = std::env::temp_dir().join(format!("ikon-svc-{}", ids::uuid4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cat = ikon_catalog::Catalog::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Service::new(
        cat,
        Config::default(),
        ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn public_image() -> Image {
    Image {
        image_id: "img-pub00001".into(),
        kind: "PUBLIC".into(),
        owner: String::new(),
        region: "ap-guangzhou".into(),
        name: "CentOS".into(),
        description: String::new(),
        os_name: "CentOS 7.9 64bit".into(),
        os_type: "Linux".into(),
        platform: "CentOS".into(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 30,
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
            disk_id: "manifest-1".into(),
            version: 1,
            usage: "SYSTEM_DISK".into(),
            size_bytes: 1 << 30,
            snapshot_id: String::new(),
        }],
        origin: String::new(),
        created_at: ids::now(),
        updated_at: ids::now(),
        version: 1,
        tags: vec![],
    }
}

fn ok<T>(r: ikon_service::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

async fn caller(svc: &Service, name: &str) -> Caller {
    let a = ok(svc.accounts().create_account(name, false).await);
    Caller {
        account_id: a.account_id,
        is_admin: false,
        region: "ap-guangzhou".into(),
    }
}

#[tokio::test]
async fn disks_attached_detached_and_resource_regions() {
    let svc = service().await;
    ok(svc.images().add_image(&public_image()).await);
    let alice = caller(&svc, "alice").await;
    let bob = caller(&svc, "bob").await;
    let run = |c: &Caller, keep_data: bool| {
        let (svc, c) = (svc.clone(), c.clone());
        async move {
            let req = RunRequest {
                image_id: "img-pub00001".into(),
                zone: "ap-guangzhou-3".into(),
                count: 1,
                instance_type: "S5.MEDIUM4".into(),
                data_disks: if keep_data {
                    vec![DataDiskSpec {
                        size_gib: 10,
                        delete_with_instance: false,
                        ..DataDiskSpec::default()
                    }]
                } else {
                    vec![]
                },
                ..RunRequest::default()
            };
            ok(svc.instances().run_instances(&c, &req).await).remove(0)
        }
    };
    let first = run(&alice, true).await;
    let second = run(&alice, false).await;
    let bobs = run(&bob, false).await;
    let list = |f: DiskFilter| {
        let (svc, c) = (svc.clone(), alice.clone());
        async move {
            let (n, disks) = ok(svc
                .instances()
                .describe_disks(&c, &DiskFilter { limit: 100, ..f })
                .await);
            assert_eq!(n, u64::try_from(disks.len()).unwrap_or(0));
            disks
        }
    };
    assert_eq!(list(DiskFilter::default()).await.len(), 3);
    let attached = DiskFilter {
        attached: Some(true),
        ..DiskFilter::default()
    };
    assert_eq!(list(attached.clone()).await.len(), 3);
    let of_first = DiskFilter {
        instance_ids: vec![first.clone()],
        ..DiskFilter::default()
    };
    let data: Vec<String> = list(of_first.clone())
        .await
        .into_iter()
        .filter(|d| d.usage == "DATA_DISK")
        .map(|d| d.disk_id)
        .collect();
    assert_eq!(data.len(), 1);
    // The region of one's own instance or disk; nothing for anyone else's.
    assert_eq!(
        ok(svc.instances().resource_region(&alice, &first).await).as_deref(),
        Some("ap-guangzhou")
    );
    assert_eq!(
        ok(svc.instances().resource_region(&alice, &data[0]).await).as_deref(),
        Some("ap-guangzhou")
    );
    assert_eq!(
        ok(svc.instances().resource_region(&bob, &first).await),
        None
    );
    assert_eq!(
        ok(svc.instances().resource_region(&alice, &bobs).await),
        None
    );
    assert_eq!(
        ok(svc
            .instances()
            .resource_region(&alice, "ins-zzzzzzzz")
            .await),
        None
    );
    assert_eq!(
        ok(svc.instances().resource_region(&alice, "i-abc").await),
        None
    );
    // Terminating the first instance keeps its data disk, detached.
    ok(svc
        .instances()
        .terminate_instances(&alice, std::slice::from_ref(&first))
        .await);
    let detached = list(DiskFilter {
        attached: Some(false),
        ..DiskFilter::default()
    })
    .await;
    assert_eq!(
        detached
            .iter()
            .map(|d| (d.disk_id.clone(), d.instance_id.clone()))
            .collect::<Vec<_>>(),
        vec![(data[0].clone(), String::new())]
    );
    assert_eq!(list(attached).await.len(), 1);
    // A detached disk belongs to no instance: listing by instance never finds it.
    assert!(list(of_first).await.is_empty());
    let of_second = list(DiskFilter {
        instance_ids: vec![second.clone()],
        ..DiskFilter::default()
    })
    .await;
    assert_eq!(of_second.len(), 1);
    assert!(list(DiskFilter {
        instance_ids: vec![second],
        attached: Some(false),
        ..DiskFilter::default()
    })
    .await
    .is_empty());
}
