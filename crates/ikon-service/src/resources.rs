//! Lookups over the caller's instances, disks and snapshots that dialects need besides the
//! operations of `instances` and `snapshots`: listing disks, and the region of one of the
//! caller's resources (for actions whose requests name a resource but no region, such as
//! Alibaba's DeleteInstance or CreateSnapshot). Only the caller's own resources are ever
//! found; anything else is "not found".

use crate::{ids, Caller, Result};
use ikon_catalog::{Disk, ResourceQuery};

/// A listing of disks.
#[derive(Debug, Clone, Default)]
pub struct DiskFilter {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Attached to these instances.
    pub instance_ids: Vec<String>,
    /// Usage (`SYSTEM_DISK` / `DATA_DISK`).
    pub usages: Vec<String>,
    /// Zones.
    pub zones: Vec<String>,
    /// Attached to an instance (true) or detached (false; kept after their instance).
    pub attached: Option<bool>,
    /// Page start.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl crate::facets::Instances<'_> {
    /// Lists the caller's disks in their region, newest first.
    pub async fn describe_disks(
        &self,
        caller: &Caller,
        f: &DiskFilter,
    ) -> Result<(u64, Vec<Disk>)> {
        self.check_region(&caller.region)?;
        let mut parents = f.instance_ids.clone();
        let mut ids = f.ids.clone();
        match f.attached {
            None => {}
            Some(false) if parents.is_empty() => parents = vec![String::new()],
            // Detached disks belong to no instance.
            Some(false) => ids = Some(vec![]),
            Some(true) if parents.is_empty() => {
                let (_, all) = self
                    .catalog()
                    .query_instances(&ResourceQuery {
                        owner: caller.account_id.clone(),
                        region: caller.region.clone(),
                        limit: self.config().limits.instances_per_region.max(0),
                        ..ResourceQuery::default()
                    })
                    .await?;
                parents = all.into_iter().map(|i| i.instance_id).collect();
                if parents.is_empty() {
                    ids = Some(vec![]);
                }
            }
            Some(true) => {}
        }
        let (total, rows) = self
            .catalog()
            .query_disks(&ResourceQuery {
                owner: caller.account_id.clone(),
                region: caller.region.clone(),
                ids,
                zones: f.zones.clone(),
                parents,
                usages: f.usages.clone(),
                offset: i64_of(f.offset),
                limit: i64_of(f.limit),
                ..ResourceQuery::default()
            })
            .await?;
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }

    /// The region of the caller's instance (`ins-`), disk (`disk-`) or snapshot (`snap-`)
    /// `id`; None when it is not one of the caller's.
    pub async fn resource_region(&self, caller: &Caller, id: &str) -> Result<Option<String>> {
        let c = self.catalog();
        let found = if ids::is_well_formed("ins", id) {
            c.instance(id).await?.map(|r| (r.owner, r.region))
        } else if ids::is_well_formed("disk", id) {
            c.disk(id).await?.map(|r| (r.owner, r.region))
        } else if ids::is_well_formed("snap", id) {
            c.snapshot(id).await?.map(|r| (r.owner, r.region))
        } else {
            None
        };
        Ok(found
            .filter(|(owner, _)| *owner == caller.account_id)
            .map(|(_, region)| region))
    }
}
