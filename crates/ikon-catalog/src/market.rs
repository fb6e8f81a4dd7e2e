//! Marketplace listings and metering records. A listing moves PENDING → APPROVED (its MARKET
//! image row is inserted in the same transaction) or REJECTED, and APPROVED/PENDING →
//! WITHDRAWN (the MARKET row is deleted in the same transaction; instances keep their
//! disks). Instance usage rows are opened and closed by the instance statements themselves
//! (see `instances`), so a crash cannot leave an instance unmetered.

use crate::images::{bump, insert_image_tx};
use crate::{Catalog, Error, NewImage, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A marketplace submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// `mkt-xxxxxxxx`.
    pub listing_id: String,
    /// The provider's custom image it was made from.
    pub source_image_id: String,
    /// The published MARKET image (`""` until approved).
    pub image_id: String,
    /// Provider account.
    pub provider: String,
    /// Region.
    pub region: String,
    /// Price per instance-hour in millionths of the currency unit.
    pub price_micros: i64,
    /// `PENDING`, `APPROVED`, `REJECTED`, `WITHDRAWN`.
    pub state: String,
    /// Why it was rejected or withdrawn.
    pub reason: String,
    /// The hygiene scan's findings it was submitted with (JSON array; `""` for listings
    /// from before scans).
    pub findings: String,
    /// Submitted (unix seconds).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// One metered span of an instance running an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Instance.
    pub instance_id: String,
    /// Account billed.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// Image installed.
    pub image_id: String,
    /// Image whose fee applies (the marketplace or licensed image it came from).
    pub billed_image_id: String,
    /// Fee per hour (millionths) fixed when the span started.
    pub price_micros: i64,
    /// Start (unix seconds).
    pub started_at: i64,
    /// End (None while running).
    pub ended_at: Option<i64>,
}

const LISTING_COLUMNS: &str = "listing_id, source_image_id, image_id, provider, region, \
     price_micros, state, reason, created_at, updated_at, findings";
const USAGE_COLUMNS: &str = "instance_id, account_id, region, image_id, billed_image_id, \
     price_micros, started_at, ended_at";

fn listing_from_row(r: &AnyRow) -> Result<Listing> {
    Ok(Listing {
        listing_id: r.try_get("listing_id")?,
        source_image_id: r.try_get("source_image_id")?,
        image_id: r.try_get("image_id")?,
        provider: r.try_get("provider")?,
        region: r.try_get("region")?,
        price_micros: r.try_get("price_micros")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
        findings: r.try_get("findings")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn usage_from_row(r: &AnyRow) -> Result<Usage> {
    Ok(Usage {
        instance_id: r.try_get("instance_id")?,
        account_id: r.try_get("account_id")?,
        region: r.try_get("region")?,
        image_id: r.try_get("image_id")?,
        billed_image_id: r.try_get("billed_image_id")?,
        price_micros: r.try_get("price_micros")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

/// Opens a usage span inside a writer's transaction.
/// Opens a usage span. A span of the same instance and image that started in the same
/// second (a re-install right after a start) is reopened instead: spans are keyed by the
/// second they start.
pub(crate) async fn open_usage(tx: &mut sqlx::Transaction<'_, sqlx::Any>, u: &Usage) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO instance_usage ({USAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (instance_id, started_at, image_id) DO UPDATE SET
         billed_image_id = excluded.billed_image_id, price_micros = excluded.price_micros,
         ended_at = excluded.ended_at"
    ))
    .bind(&u.instance_id)
    .bind(&u.account_id)
    .bind(&u.region)
    .bind(&u.image_id)
    .bind(&u.billed_image_id)
    .bind(u.price_micros)
    .bind(u.started_at)
    .bind(u.ended_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Closes an instance's open usage span inside a writer's transaction.
pub(crate) async fn close_usage(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE instance_usage SET ended_at = $1 WHERE instance_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(instance_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Catalog {
    /// Stores a new (PENDING) listing.
    pub async fn insert_listing(&self, l: &Listing) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO market_listings ({LISTING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&l.listing_id)
        .bind(&l.source_image_id)
        .bind(&l.image_id)
        .bind(&l.provider)
        .bind(&l.region)
        .bind(l.price_micros)
        .bind(&l.state)
        .bind(&l.reason)
        .bind(l.created_at)
        .bind(l.updated_at)
        .bind(&l.findings)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One listing.
    pub async fn listing(&self, listing_id: &str) -> Result<Option<Listing>> {
        let row = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM market_listings WHERE listing_id = $1"
        ))
        .bind(listing_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(listing_from_row).transpose()
    }

    /// The listing that published `image_id` (whatever its state now).
    pub async fn listing_of_image(&self, image_id: &str) -> Result<Option<Listing>> {
        let row = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM market_listings WHERE image_id = $1"
        ))
        .bind(image_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(listing_from_row).transpose()
    }

    /// Listings, newest first, optionally of one provider and/or in one state.
    pub async fn listings(
        &self,
        provider: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<Listing>> {
        let rows = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM market_listings
             WHERE ($1 = '' OR provider = $1) AND ($2 = '' OR state = $2)
             ORDER BY created_at DESC, listing_id DESC"
        ))
        .bind(provider.unwrap_or(""))
        .bind(state.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(listing_from_row).collect()
    }

    /// Approves a PENDING listing and publishes `image` (a MARKET row) atomically; false
    /// when the listing is no longer PENDING.
    pub async fn approve_listing(
        &self,
        listing_id: &str,
        image: &NewImage,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE market_listings SET state = 'APPROVED', image_id = $1, updated_at = $2
             WHERE listing_id = $3 AND state = 'PENDING'",
        )
        .bind(&image.image_id)
        .bind(now)
        .bind(listing_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if !insert_image_tx(&mut tx, image, None).await? {
            return Err(Error::Corrupt("market image not inserted".into()));
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves a listing from one of `from` to `to` with a reason, deleting its MARKET image
    /// row (if any) in the same transaction when `to` is `WITHDRAWN`; false when the
    /// listing is not in one of `from`.
    pub async fn close_listing(
        &self,
        listing_id: &str,
        from: &[&str],
        to: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let Some(l) = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM market_listings WHERE listing_id = $1"
        ))
        .bind(listing_id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(listing_from_row)
        .transpose()?
        else {
            return Ok(false);
        };
        if !from.contains(&l.state.as_str()) {
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE market_listings SET state = $1, reason = $2, updated_at = $3
             WHERE listing_id = $4 AND state = $5",
        )
        .bind(to)
        .bind(reason)
        .bind(now)
        .bind(listing_id)
        .bind(&l.state)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if to == "WITHDRAWN" && !l.image_id.is_empty() {
            for stmt in [
                "DELETE FROM images WHERE image_id = $1 AND kind = 'MARKET'",
                "DELETE FROM image_tags WHERE image_id = $1",
            ] {
                sqlx::query(stmt)
                    .bind(&l.image_id)
                    .execute(&mut *tx)
                    .await?;
            }
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Usage spans of `account` overlapping `[from, to)`.
    pub async fn usage(&self, account: &str, from: i64, to: i64) -> Result<Vec<Usage>> {
        let rows = sqlx::query(&format!(
            "SELECT {USAGE_COLUMNS} FROM instance_usage
             WHERE account_id = $1 AND started_at < $2 AND (ended_at IS NULL OR ended_at > $3)
             ORDER BY started_at, instance_id"
        ))
        .bind(account)
        .bind(to)
        .bind(from)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(usage_from_row).collect()
    }

    /// Every image's kind, owner and disks (for storage metering).
    pub async fn image_disks_by_owner(&self) -> Result<Vec<(String, String, Vec<crate::DiskRef>)>> {
        let rows = sqlx::query("SELECT kind, owner, disks FROM images")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get("disks")?;
                let disks = serde_json::from_str(&d).map_err(|e| Error::Corrupt(e.to_string()))?;
                Ok((r.try_get("kind")?, r.try_get("owner")?, disks))
            })
            .collect()
    }

    /// Records a storage sample (bytes of unique custom-image chunks at `at`).
    pub async fn add_storage_sample(&self, account: &str, at: i64, bytes: u64) -> Result<()> {
        let b = i64::try_from(bytes).map_err(|_| Error::Corrupt(format!("bytes {bytes}")))?;
        sqlx::query(
            "INSERT INTO storage_samples (account_id, at, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, at) DO UPDATE SET bytes = $3",
        )
        .bind(account)
        .bind(at)
        .bind(b)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Storage samples of `account` from the last one before `from` up to `to`, oldest first.
    pub async fn storage_samples(
        &self,
        account: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u64)>> {
        let rows = sqlx::query(
            "SELECT at, bytes FROM storage_samples WHERE account_id = $1 AND at < $2
             AND at >= COALESCE((SELECT MAX(at) FROM storage_samples WHERE account_id = $1 AND at <= $3), $3)
             ORDER BY at",
        )
        .bind(account)
        .bind(to)
        .bind(from)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let at: i64 = r.try_get("at")?;
                let b: i64 = r.try_get("bytes")?;
                Ok((at, u64::try_from(b).unwrap_or(0)))
            })
            .collect()
    }
}
