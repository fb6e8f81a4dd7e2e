//! The service layer: every rule (visibility, quotas, sharing, regions, states) lives here
//! once. API dialects call these operations with an authenticated [`Caller`] and translate
//! the results and [`Error`]s back into their own shapes.

mod accounts;
pub mod config;
mod disks;
mod error;
pub mod ids;
mod images;
pub mod import;
pub mod instances;
pub mod market;
pub mod pricing;
mod publish;
mod resources;
pub mod snapshots;
pub mod tasks;

pub use accounts::{Credentials, KeyLookup};
pub use config::Config;
pub use disks::{nbd_export_name, nbd_token};
pub use error::{Error, ErrorKind, Result};
pub use ikon_catalog::{Catalog, Image, Task, TaskState};
pub use ikon_catalog::{Disk, Instance, Listing, Snapshot};
pub use ikon_store::Store;
pub use images::{
    state, DeleteRequest, ImageListing, ImageView, ListImages, ShareChange, ShareUpdate, Visibility,
};
pub use import::{ImportHandler, ImportOs, ImportRequest, Upload};
pub use instances::{DataDiskSpec, InstanceFilter, InstanceView, RunRequest};
pub use publish::{PublishHandler, PublishRequest, Published, PUBLISH_KIND};
pub use resources::DiskFilter;
pub use snapshots::{
    CreateImageHandler, CreateImageRequest, ImageSource, SnapshotFilter, SnapshotView,
};
pub use tasks::{ListTasks, TaskListing};

use std::sync::Arc;

/// Who is calling: an authenticated account acting in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Account id.
    pub account_id: String,
    /// Platform administrator (may manage public images).
    pub is_admin: bool,
    /// Region the call is addressed to.
    pub region: String,
}

/// The image service.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Catalog,
    config: Config,
    store: ikon_store::Store,
    buckets: import::Buckets,
    open_disks: disks::OpenDisks,
}

impl Service {
    /// A service over a connected catalog and a chunk store.
    pub fn new(catalog: Catalog, config: Config, store: ikon_store::Store) -> Service {
        Service {
            inner: Arc::new(Inner {
                catalog,
                config,
                store,
                buckets: import::Buckets::default(),
                open_disks: disks::OpenDisks::default(),
            }),
        }
    }

    /// Buckets `s3://` import URLs may name.
    pub(crate) fn buckets(&self) -> &import::Buckets {
        &self.inner.buckets
    }

    /// The chunk store.
    pub fn store(&self) -> &ikon_store::Store {
        &self.inner.store
    }

    /// Every manifest an image, disk or snapshot references (the chunk store's live set).
    async fn live_manifests(&self) -> Result<Vec<ikon_store::ManifestRef>> {
        Ok(self
            .catalog()
            .live_manifests()
            .await?
            .into_iter()
            .map(|(disk_id, version)| ikon_store::ManifestRef { disk_id, version })
            .collect())
    }

    /// Removes chunks and manifests no image, disk or snapshot references any more; safe
    /// while other writers run (see `ikon_store::gc`). The live set is read after writers
    /// finished.
    pub async fn collect_garbage(&self) -> Result<ikon_store::GcStats> {
        let live = self.live_manifests().await?;
        self.store()
            .gc(&live, true)
            .await
            .map_err(|e| Error::new(ErrorKind::Storage, e.to_string()))
    }

    /// Store figures: (bytes held, data bytes referenced by all images, disks and
    /// snapshots, counting each manifest once).
    pub async fn store_usage(&self) -> Result<(u64, u64)> {
        let held = self
            .store()
            .stats()
            .await
            .map_err(|e| Error::new(ErrorKind::Storage, e.to_string()))?
            .bytes;
        let mut referenced = 0u64;
        for r in self.live_manifests().await? {
            let m = self
                .store()
                .get_manifest(&r)
                .await
                .map_err(|e| Error::new(ErrorKind::Storage, e.to_string()))?;
            referenced += m.stored_bytes();
        }
        Ok((held, referenced))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Checks that `region` exists and is available.
    pub fn check_region(&self, region: &str) -> Result<&config::Region> {
        match self.config().region(region) {
            Some(r) if r.state == "AVAILABLE" => Ok(r),
            Some(_) => Err(Error::new(
                ErrorKind::InvalidRegion,
                format!("region {region} is not available"),
            )),
            None => Err(Error::new(
                ErrorKind::InvalidRegion,
                format!("region {region} does not exist"),
            )),
        }
    }

    /// Counts one call to `operation` against the caller's daily limit when the operation is
    /// one of the limited ones; refuses the call when the limit is used up.
    pub async fn count_limited(&self, caller: &Caller, operation: &str) -> Result<()> {
        let l = &self.config().limits;
        if !l.daily_limited_actions.iter().any(|a| a == operation) {
            return Ok(());
        }
        let day = ids::utc_date(ids::now());
        let ok = self
            .catalog()
            .count_daily_op(&caller.account_id, &caller.region, &day, l.daily_operations)
            .await?;
        if ok {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::DailyLimitExceeded,
                format!(
                    "{operation}: at most {} calls of the limited image operations per account per region per day",
                    l.daily_operations
                ),
            ))
        }
    }
}
