//! Cross-region copy (SyncImages). The rules: only the caller's own NORMAL custom images;
//! destinations must be other, existing regions, and both ends must allow copies (the
//! region policy: Tencent preset = Guangzhou, Beijing, Shanghai, Hong Kong; North America
//! refused); each copy is a new custom image in its region (quota and name rules apply);
//! free of charge. The daily operation limit is counted by the caller of the action.
//!
//! The copy is a durable task: the source shows SYNCING with SyncPercent, the copies
//! CREATING; the task sends to each destination's store only the chunks it lacks (a region
//! sharing the source's store receives nothing), writes the manifests, then turns the copies
//! NORMAL and the source back to NORMAL. Bytes sent are recorded in the task's result.

use crate::images::{state, Visibility};
use crate::tasks::{BoxFuture, ImageStates, Progress, TaskError, TaskHandler};
use crate::{ids, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::{DiskRef, Task};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Task kind of a cross-region copy.
pub const SYNC_KIND: &str = "sync";
/// Attempts before a copy fails for good.
const SYNC_ATTEMPTS: i64 = 3;

/// A copy request (already parsed by the dialect).
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Source images (in the caller's region).
    pub image_ids: Vec<String>,
    /// Destination regions.
    pub regions: Vec<String>,
    /// Name of the copies (default: the source's name).
    pub name: Option<String>,
    /// Only check.
    pub dry_run: bool,
}

/// One copy being made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTarget {
    /// Source image.
    pub source: String,
    /// Destination region.
    pub region: String,
    /// The copy's image id.
    pub image_id: String,
}

/// What was started.
#[derive(Debug, Clone, Default)]
pub struct SyncStarted {
    /// One task per source image.
    pub task_ids: Vec<String>,
    /// The copies (empty on a dry run).
    pub targets: Vec<SyncTarget>,
}

/// What one copy moved (the task result lists one per destination).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedCopy {
    /// Destination region.
    pub region: String,
    /// The copy's image id.
    pub image_id: String,
    /// Distinct data chunks of the image.
    pub chunks: u64,
    /// Chunks the destination already held.
    pub present_chunks: u64,
    /// Chunks sent.
    pub copied_chunks: u64,
    /// Bytes sent.
    pub copied_bytes: u64,
}

/// A copy task's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResult {
    /// Per destination.
    pub copies: Vec<SyncedCopy>,
    /// Bytes sent in all.
    pub copied_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    targets: Vec<SyncTarget>,
}

impl Service {
    /// The region policy for a copy from `from` to `to`.
    fn check_copy_regions(&self, from: &str, to: &str) -> Result<()> {
        let dst = self.check_region(to)?;
        if from == to {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("the destination region {to} is the image's own region"),
            ));
        }
        let src = self.check_region(from)?;
        let allowed: Vec<&str> = self
            .config()
            .regions
            .iter()
            .filter(|r| r.copy_allowed)
            .map(|r| r.name.as_str())
            .collect();
        for r in [src, dst] {
            if !r.copy_allowed {
                return Err(Error::new(
                    ErrorKind::RegionNotAllowed,
                    format!(
                        "images cannot be copied to or from {} ({}); cross-region copy is available only among {}",
                        r.name,
                        r.display_name,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Marks `src` SYNCING, then stores its copies (CREATING) with their task in one write;
    /// puts `src` back to NORMAL if a copy cannot be created (quota, name).
    async fn start_sync(
        &self,
        caller: &Caller,
        src: &crate::Image,
        regions: &[String],
        name: &Option<String>,
    ) -> Result<(String, Vec<SyncTarget>)> {
        if !self
            .catalog()
            .transition_image(
                &src.image_id,
                &[state::NORMAL],
                state::SYNCING,
                "",
                Some(0),
                ids::now(),
            )
            .await?
        {
            return Err(Error::new(
                ErrorKind::ImageIncorrectState,
                format!("image {} is busy with another operation", src.image_id),
            ));
        }
        let now = ids::now();
        let mut copies = Vec::with_capacity(regions.len());
        let mut targets: Vec<SyncTarget> = Vec::with_capacity(regions.len());
        for region in regions {
            let copy = crate::Image {
                image_id: ids::new_id("img"),
                region: region.clone(),
                name: name.clone().unwrap_or_else(|| src.name.clone()),
                state: state::CREATING.into(),
                state_reason: String::new(),
                sync_percent: None,
                share_count: 0,
                disks: vec![],
                created_at: now,
                updated_at: now,
                version: 1,
                ..src.clone()
            };
            targets.push(SyncTarget {
                source: src.image_id.clone(),
                region: region.clone(),
                image_id: copy.image_id.clone(),
            });
            copies.push(copy);
        }
        let payload = serde_json::to_value(Payload {
            targets: targets.clone(),
        })
        .map_err(|e| Error::caused_by(ErrorKind::Internal, "internal failure", e))?;
        // The copies and their task in one write: all of them or none, and never a copy
        // that no task will fill.
        let task =
            crate::tasks::new_task(caller, SYNC_KIND, &src.image_id, &payload, SYNC_ATTEMPTS);
        let task_id = task.task_id.clone();
        if let Err(e) = self
            .images()
            .add_images_with_task(&copies, &task, ikon_catalog::TaskStart::Pending)
            .await
        {
            let _ = self
                .catalog()
                .transition_image(
                    &src.image_id,
                    &[state::SYNCING],
                    state::NORMAL,
                    "",
                    None,
                    ids::now(),
                )
                .await;
            return Err(e);
        }
        self.transfers().wake_runner();
        Ok((task_id, targets))
    }

    /// Fails the copies of a sync task that will not run again.
    async fn fail_copies(&self, targets: &[SyncTarget], reason: &str) {
        for t in targets {
            let _ = self
                .catalog()
                .transition_image(
                    &t.image_id,
                    &[state::CREATING],
                    state::CREATEFAILED,
                    reason,
                    None,
                    ids::now(),
                )
                .await;
        }
    }

    /// One attempt of a copy task.
    async fn run_sync(
        &self,
        task: &Task,
        progress: &Progress,
    ) -> std::result::Result<String, TaskError> {
        let p: Payload = serde_json::from_str(&task.payload)
            .map_err(|e| TaskError::permanent(format!("bad sync payload: {e}")))?;
        let src = self
            .catalog()
            .image(&task.resource_id)
            .await
            .map_err(|e| TaskError::transient(e.to_string()))?
            .ok_or_else(|| TaskError::permanent(format!("image {} vanished", task.resource_id)))?;
        // Progress: chunks examined over all destinations, mirrored into SyncPercent.
        let per_copy: u64 = (src.disks.len() as u64).max(1);
        let percent = Arc::new(AtomicI64::new(0));
        let mirror = {
            let (svc, id, percent) = (self.clone(), src.image_id.clone(), percent.clone());
            tokio::spawn(async move {
                let mut shown = 0;
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    let p = percent.load(Ordering::Relaxed);
                    if p != shown {
                        shown = p;
                        let _ = svc
                            .catalog()
                            .transition_image(
                                &id,
                                &[state::SYNCING],
                                state::SYNCING,
                                "",
                                Some(p),
                                ids::now(),
                            )
                            .await;
                    }
                }
            })
        };
        let mut result = SyncResult::default();
        let n_copies = p.targets.len() as u64;
        let outcome: std::result::Result<(), TaskError> =
            async {
                for (i, t) in p.targets.iter().enumerate() {
                    let dst_store = self.store_for(&t.region);
                    let session = dst_store
                        .begin_write()
                        .await
                        .map_err(|e| TaskError::transient(e.to_string()))?;
                    let mut copy = SyncedCopy {
                        region: t.region.clone(),
                        image_id: t.image_id.clone(),
                        ..SyncedCopy::default()
                    };
                    let mut disks = Vec::new();
                    for d in &src.disks {
                        let r = ikon_store::ManifestRef {
                            disk_id: d.disk_id.clone(),
                            version: d.version,
                        };
                        let src_store = self
                            .store_holding(&src.region, &r)
                            .await
                            .map_err(|e| TaskError::transient(e.chain()))?;
                        let cb = {
                            let pc = percent.clone();
                            let base = (i as u64) * per_copy + disks.len() as u64;
                            let span = n_copies.saturating_mul(per_copy).max(1);
                            Arc::new(move |done: u64, total: u64| {
                                // Disks finished plus this disk's share, over every disk of
                                // every copy.
                                let t = total.max(1);
                                let num = base
                                    .saturating_mul(t)
                                    .saturating_add(done.min(t))
                                    .saturating_mul(100);
                                let pct = i64::try_from(num / span.saturating_mul(t)).unwrap_or(99);
                                pc.store(pct.clamp(0, 99), Ordering::Relaxed);
                            })
                        };
                        let (_, st) = session.copy_disk_from(&src_store, &r, cb).await.map_err(
                            |e| match e.kind {
                                ikon_store::ErrorKind::Corrupt
                                | ikon_store::ErrorKind::InvalidInput
                                | ikon_store::ErrorKind::NotFound => {
                                    TaskError::permanent(e.to_string())
                                }
                                _ => TaskError::transient(e.to_string()),
                            },
                        )?;
                        copy.chunks += st.chunks;
                        copy.present_chunks += st.present_chunks;
                        copy.copied_chunks += st.copied_chunks;
                        copy.copied_bytes += st.copied_bytes;
                        disks.push(DiskRef {
                            snapshot_id: ids::new_id("snap"),
                            ..d.clone()
                        });
                    }
                    if progress.lease_lost() {
                        return Err(TaskError::transient("the task's lease was lost"));
                    }
                    // Commit the references, then let the destination's collector run again.
                    self.catalog()
                        .set_image_disks(&t.image_id, &disks, src.size_bytes)
                        .await
                        .map_err(|e| TaskError::transient(e.to_string()))?;
                    self.catalog()
                        .transition_image(
                            &t.image_id,
                            &[state::CREATING],
                            state::NORMAL,
                            "",
                            None,
                            ids::now(),
                        )
                        .await
                        .map_err(|e| TaskError::transient(e.to_string()))?;
                    session
                        .end()
                        .await
                        .map_err(|e| TaskError::transient(e.to_string()))?;
                    result.copied_bytes += copy.copied_bytes;
                    result.copies.push(copy);
                    progress.set(
                        i64::try_from((i as u64 + 1).saturating_mul(100) / n_copies.max(1))
                            .unwrap_or(100),
                    );
                }
                Ok(())
            }
            .await;
        mirror.abort();
        match outcome {
            Ok(()) => {
                serde_json::to_string(&result).map_err(|e| TaskError::permanent(e.to_string()))
            }
            Err(e) => {
                if !e.retryable || task.attempts >= task.max_attempts {
                    self.fail_copies(&p.targets, &e.message).await;
                }
                Err(e)
            }
        }
    }
}

/// Runs copy tasks.
pub struct SyncHandler;

impl TaskHandler<crate::Service> for SyncHandler {
    fn kind(&self) -> &'static str {
        SYNC_KIND
    }

    fn image_states(&self) -> Option<ImageStates> {
        // The source returns to NORMAL whatever happens to the copies.
        Some(ImageStates {
            running: &[state::SYNCING],
            success: state::NORMAL,
            failure: state::NORMAL,
        })
    }

    fn on_abandoned<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        reason: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(p) = serde_json::from_str::<Payload>(&task.payload) {
                svc.fail_copies(&p.targets, reason).await;
            }
        })
    }

    fn run<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>> {
        Box::pin(svc.run_sync(task, progress))
    }
}

impl crate::facets::Transfers<'_> {
    /// Starts copying images to other regions (see the module docs). All checks pass for
    /// every (image, region) pair before anything is created.
    pub async fn sync_images(&self, caller: &Caller, req: &SyncRequest) -> Result<SyncStarted> {
        if !req.dry_run {
            self.count_limited(caller, crate::Operation::SyncImages)
                .await?;
        }
        if req.image_ids.is_empty() || req.regions.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "at least one image and one destination region are needed",
            ));
        }
        let mut regions = req.regions.clone();
        regions.sort();
        regions.dedup();
        if regions.len() != req.regions.len() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "a destination region is listed twice",
            ));
        }
        if let Some(n) = &req.name {
            self.images().check_name(n)?;
        }
        let mut sources = Vec::new();
        for id in &req.image_ids {
            if sources.iter().any(|s: &crate::Image| &s.image_id == id) {
                return Err(Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("image {id} is listed twice"),
                ));
            }
            let v = self.owned_image(caller, id).await?;
            if v.visibility != Visibility::Private {
                return Err(Error::new(
                    ErrorKind::NotOwner,
                    format!("image {id} is not a custom image of your account"),
                ));
            }
            if v.image.state != state::NORMAL {
                return Err(Error::new(
                    ErrorKind::ImageIncorrectState,
                    format!(
                        "image {id} is {}; only NORMAL images can be copied",
                        v.image.state
                    ),
                ));
            }
            for r in &req.regions {
                self.check_copy_regions(&v.image.region, r)?;
            }
            sources.push(v.image);
        }
        if req.dry_run {
            return Ok(SyncStarted::default());
        }
        let mut started = SyncStarted::default();
        for src in &sources {
            let (task_id, targets) = self
                .start_sync(caller, src, &req.regions, &req.name)
                .await?;
            started.task_ids.push(task_id);
            started.targets.extend(targets);
        }
        Ok(started)
    }

    /// Checks a cancellation of a copy (CancelCopyImage, also its dry run): `copy_id` must be
    /// the caller's image in their (destination) region, made by a copy, still CREATING.
    pub async fn check_cancel_copy(&self, caller: &Caller, copy_id: &str) -> Result<()> {
        let v = self.images().visible_image(caller, copy_id).await?;
        if v.image.owner != caller.account_id {
            return Err(Error::image_not_found(copy_id));
        }
        let from_copy = self
            .catalog()
            .tasks_mentioning(SYNC_KIND, copy_id)
            .await?
            .into_iter()
            .filter(|t| t.account_id == caller.account_id)
            .filter_map(|t| serde_json::from_str::<Payload>(&t.payload).ok())
            .any(|p| p.targets.iter().any(|x| x.image_id == copy_id));
        if !from_copy {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("image {copy_id} was not created by a copy"),
            ));
        }
        if v.image.state != state::CREATING {
            return Err(not_cancellable(copy_id));
        }
        Ok(())
    }

    /// Cancels an unfinished copy (CancelCopyImage; see [`Self::check_cancel_copy`]): it
    /// becomes CREATEFAILED at once and the copy task leaves it so (its commit only turns
    /// CREATING copies NORMAL).
    pub async fn cancel_copy(&self, caller: &Caller, copy_id: &str) -> Result<()> {
        self.check_cancel_copy(caller, copy_id).await?;
        if !self
            .catalog()
            .transition_image(
                copy_id,
                &[state::CREATING],
                state::CREATEFAILED,
                "copy cancelled",
                None,
                ids::now(),
            )
            .await?
        {
            return Err(not_cancellable(copy_id));
        }
        Ok(())
    }
}

fn not_cancellable(copy_id: &str) -> Error {
    Error::new(
        ErrorKind::ImageIncorrectState,
        format!("the copy {copy_id} has finished or failed; nothing to cancel"),
    )
}
