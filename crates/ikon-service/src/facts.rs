//! An image's facts: the inspection of its system disk and the hygiene scan, computed once
//! per manifest by a `scan` task after the image is NORMAL (never delaying it) and reused by
//! every image with the same content (copies, shares, marketplace images).
//!
//! [`Images::request_missing_facts`] finds the NORMAL images whose facts were never asked
//! for (`ikon serve` calls it periodically, so an image made by any path, or left by a
//! crash between turning NORMAL and asking, is covered); the catalog stores the facts row
//! and its task in one transaction, once per manifest. Severities are applied when facts are
//! read, under the policy in force then. Findings are shown to the image's owner and the
//! administrator; a marketplace submission computes them on the spot if they are not there
//! yet.

use crate::facets::Images;
use crate::tasks::{new_task, BoxFuture, ImageStates, Progress, TaskError, TaskHandler};
use crate::{ids, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::{fstate, DiskRef, Facts, Image, Task};
use ikon_guest::scan::{Finding, Scan, Severity};
use serde::{Deserialize, Serialize};

/// Task kind computing a manifest's facts.
pub const SCAN_KIND: &str = "scan";
/// NORMAL images looked at per sweep.
const SWEEP_BATCH: i64 = 200;

/// What the scan task is given.
#[derive(Debug, Serialize, Deserialize)]
struct ScanPayload {
    region: String,
    disk_id: String,
    version: u64,
    size_bytes: u64,
}

/// The facts of an image as its owner sees them.
#[derive(Debug, Clone, Serialize)]
pub struct ImageScan {
    /// Image.
    pub image_id: String,
    /// `PENDING`, `DONE`, `FAILED`, or `NONE` (not asked for yet; the image is not NORMAL
    /// or was made moments ago).
    pub state: String,
    /// Findings with the severities the policy gives them now, most severe first.
    pub findings: Vec<Finding>,
    /// Operating systems scanned.
    pub scanned: Vec<String>,
    /// Places that could not be read.
    pub problems: Vec<String>,
    /// Why the facts could not be computed (FAILED).
    pub error: String,
    /// When the facts last changed (unix seconds; 0 when NONE).
    pub updated_at: i64,
}

impl ImageScan {
    /// Findings at `s`.
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// The system disk of an image (the first disk when none says so).
fn system_disk(disks: &[DiskRef]) -> Option<&DiskRef> {
    disks
        .iter()
        .find(|d| d.usage == "SYSTEM_DISK")
        .or_else(|| disks.first())
}

fn scan_of(f: &Facts, cfg: &ikon_guest::scan::ScanConfig) -> Result<Scan> {
    let mut s: Scan = serde_json::from_str(&f.scan)
        .map_err(|e| Error::internal(format!("stored scan of {}: {e}", f.disk_id)))?;
    for x in &mut s.findings {
        x.severity = cfg.severity(&x.id);
    }
    ikon_guest::scan::sort_findings(&mut s.findings);
    Ok(s)
}

impl Service {
    /// Inspects and scans a manifest now (blocking work on a worker thread).
    pub(crate) async fn compute_facts(&self, region: &str, d: &DiskRef) -> Result<Facts> {
        let (m, store) = self
            .content_in(region, &d.disk_id, d.version, d.size_bytes)
            .await?;
        let cfg = self.config().scan_rules();
        let dev = store.open_disk(m);
        let (ins, scan) = tokio::task::spawn_blocking(move || {
            let ins = ikon_guest::inspect(&dev, "raw")?;
            let scan = ikon_guest::scan::scan(&dev, &ins, &cfg);
            Ok::<_, ikon_disk::Error>((ins, scan))
        })
        .await
        .map_err(|e| Error::caused_by(ErrorKind::Internal, "scan worker failed", e))?
        .map_err(|e| Error::caused_by(ErrorKind::Storage, "the disk could not be read", e))?;
        let now = ids::now();
        let json = |v: serde_json::Result<String>| {
            v.map_err(|e| Error::caused_by(ErrorKind::Internal, "facts encoding", e))
        };
        Ok(Facts {
            disk_id: d.disk_id.clone(),
            version: d.version,
            state: fstate::DONE.into(),
            inspection: json(serde_json::to_string(&ins))?,
            scan: json(serde_json::to_string(&scan))?,
            error: String::new(),
            created_at: now,
            updated_at: now,
        })
    }

    /// The facts of `img`'s content, computed now (and stored) when they are not done.
    pub(crate) async fn facts_now(&self, img: &Image) -> Result<Option<Scan>> {
        let Some(d) = system_disk(&img.disks).filter(|d| !d.disk_id.is_empty()) else {
            return Ok(None);
        };
        let cfg = self.config().scan_rules();
        if let Some(f) = self.catalog().facts(&d.disk_id, d.version).await? {
            if f.state == fstate::DONE {
                return scan_of(&f, &cfg).map(Some);
            }
        }
        let f = self.compute_facts(&img.region, d).await?;
        self.catalog().put_facts(&f).await?;
        scan_of(&f, &cfg).map(Some)
    }
}

impl Images<'_> {
    /// Asks for the facts of NORMAL images that have none yet (one task per manifest);
    /// returns how many tasks were stored.
    pub async fn request_missing_facts(&self) -> Result<usize> {
        let mut stored = 0;
        for w in self.catalog().images_wanting_facts(SWEEP_BATCH).await? {
            let disk = system_disk(&w.disks).filter(|d| !d.disk_id.is_empty());
            let payload = disk.map(|d| ScanPayload {
                region: w.region.clone(),
                disk_id: d.disk_id.clone(),
                version: d.version,
                size_bytes: d.size_bytes,
            });
            let caller = Caller {
                account_id: w.owner.clone(),
                region: w.region.clone(),
                is_admin: false,
            };
            let payload = serde_json::to_value(&payload)
                .map_err(|e| Error::caused_by(ErrorKind::Internal, "scan payload", e))?;
            let task = new_task(&caller, SCAN_KIND, &w.image_id, &payload, 3);
            let manifest = disk.map(|d| (d.disk_id.as_str(), d.version));
            if self
                .catalog()
                .request_facts(&w.image_id, manifest, &task, ids::now())
                .await?
            {
                stored += 1;
            }
        }
        if stored > 0 {
            self.transfers().wake_runner();
        }
        Ok(stored)
    }

    /// The facts of one of the caller's images (an administrator's: any image). Anyone
    /// else's image is refused as the image's visibility decides: not found when it is not
    /// visible, not the owner's when it is.
    pub async fn image_scan(&self, caller: &Caller, image_id: &str) -> Result<ImageScan> {
        let img = if caller.is_admin {
            // Any image, in the region the call is addressed to (as every other action).
            self.check_region(&caller.region)?;
            self.catalog()
                .image(image_id)
                .await?
                .filter(|i| i.region == caller.region)
                .ok_or_else(|| Error::image_not_found(image_id))?
        } else {
            let v = self.visible_image(caller, image_id).await?;
            if v.image.owner != caller.account_id {
                return Err(Error::new(
                    ErrorKind::NotOwner,
                    format!("the findings of image {image_id} are shown to its owner only"),
                ));
            }
            v.image
        };
        let mut out = ImageScan {
            image_id: image_id.to_string(),
            state: "NONE".into(),
            findings: Vec::new(),
            scanned: Vec::new(),
            problems: Vec::new(),
            error: String::new(),
            updated_at: 0,
        };
        let Some(d) = system_disk(&img.disks).filter(|d| !d.disk_id.is_empty()) else {
            return Ok(out);
        };
        if let Some(f) = self.catalog().facts(&d.disk_id, d.version).await? {
            out.state.clone_from(&f.state);
            out.updated_at = f.updated_at;
            out.error.clone_from(&f.error);
            if f.state == fstate::DONE {
                let s = scan_of(&f, &self.config().scan_rules())?;
                out.findings = s.findings;
                out.scanned = s.scanned;
                out.problems = s.problems;
            }
        }
        Ok(out)
    }
}

/// Computes a manifest's facts (the `scan` task).
pub struct ScanHandler;

impl TaskHandler<Service> for ScanHandler {
    fn kind(&self) -> &'static str {
        SCAN_KIND
    }

    fn image_states(&self) -> Option<ImageStates> {
        None
    }

    fn on_abandoned<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        reason: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(p) = serde_json::from_str::<ScanPayload>(&task.payload) {
                record_failure(svc, &p, reason).await;
            }
        })
    }

    fn run<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>> {
        Box::pin(async move {
            let p: ScanPayload = serde_json::from_str(&task.payload)
                .map_err(|e| TaskError::permanent(format!("scan payload: {e}")))?;
            let d = DiskRef {
                disk_id: p.disk_id.clone(),
                version: p.version,
                usage: "SYSTEM_DISK".into(),
                size_bytes: p.size_bytes,
                snapshot_id: String::new(),
            };
            let f = match svc.compute_facts(&p.region, &d).await {
                Ok(f) => f,
                Err(e) => {
                    let msg = e.chain();
                    if task.attempts >= task.max_attempts {
                        record_failure(svc, &p, &msg).await;
                    }
                    return Err(TaskError::transient(msg));
                }
            };
            svc.catalog()
                .put_facts(&f)
                .await
                .map_err(|e| TaskError::transient(e.to_string()))?;
            progress.set(100);
            let s: Scan = serde_json::from_str(&f.scan).unwrap_or_default();
            Ok(serde_json::json!({
                "findings": s.findings.len(),
                "block": s.count(Severity::Block),
                "warn": s.count(Severity::Warn),
            })
            .to_string())
        })
    }
}

async fn record_failure(svc: &Service, p: &ScanPayload, reason: &str) {
    let now = ids::now();
    let f = Facts {
        disk_id: p.disk_id.clone(),
        version: p.version,
        state: fstate::FAILED.into(),
        inspection: String::new(),
        scan: String::new(),
        error: reason.to_string(),
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = svc.catalog().put_facts(&f).await {
        tracing::warn!(disk = %p.disk_id, "recording failed facts: {e}");
    }
}
