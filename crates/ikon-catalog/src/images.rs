//! Images, their tags and their share lists. The statements that must hold under
//! concurrency are single conditional updates inside a transaction: quota reservation
//! (`quota_usage.used < limit`), share limits (`share_count + n <= max`), state changes
//! (`state IN (allowed)`), deletion (`share_count = 0`).

use crate::sql::{Arg, Sql};
use crate::{conflict_or, Catalog, Error, Result};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One disk of an image: a manifest in the chunk store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRef {
    /// Manifest name in the chunk store.
    pub disk_id: String,
    /// Manifest version.
    pub version: u64,
    /// `SYSTEM_DISK` or `DATA_DISK`.
    pub usage: String,
    /// Virtual size in bytes.
    pub size_bytes: u64,
    /// Snapshot id shown to callers (`snap-…`).
    pub snapshot_id: String,
}

/// An image row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `img-xxxxxxxx`.
    pub image_id: String,
    /// `PUBLIC`, `PRIVATE` (custom) or `MARKET`.
    pub kind: String,
    /// Owning account id (`""` for platform images).
    pub owner: String,
    /// Region holding the image's data.
    pub region: String,
    /// Name (unique per owner and region).
    pub name: String,
    /// Description.
    pub description: String,
    /// OS name, e.g. `Ubuntu Server 22.04 LTS 64bit`.
    pub os_name: String,
    /// `Linux` or `Windows` (or empty when unknown).
    pub os_type: String,
    /// Platform, e.g. `Ubuntu`.
    pub platform: String,
    /// `x86_64`, `i386`, `arm`.
    pub architecture: String,
    /// Virtual size of the system disk in bytes.
    pub size_bytes: u64,
    /// State (`CREATING`, `NORMAL`, ...).
    pub state: String,
    /// Why the image is in a failed state.
    pub state_reason: String,
    /// `OFFICIAL`, `CREATE_IMAGE`, `EXTERNAL_IMPORT`.
    pub source: String,
    /// `TencentCloud` or `BYOL`.
    pub license_type: String,
    /// Image family.
    pub family: String,
    /// Deprecated flag.
    pub deprecated: bool,
    /// cloud-init installed in the guest.
    pub cloudinit: bool,
    /// Copy progress while syncing.
    pub sync_percent: Option<i64>,
    /// Accounts the image is shared to.
    pub share_count: i64,
    /// Disks (system first).
    pub disks: Vec<DiskRef>,
    /// Image this one was made from (marketplace lineage, for pricing).
    pub origin: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// Row version (bumped on every change).
    pub version: i64,
    /// Tags (key, value).
    pub tags: Vec<(String, String)>,
}

/// Guest facts recorded on an image ([`Catalog::set_image_os`]).
#[derive(Debug, Clone, Copy)]
pub struct ImageOs<'a> {
    /// OS name.
    pub os_name: &'a str,
    /// `Linux` or `Windows`.
    pub os_type: &'a str,
    /// Platform.
    pub platform: &'a str,
    /// Architecture.
    pub architecture: &'a str,
    /// cloud-init installed.
    pub cloudinit: bool,
    /// `TencentCloud` or `BYOL`.
    pub license_type: &'a str,
}

/// A new image is an [`Image`] not yet stored.
pub type NewImage = Image;

/// Visibility categories from a caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// The caller's own custom images in the region.
    Private,
    /// Other accounts' custom images shared to the caller, in the image's region.
    Shared,
    /// Platform images (every region).
    Public,
    /// Marketplace images in the region.
    Market,
}

/// A share grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Recipient.
    pub account_id: String,
    /// When (unix seconds).
    pub created_at: i64,
}

/// A listing query. Lists are ORed within a field and fields are ANDed.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    /// Who is asking.
    pub viewer: String,
    /// Region asked about.
    pub region: String,
    /// Categories to include (empty = none).
    pub categories: Vec<Category>,
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Name contains any of these (case-insensitive).
    pub names: Vec<String>,
    /// Platform contains any of these (case-insensitive).
    pub platforms: Vec<String>,
    /// Has a tag with any of these keys.
    pub tag_keys: Vec<String>,
    /// Has a tag with any of these values.
    pub tag_values: Vec<String>,
    /// Has tag key = one of the values, for each entry.
    pub tags: Vec<(String, Vec<String>)>,
    /// Family equals.
    pub family: Option<String>,
    /// State is one of.
    pub states: Option<Vec<String>>,
    /// Exclude deprecated images.
    pub exclude_deprecated: bool,
    /// Page start.
    pub offset: i64,
    /// Page size.
    pub limit: i64,
}

/// Outcome of a conditional deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Gone.
    Deleted,
    /// Still shared to someone.
    Shared,
    /// State does not allow deletion.
    BadState,
    /// No such image.
    NotFound,
}

const COLUMNS: &str = "image_id, kind, owner, region, name, description, os_name, os_type, \
     platform, architecture, size_bytes, state, state_reason, source, license_type, family, \
     deprecated, cloudinit, sync_percent, share_count, disks, origin, created_at, updated_at, version";

pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn u64_col(r: &AnyRow, name: &str) -> Result<u64> {
    let v: i64 = r.try_get(name)?;
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{name} = {v}")))
}

fn image_from_row(r: &AnyRow) -> Result<Image> {
    let disks: String = r.try_get("disks")?;
    let disks: Vec<DiskRef> =
        serde_json::from_str(&disks).map_err(|e| Error::Corrupt(format!("image disks: {e}")))?;
    Ok(Image {
        image_id: r.try_get("image_id")?,
        kind: r.try_get("kind")?,
        owner: r.try_get("owner")?,
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        os_name: r.try_get("os_name")?,
        os_type: r.try_get("os_type")?,
        platform: r.try_get("platform")?,
        architecture: r.try_get("architecture")?,
        size_bytes: u64_col(r, "size_bytes")?,
        state: r.try_get("state")?,
        state_reason: r.try_get("state_reason")?,
        source: r.try_get("source")?,
        license_type: r.try_get("license_type")?,
        family: r.try_get("family")?,
        deprecated: r.try_get::<i64, _>("deprecated")? != 0,
        cloudinit: r.try_get::<i64, _>("cloudinit")? != 0,
        sync_percent: r.try_get("sync_percent")?,
        share_count: r.try_get("share_count")?,
        disks,
        origin: r.try_get("origin")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
        tags: Vec::new(),
    })
}

/// Appends one category's WHERE clause plus every other filter of `q`. Categories are
/// disjoint, so a listing is a UNION ALL of per-category queries, each able to use its own
/// index for both the filter and the order.
fn push_branch(qb: &mut Sql, q: &ImageQuery, c: Category) {
    match c {
        Category::Public => {
            qb.push(" WHERE kind = 'PUBLIC'");
        }
        Category::Private => {
            qb.push(" WHERE owner = ").bind_str(&q.viewer);
            qb.push(" AND region = ")
                .bind_str(&q.region)
                .push(" AND kind = 'PRIVATE'");
        }
        Category::Shared => {
            qb.push(" WHERE region = ").bind_str(&q.region);
            qb.push(" AND kind = 'PRIVATE' AND image_id IN (SELECT image_id FROM image_shares WHERE account_id = ")
                .bind_str(&q.viewer)
                .push(")");
        }
        Category::Market => {
            qb.push(" WHERE region = ")
                .bind_str(&q.region)
                .push(" AND kind = 'MARKET'");
        }
    }
    push_filters(qb, q);
}

fn categories(q: &ImageQuery) -> Vec<Category> {
    let mut cats = q.categories.clone();
    cats.sort();
    cats.dedup();
    cats
}

fn push_filters(qb: &mut Sql, q: &ImageQuery) {
    if let Some(ids) = &q.ids {
        qb.push(" AND image_id IN ")
            .bind_list(ids.iter().map(String::as_str));
    }
    let any_like = |qb: &mut Sql, col: &str, vals: &[String]| {
        if vals.is_empty() {
            return;
        }
        qb.push(" AND (1 = 0");
        for v in vals {
            qb.push(&format!(" OR LOWER({col}) LIKE "))
                .bind_str(&escape_like(v))
                .push(" ESCAPE '\\'");
        }
        qb.push(")");
    };
    any_like(qb, "name", &q.names);
    any_like(qb, "platform", &q.platforms);
    let tag_cond = |qb: &mut Sql, col: &str, vals: &[String], key: Option<&str>| {
        qb.push(" AND image_id IN (SELECT image_id FROM image_tags WHERE ");
        if let Some(k) = key {
            qb.push("tag_key = ").bind_str(k).push(" AND ");
        }
        qb.push(&format!("{col} IN "))
            .bind_list(vals.iter().map(String::as_str))
            .push(")");
    };
    if !q.tag_keys.is_empty() {
        tag_cond(qb, "tag_key", &q.tag_keys, None);
    }
    if !q.tag_values.is_empty() {
        tag_cond(qb, "tag_value", &q.tag_values, None);
    }
    for (k, vals) in &q.tags {
        if !vals.is_empty() {
            tag_cond(qb, "tag_value", vals, Some(k));
        }
    }
    if let Some(f) = &q.family {
        qb.push(" AND family = ").bind_str(f);
    }
    if let Some(states) = &q.states {
        qb.push(" AND state IN ")
            .bind_list(states.iter().map(String::as_str));
    }
    if q.exclude_deprecated {
        qb.push(" AND deprecated = 0");
    }
}

impl Catalog {
    /// Inserts an image (and its tags). With `quota = Some(n)` (the caller decides which
    /// images count), one unit of the owner's custom-image quota in the image's region is
    /// reserved in the same
    /// transaction; returns `Ok(false)` (nothing stored) when `n` are already used.
    pub async fn insert_image(&self, img: &NewImage, quota: Option<i64>) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !insert_image_tx(&mut tx, img, quota).await? {
            return Ok(false);
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One image by id, with its tags.
    pub async fn image(&self, image_id: &str) -> Result<Option<Image>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM images WHERE image_id = $1"))
            .bind(image_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut img = image_from_row(&row)?;
        let tags = sqlx::query(
            "SELECT tag_key, tag_value FROM image_tags WHERE image_id = $1 ORDER BY tag_key",
        )
        .bind(image_id)
        .fetch_all(self.pool())
        .await?;
        for t in tags {
            img.tags
                .push((t.try_get("tag_key")?, t.try_get("tag_value")?));
        }
        Ok(Some(img))
    }

    /// Lists images matching `q`: the total number of matches and one page (newest first).
    pub async fn query_images(&self, q: &ImageQuery) -> Result<(i64, Vec<Image>)> {
        let Some(cache) = self.list_cache() else {
            return self.query_images_uncached(q).await;
        };
        let gen: i64 = sqlx::query("SELECT gen FROM generations WHERE name = 'images'")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        let key = format!("{q:?}");
        if let Ok(mut c) = cache.lock() {
            if c.gen != gen {
                c.entries.clear();
                c.gen = gen;
            }
            if let Some(hit) = c.entries.get(&key) {
                return Ok(hit.clone());
            }
        }
        let result = self.query_images_uncached(q).await?;
        if let Ok(mut c) = cache.lock() {
            // Stored under the generation read before the query: if a write happened in
            // between, the generation has moved on and this entry is never served.
            if c.gen == gen {
                if c.entries.len() >= crate::LIST_CACHE_ENTRIES {
                    c.entries.clear();
                }
                c.entries.insert(key, result.clone());
            }
        }
        Ok(result)
    }

    async fn query_images_uncached(&self, q: &ImageQuery) -> Result<(i64, Vec<Image>)> {
        let cats = categories(q);
        if cats.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut qb = Sql::new("SELECT ");
        for (i, c) in cats.iter().enumerate() {
            if i > 0 {
                qb.push(" + ");
            }
            qb.push("(SELECT COUNT(*) FROM images");
            push_branch(&mut qb, q, *c);
            qb.push(")");
        }
        let total: i64 = qb.query().fetch_one(self.pool()).await?.try_get(0)?;
        if total == 0 || q.limit <= 0 || q.offset >= total {
            return Ok((total, Vec::new()));
        }
        // Each branch contributes at most offset + limit rows, read in index order.
        let window = q.offset.saturating_add(q.limit);
        let mut qb = Sql::new("");
        for (i, c) in cats.iter().enumerate() {
            if i > 0 {
                qb.push(" UNION ALL ");
            }
            qb.push(&format!("SELECT * FROM (SELECT {COLUMNS} FROM images"));
            push_branch(&mut qb, q, *c);
            qb.push(" ORDER BY created_at DESC, image_id DESC LIMIT ")
                .bind_i64(window);
            qb.push(&format!(") AS b{i}"));
        }
        qb.push(" ORDER BY created_at DESC, image_id DESC LIMIT ")
            .bind_i64(q.limit);
        qb.push(" OFFSET ").bind_i64(q.offset);
        let rows = qb.query().fetch_all(self.pool()).await?;
        let mut images = rows
            .iter()
            .map(image_from_row)
            .collect::<Result<Vec<_>>>()?;
        if !images.is_empty() {
            let mut qb =
                Sql::new("SELECT image_id, tag_key, tag_value FROM image_tags WHERE image_id IN ");
            qb.bind_list(images.iter().map(|i| i.image_id.as_str()))
                .push(" ORDER BY tag_key");
            for t in qb.query().fetch_all(self.pool()).await? {
                let id: String = t.try_get("image_id")?;
                if let Some(img) = images.iter_mut().find(|i| i.image_id == id) {
                    img.tags
                        .push((t.try_get("tag_key")?, t.try_get("tag_value")?));
                }
            }
        }
        Ok((total, images))
    }

    /// Changes name / description / family / deprecation of an image. A name taken by
    /// another image of the same owner and region is a Conflict. Returns whether it exists.
    pub async fn update_image_attributes(
        &self,
        image_id: &str,
        name: Option<&str>,
        description: Option<&str>,
        family: Option<&str>,
        deprecated: Option<bool>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE images SET name = COALESCE($1, name), description = COALESCE($2, description),
             family = COALESCE($3, family), deprecated = COALESCE($4, deprecated),
             updated_at = $5, version = version + 1 WHERE image_id = $6",
        )
        .bind(name)
        .bind(description)
        .bind(family)
        .bind(deprecated.map(i64::from))
        .bind(now)
        .bind(image_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("image name {:?}", name.unwrap_or(""))))?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves an image to `to` only if its state is one of `from`; returns whether it moved.
    pub async fn transition_image(
        &self,
        image_id: &str,
        from: &[&str],
        to: &str,
        reason: &str,
        sync_percent: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        let mut qb = Sql::new("UPDATE images SET state = ");
        qb.bind_str(to).push(", state_reason = ").bind_str(reason);
        qb.push(", sync_percent = ").bind(Arg::OptI64(sync_percent));
        qb.push(", updated_at = ").bind_i64(now);
        qb.push(", version = version + 1 WHERE image_id = ")
            .bind_str(image_id);
        qb.push(" AND state IN ").bind_list(from.iter().copied());
        let mut tx = self.begin().await?;
        let r = qb.query().execute(&mut *tx).await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replaces the disks of an image (e.g. when its data has been written).
    pub async fn set_image_disks(
        &self,
        image_id: &str,
        disks: &[DiskRef],
        size: u64,
    ) -> Result<bool> {
        let disks = serde_json::to_string(disks).map_err(|e| Error::Corrupt(e.to_string()))?;
        let size = i64::try_from(size).map_err(|_| Error::Corrupt(format!("size {size}")))?;
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE images SET disks = $1, size_bytes = $2, version = version + 1 WHERE image_id = $3",
        )
        .bind(disks)
        .bind(size)
        .bind(image_id)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records what inspection found in an image's guest (import): OS name and type,
    /// platform, architecture, cloud-init and licence. Returns whether the image exists.
    pub async fn set_image_os(&self, image_id: &str, os: &ImageOs<'_>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE images SET os_name = $1, os_type = $2, platform = $3, architecture = $4,
             cloudinit = $5, license_type = $6, version = version + 1 WHERE image_id = $7",
        )
        .bind(os.os_name)
        .bind(os.os_type)
        .bind(os.platform)
        .bind(os.architecture)
        .bind(i64::from(os.cloudinit))
        .bind(os.license_type)
        .bind(image_id)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes an image if it is in one of `deletable` states and shared to nobody,
    /// releasing the owner's quota unit when the image holds one, atomically.
    pub async fn delete_image(&self, image_id: &str, deletable: &[&str]) -> Result<DeleteOutcome> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT quota_unit, owner, region, state, share_count FROM images WHERE image_id = $1",
        )
        .bind(image_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(DeleteOutcome::NotFound);
        };
        let state: String = row.try_get("state")?;
        let shares: i64 = row.try_get("share_count")?;
        if !deletable.contains(&state.as_str()) {
            return Ok(DeleteOutcome::BadState);
        }
        if shares > 0 {
            return Ok(DeleteOutcome::Shared);
        }
        let r = sqlx::query(
            "DELETE FROM images WHERE image_id = $1 AND share_count = 0 AND state = $2",
        )
        .bind(image_id)
        .bind(&state)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(DeleteOutcome::BadState);
        }
        sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM image_shares WHERE image_id = $1")
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
        let unit: i64 = row.try_get("quota_unit")?;
        if unit != 0 {
            let owner: String = row.try_get("owner")?;
            let region: String = row.try_get("region")?;
            sqlx::query(
                "UPDATE quota_usage SET used = used - 1 WHERE account_id = $1 AND region = $2 AND used > 0",
            )
            .bind(owner)
            .bind(region)
            .execute(&mut *tx)
            .await?;
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    /// Shares an image to `accounts` (none of which may already have it) if the total stays
    /// within `max`; returns `Ok(false)` (nothing changed) when it would exceed `max`.
    pub async fn share_image(
        &self,
        image_id: &str,
        accounts: &[String],
        max: i64,
        now: i64,
    ) -> Result<bool> {
        let n = i64::try_from(accounts.len()).map_err(|_| Error::Corrupt("share list".into()))?;
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE images SET share_count = share_count + $1, version = version + 1
             WHERE image_id = $2 AND share_count + $1 <= $3",
        )
        .bind(n)
        .bind(image_id)
        .bind(max)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        for a in accounts {
            sqlx::query(
                "INSERT INTO image_shares (image_id, account_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(image_id)
            .bind(a)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, || format!("share to {a}")))?;
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Withdraws shares; returns how many existed.
    pub async fn unshare_image(&self, image_id: &str, accounts: &[String]) -> Result<i64> {
        let mut tx = self.begin().await?;
        let mut removed = 0i64;
        for a in accounts {
            let r = sqlx::query("DELETE FROM image_shares WHERE image_id = $1 AND account_id = $2")
                .bind(image_id)
                .bind(a)
                .execute(&mut *tx)
                .await?;
            removed += i64::try_from(r.rows_affected()).unwrap_or(0);
        }
        sqlx::query(
            "UPDATE images SET share_count = share_count - $1, version = version + 1 WHERE image_id = $2",
        )
        .bind(removed)
        .bind(image_id)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// The accounts an image is shared to, oldest first.
    pub async fn shares(&self, image_id: &str) -> Result<Vec<Share>> {
        let rows = sqlx::query(
            "SELECT account_id, created_at FROM image_shares WHERE image_id = $1 ORDER BY created_at, account_id",
        )
        .bind(image_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Share {
                    account_id: r.try_get("account_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Custom images counted against `account`'s quota in `region`.
    pub async fn quota_used(&self, account: &str, region: &str) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM quota_usage WHERE account_id = $1 AND region = $2",
        )
        .bind(account)
        .bind(region)
        .fetch_optional(self.pool())
        .await?;
        Ok(n.unwrap_or(0))
    }

    /// Every disk any image references (the chunk store's live set).
    pub async fn image_disks(&self) -> Result<Vec<DiskRef>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT disks FROM images")
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for d in rows {
            let v: Vec<DiskRef> =
                serde_json::from_str(&d).map_err(|e| Error::Corrupt(e.to_string()))?;
            out.extend(v);
        }
        Ok(out)
    }

    /// Number of images per state (for metrics and tests).
    pub async fn image_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM images")
            .fetch_one(self.pool())
            .await?)
    }
}

/// Inserts an image and its tags inside a writer's transaction, reserving a quota unit (held
/// by the image until it is deleted) when `quota` is given; false (nothing written) when
/// over quota.
pub(crate) async fn insert_image_tx(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    img: &NewImage,
    quota: Option<i64>,
) -> Result<bool> {
    if let Some(limit) = quota {
        sqlx::query(
            "INSERT INTO quota_usage (account_id, region, used) VALUES ($1, $2, 0)
             ON CONFLICT (account_id, region) DO NOTHING",
        )
        .bind(&img.owner)
        .bind(&img.region)
        .execute(&mut **tx)
        .await?;
        let r = sqlx::query(
            "UPDATE quota_usage SET used = used + 1
             WHERE account_id = $1 AND region = $2 AND used < $3",
        )
        .bind(&img.owner)
        .bind(&img.region)
        .bind(limit)
        .execute(&mut **tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
    }
    let disks = serde_json::to_string(&img.disks)
        .map_err(|e| Error::Corrupt(format!("image disks: {e}")))?;
    let size = i64::try_from(img.size_bytes)
        .map_err(|_| Error::Corrupt(format!("size {}", img.size_bytes)))?;
    sqlx::query(&format!(
        "INSERT INTO images ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
    ))
    .bind(&img.image_id)
    .bind(&img.kind)
    .bind(&img.owner)
    .bind(&img.region)
    .bind(&img.name)
    .bind(&img.description)
    .bind(&img.os_name)
    .bind(&img.os_type)
    .bind(&img.platform)
    .bind(&img.architecture)
    .bind(size)
    .bind(&img.state)
    .bind(&img.state_reason)
    .bind(&img.source)
    .bind(&img.license_type)
    .bind(&img.family)
    .bind(i64::from(img.deprecated))
    .bind(i64::from(img.cloudinit))
    .bind(img.sync_percent)
    .bind(img.share_count)
    .bind(disks)
    .bind(&img.origin)
    .bind(img.created_at)
    .bind(img.updated_at)
    .bind(img.version)
    .execute(&mut **tx)
    .await
    .map_err(|e| conflict_or(e, || format!("image name {:?}", img.name)))?;
    for (k, v) in &img.tags {
        sqlx::query("INSERT INTO image_tags (image_id, tag_key, tag_value) VALUES ($1, $2, $3)")
            .bind(&img.image_id)
            .bind(k)
            .bind(v)
            .execute(&mut **tx)
            .await
            .map_err(|e| conflict_or(e, || format!("tag {k:?}")))?;
    }
    if quota.is_some() {
        sqlx::query("UPDATE images SET quota_unit = 1 WHERE image_id = $1")
            .bind(&img.image_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}

/// Bumps the images generation inside a writer's transaction (see `schema`).
pub(crate) async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE generations SET gen = gen + 1 WHERE name = 'images'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}
