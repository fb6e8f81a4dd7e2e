//! The `import` task: fetch the file into the spool while a follower stores its chunks,
//! open and inspect it, evaluate the rules, store the disk (and any data disks) and record
//! the inspected OS — or fail with every failed rule stated.

use super::{Payload, IMPORT_KIND};
use crate::images::state;
use crate::publish::{fields_from, OsFields};
use crate::tasks::{BoxFuture, Progress, TaskError, TaskHandler};
use crate::{ids, Service};
use ikon_catalog::{DiskRef, Task};
use ikon_guest::rules::{self, Rule, RulesConfig, Verdict};
use ikon_transfer::download::{download_following, drop_spool, DownloadError};
use ikon_transfer::fetch::{FetchError, Fetched};
use ikon_transfer::source::{HttpSource, ObjectSource, Source, SourceUrl};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Checked {
    rules: Vec<Rule>,
    /// Failed safety rules (never skipped).
    safety: Vec<Rule>,
    fields: OsFields,
    format: String,
    dev: Option<Arc<dyn ikon_disk::BlockDevice>>,
}

fn rule(id: &str, verdict: Verdict, message: String) -> Rule {
    Rule {
        id: id.into(),
        verdict,
        message,
    }
}

/// Opens (with `open`), inspects and evaluates an imported file (blocking).
fn check_image(
    open: impl FnOnce() -> ikon_disk::Result<Box<dyn ikon_disk::DiskImage>>,
    cfg: &RulesConfig,
    os: &crate::policy::Os,
    declared: &Payload,
) -> Checked {
    let mut out = Checked {
        rules: Vec::new(),
        safety: Vec::new(),
        fields: OsFields::default(),
        format: String::new(),
        dev: None,
    };
    let img = match open() {
        Ok(i) => i,
        Err(e) => {
            let r = if e.kind() == ikon_disk::ErrorKind::Unsafe {
                rule(
                    "external-reference",
                    Verdict::Fail,
                    format!("the image is unsafe: {e}"),
                )
            } else {
                rule(
                    "image-readable",
                    Verdict::Fail,
                    format!("the file is not a readable disk image: {e}"),
                )
            };
            out.safety.push(r);
            return out;
        }
    };
    out.format = img.info().format.to_string();
    let img: Arc<dyn ikon_disk::DiskImage> = Arc::from(img);
    let dev: Arc<dyn ikon_disk::BlockDevice> = img;
    let ins = match ikon_guest::inspect(dev.as_ref(), &out.format) {
        Ok(i) => i,
        Err(e) => {
            out.safety.push(rule(
                "image-readable",
                Verdict::Fail,
                format!("the disk could not be read: {e}"),
            ));
            return out;
        }
    };
    let mut iso = [0u8; 5];
    if out.format == "raw" && dev.read_exact_at(&mut iso, 0x8001).is_ok() && &iso == b"CD001" {
        out.rules.push(rule(
            "iso",
            Verdict::Fail,
            "the file is an ISO 9660 image (installation media), not a system disk; it is imported only with Force".into(),
        ));
    }
    out.rules.extend(rules::evaluate(&ins, cfg));
    out.fields = fields_from(&ins, os);
    let f = &out.fields;
    let matches = f.platform.is_empty()
        || f.platform.eq_ignore_ascii_case(&declared.os_type)
        || (f.platform == "Windows" && declared.os_type.starts_with("Windows"));
    if !matches {
        out.rules.push(rule(
            "declared-os",
            Verdict::Warn,
            format!(
                "OsType says {} but the disk holds {}; the image records what was found",
                declared.os_type, out.fields.os_name
            ),
        ));
    }
    out.dev = Some(dev);
    out
}

fn listing(rules: &[&Rule]) -> String {
    rules
        .iter()
        .map(|r| format!("[{}] {}", r.id, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn fetch_error(e: FetchError) -> TaskError {
    match e {
        FetchError::Transient(m) => TaskError::transient(m),
        FetchError::Refused(m) => TaskError::permanent(format!("import refused: [ssrf-guard] {m}")),
        FetchError::TooLarge(m) => {
            TaskError::permanent(format!("import refused: [source-size] {m}"))
        }
        FetchError::Permanent(m) => TaskError::permanent(format!("download failed: {m}")),
    }
}

/// How a failure reason names the imported file: the last path component of the URL the
/// user gave (without a query), or the upload's id.
fn shown_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let rest = path.split_once("://").map_or(path, |(_, r)| r);
    // `upload://ID` names the upload; other URLs name a host, then a path.
    let name = if url.starts_with("upload://") {
        rest
    } else {
        rest.split_once('/').map_or("", |(_, p)| p)
    };
    match name.rsplit('/').find(|s| !s.is_empty()) {
        Some(n) => n.to_string(),
        None => url.to_string(),
    }
}

fn download_error(e: DownloadError) -> TaskError {
    match e {
        DownloadError::Fetch(e) => fetch_error(e),
        other => TaskError::transient(other.to_string()),
    }
}

/// Runs `import` tasks.
pub struct ImportHandler;

impl ImportHandler {
    async fn run_import(
        svc: &Service,
        task: &Task,
        progress: &Progress,
    ) -> std::result::Result<String, TaskError> {
        let p: Payload = serde_json::from_str(&task.payload)
            .map_err(|e| TaskError::permanent(format!("malformed import task: {e}")))?;
        let last_attempt = task.attempts >= task.max_attempts;
        let src = SourceUrl::parse(&p.url).map_err(TaskError::permanent)?;
        let spool = svc.transfers().spool_dir().join("imports");
        tokio::fs::create_dir_all(&spool)
            .await
            .map_err(|e| TaskError::transient(format!("spool {}: {e}", spool.display())))?;
        let (dest, source) = Self::source_for(svc, task, &src, &spool.join(&task.task_id))?;
        let result = Self::import_file(svc, task, progress, &p, &dest, source.as_deref()).await;
        let finished = match &result {
            Ok(_) => true,
            Err(e) => !e.retryable || last_attempt,
        };
        if finished {
            drop_spool(&dest).await;
        }
        result
    }

    /// Where a source lands (spool file, or the upload itself) and how it is fetched.
    fn source_for(
        svc: &Service,
        task: &Task,
        src: &SourceUrl,
        spool_file: &Path,
    ) -> std::result::Result<(PathBuf, Option<Box<dyn Source>>), TaskError> {
        Ok(match src {
            SourceUrl::Http(u) => (
                spool_file.to_path_buf(),
                Some(Box::new(HttpSource {
                    url: u.clone(),
                    options: svc.fetch_options(),
                })),
            ),
            SourceUrl::S3 { bucket, key } => {
                let store = svc.import_bucket(bucket).ok_or_else(|| {
                    TaskError::permanent(format!(
                        "bucket {bucket:?} is not configured on this server"
                    ))
                })?;
                (
                    spool_file.to_path_buf(),
                    Some(Box::new(ObjectSource {
                        store,
                        key: key.clone(),
                        max_bytes: svc.config().import.max_bytes,
                        attempts: svc.config().import.attempts,
                    })),
                )
            }
            SourceUrl::Upload(id) => (svc.transfers().upload_path(&task.account_id, id), None),
        })
    }

    /// Fetches and stores the data disks of an import (after the system disk passed its
    /// rules): each must open as a disk image referring to nothing outside itself and be
    /// within `import.max_data_disk_gib`.
    async fn data_disks(
        svc: &Service,
        task: &Task,
        p: &Payload,
        session: &ikon_store::WriteSession,
    ) -> std::result::Result<Vec<DiskRef>, TaskError> {
        let mut out = Vec::new();
        let spool = svc.transfers().spool_dir().join("imports");
        let max = svc
            .config()
            .import
            .max_data_disk_gib
            .saturating_mul(1 << 30);
        for (n, url) in p.data_urls.iter().enumerate() {
            let which = format!("data disk {}", n + 1);
            let src = SourceUrl::parse(url).map_err(TaskError::permanent)?;
            let (dest, source) = Self::source_for(
                svc,
                task,
                &src,
                &spool.join(format!("{}-data{}", task.task_id, n + 1)),
            )?;
            match source {
                Some(source) => {
                    source
                        .fetch(&dest, &|_, _| {})
                        .await
                        .map_err(|e| fetch_error(e).prefixed(&which))?;
                }
                None if !dest.is_file() => {
                    return Err(TaskError::permanent(format!(
                        "{which}: the uploaded file is gone; upload it again"
                    )))
                }
                None => {}
            }
            let path = dest.clone();
            let dev = tokio::task::spawn_blocking(move || {
                ikon_disk::open(&path, &ikon_disk::OpenOptions::default())
            })
            .await
            .map_err(|e| TaskError::transient(format!("{which}: worker: {e}")))?
            .map_err(|e| {
                TaskError::permanent(format!("import refused: [image-readable] {which}: {e}"))
            })?;
            let dev: Arc<dyn ikon_disk::DiskImage> = Arc::from(dev);
            let size = dev.len();
            if size > max {
                return Err(TaskError::permanent(format!(
                    "import refused: [data-disk-size] {which} is {} GiB; at most {} GiB",
                    size.div_ceil(1 << 30),
                    max >> 30
                )));
            }
            let dev: Arc<dyn ikon_disk::BlockDevice> = dev;
            let (mref, _, _) = session
                .import_device(dev, &ids::new_id("disk"), Arc::new(|_, _| {}))
                .await
                .map_err(|e| TaskError::transient(format!("{which}: chunk store: {e}")))?;
            let _ = tokio::fs::remove_file(&dest).await;
            out.push(DiskRef {
                disk_id: mref.disk_id,
                version: mref.version,
                usage: "DATA_DISK".into(),
                size_bytes: size,
                snapshot_id: ids::new_id("snap"),
            });
        }
        Ok(out)
    }

    async fn import_file(
        svc: &Service,
        task: &Task,
        progress: &Progress,
        p: &Payload,
        dest: &Path,
        source: Option<&dyn Source>,
    ) -> std::result::Result<String, TaskError> {
        let storage = |e: ikon_store::Error| TaskError::transient(format!("chunk store: {e}"));
        let started = std::time::Instant::now();
        // One write session from the first byte: the follower stores chunks during the
        // download, and a collection must not remove them before the manifest exists.
        let session = svc
            .store_for(&task.region)
            .begin_write()
            .await
            .map_err(storage)?;
        let mut fetched = Fetched::default();
        let mut known = ikon_store::Known::new();
        // The file as the store holds it, when the follower punched it out of the spool.
        let mut stored_file: Option<ikon_store::ManifestDisk> = None;
        if let Some(source) = source {
            let report = |n: u64, total: Option<u64>| {
                if let Some(t) = total.filter(|t| *t > 0) {
                    let pct = n.saturating_mul(40) / t;
                    progress.set(i64::try_from(pct).unwrap_or(40));
                }
            };
            let d = download_following(&session, source, dest, &report)
                .await
                .map_err(download_error)?;
            fetched = d.fetched;
            known = d.known;
            stored_file = d.stored;
        } else if !dest.is_file() {
            return Err(TaskError::permanent(
                "the uploaded file is gone; upload it again",
            ));
        }
        let download_ms = started.elapsed().as_millis();
        if progress.lease_lost() {
            return Err(TaskError::transient("lease lost"));
        }
        let cfg = svc.transfers().import_rules();
        let os = svc.config().os.clone();
        let (path, declared) = (dest.to_path_buf(), p.clone());
        let checked = tokio::task::spawn_blocking(move || match stored_file {
            Some(disk) => check_image(
                || {
                    let storage: Arc<dyn ikon_disk::Storage> =
                        Arc::new(super::stored::StoredFile(disk));
                    let ctx = ikon_disk::OpenContext::new(ikon_disk::OpenOptions::default(), None);
                    ikon_disk::open_storage(storage, &ctx)
                },
                &cfg,
                &os,
                &declared,
            ),
            None => check_image(
                || ikon_disk::open(&path, &ikon_disk::OpenOptions::default()),
                &cfg,
                &os,
                &declared,
            ),
        })
        .await
        .map_err(|e| TaskError::transient(format!("inspection worker: {e}")))?;
        // Reasons name what the user gave, never the server's spool path.
        let mut checked = checked;
        let shown = shown_name(&p.url);
        let spool = dest.to_string_lossy().into_owned();
        for r in checked.safety.iter_mut().chain(checked.rules.iter_mut()) {
            r.message = r.message.replace(&spool, &shown);
        }
        let inspect_ms = started.elapsed().as_millis() - download_ms;
        let failed: Vec<&Rule> = checked
            .rules
            .iter()
            .filter(|r| r.verdict == Verdict::Fail)
            .collect();
        if !checked.safety.is_empty() {
            let all: Vec<&Rule> = checked
                .safety
                .iter()
                .chain(failed.iter().copied())
                .collect();
            return Err(TaskError::permanent(format!(
                "import refused ({} rule(s) failed; Force never skips safety rules): {}",
                all.len(),
                listing(&all)
            )));
        }
        if !failed.is_empty() && !p.force {
            return Err(TaskError::permanent(format!(
                "import refused ({} rule(s) failed): {}",
                failed.len(),
                listing(&failed)
            )));
        }
        let dev = checked
            .dev
            .clone()
            .ok_or_else(|| TaskError::permanent("the disk could not be opened"))?;
        // The follower read the file as a raw disk: its chunks are the guest's only then.
        if checked.format != "raw" {
            known.clear();
        }
        let prestored = known.len();
        let stats = Self::store(svc, task, progress, dev, &checked, p, session, known).await?;
        let store_ms = started.elapsed().as_millis() - download_ms - inspect_ms;
        let rules_json: Vec<serde_json::Value> = checked
            .rules
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "verdict": r.verdict, "message": r.message}))
            .collect();
        Ok(serde_json::json!({
            "format": checked.format,
            "bytes": fetched.bytes,
            "resumes": fetched.resumes,
            "forced": p.force && !failed.is_empty(),
            "rules": rules_json,
            "data_bytes": stats.data_bytes,
            "new_bytes": stats.new_bytes,
            "chunks_stored_during_download": prestored,
            "download_ms": download_ms,
            "inspect_ms": inspect_ms,
            "store_ms": store_ms,
        })
        .to_string())
    }

    #[allow(clippy::too_many_arguments)]
    async fn store(
        svc: &Service,
        task: &Task,
        progress: &Progress,
        dev: Arc<dyn ikon_disk::BlockDevice>,
        checked: &Checked,
        p: &Payload,
        session: ikon_store::WriteSession,
        known: ikon_store::Known,
    ) -> std::result::Result<ikon_store::ImportStats, TaskError> {
        let storage = |e: ikon_store::Error| TaskError::transient(format!("chunk store: {e}"));
        let catalog = |e: ikon_catalog::Error| TaskError::transient(format!("catalog: {e}"));
        let size = dev.len();
        let prog = Arc::new(Progress::default());
        let report: Arc<dyn Fn(u64, u64) + Send + Sync> = {
            let prog = prog.clone();
            Arc::new(move |done, total| {
                if let Some(pct) = done.saturating_mul(60).checked_div(total) {
                    prog.set(i64::try_from(40 + pct).unwrap_or(100));
                }
            })
        };
        let disk_id = ids::new_id("disk");
        let stored = {
            let fut = session.import_device_with(dev, &disk_id, report, known);
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    r = &mut fut => break r,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                        progress.set(prog.percent());
                    }
                }
            }
        };
        let (mref, _, stats) = stored.map_err(storage)?;
        if progress.lease_lost() {
            return Err(TaskError::transient("lease lost while storing"));
        }
        let disk = crate::images::system_disk(&mref, size);
        let f = &checked.fields;
        let license = if f.byol {
            "BYOL"
        } else {
            p.license_type.as_str()
        };
        let os_name = found_or(&f.os_name, &p.os_type).to_string();
        let platform = found_or(&f.platform, &p.os_type);
        // The detected architecture counts only when inspection recognised the OS.
        let arch = if f.os_type.is_empty() {
            p.architecture.as_str()
        } else {
            f.architecture.as_str()
        };
        let os_type = found_or(&f.os_type, "Linux");
        let mut disks = vec![disk];
        disks.extend(Self::data_disks(svc, task, p, &session).await?);
        svc.catalog()
            .set_image_disks(&task.resource_id, &disks, size)
            .await
            .map_err(catalog)?;
        svc.catalog()
            .set_image_os(
                &task.resource_id,
                &ikon_catalog::ImageOs {
                    os_name: &os_name,
                    os_type,
                    platform,
                    architecture: arch,
                    cloudinit: f.cloudinit,
                    license_type: license,
                },
            )
            .await
            .map_err(catalog)?;
        session.end().await.map_err(storage)?;
        progress.set(100);
        Ok(stats)
    }
}

/// What inspection found, or `requested` when it found nothing.
fn found_or<'a>(found: &'a str, requested: &'a str) -> &'a str {
    if found.is_empty() {
        requested
    } else {
        found
    }
}

impl TaskHandler<crate::Service> for ImportHandler {
    fn kind(&self) -> &'static str {
        IMPORT_KIND
    }

    fn image_states(&self) -> Option<crate::tasks::ImageStates> {
        Some(crate::tasks::ImageStates {
            running: &[state::IMPORTING],
            success: state::NORMAL,
            failure: state::IMPORTFAILED,
        })
    }

    fn run<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>> {
        Box::pin(Self::run_import(svc, task, progress))
    }
}

#[cfg(test)]
mod tests {
    use super::shown_name;

    #[test]
    fn reasons_name_the_users_file() {
        assert_eq!(shown_name("http://h:8080/d/disk.qcow2?sig=1"), "disk.qcow2");
        assert_eq!(shown_name("s3://bucket/images/win.vhdx"), "win.vhdx");
        assert_eq!(shown_name("upload://upl-abcd1234"), "upl-abcd1234");
        assert_eq!(shown_name("http://h/"), "http://h/");
    }
}
