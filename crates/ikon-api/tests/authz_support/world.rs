//! The world every cell of the authorisation matrix starts from: an owner with one
//! resource of each kind (an unshared custom image with a pending marketplace listing, a
//! second custom image shared with the recipient, an instance with a system and a data
//! disk, a snapshot, a pending export task, an upload, a cross-region copy in progress, and
//! an approved listing whose marketplace image everyone sees), a platform image, another
//! account, the share recipient and the platform administrator (each of those three with
//! an instance of its own). It is built once; each cell runs on a copy of its directory
//! (catalog, chunks, spool, export buckets, master key), so what one cell changes no other
//! cell sees.

use super::Principal;
use crate::alibaba_support::Env;
use ikon_service::{
    ids, Caller, Config, CreateImageRequest, Credentials, DataDiskSpec, ExportRequest, ImageSource,
    InstanceFilter, PublishRequest, RunRequest, Service, ShareChange, SyncRequest,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Region of the world.
pub const REGION: &str = "ap-guangzhou";
/// Zone of the instances.
pub const ZONE: &str = "ap-guangzhou-3";
/// Region the copy goes to.
pub const COPY_REGION: &str = "ap-beijing";
/// Export bucket (a directory under the world's `export/`).
pub const BUCKET: &str = "bkt";
/// Family of the owner's unshared image (`{family}`).
pub const FAMILY: &str = "ownerfam";

/// Texts only the owner's resources carry: any of them in another principal's answer is a
/// leak (the shared image's is allowed to the recipient).
pub const MARK_IMAGE: &str = "MARKER-IMAGE-PRIVATE";
pub const MARK_SHARED: &str = "MARKER-IMAGE-SHARED";
pub const MARK_INSTANCE: &str = "MARKER-INSTANCE";
pub const MARK_SNAPSHOT: &str = "MARKER-SNAPSHOT";
pub const MARK_COPY: &str = "MARKER-COPY";

/// A resource of the owner's a template may name as `{name}`, with a well-formed id of the
/// same kind that names nothing (what "not found" is measured against).
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
    /// The owner's private resources, by template name.
    pub slots: Vec<Slot>,
    /// Names a template may use that are nobody's secret: account ids, the platform image
    /// (`{public}`), the marketplace image (`{market}`).
    pub plain: Vec<(&'static str, String)>,
    /// `{my_instance}`: each signed principal's own instance (the owner's is `{instance}`).
    pub own_instances: Vec<(Principal, String)>,
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
    // The world's master key (made at its first start, copied with each cell) unseals the
    // API secrets of every copy, as on a node given the cluster's key file.
    let path = dir.join("master.key");
    let key = ikon_service::secrets::open_master_key(&path, &cat)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let svc = Service::new(cat.clone(), config(dir), store).with_master_key(key, path);
    let app = ikon_api::app(ikon_api::AppState::new(svc.clone()));
    Env { svc, cat, app }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let dest = to.join(path.file_name().unwrap_or_default());
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

fn caller(key: &Credentials, is_admin: bool) -> Caller {
    Caller {
        account_id: key.account_id.clone(),
        is_admin,
        region: REGION.into(),
    }
}

/// A raw disk of 64 MiB with 2 MiB of non-zero data.
fn raw_disk(dir: &Path) -> PathBuf {
    let p = dir.join("disk.raw");
    let mut data = vec![0u8; 64 << 20];
    for (i, b) in data[1 << 20..3 << 20].iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap_or(0) | 1;
    }
    std::fs::write(&p, data).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// Publishes the world's disk as image `name` of `account` (None: a platform image).
async fn publish(
    svc: &Service,
    file: &Path,
    account: Option<&str>,
    name: &str,
    text: &str,
) -> String {
    let req = PublishRequest {
        file: file.to_path_buf(),
        region: REGION.into(),
        name: name.into(),
        description: text.into(),
        os_name: None,
        platform: None,
        account: account.map(str::to_string),
        family: if text == MARK_IMAGE { FAMILY } else { "" }.into(),
        count: 1,
    };
    svc.admin()
        .publish_image(&req, Arc::new(|_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("publishing {name}: {e}"))
        .image_id
}

/// Starts an instance of `image` for `who`; returns it with its (system, data) disks.
async fn run(svc: &Service, who: &Caller, image: &str, name: &str) -> (String, String, String) {
    let req = RunRequest {
        image_id: image.into(),
        zone: ZONE.into(),
        count: 1,
        name: name.into(),
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
        .run_instances(who, &req)
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
        .describe_instances(who, &filter)
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
    let (sys, data) = (disk("SYSTEM_DISK"), disk("DATA_DISK"));
    (instance, sys, data)
}

impl World {
    /// Builds the world (see the module docs).
    pub async fn build() -> World {
        let dir = std::env::temp_dir().join(format!("ikon-authz-world-{}", ids::uuid4()));
        for sub in ["spool", "chunks", "export/bkt"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap_or_else(|e| panic!("{e}"));
        }
        let env = open(&dir).await;
        let svc = &env.svc;
        let acc = svc.accounts();
        let admin = acc
            .bootstrap_admin()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("a fresh catalog has no administrator yet"));
        let mut made = Vec::new();
        for name in ["owner", "other", "recipient"] {
            made.push(
                acc.create_account(name, false)
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let [owner, other, recipient]: [Credentials; 3] = made
            .try_into()
            .unwrap_or_else(|_| panic!("three accounts were made"));
        let owner_key2 = acc
            .create_key(&owner.account_id, &owner.name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let me = caller(&owner, false);
        let file = raw_disk(&dir);
        let o = Some(owner.account_id.as_str());
        let public = publish(svc, &file, None, "public-image", "").await;
        let image = publish(svc, &file, o, "private-image", MARK_IMAGE).await;
        let shared = publish(svc, &file, o, "shared-image", MARK_SHARED).await;
        // The copy's source stays SYNCING while the copy runs: an image of its own.
        let source = publish(svc, &file, o, "copy-source", "").await;
        let _ = std::fs::remove_file(&file);
        let recipients = [recipient.account_id.clone()];
        svc.images()
            .change_shares(&me, &shared, &recipients, ShareChange::Share)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (instance, sys_disk, data_disk) = run(svc, &me, &image, MARK_INSTANCE).await;
        let mut own_instances = vec![(Principal::Owner, instance.clone())];
        for (p, key) in [
            (Principal::Other, &other),
            (Principal::Recipient, &recipient),
            (Principal::Admin, &admin),
        ] {
            let who = caller(key, p == Principal::Admin);
            own_instances.push((p, run(svc, &who, &public, "theirs").await.0));
        }
        let snap = svc
            .instances()
            .create_snapshot(&me, &sys_disk, MARK_SNAPSHOT, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // The approved listing is of an image made from a snapshot (NORMAL at once: no task
        // runs here), as providers make them.
        let listed_snap = svc
            .instances()
            .create_snapshot(&me, &sys_disk, "listed", 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let made = CreateImageRequest {
            name: "listed-image".into(),
            description: String::new(),
            source: ImageSource::Snapshots(vec![listed_snap]),
            family: String::new(),
            tags: vec![],
            dry_run: false,
        };
        let listed = svc
            .images()
            .create_image(&me, &made)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        svc.images()
            .transition_image(&listed, ikon_service::state::NORMAL, "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let market = svc.market();
        let submit = |image: String| {
            let me = me.clone();
            async move {
                market
                    .submit_listing(&me, &image, 0.5)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .listing_id
            }
        };
        let listing = submit(image.clone()).await;
        let approved = submit(listed).await;
        let market_image = market
            .approve_listing(&approved)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .image_id;
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
            image_ids: vec![source],
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
            ("approved", approved),
            ("task", task),
            ("upload", upload.clone()),
            ("copy", copy),
            // Not an id, but it names the unshared image as well as its id does.
            ("family", FAMILY.to_string()),
        ];
        let slots = named
            .into_iter()
            .enumerate()
            .map(|(i, (name, id))| {
                let ghost = match id.split_once('-') {
                    Some((prefix, _)) => format!("{prefix}-ghost{i:03}"),
                    None => format!("ghost{i:03}"),
                };
                Slot { name, id, ghost }
            })
            .collect();
        let secrets = secrets(&env, &[&owner, &owner_key2], &shared, &upload).await;
        World {
            dir,
            env,
            plain: vec![
                ("other_id", other.account_id.clone()),
                ("recipient_id", recipient.account_id.clone()),
                ("public", public),
                ("market", market_image),
            ],
            own_instances,
            owner,
            owner_key2,
            other,
            recipient,
            admin,
            slots,
            secrets,
        }
    }

    /// The id of the owner's resource `name`.
    pub fn id(&self, name: &str) -> &str {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.id.as_str())
            .unwrap_or_else(|| panic!("the world has no {name}"))
    }

    /// A fresh copy of the world for one cell.
    pub async fn cell(&self) -> Cell {
        let dir = std::env::temp_dir().join(format!("ikon-authz-cell-{}", ids::uuid4()));
        for sub in ["spool", "chunks", "export"] {
            copy_dir(&self.dir.join(sub), &dir.join(sub));
        }
        std::fs::copy(self.dir.join("master.key"), dir.join("master.key"))
            .unwrap_or_else(|e| panic!("copying the master key: {e}"));
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

/// Every id of the owner's (its custom images' disk and snapshot references included), the
/// upload, the marker texts and the secrets of the owner's keys.
async fn secrets(env: &Env, keys: &[&Credentials], shared: &str, upload: &str) -> Vec<Secret> {
    let o = &keys[0].account_id;
    assert!(
        o.bytes().all(|b| b.is_ascii_digit()),
        "account ids are digits"
    );
    let mut out: Vec<Secret> = Vec::new();
    let mut id = |id: &str, what: &str, shared: bool| {
        let needle = id.rsplit('-').next().unwrap_or(id).to_string();
        // A manifest two images hold is as visible as the more visible of them.
        match out.iter_mut().find(|s| s.needle == needle) {
            Some(s) => s.shared |= shared,
            None => out.push(Secret {
                needle,
                what: format!("{what} {id}"),
                shared,
            }),
        }
    };
    for (table, col, owner_col, what) in [
        ("instances", "instance_id", "owner", "instance"),
        ("disks", "disk_id", "owner", "disk"),
        ("snapshots", "snapshot_id", "owner", "snapshot"),
        ("tasks", "task_id", "account_id", "task"),
        ("market_listings", "listing_id", "provider", "listing"),
    ] {
        let sql = format!("SELECT {col} FROM {table} WHERE {owner_col} = '{o}'");
        for v in column(env, &sql).await {
            id(&v, what, false);
        }
    }
    let images = format!("SELECT image_id FROM images WHERE owner = '{o}' AND kind = 'PRIVATE'");
    for img in column(env, &images).await {
        let is_shared = img == shared;
        id(&img, "image", is_shared);
        let refs = format!("SELECT disks FROM images WHERE image_id = '{img}'");
        for refs in column(env, &refs).await {
            let refs: Vec<ikon_catalog::DiskRef> =
                serde_json::from_str(&refs).unwrap_or_else(|e| panic!("{e}"));
            for r in refs {
                id(&r.disk_id, "image disk", is_shared);
                id(&r.snapshot_id, "image snapshot", is_shared);
            }
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
    for key in keys {
        out.push(Secret {
            needle: key.secret_key.clone(),
            what: format!("the secret of key {}", key.secret_id),
            shared: false,
        });
    }
    out
}
