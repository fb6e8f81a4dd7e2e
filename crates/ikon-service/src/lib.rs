//! The service layer: every rule (visibility, quotas, sharing, regions, states) lives here
//! once. API dialects call these operations with an authenticated [`Caller`] and translate
//! the results and [`Error`]s back into their own shapes.

mod accounts;
mod disks;
mod error;
mod export;
mod facets;
pub mod facts;
pub use ikon_catalog::ids;
mod images;
pub mod import;
pub mod instances;
mod kinds;
pub mod market;
pub mod policy;
pub use policy as config;
pub mod pricing;
mod publish;
mod ratelimit;
mod resources;
pub mod secrets;
pub mod sessions;
pub mod snapshots;
mod sync;
pub mod tasks;

pub use accounts::{Credentials, KeyLookup};
pub use disks::{nbd_export_name, nbd_token};
pub use error::{Error, ErrorKind, ExportBlock, Result, TextField};
pub use export::{ExportHandler, ExportRequest, ExportStarted, EXPORT_KIND};
pub use facets::{Accounts, Admin, Images, Instances, Market, Transfers};
pub use facts::{ImageScan, ScanHandler, SCAN_KIND};
pub use ikon_catalog::{Catalog, Image, Task, TaskState};
pub use ikon_catalog::{Disk, Instance, Listing, Snapshot};
pub use ikon_guest::scan::{Finding, Severity};
pub use ikon_store::{ChunkHash, FsckReport, ManifestRef, Store};
pub use images::{
    state, DeleteRequest, ImageListing, ImageView, ListImages, ShareChange, ShareUpdate, Visibility,
};
pub use import::{ImportHandler, ImportOs, ImportRequest, Upload};
pub use instances::{DataDiskSpec, InstanceFilter, InstanceView, RunRequest};
pub use kinds::{ImageKind, ImageState, License};
pub use policy::{Config, Operation};
pub use publish::{PublishHandler, PublishRequest, Published, PUBLISH_KIND};
pub use resources::DiskFilter;
pub use snapshots::{
    CreateImageHandler, CreateImageRequest, ImageSource, SnapshotFilter, SnapshotView,
};
pub use sync::{SyncHandler, SyncRequest, SyncStarted, SYNC_KIND};
pub use tasks::{ListTasks, TaskListing};

use std::collections::HashMap;
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
    /// Regions whose store is not the default one.
    region_stores: std::sync::RwLock<Arc<HashMap<String, ikon_store::Store>>>,
    /// Signalled when this process enqueues a task, so its runner starts it at once
    /// (other processes' tasks are found by the runner's poll).
    task_wake: Arc<tokio::sync::Notify>,
    /// The key API secrets are sealed under, and the file it came from (None until
    /// [`Service::with_master_key`]: an in-memory key then, for tests and tools).
    master: std::sync::RwLock<(Option<Arc<secrets::MasterKey>>, Option<std::path::PathBuf>)>,
    /// This node's share of the request-rate budgets.
    limiter: ratelimit::Limiter,
}

fn storage_err(e: ikon_store::Error) -> Error {
    Error::from(e)
}

impl Service {
    /// A service over a connected catalog and a chunk store (every region's, until
    /// [`Service::with_region_stores`] says otherwise).
    pub fn new(catalog: Catalog, config: Config, store: ikon_store::Store) -> Service {
        Service {
            inner: Arc::new(Inner {
                catalog,
                config,
                store,
                buckets: import::Buckets::default(),
                open_disks: disks::OpenDisks::default(),
                region_stores: std::sync::RwLock::new(Arc::new(HashMap::new())),
                task_wake: Arc::new(tokio::sync::Notify::new()),
                master: std::sync::RwLock::new((None, None)),
                limiter: ratelimit::Limiter::default(),
            }),
        }
    }

    /// The same service sealing API secrets under `key`, read from `path` (see
    /// [`secrets::open_master_key`]); a value sealed under a newer key makes it re-read
    /// `path` (a rotation by another process).
    pub fn with_master_key(self, key: secrets::MasterKey, path: std::path::PathBuf) -> Service {
        if let Ok(mut g) = self.inner.master.write() {
            *g = (Some(Arc::new(key)), Some(path));
        }
        self
    }

    /// The master key (an in-memory one is made on first use when none was given).
    pub(crate) fn master_key(&self) -> Result<Arc<secrets::MasterKey>> {
        if let Ok(g) = self.inner.master.read() {
            if let Some(k) = &g.0 {
                return Ok(k.clone());
            }
        }
        let mut g = self
            .inner
            .master
            .write()
            .map_err(|_| Error::internal("master key lock poisoned"))?;
        if g.0.is_none() {
            g.0 = Some(Arc::new(secrets::MasterKey::generate()?));
        }
        g.0.clone()
            .ok_or_else(|| Error::internal("master key missing"))
    }

    /// The key new secrets are sealed under: the one the catalog records (re-read from the
    /// file when another process rotated it).
    pub(crate) async fn sealing_key(&self) -> Result<Arc<secrets::MasterKey>> {
        let key = self.master_key()?;
        match self.catalog().meta_get(secrets::MASTER_KEY_ID).await? {
            Some(id) if id != key.id() => Ok(self.reload_master_key(&id)?.unwrap_or(key)),
            _ => Ok(key),
        }
    }

    /// Re-reads the master key file after another process rotated it: the key sealing
    /// `wanted_id`, from the file or its rotation's `.new`.
    pub(crate) fn reload_master_key(
        &self,
        wanted_id: &str,
    ) -> Result<Option<Arc<secrets::MasterKey>>> {
        let path = match self.inner.master.read() {
            Ok(g) => g.1.clone(),
            Err(_) => None,
        };
        let Some(path) = path else { return Ok(None) };
        for p in [path.clone(), secrets::pending_path(&path)] {
            if let Ok(t) = std::fs::read_to_string(&p) {
                let k = secrets::MasterKey::parse(&t)?;
                if k.id() == wanted_id {
                    let k = Arc::new(k);
                    if let Ok(mut g) = self.inner.master.write() {
                        g.0 = Some(k.clone());
                    }
                    return Ok(Some(k));
                }
            }
        }
        Ok(None)
    }

    /// The same service with its own store for each region named in `stores` (see
    /// [`Service::open_region_stores`]); other regions keep the default store.
    pub fn with_region_stores(self, stores: HashMap<String, ikon_store::Store>) -> Service {
        if let Ok(mut g) = self.inner.region_stores.write() {
            *g = Arc::new(stores);
        }
        self
    }

    /// Opens the stores the configuration names per region (`s3://…` through the `[s3]`
    /// engine, or a directory); a location named by several regions is opened once, and a
    /// region without one uses `default`.
    pub async fn open_region_stores(config: &Config) -> Result<HashMap<String, ikon_store::Store>> {
        let mut opened: HashMap<ikon_store::Location, ikon_store::Store> = HashMap::new();
        let mut out = HashMap::new();
        for r in &config.regions {
            let Some(url) = &r.store else { continue };
            let loc = ikon_store::Location::parse(url).map_err(storage_err)?;
            let store = match opened.get(&loc) {
                Some(s) => s.clone(),
                None => {
                    let s = loc.open(&config.s3, config.chunk_size).await.map_err(|e| {
                        Error::new(
                            ErrorKind::Storage,
                            format!("opening the store of region {} ({loc}): {e}", r.name),
                        )
                    })?;
                    opened.insert(loc, s.clone());
                    s
                }
            };
            out.insert(r.name.clone(), store);
        }
        Ok(out)
    }

    /// Buckets `s3://` import URLs may name.
    pub(crate) fn buckets(&self) -> &import::Buckets {
        &self.inner.buckets
    }

    /// The default chunk store.
    pub fn store(&self) -> &ikon_store::Store {
        &self.inner.store
    }

    fn region_stores(&self) -> Arc<HashMap<String, ikon_store::Store>> {
        self.inner
            .region_stores
            .read()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The chunk store holding `region`'s images.
    pub fn store_for(&self, region: &str) -> ikon_store::Store {
        self.region_stores()
            .get(region)
            .unwrap_or(&self.inner.store)
            .clone()
    }

    /// The store holding manifest `r` of something in `region`: the region's store when it
    /// has it, else whichever other store does (data written before the region had its own
    /// store, or by a path that did not place it). A manifest found nowhere gets the region's
    /// store, whose read then reports it missing.
    pub async fn store_holding(
        &self,
        region: &str,
        r: &ikon_store::ManifestRef,
    ) -> Result<ikon_store::Store> {
        let own = self.store_for(region);
        let stores = self.distinct_stores();
        if stores.len() == 1 || own.has_manifest(r).await.map_err(storage_err)? {
            return Ok(own);
        }
        for s in stores {
            if !s.same_as(&own) && s.has_manifest(r).await.map_err(storage_err)? {
                return Ok(s);
            }
        }
        Ok(own)
    }

    /// Every manifest an image, disk or snapshot references (the chunk stores' live set).
    async fn live_manifests(&self) -> Result<Vec<ikon_store::ManifestRef>> {
        Ok(self
            .catalog()
            .live_manifests()
            .await?
            .into_iter()
            .map(|(disk_id, version)| ikon_store::ManifestRef { disk_id, version })
            .collect())
    }

    /// Every distinct store (each place once).
    fn distinct_stores(&self) -> Vec<ikon_store::Store> {
        let mut stores: Vec<ikon_store::Store> = vec![self.store().clone()];
        for s in self.region_stores().values() {
            if !stores.iter().any(|o| o.same_as(s)) {
                stores.push(s.clone());
            }
        }
        stores
    }

    /// The live manifests `store` holds. Manifest names are unique across stores (fresh
    /// disk ids; a copy keeps its source's name), so a store's live set is every live
    /// manifest present in it — whichever code path wrote it there.
    async fn live_in(&self, store: &ikon_store::Store) -> Result<Vec<ikon_store::ManifestRef>> {
        let live = self.live_manifests().await?;
        self.held_in(store, live).await
    }

    /// Which of `live` `store` holds (all of them when there is only one store).
    async fn held_in(
        &self,
        store: &ikon_store::Store,
        live: Vec<ikon_store::ManifestRef>,
    ) -> Result<Vec<ikon_store::ManifestRef>> {
        if self.region_stores().is_empty() {
            return Ok(live);
        }
        let mut here = Vec::new();
        for r in live {
            if store.has_manifest(&r).await.map_err(storage_err)? {
                here.push(r);
            }
        }
        Ok(here)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The catalog (the service's own: callers go through its operations).
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Checks that `region` exists and is available.
    pub fn check_region(&self, region: &str) -> Result<&config::Region> {
        match self.config().region(region) {
            Some(r) if r.available() => Ok(r),
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

    /// Counts one call to `operation` against the caller's daily limit when the policy
    /// limits it; refuses the call when the limit is used up. Each limited operation calls
    /// this first thing (before any other check: every call counts, refused or not), and
    /// only when it will act (not on a dry run).
    pub(crate) async fn count_limited(&self, caller: &Caller, operation: Operation) -> Result<()> {
        let l = &self.config().limits;
        // The names were checked to be operations when the policy was read.
        if !l
            .daily_limited_actions
            .iter()
            .any(|a| a == operation.name())
        {
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

impl crate::facets::Admin<'_> {
    /// Removes chunks and manifests no image, disk or snapshot references any more, in
    /// every store; safe while other writers run (see `ikon_store::gc`): each store's live
    /// set is read from the catalog after the writers that were running have committed.
    /// Returns the figures summed over the stores.
    pub async fn collect_garbage(&self) -> Result<ikon_store::GcStats> {
        let mut total = ikon_store::GcStats::default();
        for store in self.distinct_stores() {
            let live = || async {
                self.live_in(&store)
                    .await
                    .map_err(|e| ikon_store::Error::new(ikon_store::ErrorKind::Backend, e.chain()))
            };
            let s = store.gc_with(live, true).await.map_err(storage_err)?;
            total.live_chunks += s.live_chunks;
            total.deleted_chunks += s.deleted_chunks;
            total.deleted_bytes += s.deleted_bytes;
            total.deleted_manifests += s.deleted_manifests;
            total.removed_tmp += s.removed_tmp;
        }
        Ok(total)
    }

    /// Store figures over every store: (bytes held, data bytes referenced by all images,
    /// disks and snapshots, counting each manifest once per store).
    pub async fn store_usage(&self) -> Result<(u64, u64)> {
        let (mut held, mut referenced) = (0u64, 0u64);
        for store in self.distinct_stores() {
            held += store.stats().await.map_err(storage_err)?.bytes;
            for r in self.live_in(&store).await? {
                referenced += store
                    .get_manifest(&r)
                    .await
                    .map_err(storage_err)?
                    .stored_bytes();
            }
        }
        Ok((held, referenced))
    }

    /// `ikon admin fsck`: every manifest an image, disk or snapshot uses is present in a
    /// store and every chunk it names is there and matches its hash; stored chunks nothing
    /// names are counted as orphans (see `ikon_store::Store::fsck`). Reads every chunk.
    pub async fn fsck(&self) -> Result<ikon_store::FsckReport> {
        let live = self.live_manifests().await?;
        let mut total = ikon_store::FsckReport::default();
        let mut held = std::collections::HashSet::new();
        for store in self.distinct_stores() {
            let here = self.held_in(&store, live.clone()).await?;
            held.extend(here.iter().cloned());
            total.add(store.fsck(&here).await.map_err(storage_err)?);
        }
        // With several stores, a manifest none of them holds is missing (with one, the
        // store's own check reports it).
        total
            .missing_manifests
            .extend(live.into_iter().filter(|r| !held.contains(r)));
        Ok(total)
    }

    /// `ikon admin usage`: chunks and bytes held by the default store, data bytes
    /// referenced by every image, disk and snapshot (over every store).
    pub async fn usage(&self) -> Result<StoreUsage> {
        let st = self.store().stats().await.map_err(storage_err)?;
        let (_, referenced) = self.store_usage().await?;
        Ok(StoreUsage {
            chunks: st.chunks,
            bytes_held: st.bytes,
            referenced_bytes: referenced,
        })
    }
}

/// What the chunk store holds (see [`Admin::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreUsage {
    /// Chunks held by the default store.
    pub chunks: u64,
    /// Bytes held by the default store.
    pub bytes_held: u64,
    /// Data bytes referenced by every image, disk and snapshot.
    pub referenced_bytes: u64,
}
