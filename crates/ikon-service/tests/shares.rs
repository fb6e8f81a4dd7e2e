//! Operations added for the Alibaba dialect: a combined share update (withdrawals, then
//! grants, all checked first, dry run), the modify pre-check, and listing by family with
//! deprecated images left out.

use ikon_service::{ids, Caller, Config, ErrorKind, Image, ListImages, Service, ShareUpdate};

async fn service(config: Config) -> Service {
    let dir = std::env::temp_dir().join(format!("ikon-svc-{}", ids::uuid4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cat = ikon_catalog::Catalog::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Service::new(
        cat,
        config,
        ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn image(id: &str, owner: &str, name: &str, family: &str) -> Image {
    Image {
        image_id: id.into(),
        kind: "PRIVATE".into(),
        owner: owner.into(),
        region: "ap-guangzhou".into(),
        name: name.into(),
        description: String::new(),
        os_name: "CentOS 7.9 64bit".into(),
        os_type: "Linux".into(),
        platform: "CentOS".into(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 30,
        state: "NORMAL".into(),
        state_reason: String::new(),
        source: "CREATE_IMAGE".into(),
        license_type: "TencentCloud".into(),
        family: family.into(),
        deprecated: false,
        cloudinit: true,
        sync_percent: None,
        share_count: 0,
        disks: vec![],
        origin: String::new(),
        created_at: ids::now(),
        updated_at: ids::now(),
        version: 1,
        tags: vec![],
    }
}

fn caller(account_id: &str) -> Caller {
    Caller {
        account_id: account_id.into(),
        is_admin: false,
        region: "ap-guangzhou".into(),
    }
}

fn ok<T>(r: ikon_service::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn update_shares_checks_everything_first_and_counts_after_withdrawals() {
    let mut config = Config::default();
    config.limits.share_accounts_max = 2;
    let svc = service(config).await;
    let owner = ok(svc.accounts().create_account("owner", false).await);
    let a = ok(svc.accounts().create_account("a", false).await).account_id;
    let b = ok(svc.accounts().create_account("b", false).await).account_id;
    let c = ok(svc.accounts().create_account("c", false).await).account_id;
    ok(svc
        .images()
        .add_image(&image("img-aaaa0001", &owner.account_id, "one", ""))
        .await);
    let me = caller(&owner.account_id);
    let shared = |svc: &Service| {
        let svc = svc.clone();
        let me = me.clone();
        async move {
            let mut v: Vec<String> = ok(svc.images().shares(&me, "img-aaaa0001").await)
                .into_iter()
                .map(|s| s.account_id)
                .collect();
            v.sort();
            v
        }
    };
    let upd = |add: &[&String], remove: &[&String], dry_run| ShareUpdate {
        add: add.iter().map(|s| s.to_string()).collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
        dry_run,
    };
    // A dry run checks and changes nothing.
    ok(svc
        .images()
        .update_shares(&me, "img-aaaa0001", &upd(&[&a, &b], &[], true))
        .await);
    assert!(shared(&svc).await.is_empty());
    ok(svc
        .images()
        .update_shares(&me, "img-aaaa0001", &upd(&[&a, &b], &[], false))
        .await);
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(shared(&svc).await, want);
    // Over the limit: refused before the withdrawal happens.
    let e = svc
        .images()
        .update_shares(&me, "img-aaaa0001", &upd(&[&c], &[], false))
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::ShareQuotaExceeded));
    // Withdrawing one frees room in the same call.
    ok(svc
        .images()
        .update_shares(&me, "img-aaaa0001", &upd(&[&c], &[&a], false))
        .await);
    let mut want = vec![b.clone(), c.clone()];
    want.sort();
    assert_eq!(shared(&svc).await, want);
    // A bad grant leaves the withdrawals undone too.
    let e = svc
        .images()
        .update_shares(
            &me,
            "img-aaaa0001",
            &upd(&[&owner.account_id], &[&b], false),
        )
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::ShareToSelf));
    assert_eq!(shared(&svc).await.len(), 2);
    let e = svc
        .images()
        .update_shares(&me, "img-aaaa0001", &upd(&[&b], &[], false))
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::ShareExists));
    // The recipient may not change the list.
    let e = svc
        .images()
        .update_shares(&caller(&b), "img-aaaa0001", &upd(&[], &[&c], false))
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::SharedImageReadOnly));
    let e = svc
        .images()
        .update_shares(&me, "img-aaaa0001", &upd(&[], &[], false))
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::InvalidParameterValue));
}

#[tokio::test]
async fn modify_precheck_and_family_listing() {
    let svc = service(Config::default()).await;
    let owner = ok(svc.accounts().create_account("owner", false).await);
    let other = ok(svc.accounts().create_account("other", false).await);
    let me = caller(&owner.account_id);
    ok(svc
        .images()
        .add_image(&image("img-aaaa0001", &owner.account_id, "one", "fam"))
        .await);
    ok(svc
        .images()
        .add_image(&image("img-aaaa0002", &owner.account_id, "two", "fam"))
        .await);
    ok(svc
        .images()
        .add_image(&image("img-aaaa0003", &owner.account_id, "three", "other"))
        .await);
    ok(svc
        .images()
        .check_modify_image(&me, "img-aaaa0001", Some("new"), None)
        .await);
    let e = svc
        .images()
        .check_modify_image(&caller(&other.account_id), "img-aaaa0001", Some("x"), None)
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::ImageNotFound));
    let e = svc
        .images()
        .check_modify_image(&me, "img-aaaa0001", Some(""), None)
        .await
        .err()
        .map(|e| e.kind);
    assert_eq!(
        e,
        Some(ErrorKind::TextMalformed(ikon_service::TextField::ImageName))
    );
    ok(svc
        .images()
        .modify_image(&me, "img-aaaa0002", None, None, None, Some(true))
        .await);
    let list = |family: &str, exclude_deprecated| ListImages {
        family: Some(family.into()),
        exclude_deprecated,
        limit: 10,
        ..ListImages::default()
    };
    let ids = |l: ikon_service::ImageListing| {
        let mut v: Vec<String> = l.images.into_iter().map(|i| i.image.image_id).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(ok(svc.images().list_images(&me, &list("fam", false)).await)),
        ["img-aaaa0001", "img-aaaa0002"]
    );
    assert_eq!(
        ids(ok(svc.images().list_images(&me, &list("fam", true)).await)),
        ["img-aaaa0001"]
    );
}
