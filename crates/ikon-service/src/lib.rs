//! The service layer: every rule (visibility, quotas, sharing, regions, states) lives here
//! once. API dialects call these operations with an authenticated [`Caller`] and translate
//! the results and [`Error`]s back into their own shapes.

mod accounts;
pub mod config;
mod error;
pub mod ids;
mod images;
pub mod tasks;

pub use accounts::{Credentials, KeyLookup};
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use ikon_catalog::{Catalog, Image};
pub use images::{DeleteRequest, ImageListing, ImageView, ListImages, ShareChange, Visibility};

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
}

impl Service {
    /// A service over a connected catalog.
    pub fn new(catalog: Catalog, config: Config) -> Service {
        Service {
            inner: Arc::new(Inner { catalog, config }),
        }
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
