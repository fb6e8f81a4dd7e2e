//! An image's facts, kept once per manifest (the system disk's disk id + version): the
//! inspection and the hygiene scan as JSON documents the service writes and reads. A facts
//! row is PENDING from the moment it is asked for (in the same transaction as the task
//! that computes it, so it is asked for once however many images share the manifest), then
//! DONE or FAILED.

use crate::images::DiskRef;
use crate::{Catalog, Error, NewTask, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Facts states.
pub mod fstate {
    /// Asked for; its task has not finished.
    pub const PENDING: &str = "PENDING";
    /// Computed.
    pub const DONE: &str = "DONE";
    /// Could not be computed (see `error`).
    pub const FAILED: &str = "FAILED";
}

/// The facts of one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Disk id of the manifest.
    pub disk_id: String,
    /// Manifest version.
    pub version: u64,
    /// `PENDING`, `DONE` or `FAILED`.
    pub state: String,
    /// Inspection (JSON; empty until DONE).
    pub inspection: String,
    /// Scan (JSON; empty until DONE).
    pub scan: String,
    /// Why it FAILED.
    pub error: String,
    /// Asked for (unix seconds).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A NORMAL image whose facts have not been asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsWanted {
    /// Image.
    pub image_id: String,
    /// Owner.
    pub owner: String,
    /// Region.
    pub region: String,
    /// Its disks (the system disk's manifest is the key).
    pub disks: Vec<DiskRef>,
}

fn facts_from_row(r: &AnyRow) -> Result<Facts> {
    Ok(Facts {
        disk_id: r.try_get("disk_id")?,
        version: u64::try_from(r.try_get::<i64, _>("version")?)
            .map_err(|_| Error::Corrupt("negative manifest version".into()))?,
        state: r.try_get("state")?,
        inspection: r.try_get("inspection")?,
        scan: r.try_get("scan")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn version_arg(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Corrupt(format!("manifest version {v} out of range")))
}

impl Catalog {
    /// Up to `limit` NORMAL images whose facts have not been asked for.
    pub async fn images_wanting_facts(&self, limit: i64) -> Result<Vec<FactsWanted>> {
        let rows = sqlx::query(
            "SELECT image_id, owner, region, disks FROM images
             WHERE facts_requested = 0 AND state = 'NORMAL' ORDER BY created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let disks: String = r.try_get("disks")?;
                Ok(FactsWanted {
                    image_id: r.try_get("image_id")?,
                    owner: r.try_get("owner")?,
                    region: r.try_get("region")?,
                    disks: serde_json::from_str(&disks)
                        .map_err(|e| Error::Corrupt(format!("image disks: {e}")))?,
                })
            })
            .collect()
    }

    /// Records that `image_id`'s facts are asked for. With `manifest`, a PENDING facts row
    /// for it is inserted together with `task` unless the manifest already has one (then
    /// the task is not stored). Returns whether the task was stored.
    pub async fn request_facts(
        &self,
        image_id: &str,
        manifest: Option<(&str, u64)>,
        task: &NewTask,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let mut stored = false;
        if let Some((disk_id, version)) = manifest {
            let r = sqlx::query(
                "INSERT INTO manifest_facts (disk_id, version, state, created_at, updated_at)
                 VALUES ($1, $2, 'PENDING', $3, $3) ON CONFLICT (disk_id, version) DO NOTHING",
            )
            .bind(disk_id)
            .bind(version_arg(version)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 1 {
                crate::tasks::insert_task_tx(&mut tx, task, crate::TaskStart::Pending, now).await?;
                stored = true;
            }
        }
        sqlx::query("UPDATE images SET facts_requested = 1 WHERE image_id = $1")
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The facts of a manifest.
    pub async fn facts(&self, disk_id: &str, version: u64) -> Result<Option<Facts>> {
        let r = sqlx::query(
            "SELECT disk_id, version, state, inspection, scan, error, created_at, updated_at
             FROM manifest_facts WHERE disk_id = $1 AND version = $2",
        )
        .bind(disk_id)
        .bind(version_arg(version)?)
        .fetch_optional(self.pool())
        .await?;
        r.as_ref().map(facts_from_row).transpose()
    }

    /// Stores a manifest's computed facts (DONE with the documents, or FAILED with the
    /// error), whatever state it was in.
    pub async fn put_facts(&self, f: &Facts) -> Result<()> {
        sqlx::query(
            "INSERT INTO manifest_facts
             (disk_id, version, state, inspection, scan, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (disk_id, version) DO UPDATE SET state = excluded.state,
             inspection = excluded.inspection, scan = excluded.scan, error = excluded.error,
             updated_at = excluded.updated_at",
        )
        .bind(&f.disk_id)
        .bind(version_arg(f.version)?)
        .bind(&f.state)
        .bind(&f.inspection)
        .bind(&f.scan)
        .bind(&f.error)
        .bind(f.created_at)
        .bind(f.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
