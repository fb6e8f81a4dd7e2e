//! Publishing a disk image file: a platform (public) image, or a custom image on an
//! account's behalf. The image row is created IMPORTING first (which reserves the quota
//! unit), the file's data goes into the chunk store, the guest is inspected for its OS
//! fields, and only then does the image turn NORMAL; any failure leaves it IMPORTFAILED
//! with the reason, never half-made in NORMAL.

use crate::images::state;
use crate::{ids, Error, ErrorKind, Result, Service};
use ikon_catalog::Image;
use std::path::PathBuf;
use std::sync::Arc;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Disk image file (any supported format, detected from content).
    pub file: PathBuf,
    /// Region holding it.
    pub region: String,
    /// Image name (with `count > 1`: NAME-00001, NAME-00002, ...).
    pub name: String,
    /// Description.
    pub description: String,
    /// OS name override (else from inspection).
    pub os_name: Option<String>,
    /// Platform override (else from inspection).
    pub platform: Option<String>,
    /// Owner account for a custom image; None = public platform image.
    pub account: Option<String>,
    /// Image family.
    pub family: String,
    /// How many catalog entries to make sharing the one stored copy (load tests).
    pub count: u32,
}

/// What was published.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Published {
    /// Image ids (one per `count`).
    pub image_ids: Vec<String>,
    /// First image id.
    pub image_id: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Container format of the file.
    pub format: String,
    /// OS name recorded.
    pub os_name: String,
    /// Platform recorded.
    pub platform: String,
    /// Bytes of guest data read.
    pub data_bytes: u64,
    /// Bytes newly stored (the rest was deduplicated or zero).
    pub new_bytes: u64,
}

/// OS fields found by inspection.
#[derive(Debug, Clone, Default)]
pub(crate) struct OsFields {
    pub(crate) os_name: String,
    pub(crate) os_type: String,
    pub(crate) platform: String,
    pub(crate) architecture: String,
    pub(crate) cloudinit: bool,
    pub(crate) byol: bool,
}

/// The API's platform name for a Linux distribution id (os-release `ID`).
fn os_fields(dev: &dyn ikon_disk::BlockDevice, format: &str, os: &crate::policy::Os) -> OsFields {
    match ikon_guest::inspect(dev, format) {
        Ok(ins) => fields_from(&ins, os),
        Err(_) => OsFields {
            architecture: "x86_64".into(),
            ..OsFields::default()
        },
    }
}

/// The image fields an inspection gives (x86_64 when nothing tells).
pub(crate) fn fields_from(ins: &ikon_guest::Inspection, table: &crate::policy::Os) -> OsFields {
    let Some(os) = ins.operating_systems.first() else {
        return OsFields {
            architecture: "x86_64".into(),
            ..OsFields::default()
        };
    };
    let arch = |a: Option<&String>, bits: Option<u32>| match (a.map(String::as_str), bits) {
        (Some("x86_64" | "amd64"), _) | (None, Some(64)) => "x86_64".to_string(),
        (Some("i386" | "i686" | "x86"), _) | (None, Some(32)) => "i386".to_string(),
        (Some("aarch64" | "arm64"), _) => "arm".to_string(),
        (Some(other), _) => other.to_string(),
        (None, _) => "x86_64".to_string(),
    };
    if let Some(l) = &os.linux {
        let bits = if arch(l.arch.as_ref(), l.bits) == "i386" {
            "32"
        } else {
            "64"
        };
        let platform = table.linux_name(l.distro.as_str());
        let name = if l.name.is_empty() {
            platform.to_string()
        } else {
            l.name.clone()
        };
        return OsFields {
            os_name: format!("{name} {} {bits}bit", l.version)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            os_type: "Linux".into(),
            platform: platform.to_string(),
            architecture: arch(l.arch.as_ref(), l.bits),
            cloudinit: l.cloud_init,
            byol: l.byol_required,
        };
    }
    if let Some(w) = &os.windows {
        return OsFields {
            os_name: w.product_name.clone(),
            os_type: "Windows".into(),
            platform: "Windows".into(),
            architecture: arch(w.arch.as_ref(), w.bits),
            cloudinit: false,
            byol: false,
        };
    }
    OsFields {
        architecture: "x86_64".into(),
        ..OsFields::default()
    }
}

impl Service {
    pub(crate) async fn fail_import(&self, image_ids: &[String], msg: &str) {
        for id in image_ids {
            let _ = self
                .catalog()
                .transition_image(
                    id,
                    &[state::IMPORTING],
                    state::IMPORTFAILED,
                    msg,
                    None,
                    ids::now(),
                )
                .await;
        }
    }

    /// Stores the data and turns the images NORMAL (or IMPORTFAILED).
    async fn publish_data(
        &self,
        req: &PublishRequest,
        dev: Arc<dyn ikon_disk::BlockDevice>,
        disk_id: &str,
        size: u64,
        image_ids: &[String],
        progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
    ) -> Result<ikon_store::ImportStats> {
        let session = match self.store_for(&req.region).begin_write().await {
            Ok(s) => s,
            Err(e) => {
                self.fail_import(image_ids, &e.to_string()).await;
                return Err(Error::caused_by(ErrorKind::Storage, "storage failed", e));
            }
        };
        let (mref, stats) = match session.import_device(dev, disk_id, progress).await {
            Ok((mref, _manifest, stats)) => (mref, stats),
            Err(e) => {
                self.fail_import(image_ids, &e.to_string()).await;
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!("storing {}: {e}", req.file.display()),
                ));
            }
        };
        let disk = crate::images::system_disk(&mref, size);
        for id in image_ids {
            self.catalog()
                .set_image_disks(id, std::slice::from_ref(&disk), size)
                .await?;
            self.images()
                .transition_image(id, state::NORMAL, "")
                .await?;
        }
        // The references are committed: the session may end (a collection may now run).
        session
            .end()
            .await
            .map_err(|e| Error::caused_by(ErrorKind::Storage, "storage failed", e))?;
        Ok(stats)
    }
}

/// Task kind of an in-process publication.
pub const PUBLISH_KIND: &str = "publish";
/// Lease of a publication task, seconds.
const PUBLISH_LEASE: i64 = 60;

/// Cleans up after a publishing process that died: its images become IMPORTFAILED. (A
/// publication cannot be resumed elsewhere: the file is on the publisher's machine.)
pub struct PublishHandler;

impl crate::tasks::TaskHandler<crate::Service> for PublishHandler {
    fn kind(&self) -> &'static str {
        PUBLISH_KIND
    }

    fn image_states(&self) -> Option<crate::tasks::ImageStates> {
        None
    }

    fn on_abandoned<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a ikon_catalog::Task,
        reason: &'a str,
    ) -> crate::tasks::BoxFuture<'a, ()> {
        Box::pin(async move {
            let images: Vec<String> = serde_json::from_str::<serde_json::Value>(&task.payload)
                .ok()
                .and_then(|v| serde_json::from_value(v["images"].clone()).ok())
                .unwrap_or_else(|| vec![task.resource_id.clone()]);
            svc.fail_import(
                &images,
                &format!("{reason}: the publishing process stopped; publish the file again"),
            )
            .await;
        })
    }

    fn run<'a>(
        &'a self,
        _svc: &'a crate::Service,
        _task: &'a ikon_catalog::Task,
        _progress: &'a crate::tasks::Progress,
    ) -> crate::tasks::BoxFuture<'a, std::result::Result<String, crate::tasks::TaskError>> {
        Box::pin(async {
            Err(crate::tasks::TaskError::permanent(
                "a publication runs only in its own process",
            ))
        })
    }
}

impl crate::facets::Admin<'_> {
    /// Publishes a disk image file (see the module documentation).
    pub async fn publish_image(
        &self,
        req: &PublishRequest,
        progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
    ) -> Result<Published> {
        self.images().check_name(&req.name)?;
        self.check_region(&req.region)?;
        let count = req.count.max(1);
        if let Some(acc) = &req.account {
            if self.catalog().account(acc).await?.is_none() {
                return Err(Error::new(
                    ErrorKind::AccountNotFound,
                    format!("account {acc} does not exist"),
                ));
            }
        }
        let file = req.file.clone();
        let table = self.config().os.clone();
        let (dev, format, fields) = tokio::task::spawn_blocking(move || {
            let img = ikon_disk::open(&file, &ikon_disk::OpenOptions::default())
                .map_err(|e| Error::new(ErrorKind::InvalidParameterValue, e.to_string()))?;
            let format = img.info().format.to_string();
            let fields = os_fields(img.as_ref(), &format, &table);
            let img: Arc<dyn ikon_disk::DiskImage> = Arc::from(img);
            let dev: Arc<dyn ikon_disk::BlockDevice> = img;
            Ok::<_, Error>((dev, format, fields))
        })
        .await
        .map_err(|e| Error::caused_by(ErrorKind::Internal, "internal failure", e))??;
        let size = dev.len();
        let now = ids::now();
        let disk_id = ids::new_id("disk");
        let names: Vec<String> = if count == 1 {
            vec![req.name.clone()]
        } else {
            (1..=count)
                .map(|i| format!("{}-{i:05}", req.name))
                .collect()
        };
        // Rows first, IMPORTING, stored with their claimed task in one write: the quota is
        // reserved, and if this process dies the task's lease runs out and the server's task
        // runner marks them IMPORTFAILED (see `PublishHandler`), never leaving a NORMAL image
        // without data nor an IMPORTING one that nothing will finish.
        let mut images = Vec::with_capacity(names.len());
        for name in &names {
            let img = Image {
                image_id: ids::new_id("img"),
                kind: if req.account.is_some() {
                    "PRIVATE"
                } else {
                    "PUBLIC"
                }
                .into(),
                owner: req.account.clone().unwrap_or_default(),
                region: req.region.clone(),
                name: name.clone(),
                description: req.description.clone(),
                os_name: req
                    .os_name
                    .clone()
                    .unwrap_or_else(|| fields.os_name.clone()),
                os_type: fields.os_type.clone(),
                platform: req
                    .platform
                    .clone()
                    .unwrap_or_else(|| fields.platform.clone()),
                architecture: fields.architecture.clone(),
                size_bytes: size,
                state: state::IMPORTING.into(),
                state_reason: String::new(),
                source: if req.account.is_some() {
                    "EXTERNAL_IMPORT"
                } else {
                    "OFFICIAL"
                }
                .into(),
                license_type: if fields.byol { "BYOL" } else { "TencentCloud" }.into(),
                family: req.family.clone(),
                deprecated: false,
                cloudinit: fields.cloudinit,
                sync_percent: None,
                share_count: 0,
                disks: vec![],
                origin: String::new(),
                created_at: now,
                updated_at: now,
                version: 1,
                tags: vec![],
            };
            images.push(img);
        }
        let image_ids: Vec<String> = images.iter().map(|i| i.image_id.clone()).collect();
        let worker = format!("publish-{}", ids::uuid4());
        let task_id = ids::new_id("task");
        let task = ikon_catalog::NewTask {
            task_id: task_id.clone(),
            kind: PUBLISH_KIND.into(),
            account_id: req.account.clone().unwrap_or_default(),
            region: req.region.clone(),
            resource_id: image_ids[0].clone(),
            payload:
                serde_json::json!({ "images": image_ids, "file": req.file.display().to_string() })
                    .to_string(),
            max_attempts: 1,
        };
        let start = ikon_catalog::TaskStart::Claimed {
            worker: &worker,
            lease_secs: PUBLISH_LEASE,
        };
        self.images()
            .add_images_with_task(&images, &task, start)
            .await?;
        let beat = {
            let (svc, task_id, worker) = ((**self).clone(), task_id.clone(), worker.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(
                        u64::try_from(PUBLISH_LEASE / 3).unwrap_or(10),
                    ))
                    .await;
                    let _ = svc
                        .catalog()
                        .heartbeat_task(&task_id, &worker, PUBLISH_LEASE, 0, ids::now())
                        .await;
                }
            })
        };
        let result = self
            .publish_data(req, dev, &disk_id, size, &image_ids, progress)
            .await;
        beat.abort();
        let failure = result.as_ref().err().map(Error::chain);
        let outcome = ikon_catalog::TaskOutcome {
            error: failure.as_deref(),
            retry: false,
            retry_after: 0,
            result: "{}",
            image: None,
        };
        let _ = self
            .catalog()
            .finish_task(&task_id, &worker, &outcome, ids::now())
            .await;
        let stats = result?;
        Ok(Published {
            image_id: image_ids[0].clone(),
            image_ids,
            virtual_size: size,
            format,
            os_name: req.os_name.clone().unwrap_or(fields.os_name),
            platform: req.platform.clone().unwrap_or(fields.platform),
            data_bytes: stats.data_bytes,
            new_bytes: stats.new_bytes,
        })
    }
}
