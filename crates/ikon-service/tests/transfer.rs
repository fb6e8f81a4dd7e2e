//! Cross-region copy and export through the service, with regions on different stores: the
//! default local store (Guangzhou; Hong Kong names the same directory), a real S3 engine
//! (Shanghai) and a directory (Beijing). Copies send only the chunks the destination lacks (bytes asserted);
//! exports in every format are downloaded from S3 and checked with `qemu-img check` (the
//! formats it can check: qcow2, vmdk) and `qemu-img compare` against the source. Needs `IKON_TEST_S3_*` (scripts/start-s3.sh):
//! a missing engine fails the suite.

use ikon_service::tasks::Runner;
use ikon_service::{
    ids, Caller, Config, ErrorKind, ExportRequest, PublishRequest, Service, SyncRequest,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const MIB: u64 = 1 << 20;
const MIBU: usize = 1 << 20;

fn env_var(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: these tests run against a real S3 engine. Start one with \
             `eval \"$(bash scripts/start-s3.sh)\"` (scripts/test.sh does this)"
            )
        })
}

fn s3_options() -> ikon_store::S3Options {
    ikon_store::S3Options {
        endpoint: Some(env_var("IKON_TEST_S3_ENDPOINT")),
        region: Some(env_var("IKON_TEST_S3_REGION")),
        access_key_id: Some(env_var("IKON_TEST_S3_ACCESS_KEY_ID")),
        secret_access_key: Some(env_var("IKON_TEST_S3_SECRET_ACCESS_KEY")),
        allow_http: Some(true),
        max_retries: None,
        ..Default::default()
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ikon-transfer-{tag}-{}", ids::uuid4()));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("qemu-img is required (the format oracle): {e}"));
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A raw disk: `pattern` decides each MiB (None = zeros, Some(seed) = pseudo-random).
fn make_raw(path: &Path, pattern: &[Option<u64>]) {
    let mut data = vec![0u8; pattern.len() * MIBU];
    for (i, p) in pattern.iter().enumerate() {
        if let Some(seed) = p {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for b in &mut data[i * MIBU..(i + 1) * MIBU] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x.to_le_bytes()[0];
            }
        }
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{e}"));
}

struct Env {
    svc: Service,
    /// The catalog beneath the service (looked at directly by the checks).
    cat: ikon_catalog::Catalog,
    runner: Runner,
    caller: Caller,
    work: PathBuf,
    beijing: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Each test's catalog, chunks and exports (100+ MiB): gone with the test.
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

async fn env(export_dir: Option<PathBuf>) -> Env {
    let work = tmpdir("svc");
    let beijing = work.join("beijing-store");
    let mut config = Config {
        s3: s3_options(),
        ..Config::default()
    };
    // The daily limit counts inside the operations; these tests make many of them.
    config.limits.daily_operations = 1000;
    let prefix = format!("svc-{}", ids::uuid4());
    for r in &mut config.regions {
        match r.name.as_str() {
            "ap-shanghai" => {
                r.store = Some(format!(
                    "s3://{}/{prefix}/shanghai",
                    env_var("IKON_TEST_S3_BUCKET")
                ))
            }
            "ap-beijing" => r.store = Some(beijing.display().to_string()),
            // Named explicitly, the default store's own directory is still the same store.
            "ap-hongkong" => r.store = Some(work.join("chunks").display().to_string()),
            _ => {}
        }
    }
    config.export.dir = export_dir.map(|d| d.display().to_string());
    config.export.work_dir = Some(work.display().to_string());
    config.validate().unwrap_or_else(|e| panic!("{e}"));
    let cat = ikon_catalog::Catalog::connect(&format!("sqlite://{}", work.join("c.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = ikon_service::Store::open_local(&work.join("chunks"), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let regions = Service::open_region_stores(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let svc = Service::new(cat.clone(), config, store).with_region_stores(regions);
    let acc = svc
        .accounts()
        .create_account("transfer", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut runner = svc.task_runner(30);
    runner.register(Arc::new(ikon_service::SyncHandler));
    runner.register(Arc::new(ikon_service::ExportHandler));
    Env {
        svc,
        cat,
        runner,
        caller: Caller {
            account_id: acc.account_id,
            is_admin: false,
            region: "ap-guangzhou".into(),
        },
        work,
        beijing,
    }
}

impl Env {
    async fn publish(&self, file: &Path, name: &str) -> String {
        self.svc
            .admin()
            .publish_image(
                &PublishRequest {
                    file: file.to_path_buf(),
                    region: "ap-guangzhou".into(),
                    name: name.into(),
                    description: String::new(),
                    os_name: None,
                    platform: None,
                    account: Some(self.caller.account_id.clone()),
                    family: String::new(),
                    count: 1,
                },
                Arc::new(|_, _| {}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .image_id
    }

    async fn run_tasks(&self) {
        while self
            .runner
            .run_once()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        {}
    }

    async fn image(&self, id: &str) -> ikon_service::Image {
        self.cat
            .image(id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{id} gone"))
    }

    /// Dumps an image's system disk from its region's store into a raw file.
    async fn dump(&self, id: &str, out: &Path) {
        let img = self.image(id).await;
        let d = &img.disks[0];
        let store = self.svc.store_for(&img.region).clone();
        let m = store
            .get_manifest(&ikon_store::ManifestRef {
                disk_id: d.disk_id.clone(),
                version: d.version,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let disk = store.open_disk(m);
        let out = out.to_path_buf();
        tokio::task::spawn_blocking(move || {
            use ikon_disk::BlockDevice;
            let mut buf = vec![0u8; usize::try_from(disk.len()).unwrap_or(0)];
            disk.read_exact_at(&mut buf, 0)
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(out, buf).unwrap_or_else(|e| panic!("{e}"));
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn sync_result(&self, task_id: &str) -> serde_json::Value {
        let t = self
            .svc
            .transfers()
            .task(task_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.state,
            ikon_catalog::TaskState::Succeeded,
            "task failed: {}",
            t.error
        );
        serde_json::from_str(&t.result).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn copied(result: &serde_json::Value, region: &str) -> u64 {
    result["copies"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["region"] == region))
        .and_then(|c| c["copied_bytes"].as_u64())
        .unwrap_or_else(|| panic!("no copy to {region} in {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_between_regions_send_only_missing_chunks() {
    let e = env(None).await;
    // 16 MiB with 10 MiB of data; the second image differs from it in one MiB.
    let base: Vec<Option<u64>> = (0..16u64)
        .map(|i| (i % 3 != 2 && i < 15).then_some(500 + i))
        .collect();
    let data_mib = base.iter().filter(|p| p.is_some()).count() as u64;
    let raw_a = e.work.join("a.raw");
    make_raw(&raw_a, &base);
    let a = e.publish(&raw_a, "base").await;

    // The policy: North America, the own region, unknown regions, bad states.
    let req = |regions: &[&str]| SyncRequest {
        image_ids: vec![a.clone()],
        regions: regions.iter().map(|r| r.to_string()).collect(),
        name: None,
        dry_run: false,
    };
    let err = |r: ikon_service::Result<ikon_service::SyncStarted>| r.err().map(|e| e.kind);
    assert_eq!(
        err(e
            .svc
            .transfers()
            .sync_images(&e.caller, &req(&["na-ashburn"]))
            .await),
        Some(ErrorKind::RegionNotAllowed)
    );
    let msg = e
        .svc
        .transfers()
        .sync_images(&e.caller, &req(&["ap-shanghai", "na-siliconvalley"]))
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        msg.contains("na-siliconvalley") && msg.contains("ap-hongkong"),
        "the refusal names the region and the allowed ones: {msg}"
    );
    assert_eq!(
        err(e
            .svc
            .transfers()
            .sync_images(&e.caller, &req(&["ap-guangzhou"]))
            .await),
        Some(ErrorKind::InvalidParameterValue)
    );
    assert_eq!(
        err(e
            .svc
            .transfers()
            .sync_images(&e.caller, &req(&["xx-nowhere"]))
            .await),
        Some(ErrorKind::InvalidRegion)
    );
    let mut dry = req(&["ap-shanghai"]);
    dry.dry_run = true;
    assert!(e.svc.transfers().sync_images(&e.caller, &dry).await.is_ok());
    assert_eq!(
        e.image(&a).await.state,
        "NORMAL",
        "a dry run changes nothing"
    );

    // Copy to S3 (Shanghai), a directory (Beijing) and the same store (Hong Kong).
    let started = e
        .svc
        .transfers()
        .sync_images(
            &e.caller,
            &req(&["ap-shanghai", "ap-beijing", "ap-hongkong"]),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let src = e.image(&a).await;
    assert_eq!((src.state.as_str(), src.sync_percent), ("SYNCING", Some(0)));
    for t in &started.targets {
        let c = e.image(&t.image_id).await;
        assert_eq!(
            (c.state.as_str(), c.region.as_str()),
            ("CREATING", t.region.as_str())
        );
    }
    // A second copy while one runs is refused.
    assert_eq!(
        err(e
            .svc
            .transfers()
            .sync_images(&e.caller, &req(&["ap-shanghai"]))
            .await),
        Some(ErrorKind::ImageIncorrectState)
    );
    e.run_tasks().await;
    let result = e.sync_result(&started.task_ids[0]).await;
    assert_eq!(copied(&result, "ap-shanghai"), data_mib * MIB);
    assert_eq!(copied(&result, "ap-beijing"), data_mib * MIB);
    assert_eq!(
        copied(&result, "ap-hongkong"),
        0,
        "same store: nothing moves"
    );
    let hongkong = started
        .targets
        .iter()
        .find(|t| t.region == "ap-hongkong")
        .map(|t| t.image_id.clone())
        .unwrap_or_default();
    assert_eq!(e.image(&a).await.state, "NORMAL");
    assert!(
        e.beijing.join("chunks").is_dir(),
        "Beijing's own store holds the copy"
    );
    for t in &started.targets {
        let c = e.image(&t.image_id).await;
        assert_eq!(c.state, "NORMAL");
        assert_eq!(c.name, "base");
        let out = e.work.join(format!("{}.raw", t.image_id));
        e.dump(&t.image_id, &out).await;
        qemu_img(&[
            "compare",
            "-q",
            raw_a.to_str().unwrap_or(""),
            out.to_str().unwrap_or(""),
        ]);
    }
    // The name is taken in Shanghai now; another copy under it is refused (all or nothing).
    let retry = e
        .svc
        .transfers()
        .sync_images(&e.caller, &req(&["ap-beijing", "ap-shanghai"]))
        .await;
    assert_eq!(retry.err().map(|e| e.kind), Some(ErrorKind::NameDuplicate));
    assert_eq!(e.image(&a).await.state, "NORMAL");

    // An image 1 % different (one MiB): only that MiB travels to Shanghai.
    let mut other = base.clone();
    other[4] = Some(9999);
    let raw_b = e.work.join("b.raw");
    make_raw(&raw_b, &other);
    let b = e.publish(&raw_b, "other").await;
    let started = e
        .svc
        .transfers()
        .sync_images(
            &e.caller,
            &SyncRequest {
                image_ids: vec![b.clone()],
                regions: vec!["ap-shanghai".into()],
                name: Some("other-copy".into()),
                dry_run: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    e.run_tasks().await;
    let result = e.sync_result(&started.task_ids[0]).await;
    assert_eq!(copied(&result, "ap-shanghai"), MIB);
    assert_eq!(result["copied_bytes"].as_u64(), Some(MIB));

    // Garbage collection over every store (each place once) keeps every image whole.
    e.svc
        .admin()
        .collect_garbage()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = e.work.join("hk.copy.raw");
    e.dump(&hongkong, &out).await;
    qemu_img(&[
        "compare",
        "-q",
        raw_a.to_str().unwrap_or(""),
        out.to_str().unwrap_or(""),
    ]);
    let copy_b = &started.targets[0].image_id;
    let out = e.work.join("b.copy.raw");
    e.dump(copy_b, &out).await;
    qemu_img(&[
        "compare",
        "-q",
        raw_b.to_str().unwrap_or(""),
        out.to_str().unwrap_or(""),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_in_every_format_pass_qemu_img() {
    let e = env(None).await;
    let raw = e.work.join("src.raw");
    make_raw(
        &raw,
        &[Some(1), None, Some(2), Some(3), None, None, Some(4), None],
    );
    let id = e.publish(&raw, "exported").await;
    let bucket = env_var("IKON_TEST_S3_BUCKET");
    let b = ikon_store::Bucket::s3(&s3_options(), &bucket).unwrap_or_else(|e| panic!("{e}"));
    for (fmt, qemu_fmt) in [
        ("RAW", "raw"),
        ("QCOW2", "qcow2"),
        ("VHD", "vpc"),
        ("VMDK", "vmdk"),
    ] {
        let prefix = format!("t{}", &ids::uuid4()[..8]);
        let started = e
            .svc
            .transfers()
            .export_images(
                &e.caller,
                &ExportRequest {
                    image_ids: vec![id.clone()],
                    bucket: bucket.clone(),
                    format: fmt.into(),
                    prefixes: vec![prefix.clone()],
                    only_system_disk: false,
                    dry_run: false,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(started.keys.len(), 1);
        let key = &started.keys[0];
        let ext = fmt.to_ascii_lowercase();
        assert!(
            key.starts_with(&format!("{prefix}_{id}_system_snap-")) && key.ends_with(&ext),
            "{key}"
        );
        e.run_tasks().await;
        let t = e
            .svc
            .transfers()
            .task(&started.task_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.state, t.progress),
            (ikon_catalog::TaskState::Succeeded, 100),
            "{}",
            t.error
        );
        let local = e.work.join(key);
        b.download_file(key, &local)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let l = local.to_str().unwrap_or("");
        // qemu-img checks the formats with metadata to check (qcow2, vmdk); raw and vpc
        // have none ("This image format does not support checks").
        if matches!(qemu_fmt, "qcow2" | "vmdk") {
            qemu_img(&["check", "-f", qemu_fmt, l]);
        }
        qemu_img(&[
            "compare",
            "-f",
            "raw",
            "-F",
            qemu_fmt,
            raw.to_str().unwrap_or(""),
            l,
        ]);
        b.delete(key).await.unwrap_or_else(|e| panic!("{e}"));
    }
    // Refusals: a bucket that does not exist, a format, a public image.
    let mut req = ExportRequest {
        image_ids: vec![id.clone()],
        bucket: "ikon-no-such-bucket".into(),
        format: "RAW".into(),
        ..ExportRequest::default()
    };
    assert_eq!(
        e.svc
            .transfers()
            .export_images(&e.caller, &req)
            .await
            .err()
            .map(|e| e.kind),
        Some(ErrorKind::BucketNotFound)
    );
    req.bucket = bucket.clone();
    req.format = "VHDX".into();
    assert_eq!(
        e.svc
            .transfers()
            .export_images(&e.caller, &req)
            .await
            .err()
            .map(|e| e.kind),
        Some(ErrorKind::InvalidParameterValue)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_to_a_directory() {
    let dir = tmpdir("exports");
    std::fs::create_dir_all(dir.join("my-bucket")).unwrap_or_else(|e| panic!("{e}"));
    let e = env(Some(dir.clone())).await;
    let raw = e.work.join("src.raw");
    make_raw(&raw, &[None, Some(7), Some(8), None]);
    let id = e.publish(&raw, "to-dir").await;
    let mut req = ExportRequest {
        image_ids: vec![id.clone()],
        bucket: "my-bucket".into(),
        format: "qcow2".into(),
        ..ExportRequest::default()
    };
    let started = e
        .svc
        .transfers()
        .export_images(&e.caller, &req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    e.run_tasks().await;
    let file = dir.join("my-bucket").join(&started.keys[0]);
    let f = file.to_str().unwrap_or("");
    qemu_img(&["check", "-f", "qcow2", f]);
    qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "qcow2",
        raw.to_str().unwrap_or(""),
        f,
    ]);
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("my-bucket"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no partial files are left");
    req.bucket = "other-bucket".into();
    assert_eq!(
        e.svc
            .transfers()
            .export_images(&e.caller, &req)
            .await
            .err()
            .map(|e| e.kind),
        Some(ErrorKind::BucketNotFound)
    );
}
