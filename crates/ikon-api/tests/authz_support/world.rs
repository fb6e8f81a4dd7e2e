//! The world every cell of the authorisation matrix starts from: an owner with one
//! resource of each kind (an unshared custom image with a marketplace listing, a second
//! custom image shared with the recipient, an instance with a system and a data disk, a
//! snapshot, a pending export task, an upload, a cross-region copy in progress), another
//! account, the share recipient and the platform administrator. It is built once; each
//! cell runs on a copy of its directory (catalog, chunks, spool, export buckets), so what
//! one cell changes no other cell sees.

use crate::alibaba_support::Env;
use ikon_service::{
    ids, Caller, Config, Credentials, DataDiskSpec, ExportRequest, InstanceFilter, PublishRequest,
    RunRequest, Service, ShareChange, SyncRequest,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Region of the world.
pub const REGION: &str = "ap-guangzhou";
/// Zone of the owner's instance.
pub const ZONE: &str = "ap-guangzhou-3";
/// Region the copy goes to.
pub const COPY_REGION: &str = "ap-beijing";
/// Export bucket (a directory under the cell's `export/`).
pub const BUCKET: &str = "bkt";
/// Family of the owner's unshared image.
pub const FAMILY: &str = "ownerfam";

/// Texts only the owner's resources carry: any of them in another principal's answer is a
/// leak (the shared image's is allowed to the recipient).
pub const MARK_IMAGE: &str = "MARKER-IMAGE-PRIVATE";
pub const MARK_SHARED: &str = "MARKER-IMAGE-SHARED";
pub const MARK_INSTANCE: &str = "MARKER-INSTANCE";
pub const MARK_SNAPSHOT: &str = "MARKER-SNAPSHOT";
pub const MARK_COPY: &str = "MARKER-COPY";

/// A resource id a template may name as `{name}`, with a well-formed id of the same kind
/// that names nothing (what "not found" is measured against).
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: &'static str,
    pub id: String,
    pub ghost: String,
}

/// Something that must not appear in an answer to anyone but the owner.
#[derive(Debug, Clone)]
pub struct Secret {
    /// What is searched for (an id's 8 characters, the same in both dialects, or a text).
    pub needle: String,
    /// What it is, for the report.
    pub what: String,
    /// The share recipient may see it (the shared image and what belongs to it).
    pub shared: bool,
}

/// The world and the directory it lives in.
pub struct World {
    dir: PathBuf,
    env: Env,
    pub owner: Credentials,
    /// A second key of the owner (disabled by the "disabled key" principal).
    pub owner_key2: Credentials,
    pub other: Credentials,
    pub recipient: Credentials,
    pub admin: Credentials,
    /// The owner's resources, by template name.
    pub slots: Vec<Slot>,
    /// Account ids a template may name (`{other_id}`, `{recipient_id}`): not resources.
    pub accounts: Vec<(&'static str, String)>,
    /// Every id and text of the owner's the others must not see.
    pub secrets: Vec<Secret>,
}

/// The policy of every copy of the world: exports to directories, uploads in the world's
/// spool, an S3 engine named (never reached: imports are only queued) and no daily limit
/// in the way.
fn config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.import.spool_dir = Some(dir.join("spool"));
    c.export.dir = Some(dir.join("export").display().to_string());
    c.s3.endpoint = Some("http://127.0.0.1:9".into());
    c.s3.region = Some("us-east-1".into());
    c.s3.access_key_id = Some("authz".into());
    c.s3.secret_access_key = Some("authz".into());
    c.s3.allow_http = Some(true);
    c.s3.max_retries = Some(0);
    c.limits.daily_operations = 10_000;
    c
}

async fn open(dir: &Path) -> Env {
    let url = format!("sqlite://{}", dir.join("c.db").display());
    let cat = ikon_catalog::Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let svc = Service::new(cat.clone(), config(dir), store);
    let app = ikon_api::app(ikon_api::AppState::new(svc.clone()));
    Env { svc, cat, app }
}

fn new_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ikon-authz-{what}-{}", ids::uuid4()));
    for sub in ["spool", "chunks", "export/bkt"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// One cell's copy of the world; [`Cell::finish`] removes it.
pub struct Cell {
    pub env: Env,
    dir: PathBuf,
}

impl Cell {
    /// Closes the catalog and removes the copy.
    pub async fn finish(self) {
        self.env.cat.pool().close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn caller(key: &Credentials, region: &str) -> Caller {
    Caller {
        account_id: key.account_id.clone(),
        is_admin: false,
        region: region.into(),
    }
}

/// A raw disk of 64 MiB with a few MiB of non-zero data.
fn raw_disk(dir: &Path) -> PathBuf {
    let p = dir.join("disk.raw");
    let mut data = vec![0u8; 64 << 20];
    for (i, b) in data[1 << 20..3 << 20].iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap_or(0) | 1;
    }
    std::fs::write(&p, data).unwrap_or_else(|e| panic!("{e}"));
    p
}

impl World {
    /// Builds the world (see the module docs).
    pub async fn build() -> World {
        let dir = new_dir("world");
        let env = open(&dir).await;
        let svc = &env.svc;
        let acc = svc.accounts();
        let admin = acc
            .bootstrap_admin()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("a fresh catalog has no administrator yet"));
        let new = |name: &'static str| {
            let acc = svc.accounts();
            async move {
                acc.create_account(name, false)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        };
        let (owner, other, recipient) = (new("owner").await, new("other").await, new("recipient").await);
        let owner_key2 = acc
            .create_key(&owner.account_id, &owner.name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let me = caller(&owner, REGION);
        let file = raw_disk(&dir);
        let publish = |name: &str, description: &str, family: &str| PublishRequest {
            file: file.clone(),
            region: REGION.into(),
            name: name.into(),
            description: description.into(),
            os_name: None,
            platform: None,
            account: Some(owner.account_id.clone()),
            family: family.into(),
            count: 1,
        };
        let progress: Arc<dyn Fn(u64, u64) + Send + Sync> = Arc::new(|_, _| {});
        let image = svc
            .admin()
            .publish_image(&publish("private-image", MARK_IMAGE, FAMILY), progress.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .image_id;
        let shared = svc
            .admin()
            .publish_image(&publish("shared-image", MARK_SHARED, "sharedfam"), progress)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .image_id;
        svc.images()
            .change_shares(&me, &shared, &[recipient.account_id.clone()], ShareChange::Share)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let run = RunRequest {
            image_id: image.clone(),
            zone: ZONE.into(),
            count: 1,
            name: MARK_INSTANCE.into(),
            data_disks: vec![DataDiskSpec {
                size_gib: 20,
                disk_type: String::new(),
                snapshot_id: None,
                delete_with_instance: true,
            }],
            ..RunRequest::default()
        };
        let instance = svc
            .instances()
            .run_instances(&me, &run)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .pop()
            .unwrap_or_else(|| panic!("RunInstances made no instance"));
        let filter = InstanceFilter {
            ids: Some(vec![instance.clone()]),
            limit: 1,
            ..InstanceFilter::default()
        };
        let (_, views) = svc
            .instances()
            .describe_instances(&me, &filter)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let disk = |usage: &str| {
            views
                .iter()
                .flat_map(|v| v.disks.iter())
                .find(|d| d.usage == usage)
                .map(|d| d.disk_id.clone())
                .unwrap_or_else(|| panic!("the instance has no {usage}"))
        };
        let (sys_disk, data_disk) = (disk("SYSTEM_DISK"), disk("DATA_DISK"));
        let snap = svc
            .instances()
            .create_snapshot(&me, &sys_disk, MARK_SNAPSHOT, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let listing = svc
            .market()
            .submit_listing(&me, &image, 0.5)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .listing_id;
        let export = ExportRequest {
            image_ids: vec![image.clone()],
            bucket: BUCKET.into(),
            format: "RAW".into(),
            prefixes: vec![],
            only_system_disk: false,
            dry_run: false,
        };
        let task = svc
            .transfers()
            .export_images(&me, &export)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .task_id;
        let chunk: Result<bytes::Bytes, std::io::Error> = Ok(bytes::Bytes::from(vec![7u8; 4096]));
        let upload = svc
            .transfers()
            .receive_upload(&me, futures::stream::iter(vec![chunk]))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .upload_id;
        let sync = SyncRequest {
            image_ids: vec![image.clone()],
            regions: vec![COPY_REGION.into()],
            name: Some(MARK_COPY.into()),
            dry_run: false,
        };
        let copy = svc
            .transfers()
            .sync_images(&me, &sync)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .targets
            .first()
            .map(|t| t.image_id.clone())
            .unwrap_or_else(|| panic!("SyncImages made no copy"));
        let named = [
            ("image", image),
            ("shared", shared.clone()),
            ("instance", instance),
            ("sys_disk", sys_disk),
            ("data_disk", data_disk),
            ("snap", snap),
            ("listing", listing),
            ("task", task),
            ("upload", upload.clone()),
            ("copy", copy),
        ];
        let slots = named
            .into_iter()
            .enumerate()
            .map(|(i, (name, id))| {
                let prefix = id.split_once('-').map_or("", |(p, _)| p).to_string();
                Slot {
                    name,
                    ghost: format!("{prefix}-ghost{i:03}"),
                    id,
                }
            })
            .collect();
        let secrets = secrets(&env, &owner, &shared, &upload).await;
        World {
            dir,
            env,
            accounts: vec![
                ("other_id", other.account_id.clone()),
                ("recipient_id", recipient.account_id.clone()),
            ],
            owner,
            owner_key2,
            other,
            recipient,
            admin,
            slots,
            secrets,
        }
    }

    /// A fresh copy of the world for one cell.
    pub async fn cell(&self) -> Cell {
        let dir = std::env::temp_dir().join(format!("ikon-authz-cell-{}", ids::uuid4()));
        for sub in ["spool", "chunks", "export"] {
            copy_dir(&self.dir.join(sub), &dir.join(sub));
        }
        let db = dir.join("c.db");
        sqlx::query(&format!("VACUUM INTO '{}'", db.display()))
            .execute(self.env.cat.pool())
            .await
            .unwrap_or_else(|e| panic!("copying the catalog: {e}"));
        Cell {
            env: open(&dir).await,
            dir,
        }
    }

    /// Removes the world.
    pub async fn finish(self) {
        self.env.cat.pool().close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn column(env: &Env, sql: &str) -> Vec<String> {
    sqlx::query_scalar::<sqlx::Any, String>(sql)
        .fetch_all(env.cat.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every id of the owner's (each image's disk and snapshot references included), the
/// upload, the marker texts and the owner's secret keys.
async fn secrets(env: &Env, owner: &Credentials, shared: &str, upload: &str) -> Vec<Secret> {
    let o = &owner.account_id;
    assert!(o.bytes().all(|b| b.is_ascii_digit()), "account ids are digits");
    let mut out = Vec::new();
    let mut id = |id: &str, what: &str, shared: bool| {
        let needle = id.rsplit('-').next().unwrap_or(id).to_string();
        // A manifest two images hold is as visible as the more visible of them.
        match out.iter_mut().find(|s: &&mut Secret| s.needle == needle) {
            Some(s) => s.shared |= shared,
            None => out.push(Secret {
                needle,
                what: format!("{what} {id}"),
                shared,
            }),
        }
    };
    for img in column(env, &format!("SELECT image_id FROM images WHERE owner = '{o}'")).await {
        let is_shared = img == shared;
        id(&img, "image", is_shared);
        let disks = column(env, &format!("SELECT disks FROM images WHERE image_id = '{img}'")).await;
        for refs in disks {
            let refs: Vec<ikon_catalog::DiskRef> =
                serde_json::from_str(&refs).unwrap_or_else(|e| panic!("{e}"));
            for r in refs {
                id(&r.disk_id, "image disk", is_shared);
                id(&r.snapshot_id, "image snapshot", is_shared);
            }
        }
    }
    for (table, col, owner_col, what) in [
        ("instances", "instance_id", "owner", "instance"),
        ("disks", "disk_id", "owner", "disk"),
        ("snapshots", "snapshot_id", "owner", "snapshot"),
        ("tasks", "task_id", "account_id", "task"),
        ("market_listings", "listing_id", "provider", "listing"),
    ] {
        for v in column(env, &format!("SELECT {col} FROM {table} WHERE {owner_col} = '{o}'")).await {
            id(&v, what, false);
        }
    }
    id(upload, "upload", false);
    for (text, shared) in [
        (MARK_IMAGE, false),
        (MARK_SHARED, true),
        (MARK_INSTANCE, false),
        (MARK_SNAPSHOT, false),
        (MARK_COPY, false),
    ] {
        out.push(Secret {
            needle: text.into(),
            what: format!("text {text}"),
            shared,
        });
    }
    for key in column(env, &format!("SELECT secret_key FROM api_keys WHERE account_id = '{o}'")).await {
        out.push(Secret {
            needle: key,
            what: "the owner's secret key".into(),
            shared: false,
        });
    }
    out
}
