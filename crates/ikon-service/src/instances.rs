//! Instances as sets of disks (no virtual machines): batch creation from an image, listing,
//! termination and re-install. Every disk made from an image shares the image's manifest
//! (nothing is copied, whatever the size); data disks start all zeros or from a snapshot.
//! Rules: the image must be usable by the caller (own, shared to them, public or
//! marketplace) and NORMAL; zones belong to the caller's region; at most 100 instances per
//! call and the configured number per account and region; disks never shrink below the
//! image. An instance records the non-own image its software came from (for pricing).

use crate::images::{state, Visibility};
use crate::{ids, Caller, Error, ErrorKind, ImageView, Result, Service};
use ikon_catalog::{Disk, Instance, ResourceQuery, Usage};

/// One GiB.
pub const GIB: u64 = 1 << 30;

/// Instance states.
pub mod istate {
    /// Running (disks attached and served).
    pub const RUNNING: &str = "RUNNING";
}

/// A data disk to create.
#[derive(Debug, Clone, Default)]
pub struct DataDiskSpec {
    /// Size in GiB.
    pub size_gib: u64,
    /// Disk type.
    pub disk_type: String,
    /// Start from this snapshot's content.
    pub snapshot_id: Option<String>,
    /// Delete with the instance (default true).
    pub delete_with_instance: bool,
}

/// A RunInstances request (parsed by a dialect).
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Image to install.
    pub image_id: String,
    /// Zone.
    pub zone: String,
    /// How many.
    pub count: u32,
    /// Instance type.
    pub instance_type: String,
    /// Name (numbered `-1`, `-2`, … when count > 1).
    pub name: String,
    /// System disk size (GiB); default 50 or the image size if larger.
    pub system_disk_gib: Option<u64>,
    /// System disk type.
    pub system_disk_type: String,
    /// Data disks.
    pub data_disks: Vec<DataDiskSpec>,
    /// Only check.
    pub dry_run: bool,
}

/// An instance with its disks.
#[derive(Debug, Clone)]
pub struct InstanceView {
    /// The instance.
    pub instance: Instance,
    /// Its disks, system disk first.
    pub disks: Vec<Disk>,
    /// OS name of the image it runs (empty when that image is gone).
    pub os_name: String,
    /// Its instance type's shape (a type the policy no longer offers reads as 1 vCPU and
    /// 1 GiB of memory).
    pub shape: crate::config::InstanceType,
}

impl InstanceView {
    /// The instance is running (its disks attached and served).
    pub fn running(&self) -> bool {
        self.instance.state == istate::RUNNING
    }
}

/// A listing of instances.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Zones.
    pub zones: Vec<String>,
    /// Name contains.
    pub names: Vec<String>,
    /// States.
    pub states: Vec<String>,
    /// Installed from these images.
    pub image_ids: Vec<String>,
    /// Page start.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
}

/// Checks an instance id's shape.
pub fn check_instance_id(id: &str) -> Result<()> {
    if ids::is_well_formed("ins", id) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InstanceIdMalformed,
            format!(
                "{id:?} is not an instance id (ins- followed by 8 lower-case letters or digits)"
            ),
        ))
    }
}

fn gib(v: u64, max: u64, what: &str) -> Result<u64> {
    if v == 0 || v > max {
        return Err(Error::new(
            ErrorKind::InvalidParameterValue,
            format!("{what} must be between 1 and {max} GiB, not {v}"),
        ));
    }
    v.checked_mul(GIB).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidParameterValue,
            format!("{what} is too large"),
        )
    })
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Service {
    /// An image the caller may start instances from or re-install with.
    pub(crate) async fn usable_image(&self, caller: &Caller, image_id: &str) -> Result<ImageView> {
        let v = self.images().visible_image(caller, image_id).await?;
        if v.image.state != state::NORMAL {
            return Err(Error::new(
                ErrorKind::ImageIncorrectState,
                format!(
                    "image {image_id} is {} and cannot be used now",
                    v.image.state
                ),
            ));
        }
        if !v.image.disks.iter().any(|d| d.usage == "SYSTEM_DISK") {
            return Err(Error::new(
                ErrorKind::ImageIncorrectState,
                format!("image {image_id} has no system disk"),
            ));
        }
        Ok(v)
    }

    /// Where software from `v` came from, for pricing: the image's own lineage, else the
    /// image itself when it is not the caller's own.
    pub(crate) fn lineage(v: &ImageView) -> String {
        if !v.image.origin.is_empty() {
            v.image.origin.clone()
        } else if v.visibility == Visibility::Private {
            String::new()
        } else {
            v.image.image_id.clone()
        }
    }

    async fn view(&self, instance: Instance) -> Result<InstanceView> {
        let disks = self.catalog().instance_disks(&instance.instance_id).await?;
        let os_name = self
            .catalog()
            .image(&instance.image_id)
            .await?
            .map(|i| i.os_name)
            .unwrap_or_default();
        let shape = self
            .config()
            .instance_type(&instance.instance_type)
            .cloned()
            .unwrap_or_else(|| crate::config::InstanceType {
                id: instance.instance_type.clone(),
                family: instance
                    .instance_type
                    .rsplit_once('.')
                    .map_or(instance.instance_type.as_str(), |(f, _)| f)
                    .to_string(),
                cpus: 1,
                memory_mib: 1024,
                architecture: "x86_64".into(),
            });
        Ok(InstanceView {
            instance,
            disks,
            os_name,
            shape,
        })
    }
}

impl crate::facets::Instances<'_> {
    /// The instance type `id` names, or the policy's default when it is empty.
    pub fn instance_type_or_default(&self, id: &str) -> Result<crate::config::InstanceType> {
        let id = if id.is_empty() {
            self.config().instances.default_instance_type.as_str()
        } else {
            id
        };
        self.config().instance_type(id).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::InstanceTypeNotFound,
                format!("instance type {id} is not offered here"),
            )
        })
    }

    /// `zone`, or the default zone of the caller's region when it is empty.
    pub fn zone_or_default(&self, caller: &Caller, zone: &str) -> Result<String> {
        if !zone.is_empty() {
            return Ok(zone.to_string());
        }
        let r = self.check_region(&caller.region)?;
        r.default_zone().map(|z| z.name.clone()).ok_or_else(|| {
            Error::new(
                ErrorKind::ZoneMismatch,
                format!("region {} has no zone", caller.region),
            )
        })
    }

    /// Checks that `zone` is an available zone of the caller's region.
    pub fn check_zone(&self, caller: &Caller, zone: &str) -> Result<()> {
        let r = self.check_region(&caller.region)?;
        match r.zones.iter().find(|z| z.name == zone) {
            Some(z) if z.available() => Ok(()),
            Some(_) => Err(Error::new(
                ErrorKind::ZoneMismatch,
                format!("zone {zone} is not available"),
            )),
            None => Err(Error::new(
                ErrorKind::ZoneMismatch,
                format!("zone {zone} is not a zone of region {}", caller.region),
            )),
        }
    }

    /// Creates `count` instances from an image (see the module documentation).
    pub async fn run_instances(&self, caller: &Caller, req: &RunRequest) -> Result<Vec<String>> {
        let policy = &self.config().instances;
        let max_gib = policy.max_disk_gib;
        if req.count == 0 || req.count > policy.max_per_call {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "InstanceCount must be between 1 and {}",
                    policy.max_per_call
                ),
            ));
        }
        if req.data_disks.len() > policy.max_data_disks {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("at most {} data disks per instance", policy.max_data_disks),
            ));
        }
        if !req.name.is_empty() {
            crate::images::check_text(
                &self.config().names.instance_name,
                crate::TextField::InstanceName,
                &req.name,
            )?;
        }
        let instance_type = self.instance_type_or_default(&req.instance_type)?;
        let zone = self.zone_or_default(caller, &req.zone)?;
        self.check_zone(caller, &zone)?;
        let view = self.usable_image(caller, &req.image_id).await?;
        let img = &view.image;
        let sys = img
            .disks
            .iter()
            .find(|d| d.usage == "SYSTEM_DISK")
            .ok_or_else(|| Error::internal("image without system disk"))?;
        let sys_size = match req.system_disk_gib {
            Some(g) => gib(g, max_gib, "SystemDisk.DiskSize")?,
            None => policy
                .default_system_disk_gib
                .saturating_mul(GIB)
                .max(sys.size_bytes.div_ceil(GIB).saturating_mul(GIB)),
        };
        if sys_size < sys.size_bytes {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "the system disk ({} GiB) is smaller than image {} ({} GiB)",
                    sys_size / GIB,
                    img.image_id,
                    sys.size_bytes.div_ceil(GIB)
                ),
            ));
        }
        // Data disks: the image's own, then the requested ones.
        let mut data: Vec<(u64, String, String, u64, bool)> = Vec::new();
        for d in img.disks.iter().filter(|d| d.usage == "DATA_DISK") {
            data.push((
                d.size_bytes,
                d.disk_id.clone(),
                policy.default_disk_type.clone(),
                d.version,
                true,
            ));
        }
        for spec in &req.data_disks {
            let mut size = gib(spec.size_gib, max_gib, "DataDisks.DiskSize")?;
            let (mdisk, mver) = match &spec.snapshot_id {
                Some(sid) => {
                    let s = self.owned_snapshot(caller, sid).await?;
                    if size < s.size_bytes {
                        size = s.size_bytes;
                    }
                    (s.manifest_disk, s.manifest_version)
                }
                None => (String::new(), 0),
            };
            let dtype = if spec.disk_type.is_empty() {
                policy.default_disk_type.clone()
            } else {
                spec.disk_type.clone()
            };
            data.push((size, mdisk, dtype, mver, spec.delete_with_instance));
        }
        let (have, _) = self
            .catalog()
            .query_instances(&ResourceQuery {
                owner: caller.account_id.clone(),
                region: caller.region.clone(),
                limit: 0,
                ..ResourceQuery::default()
            })
            .await?;
        let limit = self.config().limits.instances_per_region;
        if have + i64::from(req.count) > limit {
            return Err(Error::new(
                ErrorKind::InstanceQuotaExceeded,
                format!(
                    "instance quota: at most {limit} instances per account in region {} ({have} exist)",
                    caller.region
                ),
            ));
        }
        if req.dry_run {
            return Ok(Vec::new());
        }
        let now = ids::now();
        let origin = crate::Service::lineage(&view);
        let fee = self.market().image_fee(&caller.region, img).await?;
        let mut usage = Vec::new();
        let base_name = if req.name.is_empty() {
            "Unnamed".to_string()
        } else {
            req.name.clone()
        };
        let sys_type = if req.system_disk_type.is_empty() {
            policy.default_disk_type.clone()
        } else {
            req.system_disk_type.clone()
        };
        let mut items = Vec::new();
        for n in 1..=req.count {
            let instance_id = ids::new_id("ins");
            let disk = |slot: usize, usage: &str, size, mdisk: &str, mver, dtype: &str, dwi| Disk {
                disk_id: ids::new_id("disk"),
                owner: caller.account_id.clone(),
                region: caller.region.clone(),
                zone: zone.clone(),
                instance_id: instance_id.clone(),
                usage: usage.into(),
                disk_type: dtype.into(),
                size_bytes: size,
                manifest_disk: mdisk.into(),
                manifest_version: mver,
                delete_with_instance: dwi,
                slot: i64::try_from(slot).unwrap_or(0),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            let mut disks = vec![disk(
                0,
                "SYSTEM_DISK",
                sys_size,
                &sys.disk_id,
                sys.version,
                &sys_type,
                true,
            )];
            for (n, (size, mdisk, dtype, mver, dwi)) in data.iter().enumerate() {
                disks.push(disk(n + 1, "DATA_DISK", *size, mdisk, *mver, dtype, *dwi));
            }
            let name = if req.count > 1 {
                format!("{base_name}-{n}")
            } else {
                base_name.clone()
            };
            usage.push(Usage {
                instance_id: instance_id.clone(),
                account_id: caller.account_id.clone(),
                region: caller.region.clone(),
                image_id: img.image_id.clone(),
                billed_image_id: fee.billed_image_id.clone(),
                price_micros: fee.micros_per_hour,
                started_at: now,
                ended_at: None,
            });
            items.push((
                Instance {
                    instance_id: instance_id.clone(),
                    owner: caller.account_id.clone(),
                    region: caller.region.clone(),
                    zone: zone.clone(),
                    name,
                    instance_type: instance_type.id.clone(),
                    image_id: img.image_id.clone(),
                    origin: origin.clone(),
                    state: istate::RUNNING.into(),
                    latest_operation: "RunInstances".into(),
                    latest_operation_state: "SUCCESS".into(),
                    latest_operation_request_id: String::new(),
                    created_at: now,
                    updated_at: now,
                },
                disks,
            ));
        }
        self.catalog().insert_instances(&items, &usage).await?;
        Ok(items.into_iter().map(|(i, _)| i.instance_id).collect())
    }

    /// The caller's instance.
    pub async fn owned_instance(&self, caller: &Caller, id: &str) -> Result<Instance> {
        check_instance_id(id)?;
        match self.catalog().instance(id).await? {
            Some(i) if i.owner == caller.account_id && i.region == caller.region => Ok(i),
            _ => Err(Error::new(
                ErrorKind::InstanceNotFound,
                format!("instance {id} does not exist"),
            )),
        }
    }

    /// Lists the caller's instances in their region, newest first.
    pub async fn describe_instances(
        &self,
        caller: &Caller,
        f: &InstanceFilter,
    ) -> Result<(u64, Vec<InstanceView>)> {
        self.check_region(&caller.region)?;
        if let Some(ids) = &f.ids {
            for id in ids {
                check_instance_id(id)?;
            }
        }
        let (total, rows) = self
            .catalog()
            .query_instances(&ResourceQuery {
                owner: caller.account_id.clone(),
                region: caller.region.clone(),
                ids: f.ids.clone(),
                zones: f.zones.clone(),
                names: f.names.clone(),
                states: f.states.clone(),
                parents: f.image_ids.clone(),
                offset: i64_of(f.offset),
                limit: i64_of(f.limit),
                ..ResourceQuery::default()
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for i in rows {
            out.push(self.view(i).await?);
        }
        Ok((u64::try_from(total).unwrap_or(0), out))
    }

    /// Terminates instances (all checked first): their disks marked delete-with-instance
    /// are deleted (their chunks are freed by the collector once nothing else uses them).
    pub async fn terminate_instances(&self, caller: &Caller, ids: &[String]) -> Result<()> {
        if ids.is_empty() || ids.len() > 100 {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "InstanceIds must name 1 to 100 instances",
            ));
        }
        for id in ids {
            self.owned_instance(caller, id).await?;
        }
        for id in ids {
            for d in self.catalog().instance_disks(id).await? {
                if d.delete_with_instance {
                    self.close_disk(&d.disk_id);
                }
            }
        }
        self.catalog().delete_instances(ids, ids::now()).await?;
        Ok(())
    }

    /// Re-installs an instance's system disk from `image_id` (default: its current image),
    /// optionally growing it; every change on the old system disk is discarded.
    pub async fn reset_instance(
        &self,
        caller: &Caller,
        instance_id: &str,
        image_id: Option<&str>,
        size_gib: Option<u64>,
        request_id: &str,
    ) -> Result<()> {
        let mut inst = self.owned_instance(caller, instance_id).await?;
        let image_id = image_id.unwrap_or(&inst.image_id).to_string();
        let view = self.usable_image(caller, &image_id).await?;
        let sys_ref = view
            .image
            .disks
            .iter()
            .find(|d| d.usage == "SYSTEM_DISK")
            .cloned()
            .ok_or_else(|| Error::internal("image without system disk"))?;
        let mut sys = self
            .catalog()
            .instance_disks(instance_id)
            .await?
            .into_iter()
            .find(|d| d.usage == "SYSTEM_DISK")
            .ok_or_else(|| Error::internal(format!("instance {instance_id} has no system disk")))?;
        let size = match size_gib {
            Some(g) => gib(
                g,
                self.config().instances.max_disk_gib,
                "SystemDisk.DiskSize",
            )?,
            None => sys.size_bytes.max(sys_ref.size_bytes.div_ceil(GIB) * GIB),
        };
        if size < sys.size_bytes || size < sys_ref.size_bytes {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "the system disk may only grow, and must hold the image",
            ));
        }
        let now = ids::now();
        inst.origin = crate::Service::lineage(&view);
        inst.image_id = image_id;
        inst.latest_operation = "ResetInstance".into();
        inst.latest_operation_state = "SUCCESS".into();
        inst.latest_operation_request_id = request_id.to_string();
        inst.updated_at = now;
        sys.manifest_disk = sys_ref.disk_id.clone();
        sys.manifest_version = sys_ref.version;
        sys.size_bytes = size;
        sys.updated_at = now;
        let fee = self.market().image_fee(&caller.region, &view.image).await?;
        let usage = Usage {
            instance_id: inst.instance_id.clone(),
            account_id: inst.owner.clone(),
            region: inst.region.clone(),
            image_id: inst.image_id.clone(),
            billed_image_id: fee.billed_image_id,
            price_micros: fee.micros_per_hour,
            started_at: now,
            ended_at: None,
        };
        let base = self
            .content(&inst.region, &sys_ref.disk_id, sys_ref.version, size)
            .await?;
        let handle = self.open_disk(&sys.disk_id).await?;
        let catalog = self.catalog().clone();
        let rt = tokio::runtime::Handle::current();
        // The catalog's own error, which the disk layer would only report as an I/O error.
        let why: std::sync::Arc<std::sync::Mutex<Option<String>>> = std::sync::Arc::default();
        let w = why.clone();
        tokio::task::spawn_blocking(move || {
            handle.reset(&base, size, || {
                let r = match rt.block_on(catalog.reset_instance(&inst, &sys, &usage)) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("the instance was terminated meanwhile".to_string()),
                    Err(e) => Err(format!("catalog: {e}")),
                };
                if let (Err(m), Ok(mut g)) = (&r, w.lock()) {
                    *g = Some(m.clone());
                }
                r
            })
        })
        .await
        .map_err(|e| Error::caused_by(ErrorKind::Internal, "internal failure", e))?
        .map_err(|e| match why.lock().ok().and_then(|mut g| g.take()) {
            Some(m) => Error::internal(m),
            None => Error::caused_by(ErrorKind::Storage, "storage failed", e),
        })
    }
}
