//! Snapshots of disks and custom images made from an instance or from snapshots. Both share
//! the disk's committed manifest (a snapshot is a reference, not a copy); pending writes of
//! an attached disk are committed first, so the snapshot is the disk as of the call.
//!
//! CreateImage makes the image row CREATING (reserving a quota unit) together with one
//! snapshot per disk, then a durable task checks every manifest and turns the image NORMAL,
//! or CREATEFAILED with the reason. Rules: snapshots of one's own disks only; a snapshot
//! that backs an image cannot be deleted unless the images are deleted with it; an image
//! from snapshots needs exactly one system-disk snapshot; an image from an instance takes
//! its system disk and the named data disks of that instance only.

use crate::images::state;
use crate::tasks::{BoxFuture, ImageStates, Progress, TaskError, TaskHandler};
use crate::{ids, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::{DiskRef, Image, ResourceQuery, Snapshot, Task};

/// Task kind of CreateImage.
pub const CREATE_IMAGE_TASK: &str = "create_image";

/// A snapshot with the images built from it.
#[derive(Debug, Clone)]
pub struct SnapshotView {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Images whose disks reference it: (id, name).
    pub images: Vec<(String, String)>,
}

impl SnapshotView {
    /// The snapshot was taken completely and can be used.
    pub fn usable(&self) -> bool {
        self.snapshot.state == "NORMAL"
    }
}

/// A listing of snapshots.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Of these disks.
    pub disk_ids: Vec<String>,
    /// Name contains.
    pub names: Vec<String>,
    /// States.
    pub states: Vec<String>,
    /// Usage (`SYSTEM_DISK` / `DATA_DISK`).
    pub usages: Vec<String>,
    /// Zones.
    pub zones: Vec<String>,
    /// Oldest first.
    pub ascending: bool,
    /// Page start.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
}

/// Where a new image comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An instance's system disk plus the named data disks of it.
    Instance {
        /// Instance id.
        instance_id: String,
        /// Data disks to include.
        data_disk_ids: Vec<String>,
    },
    /// Snapshots (exactly one of a system disk).
    Snapshots(Vec<String>),
}

/// A CreateImage request.
#[derive(Debug, Clone)]
pub struct CreateImageRequest {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Source.
    pub source: ImageSource,
    /// Family.
    pub family: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Only check.
    pub dry_run: bool,
}

fn snapshot_not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::SnapshotNotFound,
        format!("snapshot {id} does not exist"),
    )
}

impl Service {
    async fn owned_disk(&self, caller: &Caller, id: &str) -> Result<ikon_catalog::Disk> {
        let nf = || Error::new(ErrorKind::DiskNotFound, format!("disk {id} does not exist"));
        if !ids::is_well_formed("disk", id) {
            return Err(nf());
        }
        match self.catalog().disk(id).await? {
            Some(d) if d.owner == caller.account_id && d.region == caller.region => Ok(d),
            _ => Err(nf()),
        }
    }

    async fn check_snapshot_quota(&self, caller: &Caller, more: usize) -> Result<()> {
        let (have, _) = self
            .catalog()
            .query_snapshots(&ResourceQuery {
                owner: caller.account_id.clone(),
                region: caller.region.clone(),
                limit: 0,
                ..ResourceQuery::default()
            })
            .await?;
        let limit = self.config().limits.snapshots_per_region;
        if have + i64::try_from(more).unwrap_or(i64::MAX) > limit {
            return Err(Error::new(
                ErrorKind::SnapshotQuotaExceeded,
                format!(
                    "snapshot quota: at most {limit} snapshots per account in region {}",
                    caller.region
                ),
            ));
        }
        Ok(())
    }

    fn snapshot_row(
        caller: &Caller,
        d: &ikon_catalog::Disk,
        name: &str,
        image_id: &str,
    ) -> Snapshot {
        Snapshot {
            snapshot_id: ids::new_id("snap"),
            owner: caller.account_id.clone(),
            region: caller.region.clone(),
            zone: d.zone.clone(),
            disk_id: d.disk_id.clone(),
            usage: d.usage.clone(),
            size_bytes: d.size_bytes,
            manifest_disk: d.manifest_disk.clone(),
            manifest_version: d.manifest_version,
            name: name.to_string(),
            state: state::NORMAL.into(),
            image_id: image_id.to_string(),
            deadline: 0,
            created_at: ids::now(),
        }
    }
}

/// Finishes CreateImage: every disk's manifest must exist and be intact.
pub struct CreateImageHandler;

impl TaskHandler<crate::Service> for CreateImageHandler {
    fn kind(&self) -> &'static str {
        CREATE_IMAGE_TASK
    }

    fn image_states(&self) -> Option<ImageStates> {
        Some(ImageStates {
            running: &[state::CREATING],
            success: state::NORMAL,
            failure: state::CREATEFAILED,
        })
    }

    fn run<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>> {
        Box::pin(async move {
            let img = svc
                .catalog()
                .image(&task.resource_id)
                .await
                .map_err(|e| TaskError::transient(e.to_string()))?
                .ok_or_else(|| TaskError::permanent("the image was deleted"))?;
            let n = img.disks.len().max(1);
            for (i, d) in img.disks.iter().enumerate() {
                let m = svc
                    .content(&img.region, &d.disk_id, d.version, d.size_bytes)
                    .await
                    .map_err(|e| {
                        TaskError::permanent(format!("disk {} of the image: {}", i + 1, e.chain()))
                    })?;
                if m.disk_size > d.size_bytes {
                    return Err(TaskError::permanent(format!(
                        "disk {} of the image is larger than recorded",
                        i + 1
                    )));
                }
                progress.set(i64::try_from((i + 1) * 100 / n).unwrap_or(100));
            }
            Ok(String::new())
        })
    }
}

impl crate::facets::Instances<'_> {
    /// The caller's snapshot in their region.
    pub async fn owned_snapshot(&self, caller: &Caller, id: &str) -> Result<Snapshot> {
        if !ids::is_well_formed("snap", id) {
            return Err(snapshot_not_found(id));
        }
        match self.catalog().snapshot(id).await? {
            Some(s) if s.owner == caller.account_id && s.region == caller.region => Ok(s),
            _ => Err(snapshot_not_found(id)),
        }
    }

    /// Snapshots a disk (instant: it shares the disk's committed content).
    pub async fn create_snapshot(
        &self,
        caller: &Caller,
        disk_id: &str,
        name: &str,
        deadline: i64,
    ) -> Result<String> {
        if !name.is_empty() {
            crate::images::check_text(
                &self.config().names.snapshot_name,
                crate::TextField::SnapshotName,
                name,
            )?;
        }
        self.owned_disk(caller, disk_id).await?;
        self.check_snapshot_quota(caller, 1).await?;
        let d = self.settled_disk(disk_id).await?;
        let name = if name.is_empty() { "Unnamed" } else { name };
        let mut s = crate::Service::snapshot_row(caller, &d, name, "");
        s.deadline = deadline;
        self.catalog().insert_snapshot(&s).await?;
        Ok(s.snapshot_id)
    }

    /// Lists the caller's snapshots in their region.
    pub async fn describe_snapshots(
        &self,
        caller: &Caller,
        f: &SnapshotFilter,
    ) -> Result<(u64, Vec<SnapshotView>)> {
        self.check_region(&caller.region)?;
        let (total, rows) = self
            .catalog()
            .query_snapshots(&ResourceQuery {
                owner: caller.account_id.clone(),
                region: caller.region.clone(),
                ids: f.ids.clone(),
                zones: f.zones.clone(),
                names: f.names.clone(),
                states: f.states.clone(),
                parents: f.disk_ids.clone(),
                usages: f.usages.clone(),
                ascending: f.ascending,
                offset: i64::try_from(f.offset).unwrap_or(i64::MAX),
                limit: i64::try_from(f.limit).unwrap_or(i64::MAX),
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for s in rows {
            let images = self.catalog().images_of_snapshot(&s.snapshot_id).await?;
            out.push(SnapshotView {
                snapshot: s,
                images,
            });
        }
        Ok((u64::try_from(total).unwrap_or(0), out))
    }

    /// Deletes snapshots, all or nothing. One that backs images is refused unless
    /// `delete_images` asks to delete those images too (each must itself be deletable).
    pub async fn delete_snapshots(
        &self,
        caller: &Caller,
        snapshot_ids: &[String],
        delete_images: bool,
    ) -> Result<()> {
        if snapshot_ids.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "SnapshotIds is empty",
            ));
        }
        let mut bound = Vec::new();
        for id in snapshot_ids {
            self.owned_snapshot(caller, id).await?;
            let images = self.catalog().images_of_snapshot(id).await?;
            if !images.is_empty() && !delete_images {
                return Err(Error::new(
                    ErrorKind::SnapshotHasImages,
                    format!(
                        "snapshot {id} backs image(s) {}; delete them first or ask to delete them with it",
                        images.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            bound.extend(images.into_iter().map(|(i, _)| i));
        }
        bound.sort();
        bound.dedup();
        if !bound.is_empty() {
            self.remove_images(
                caller,
                &crate::DeleteRequest {
                    ids: bound,
                    dry_run: false,
                    delete_snapshots: false,
                },
            )
            .await?;
        }
        if !self.catalog().delete_snapshots(snapshot_ids).await? {
            return Err(snapshot_not_found(&snapshot_ids.join(",")));
        }
        Ok(())
    }
}

impl crate::facets::Images<'_> {
    /// Creates a custom image from an instance or snapshots (see the module docs); returns
    /// its id (CREATING until the task finishes).
    pub async fn create_image(&self, caller: &Caller, req: &CreateImageRequest) -> Result<String> {
        if !req.dry_run {
            self.count_limited(caller, crate::Operation::CreateImage)
                .await?;
        }
        self.images()
            .check_new_image(&req.name, &req.description, &req.family)?;
        self.check_region(&caller.region)?;
        // (disk row as of now, snapshot id to record, whether a new snapshot row is made)
        let mut parts: Vec<(ikon_catalog::Disk, Option<Snapshot>)> = Vec::new();
        let (source_image, origin) = match &req.source {
            ImageSource::Instance {
                instance_id,
                data_disk_ids,
            } => {
                let inst = self.instances().owned_instance(caller, instance_id).await?;
                let disks = self.catalog().instance_disks(instance_id).await?;
                let sys = disks
                    .iter()
                    .find(|d| d.usage == "SYSTEM_DISK")
                    .ok_or_else(|| Error::internal("instance without system disk"))?;
                parts.push((sys.clone(), None));
                for id in data_disk_ids {
                    match disks.iter().find(|d| &d.disk_id == id) {
                        Some(d) if d.usage == "DATA_DISK" => parts.push((d.clone(), None)),
                        Some(_) => {
                            return Err(Error::new(
                                ErrorKind::InvalidParameterValue,
                                format!("DataDiskIds contains the system disk {id}"),
                            ))
                        }
                        None => {
                            return Err(Error::new(
                                ErrorKind::DiskNotFound,
                                format!("disk {id} is not a data disk of instance {instance_id}"),
                            ))
                        }
                    }
                }
                (inst.image_id, inst.origin)
            }
            ImageSource::Snapshots(snap_ids) => {
                let mut system = 0;
                let mut origin = (String::new(), String::new());
                for id in snap_ids {
                    let s = self.instances().owned_snapshot(caller, id).await?;
                    if s.usage == "SYSTEM_DISK" {
                        system += 1;
                    }
                    if let Some(d) = self.catalog().disk(&s.disk_id).await? {
                        if let Some(i) = self.catalog().instance(&d.instance_id).await? {
                            if s.usage == "SYSTEM_DISK" {
                                origin = (i.image_id, i.origin);
                            }
                        }
                    }
                    let disk = ikon_catalog::Disk {
                        disk_id: s.disk_id.clone(),
                        owner: s.owner.clone(),
                        region: s.region.clone(),
                        zone: s.zone.clone(),
                        instance_id: String::new(),
                        usage: s.usage.clone(),
                        disk_type: String::new(),
                        size_bytes: s.size_bytes,
                        manifest_disk: s.manifest_disk.clone(),
                        manifest_version: s.manifest_version,
                        delete_with_instance: false,
                        slot: 0,
                        created_at: s.created_at,
                        updated_at: s.created_at,
                        version: 0,
                    };
                    parts.push((disk, Some(s)));
                }
                if system != 1 {
                    return Err(Error::new(
                        ErrorKind::InvalidParameterValue,
                        format!("SnapshotIds must contain exactly one system-disk snapshot, not {system}"),
                    ));
                }
                parts.sort_by_key(|(d, _)| d.usage != "SYSTEM_DISK");
                origin
            }
        };
        if req.dry_run {
            return Ok(String::new());
        }
        let image_id = ids::new_id("img");
        // Settle live disks (commit pending writes) and make their snapshots.
        let mut new_snaps = Vec::new();
        let mut disks = Vec::new();
        for (d, snap) in &parts {
            let (d, snap_id) = match snap {
                Some(s) => (d.clone(), s.snapshot_id.clone()),
                None => {
                    let d = self.settled_disk(&d.disk_id).await?;
                    let s = crate::Service::snapshot_row(
                        caller,
                        &d,
                        &format!("{}-{}", req.name, d.usage.to_lowercase()),
                        &image_id,
                    );
                    let id = s.snapshot_id.clone();
                    new_snaps.push(s);
                    (d, id)
                }
            };
            disks.push(DiskRef {
                disk_id: d.manifest_disk.clone(),
                version: d.manifest_version,
                usage: d.usage.clone(),
                size_bytes: d.size_bytes,
                snapshot_id: snap_id,
            });
        }
        let src = self.catalog().image(&source_image).await?;
        let now = ids::now();
        let img = Image {
            image_id: image_id.clone(),
            kind: "PRIVATE".into(),
            owner: caller.account_id.clone(),
            region: caller.region.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            os_name: src.as_ref().map(|i| i.os_name.clone()).unwrap_or_default(),
            os_type: src.as_ref().map(|i| i.os_type.clone()).unwrap_or_default(),
            platform: src.as_ref().map(|i| i.platform.clone()).unwrap_or_default(),
            architecture: src
                .as_ref()
                .map(|i| i.architecture.clone())
                .unwrap_or_else(|| "x86_64".into()),
            size_bytes: disks.first().map(|d| d.size_bytes).unwrap_or(0),
            state: state::CREATING.into(),
            state_reason: String::new(),
            source: "CREATE_IMAGE".into(),
            license_type: src
                .as_ref()
                .map(|i| i.license_type.clone())
                .unwrap_or_else(|| "TencentCloud".into()),
            family: req.family.clone(),
            deprecated: false,
            cloudinit: src.as_ref().is_some_and(|i| i.cloudinit),
            sync_percent: None,
            share_count: 0,
            disks,
            origin,
            created_at: now,
            updated_at: now,
            version: 1,
            tags: req.tags.clone(),
        };
        let quota = self.config().limits.custom_images_per_region;
        let task = crate::tasks::new_task(
            caller,
            CREATE_IMAGE_TASK,
            &image_id,
            &serde_json::json!({}),
            3,
        );
        match self
            .catalog()
            .insert_image_with_snapshots(&img, Some(quota), &new_snaps, Some(&task))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::new(
                    ErrorKind::ImageQuotaExceeded,
                    format!(
                        "custom image quota reached: at most {quota} custom images per account in region {}",
                        caller.region
                    ),
                ))
            }
            Err(ikon_catalog::Error::Conflict(_)) => {
                return Err(Error::new(
                    ErrorKind::NameDuplicate,
                    format!("an image named {:?} already exists", req.name),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.transfers().wake_runner();
        Ok(image_id)
    }
}
