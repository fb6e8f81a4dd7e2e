//! The service layer: every rule (visibility, quotas, sharing, regions, states) lives here
//! once. API dialects call these operations with an authenticated [`Caller`] and translate
//! the results and [`Error`]s back into their own shapes.

mod accounts;
pub mod config;
mod error;
mod export;
pub mod ids;
mod images;
mod publish;
mod sync;
pub mod tasks;

pub use accounts::{Credentials, KeyLookup};
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use export::{ExportHandler, ExportRequest, ExportStarted, EXPORT_KIND};
pub use ikon_catalog::{Catalog, Image};
pub use ikon_store::Store;
pub use images::{
    state, DeleteRequest, ImageListing, ImageView, ListImages, ShareChange, Visibility,
};
pub use publish::{PublishHandler, PublishRequest, Published};
pub use sync::{SyncHandler, SyncRequest, SyncStarted, SYNC_KIND};

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
    /// Regions whose store is not the default one.
    region_stores: HashMap<String, ikon_store::Store>,
}

fn storage(e: ikon_store::Error) -> Error {
    Error::new(ErrorKind::Storage, e.to_string())
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
                region_stores: HashMap::new(),
            }),
        }
    }

    /// The same service with its own store for each region named in `stores` (see
    /// [`Service::open_region_stores`]); other regions keep the default store.
    pub fn with_region_stores(self, stores: HashMap<String, ikon_store::Store>) -> Service {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.region_stores = stores;
                inner
            }
            Err(shared) => Inner {
                catalog: shared.catalog.clone(),
                config: shared.config.clone(),
                store: shared.store.clone(),
                region_stores: stores,
            },
        };
        Service {
            inner: Arc::new(inner),
        }
    }

    /// Opens the stores the configuration names per region (`s3://…` through the `[s3]`
    /// engine, or a directory); a location named by several regions is opened once, and a
    /// region without one uses `default`.
    pub async fn open_region_stores(config: &Config) -> Result<HashMap<String, ikon_store::Store>> {
        let mut opened: HashMap<ikon_store::Location, ikon_store::Store> = HashMap::new();
        let mut out = HashMap::new();
        for r in &config.regions {
            let Some(url) = &r.store else { continue };
            let loc = ikon_store::Location::parse(url).map_err(storage)?;
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

    /// The default chunk store.
    pub fn store(&self) -> &ikon_store::Store {
        &self.inner.store
    }

    /// The chunk store holding `region`'s images.
    pub fn store_for(&self, region: &str) -> &ikon_store::Store {
        self.inner
            .region_stores
            .get(region)
            .unwrap_or(&self.inner.store)
    }

    /// Every distinct store, each with the manifests the catalog's images keep in it.
    async fn stores_with_disks(
        &self,
    ) -> Result<Vec<(ikon_store::Store, Vec<ikon_store::ManifestRef>)>> {
        let mut out: Vec<(ikon_store::Store, Vec<ikon_store::ManifestRef>)> =
            vec![(self.store().clone(), Vec::new())];
        for s in self.inner.region_stores.values() {
            if !out.iter().any(|(o, _)| o.same_as(s)) {
                out.push((s.clone(), Vec::new()));
            }
        }
        for (region, d) in self.catalog().image_disks_by_region().await? {
            let store = self.store_for(&region);
            let r = ikon_store::ManifestRef {
                disk_id: d.disk_id,
                version: d.version,
            };
            if let Some((_, live)) = out.iter_mut().find(|(s, _)| s.same_as(store)) {
                if !live.contains(&r) {
                    live.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Removes chunks and manifests no image references any more, in every store; safe
    /// while other writers run (see `ikon_store::gc`). The live set is read after writers
    /// finished. Returns the figures summed over the stores.
    pub async fn collect_garbage(&self) -> Result<ikon_store::GcStats> {
        let mut total = ikon_store::GcStats::default();
        for (store, live) in self.stores_with_disks().await? {
            let s = store.gc(&live, true).await.map_err(storage)?;
            total.live_chunks += s.live_chunks;
            total.deleted_chunks += s.deleted_chunks;
            total.deleted_bytes += s.deleted_bytes;
            total.deleted_manifests += s.deleted_manifests;
            total.removed_tmp += s.removed_tmp;
        }
        Ok(total)
    }

    /// Store figures over every store: (bytes held, data bytes referenced by all images'
    /// disks).
    pub async fn store_usage(&self) -> Result<(u64, u64)> {
        let (mut held, mut referenced) = (0u64, 0u64);
        for (store, live) in self.stores_with_disks().await? {
            held += store.stats().await.map_err(storage)?.bytes;
            for r in live {
                referenced += store
                    .get_manifest(&r)
                    .await
                    .map_err(storage)?
                    .stored_bytes();
            }
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
