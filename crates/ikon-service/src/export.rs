//! Exporting images to files (ExportImages). The rules: only the caller's own NORMAL custom
//! images (public, marketplace and shared images cannot be exported); formats RAW, QCOW2,
//! VHD, VMDK; the system disk only or every disk; the destination is a bucket of the S3
//! engine, or a subdirectory of the configured export directory, and must exist. File names
//! follow Tencent's: `[<prefix>_]<imageId>_system|data_<snapshotId>.<format>`.
//!
//! The export is a durable task: each disk is read from its region's chunk store (every
//! chunk verified) and written by the disk engine's writer into a local file (the formats
//! need positional writes), which is renamed into place (directory) or uploaded in parts
//! (S3) and removed. Progress is the task's. A retried attempt starts its files again.

use crate::images::{state, Visibility};
use crate::tasks::{BoxFuture, ImageStates, Progress, TaskError, TaskHandler};
use crate::{Caller, Error, ErrorKind, ExportBlock, Result, Service};
use ikon_catalog::Task;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Task kind of an export.
pub const EXPORT_KIND: &str = "export";
/// Attempts before an export fails for good.
const EXPORT_ATTEMPTS: i64 = 3;
/// Longest file name prefix.
const MAX_PREFIX: usize = 64;

/// An export request (already parsed by the dialect).
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    /// Images to export (in the caller's region).
    pub image_ids: Vec<String>,
    /// Destination bucket.
    pub bucket: String,
    /// `RAW`, `QCOW2`, `VHD` or `VMDK` (case-insensitive).
    pub format: String,
    /// File name prefix per image (empty: none).
    pub prefixes: Vec<String>,
    /// Only the system disk of each image.
    pub only_system_disk: bool,
    /// Only check.
    pub dry_run: bool,
}

/// What was started.
#[derive(Debug, Clone, Default)]
pub struct ExportStarted {
    /// The task (empty on a dry run).
    pub task_id: String,
    /// Keys of the files in the bucket, in order.
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExportFile {
    image_id: String,
    region: String,
    disk_id: String,
    version: u64,
    key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    bucket: String,
    format: String,
    files: Vec<ExportFile>,
}

/// Where the files go.
enum Destination {
    Dir(PathBuf),
    S3(ikon_store::Bucket),
}

fn format_of(name: &str) -> Result<ikon_disk::Format> {
    Ok(match name.to_ascii_uppercase().as_str() {
        "RAW" => ikon_disk::Format::Raw,
        "QCOW2" => ikon_disk::Format::Qcow2,
        "VHD" => ikon_disk::Format::Vhd,
        "VMDK" => ikon_disk::Format::Vmdk,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("export format {other:?}: expected RAW, QCOW2, VHD or VMDK"),
            ))
        }
    })
}

fn check_prefix(p: &str) -> Result<()> {
    if p.len() <= MAX_PREFIX
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !p.starts_with('.')
    {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidParameterValue,
            format!(
                "file name prefix {p:?}: at most {MAX_PREFIX} letters, digits, '-', '_' or '.'"
            ),
        ))
    }
}

impl Service {
    async fn export_destination(&self, bucket: &str) -> Result<Destination> {
        ikon_store::remote::check_bucket_name(bucket)
            .map_err(|e| Error::new(ErrorKind::InvalidParameterValue, e.context))?;
        let missing = || {
            Error::new(
                ErrorKind::BucketNotFound,
                format!("bucket {bucket} does not exist"),
            )
        };
        if let Some(dir) = &self.config().export.dir {
            let d = Path::new(dir).join(bucket);
            return if d.is_dir() {
                Ok(Destination::Dir(d))
            } else {
                Err(missing())
            };
        }
        let b = ikon_store::Bucket::s3(&self.config().s3, bucket)
            .map_err(|e| Error::caused_by(ErrorKind::Storage, "storage failed", e))?;
        match b.check().await {
            Ok(()) => Ok(Destination::S3(b)),
            Err(e) if e.kind == ikon_store::ErrorKind::NotFound => Err(missing()),
            Err(e) => Err(Error::caused_by(ErrorKind::Storage, "storage failed", e)),
        }
    }

    /// The cloud documents' export restrictions on a custom image's content: Windows and
    /// Red Hat guests stay on the platform (their licences do), and so does anything made
    /// from a marketplace image (the provider's software). Public and shared images are
    /// refused earlier, as not the caller's.
    async fn check_exportable(&self, img: &ikon_catalog::Image) -> Result<()> {
        let id = &img.image_id;
        let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if is(&img.os_type, "windows") || is(&img.platform, "windows") {
            return Err(Error::new(
                ErrorKind::ExportUnsupported(ExportBlock::Windows),
                format!(
                    "image {id} holds Windows ({}); Windows images cannot be exported",
                    img.os_name
                ),
            ));
        }
        let name = img.os_name.to_ascii_lowercase();
        if is(&img.platform, "redhat") || name.contains("red hat") || name.starts_with("rhel") {
            return Err(Error::new(
                ErrorKind::ExportUnsupported(ExportBlock::RedHat),
                format!("image {id} holds Red Hat Enterprise Linux ({}); Red Hat images cannot be exported", img.os_name),
            ));
        }
        if !img.origin.is_empty()
            && self
                .catalog()
                .listing_of_image(&img.origin)
                .await?
                .is_some()
        {
            return Err(Error::new(
                ErrorKind::ExportUnsupported(ExportBlock::Market),
                format!(
                    "image {id} was made from marketplace image {}; images with marketplace software cannot be exported",
                    img.origin
                ),
            ));
        }
        Ok(())
    }

    /// One attempt of an export task.
    async fn run_export(
        &self,
        task: &Task,
        progress: &Progress,
    ) -> std::result::Result<String, TaskError> {
        let p: Payload = serde_json::from_str(&task.payload)
            .map_err(|e| TaskError::permanent(format!("bad export payload: {e}")))?;
        let format = format_of(&p.format).map_err(|e| TaskError::permanent(e.chain()))?;
        let dest = self
            .export_destination(&p.bucket)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::Storage => TaskError::transient(e.chain()),
                _ => TaskError::permanent(e.message),
            })?;
        let n = p.files.len().max(1) as u64;
        let mut out = Vec::new();
        for (i, f) in p.files.iter().enumerate() {
            if progress.lease_lost() {
                return Err(TaskError::transient("the task's lease was lost"));
            }
            let r = ikon_store::ManifestRef {
                disk_id: f.disk_id.clone(),
                version: f.version,
            };
            let store = self
                .store_holding(&f.region, &r)
                .await
                .map_err(|e| TaskError::transient(e.message))?;
            let m = store
                .get_manifest(&r)
                .await
                .map_err(|e| TaskError::permanent(format!("image {}: {e}", f.image_id)))?;
            // This file's share of the whole: writing, then (S3) uploading.
            let pct = Arc::new(AtomicI64::new(0));
            let (lo, span) = ((i as u64) * 100 / n, 100 / n);
            let two_steps = matches!(dest, Destination::S3(_));
            let report = move |step: u64, done: u64, total: u64| {
                let steps = if two_steps { 2 } else { 1 };
                let part =
                    (step * total.max(1) + done.min(total.max(1))) * span / (steps * total.max(1));
                i64::try_from(lo + part).unwrap_or(100)
            };
            let (tmp, final_path) = match &dest {
                Destination::Dir(d) => (
                    // Named after the task: a retry after a crash overwrites its own part
                    // file, and an abandoned task's is removed (`on_abandoned`).
                    d.join(part_name(&f.key, &task.task_id)),
                    Some(d.join(&f.key)),
                ),
                Destination::S3(_) => (
                    self.export_work_dir()
                        .join(format!("ikon-export-{}-{i}.{}", task.task_id, p.format)),
                    None,
                ),
            };
            let written = {
                let (tmp, key, shared, dev) = (
                    tmp.clone(),
                    f.key.clone(),
                    pct.clone(),
                    store.open_disk(m.clone()),
                );
                let size = m.disk_size;
                let mut handle =
                    tokio::task::spawn_blocking(move || -> std::result::Result<u64, String> {
                        let mut opts = ikon_disk::CreateOptions::new(format, size);
                        // An export keeps the image's exact size in every format (a VHD gets
                        // the exact-size footer rather than a CHS-rounded size).
                        opts.force_size = format == ikon_disk::Format::Vhd;
                        opts.name_hint = Some(key);
                        opts.threads = 2;
                        let w = ikon_disk::create(&tmp, &opts).map_err(|e| e.to_string())?;
                        let mut cb =
                            |d: u64, t: u64| shared.store(report(0, d, t), Ordering::Relaxed);
                        ikon_disk::convert::convert(
                            &dev,
                            w,
                            ikon_disk::convert::CopyOptions::default(),
                            &mut cb,
                        )
                        .map_err(|e| e.to_string())?;
                        std::fs::metadata(&tmp)
                            .map(|md| md.len())
                            .map_err(|e| e.to_string())
                    });
                loop {
                    tokio::select! {
                        r = &mut handle => break r,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                            progress.set(pct.load(Ordering::Relaxed));
                        }
                    }
                }
            };
            let bytes = match written {
                Ok(Ok(b)) => b,
                other => {
                    let _ = std::fs::remove_file(&tmp);
                    let msg = match other {
                        Ok(Err(e)) => e,
                        Err(e) => e.to_string(),
                        Ok(Ok(_)) => String::new(),
                    };
                    return Err(TaskError::permanent(format!(
                        "writing {} of image {}: {msg}",
                        f.key, f.image_id
                    )));
                }
            };
            match (&dest, final_path) {
                (Destination::Dir(d), Some(fp)) => {
                    std::fs::rename(&tmp, &fp).map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        TaskError::transient(format!("moving {} into {}: {e}", f.key, d.display()))
                    })?;
                }
                (Destination::S3(b), _) => {
                    let pc = pct.clone();
                    let up = b
                        .upload_file(&f.key, &tmp, &move |d, t| {
                            pc.store(report(1, d, t), Ordering::Relaxed)
                        })
                        .await;
                    let _ = std::fs::remove_file(&tmp);
                    up.map_err(|e| TaskError::transient(format!("uploading {}: {e}", f.key)))?;
                }
                _ => {}
            }
            progress.set(i64::try_from(lo + span).unwrap_or(100));
            out.push(serde_json::json!({ "key": f.key, "bytes": bytes }));
        }
        Ok(serde_json::json!({ "bucket": p.bucket, "files": out }).to_string())
    }

    fn export_work_dir(&self) -> PathBuf {
        self.config()
            .export
            .work_dir
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
    }
}

/// The temporary name of an export file being written into a directory.
fn part_name(key: &str, task_id: &str) -> String {
    format!(".{key}.part-{task_id}")
}

/// Runs export tasks.
pub struct ExportHandler;

impl TaskHandler<crate::Service> for ExportHandler {
    fn kind(&self) -> &'static str {
        EXPORT_KIND
    }

    fn image_states(&self) -> Option<ImageStates> {
        // The images stay NORMAL (and usable) while they are exported.
        None
    }

    fn on_abandoned<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        _reason: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // The worker died while writing: its part files go (S3 exports assemble theirs
            // in the work directory, named after the task too).
            let Ok(p) = serde_json::from_str::<Payload>(&task.payload) else {
                return;
            };
            if let Ok(Destination::Dir(d)) = svc.export_destination(&p.bucket).await {
                for f in &p.files {
                    let _ = std::fs::remove_file(d.join(part_name(&f.key, &task.task_id)));
                }
            }
            for i in 0..p.files.len() {
                let _ = std::fs::remove_file(
                    svc.export_work_dir()
                        .join(format!("ikon-export-{}-{i}.{}", task.task_id, p.format)),
                );
            }
        })
    }

    fn run<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>> {
        Box::pin(svc.run_export(task, progress))
    }
}

impl crate::facets::Transfers<'_> {
    /// Starts exporting images (see the module docs); every image is checked first.
    pub async fn export_images(
        &self,
        caller: &Caller,
        req: &ExportRequest,
    ) -> Result<ExportStarted> {
        if !req.dry_run {
            self.count_limited(caller, crate::Operation::ExportImages)
                .await?;
        }
        if req.image_ids.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "at least one image is needed",
            ));
        }
        if !req.prefixes.is_empty() && req.prefixes.len() != req.image_ids.len() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "give one file name prefix per image, or none",
            ));
        }
        for p in &req.prefixes {
            check_prefix(p)?;
        }
        let format = format_of(&req.format)?;
        let ext = format.name();
        let mut files = Vec::new();
        for (i, id) in req.image_ids.iter().enumerate() {
            if req.image_ids[..i].contains(id) {
                return Err(Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("image {id} is listed twice"),
                ));
            }
            let v = self.owned_image(caller, id).await?;
            if v.visibility != Visibility::Private {
                return Err(Error::new(
                    ErrorKind::NotOwner,
                    format!("image {id} is not a custom image of your account; only custom images can be exported"),
                ));
            }
            if v.image.state != state::NORMAL {
                return Err(Error::new(
                    ErrorKind::ImageIncorrectState,
                    format!(
                        "image {id} is {}; only NORMAL images can be exported",
                        v.image.state
                    ),
                ));
            }
            self.check_exportable(&v.image).await?;
            let prefix = req
                .prefixes
                .get(i)
                .filter(|p| !p.is_empty())
                .map(|p| format!("{p}_"))
                .unwrap_or_default();
            for d in &v.image.disks {
                let system = d.usage == "SYSTEM_DISK";
                if req.only_system_disk && !system {
                    continue;
                }
                let role = if system { "system" } else { "data" };
                files.push(ExportFile {
                    image_id: id.clone(),
                    region: v.image.region.clone(),
                    disk_id: d.disk_id.clone(),
                    version: d.version,
                    key: format!("{prefix}{id}_{role}_{}.{ext}", d.snapshot_id),
                });
            }
        }
        // The bucket must exist (checked last: it may cost a request).
        self.export_destination(&req.bucket).await?;
        let keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
        if req.dry_run {
            return Ok(ExportStarted {
                task_id: String::new(),
                keys,
            });
        }
        let payload = serde_json::to_value(Payload {
            bucket: req.bucket.clone(),
            format: ext.to_string(),
            files,
        })
        .map_err(|e| Error::caused_by(ErrorKind::Internal, "internal failure", e))?;
        let task_id = self
            .submit_task(
                caller,
                EXPORT_KIND,
                &req.image_ids[0],
                &payload,
                EXPORT_ATTEMPTS,
            )
            .await?;
        Ok(ExportStarted { task_id, keys })
    }
}
