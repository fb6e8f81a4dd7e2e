//! Service rules for instances that the end-to-end suite cannot reach: CreateImage whose
//! source content has vanished from the store ends CREATEFAILED with the reason (never
//! NORMAL), NBD export names are checked against the owner's keys (wrong token, another
//! account's key, a disabled key, a bare disk id), and a re-install racing a terminated
//! instance fails cleanly.

mod common;

use common::Env;
use ikon_service::{
    nbd_export_name, Caller, CreateImageHandler, CreateImageRequest, ImageSource, PublishRequest,
    RunRequest,
};
use std::sync::Arc;

async fn service() -> (Env, std::path::PathBuf) {
    let env = common::service("inst").await;
    let dir = env.dir.clone();
    (env, dir)
}

fn raw_disk(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("disk.raw");
    let mut data = vec![0u8; 4 << 20];
    for (i, b) in data[1 << 20..2 << 20].iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap_or(0) | 1;
    }
    std::fs::write(&p, data).unwrap_or_else(|e| panic!("{e}"));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_image_fails_cleanly_and_nbd_checks_keys() {
    let (svc, dir) = service().await;
    let public = svc
        .admin()
        .publish_image(
            &PublishRequest {
                file: raw_disk(&dir),
                region: "ap-guangzhou".into(),
                name: "base".into(),
                description: String::new(),
                os_name: Some("Debian 12 64bit".into()),
                platform: Some("Debian".into()),
                account: None,
                family: String::new(),
                count: 1,
            },
            Arc::new(|_, _| {}),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .image_id;
    let acc = svc
        .accounts()
        .create_account("owner", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let other = svc
        .accounts()
        .create_account("other", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let caller = Caller {
        account_id: acc.account_id.clone(),
        is_admin: false,
        region: "ap-guangzhou".into(),
    };
    let ids = svc
        .instances()
        .run_instances(
            &caller,
            &RunRequest {
                image_id: public,
                zone: "ap-guangzhou-3".into(),
                count: 1,
                system_disk_gib: Some(1),
                ..RunRequest::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, views) = svc
        .instances()
        .describe_instances(
            &caller,
            &ikon_service::InstanceFilter {
                ids: Some(ids.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let disk = views[0].disks[0].disk_id.clone();

    // NBD export names.
    let good = nbd_export_name(&acc.secret_id, &acc.secret_key, &disk);
    assert!(svc.instances().nbd_open(&good).await.is_ok());
    for bad in [
        disk.clone(),
        format!("{disk}/{}/00", acc.secret_id),
        nbd_export_name(&other.secret_id, &other.secret_key, &disk),
        nbd_export_name(&acc.secret_id, "not-the-key", &disk),
        nbd_export_name(&acc.secret_id, &acc.secret_key, "disk-00000000"),
        "../../etc/passwd".to_string(),
    ] {
        assert!(
            svc.instances().nbd_open(&bad).await.is_err(),
            "{bad} was accepted"
        );
    }
    svc.catalog()
        .set_key_enabled(&acc.secret_id, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        svc.instances().nbd_open(&good).await.is_err(),
        "a disabled key still opens disks"
    );

    // A snapshot whose content is missing from the store: CreateImage ends CREATEFAILED.
    let snap = svc
        .instances()
        .create_snapshot(&caller, &disk, "s", 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = svc
        .catalog()
        .snapshot(&snap)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("snapshot"));
    let mut broken = s.clone();
    broken.snapshot_id = "snap-broken01".into();
    broken.manifest_disk = "disk-gone0001".into();
    svc.catalog()
        .insert_snapshot(&broken)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let img = svc
        .images()
        .create_image(
            &caller,
            &CreateImageRequest {
                name: "broken".into(),
                description: String::new(),
                source: ImageSource::Snapshots(vec!["snap-broken01".into()]),
                family: String::new(),
                tags: Vec::new(),
                dry_run: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut runner = svc.task_runner(30);
    runner.register(Arc::new(CreateImageHandler));
    while runner.run_once().await.unwrap_or(false) {}
    let got = svc
        .catalog()
        .image(&img)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("image"));
    assert_eq!(got.state, "CREATEFAILED");
    assert!(
        got.state_reason.contains("disk-gone0001"),
        "{}",
        got.state_reason
    );
    // The good snapshot makes a NORMAL image.
    let ok = svc
        .images()
        .create_image(
            &caller,
            &CreateImageRequest {
                name: "good".into(),
                description: String::new(),
                source: ImageSource::Snapshots(vec![snap]),
                family: String::new(),
                tags: Vec::new(),
                dry_run: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while runner.run_once().await.unwrap_or(false) {}
    let got = svc.catalog().image(&ok).await.ok().flatten();
    assert_eq!(got.map(|i| i.state).as_deref(), Some("NORMAL"));

    // Re-install after termination fails cleanly.
    svc.instances()
        .terminate_instances(&caller, &ids)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(svc
        .instances()
        .reset_instance(&caller, &ids[0], None, None, "r")
        .await
        .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
