//! Instances, their disks and snapshots of disks. A disk's content is a manifest reference
//! (`manifest_disk`, `manifest_version`) that it may share with the image or snapshot it was
//! made from; writing a disk commits a new manifest under the disk's own id and moves the
//! reference with a compare-and-swap on the row version. Every statement that must hold
//! under concurrency is one transaction here; which operations are allowed is decided by the
//! service layer.

use crate::images::{bump, insert_image_tx};
use crate::market::{close_usage, open_usage, Usage};
use crate::sql::Sql;
use crate::{Catalog, Error, NewImage, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

/// An instance: a named set of disks made from an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `ins-xxxxxxxx`.
    pub instance_id: String,
    /// Owning account.
    pub owner: String,
    /// Region.
    pub region: String,
    /// Availability zone.
    pub zone: String,
    /// Name.
    pub name: String,
    /// Instance type, e.g. `S5.MEDIUM2`.
    pub instance_type: String,
    /// Image the system disk was last installed from.
    pub image_id: String,
    /// The shared, public or marketplace image this instance's software came from (for
    /// pricing); empty when it came from the owner's own image with no such lineage.
    pub origin: String,
    /// `RUNNING`, `STOPPED`, ...
    pub state: String,
    /// Last operation (`ResetInstance`, ...).
    pub latest_operation: String,
    /// `SUCCESS`, `OPERATING`, `FAILED`.
    pub latest_operation_state: String,
    /// RequestId of the last operation.
    pub latest_operation_request_id: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
}

/// A disk (system or data) of an instance, or detached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// `disk-xxxxxxxx`.
    pub disk_id: String,
    /// Owning account.
    pub owner: String,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Instance it is attached to (`""` = none).
    pub instance_id: String,
    /// `SYSTEM_DISK` or `DATA_DISK`.
    pub usage: String,
    /// Disk type, e.g. `CLOUD_PREMIUM`.
    pub disk_type: String,
    /// Size in bytes (may exceed the manifest's: the rest reads as zeros).
    pub size_bytes: u64,
    /// Manifest name holding the content (`""` = all zeros).
    pub manifest_disk: String,
    /// Manifest version (0 with an empty name).
    pub manifest_version: u64,
    /// Deleted when its instance is terminated.
    pub delete_with_instance: bool,
    /// Position among the instance's disks (0 = system disk, then data disks in order).
    pub slot: i64,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// Row version (bumped on content changes).
    pub version: i64,
}

/// A snapshot: a disk's content at one moment (a manifest reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `snap-xxxxxxxx`.
    pub snapshot_id: String,
    /// Owning account.
    pub owner: String,
    /// Region.
    pub region: String,
    /// Zone of the disk.
    pub zone: String,
    /// Disk it was taken from.
    pub disk_id: String,
    /// `SYSTEM_DISK` or `DATA_DISK`.
    pub usage: String,
    /// Disk size in bytes.
    pub size_bytes: u64,
    /// Manifest name.
    pub manifest_disk: String,
    /// Manifest version.
    pub manifest_version: u64,
    /// Name.
    pub name: String,
    /// `NORMAL`, `CREATING`.
    pub state: String,
    /// Image this snapshot was taken for (CreateImage from an instance), else `""`.
    pub image_id: String,
    /// Auto-delete time (unix seconds, 0 = permanent).
    pub deadline: i64,
    /// Creation time.
    pub created_at: i64,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ResourceQuery {
    /// Owner.
    pub owner: String,
    /// Region.
    pub region: String,
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Only these zones.
    pub zones: Vec<String>,
    /// Name contains (case-insensitive) one of.
    pub names: Vec<String>,
    /// State is one of.
    pub states: Vec<String>,
    /// For snapshots and disks: disk / instance ids.
    pub parents: Vec<String>,
    /// Usage is one of (`SYSTEM_DISK`, `DATA_DISK`).
    pub usages: Vec<String>,
    /// Oldest first (default newest first).
    pub ascending: bool,
    /// Page start.
    pub offset: i64,
    /// Page size.
    pub limit: i64,
}

const INSTANCE_COLUMNS: &str = "instance_id, owner, region, zone, name, instance_type, image_id, \
     origin, state, latest_operation, latest_operation_state, latest_operation_request_id, \
     created_at, updated_at";
const DISK_COLUMNS: &str = "disk_id, owner, region, zone, instance_id, usage, disk_type, \
     size_bytes, manifest_disk, manifest_version, delete_with_instance, slot, created_at, updated_at, \
     version";
const SNAPSHOT_COLUMNS: &str = "snapshot_id, owner, region, zone, disk_id, usage, size_bytes, \
     manifest_disk, manifest_version, name, state, image_id, deadline, created_at";

fn u64_col(r: &AnyRow, name: &str) -> Result<u64> {
    let v: i64 = r.try_get(name)?;
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{name} = {v}")))
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} out of range")))
}

fn instance_from_row(r: &AnyRow) -> Result<Instance> {
    Ok(Instance {
        instance_id: r.try_get("instance_id")?,
        owner: r.try_get("owner")?,
        region: r.try_get("region")?,
        zone: r.try_get("zone")?,
        name: r.try_get("name")?,
        instance_type: r.try_get("instance_type")?,
        image_id: r.try_get("image_id")?,
        origin: r.try_get("origin")?,
        state: r.try_get("state")?,
        latest_operation: r.try_get("latest_operation")?,
        latest_operation_state: r.try_get("latest_operation_state")?,
        latest_operation_request_id: r.try_get("latest_operation_request_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn disk_from_row(r: &AnyRow) -> Result<Disk> {
    Ok(Disk {
        disk_id: r.try_get("disk_id")?,
        owner: r.try_get("owner")?,
        region: r.try_get("region")?,
        zone: r.try_get("zone")?,
        instance_id: r.try_get("instance_id")?,
        usage: r.try_get("usage")?,
        disk_type: r.try_get("disk_type")?,
        size_bytes: u64_col(r, "size_bytes")?,
        manifest_disk: r.try_get("manifest_disk")?,
        manifest_version: u64_col(r, "manifest_version")?,
        delete_with_instance: r.try_get::<i64, _>("delete_with_instance")? != 0,
        slot: r.try_get("slot")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

fn snapshot_from_row(r: &AnyRow) -> Result<Snapshot> {
    Ok(Snapshot {
        snapshot_id: r.try_get("snapshot_id")?,
        owner: r.try_get("owner")?,
        region: r.try_get("region")?,
        zone: r.try_get("zone")?,
        disk_id: r.try_get("disk_id")?,
        usage: r.try_get("usage")?,
        size_bytes: u64_col(r, "size_bytes")?,
        manifest_disk: r.try_get("manifest_disk")?,
        manifest_version: u64_col(r, "manifest_version")?,
        name: r.try_get("name")?,
        state: r.try_get("state")?,
        image_id: r.try_get("image_id")?,
        deadline: r.try_get("deadline")?,
        created_at: r.try_get("created_at")?,
    })
}

async fn insert_disk(tx: &mut sqlx::Transaction<'_, sqlx::Any>, d: &Disk) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO disks ({DISK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(&d.disk_id)
    .bind(&d.owner)
    .bind(&d.region)
    .bind(&d.zone)
    .bind(&d.instance_id)
    .bind(&d.usage)
    .bind(&d.disk_type)
    .bind(to_i64(d.size_bytes, "disk size")?)
    .bind(&d.manifest_disk)
    .bind(to_i64(d.manifest_version, "manifest version")?)
    .bind(i64::from(d.delete_with_instance))
    .bind(d.slot)
    .bind(d.created_at)
    .bind(d.updated_at)
    .bind(d.version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_snapshot_tx(tx: &mut sqlx::Transaction<'_, sqlx::Any>, s: &Snapshot) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO snapshots ({SNAPSHOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&s.snapshot_id)
    .bind(&s.owner)
    .bind(&s.region)
    .bind(&s.zone)
    .bind(&s.disk_id)
    .bind(&s.usage)
    .bind(to_i64(s.size_bytes, "snapshot size")?)
    .bind(&s.manifest_disk)
    .bind(to_i64(s.manifest_version, "manifest version")?)
    .bind(&s.name)
    .bind(&s.state)
    .bind(&s.image_id)
    .bind(s.deadline)
    .bind(s.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends the common filters of a resource listing.
fn push_query(qb: &mut Sql, q: &ResourceQuery, id_col: &str, parent_col: &str) {
    qb.push(" WHERE owner = ").bind_str(&q.owner);
    qb.push(" AND region = ").bind_str(&q.region);
    if let Some(ids) = &q.ids {
        qb.push(&format!(" AND {id_col} IN "))
            .bind_list(ids.iter().map(String::as_str));
    }
    if !q.zones.is_empty() {
        qb.push(" AND zone IN ")
            .bind_list(q.zones.iter().map(String::as_str));
    }
    if !q.states.is_empty() {
        qb.push(" AND state IN ")
            .bind_list(q.states.iter().map(String::as_str));
    }
    if !q.parents.is_empty() && !parent_col.is_empty() {
        qb.push(&format!(" AND {parent_col} IN "))
            .bind_list(q.parents.iter().map(String::as_str));
    }
    if !q.usages.is_empty() {
        qb.push(" AND usage IN ")
            .bind_list(q.usages.iter().map(String::as_str));
    }
    if !q.names.is_empty() {
        qb.push(" AND (1 = 0");
        for n in &q.names {
            qb.push(" OR LOWER(name) LIKE ")
                .bind_str(&crate::images::escape_like(n))
                .push(" ESCAPE '\\'");
        }
        qb.push(")");
    }
}

/// A table listed by [`Catalog::page`]: owner/region rows filtered by [`ResourceQuery`].
struct Listing {
    table: &'static str,
    columns: &'static str,
    id: &'static str,
    parent: &'static str,
}

impl Catalog {
    /// The total number of rows of `t` matching `q`, and one page of them ordered by
    /// creation time then id.
    async fn page<T>(
        &self,
        t: &Listing,
        q: &ResourceQuery,
        from_row: fn(&AnyRow) -> Result<T>,
    ) -> Result<(i64, Vec<T>)> {
        let mut count = Sql::new(&format!("SELECT COUNT(*) AS n FROM {}", t.table));
        push_query(&mut count, q, t.id, t.parent);
        let total: i64 = count.query().fetch_one(self.pool()).await?.try_get("n")?;
        let mut qb = Sql::new(&format!("SELECT {} FROM {}", t.columns, t.table));
        push_query(&mut qb, q, t.id, t.parent);
        let dir = if q.ascending { "ASC" } else { "DESC" };
        qb.push(&format!(
            " ORDER BY created_at {dir}, {} {dir} LIMIT ",
            t.id
        ))
        .bind_i64(q.limit)
        .push(" OFFSET ")
        .bind_i64(q.offset);
        let rows = qb.query().fetch_all(self.pool()).await?;
        Ok((total, rows.iter().map(from_row).collect::<Result<_>>()?))
    }
}

impl Catalog {
    /// Inserts instances with their disks and opens their usage spans, in one transaction
    /// (all or nothing).
    pub async fn insert_instances(
        &self,
        items: &[(Instance, Vec<Disk>)],
        usage: &[Usage],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for u in usage {
            open_usage(&mut tx, u).await?;
        }
        for (i, disks) in items {
            sqlx::query(&format!(
                "INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(&i.instance_id)
            .bind(&i.owner)
            .bind(&i.region)
            .bind(&i.zone)
            .bind(&i.name)
            .bind(&i.instance_type)
            .bind(&i.image_id)
            .bind(&i.origin)
            .bind(&i.state)
            .bind(&i.latest_operation)
            .bind(&i.latest_operation_state)
            .bind(&i.latest_operation_request_id)
            .bind(i.created_at)
            .bind(i.updated_at)
            .execute(&mut *tx)
            .await?;
            for d in disks {
                insert_disk(&mut tx, d).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// One instance.
    pub async fn instance(&self, instance_id: &str) -> Result<Option<Instance>> {
        let row = sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = $1"
        ))
        .bind(instance_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(instance_from_row).transpose()
    }

    /// Instances matching `q` (parents = image ids): total and one page.
    pub async fn query_instances(&self, q: &ResourceQuery) -> Result<(i64, Vec<Instance>)> {
        let t = Listing {
            table: "instances",
            columns: INSTANCE_COLUMNS,
            id: "instance_id",
            parent: "image_id",
        };
        self.page(&t, q, instance_from_row).await
    }

    /// The disks of an instance, system disk first.
    pub async fn instance_disks(&self, instance_id: &str) -> Result<Vec<Disk>> {
        let rows = sqlx::query(&format!(
            "SELECT {DISK_COLUMNS} FROM disks WHERE instance_id = $1
             ORDER BY slot, created_at, disk_id"
        ))
        .bind(instance_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(disk_from_row).collect()
    }

    /// One disk.
    pub async fn disk(&self, disk_id: &str) -> Result<Option<Disk>> {
        let row = sqlx::query(&format!(
            "SELECT {DISK_COLUMNS} FROM disks WHERE disk_id = $1"
        ))
        .bind(disk_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(disk_from_row).transpose()
    }

    /// Disks matching `q` (parents = instance ids): total and one page.
    pub async fn query_disks(&self, q: &ResourceQuery) -> Result<(i64, Vec<Disk>)> {
        let t = Listing {
            table: "disks",
            columns: DISK_COLUMNS,
            id: "disk_id",
            parent: "instance_id",
        };
        self.page(&t, q, disk_from_row).await
    }

    /// Moves a disk's content reference (the disk's open handle serialises its writers);
    /// returns false when the disk no longer exists.
    pub async fn set_disk_manifest(
        &self,
        disk_id: &str,
        manifest_disk: &str,
        manifest_version: u64,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE disks SET manifest_disk = $1, manifest_version = $2, updated_at = $3,
             version = version + 1 WHERE disk_id = $4",
        )
        .bind(manifest_disk)
        .bind(to_i64(manifest_version, "manifest version")?)
        .bind(now)
        .bind(disk_id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Re-installs an instance: its system disk takes `disk`'s content reference and size,
    /// the instance records the new image, lineage and operation, and its usage span is
    /// closed and `usage` opened, in one transaction. Returns false when the instance or its
    /// system disk vanished meanwhile.
    pub async fn reset_instance(
        &self,
        inst: &Instance,
        disk: &Disk,
        usage: &Usage,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        close_usage(&mut tx, &inst.instance_id, usage.started_at).await?;
        open_usage(&mut tx, usage).await?;
        let r = sqlx::query(
            "UPDATE instances SET image_id = $1, origin = $2, latest_operation = $3,
             latest_operation_state = $4, latest_operation_request_id = $5, updated_at = $6
             WHERE instance_id = $7",
        )
        .bind(&inst.image_id)
        .bind(&inst.origin)
        .bind(&inst.latest_operation)
        .bind(&inst.latest_operation_state)
        .bind(&inst.latest_operation_request_id)
        .bind(inst.updated_at)
        .bind(&inst.instance_id)
        .execute(&mut *tx)
        .await?;
        let d = sqlx::query(
            "UPDATE disks SET manifest_disk = $1, manifest_version = $2, size_bytes = $3,
             updated_at = $4, version = version + 1
             WHERE disk_id = $5 AND instance_id = $6 AND usage = 'SYSTEM_DISK'",
        )
        .bind(&disk.manifest_disk)
        .bind(to_i64(disk.manifest_version, "manifest version")?)
        .bind(to_i64(disk.size_bytes, "disk size")?)
        .bind(disk.updated_at)
        .bind(&disk.disk_id)
        .bind(&inst.instance_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 || d.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records an instance's latest operation.
    pub async fn set_instance_operation(
        &self,
        instance_id: &str,
        operation: &str,
        state: &str,
        request_id: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE instances SET latest_operation = $1, latest_operation_state = $2,
             latest_operation_request_id = $3, updated_at = $4 WHERE instance_id = $5",
        )
        .bind(operation)
        .bind(state)
        .bind(request_id)
        .bind(now)
        .bind(instance_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes instances, their disks marked delete-with-instance, detaches the others and
    /// closes their usage spans at `now`; returns the deleted disk ids.
    pub async fn delete_instances(&self, instance_ids: &[String], now: i64) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let mut deleted = Vec::new();
        for id in instance_ids {
            close_usage(&mut tx, id, now).await?;
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT disk_id FROM disks WHERE instance_id = $1 AND delete_with_instance = 1",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM disks WHERE instance_id = $1 AND delete_with_instance = 1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE disks SET instance_id = '' WHERE instance_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM instances WHERE instance_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            deleted.extend(rows);
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Inserts a snapshot.
    pub async fn insert_snapshot(&self, s: &Snapshot) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_snapshot_tx(&mut tx, s).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts an image together with the snapshots made for it (quota as in
    /// [`Catalog::insert_image`]); returns false (nothing stored) when over quota.
    pub async fn insert_image_with_snapshots(
        &self,
        img: &NewImage,
        quota: Option<i64>,
        snapshots: &[Snapshot],
        task: Option<&crate::NewTask>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !insert_image_tx(&mut tx, img, quota).await? {
            return Ok(false);
        }
        for s in snapshots {
            insert_snapshot_tx(&mut tx, s).await?;
        }
        // The task that finishes the image, in the same transaction: a crash never leaves
        // a CREATING image that no task will finish.
        if let Some(t) = task {
            crate::tasks::insert_task_tx(&mut tx, t, crate::TaskStart::Pending, img.created_at)
                .await?;
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One snapshot.
    pub async fn snapshot(&self, snapshot_id: &str) -> Result<Option<Snapshot>> {
        let row = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE snapshot_id = $1"
        ))
        .bind(snapshot_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    /// Snapshots matching `q` (parents = disk ids): total and one page.
    pub async fn query_snapshots(&self, q: &ResourceQuery) -> Result<(i64, Vec<Snapshot>)> {
        let t = Listing {
            table: "snapshots",
            columns: SNAPSHOT_COLUMNS,
            id: "snapshot_id",
            parent: "disk_id",
        };
        self.page(&t, q, snapshot_from_row).await
    }

    /// Images whose disks reference `snapshot_id`: (image id, name).
    pub async fn images_of_snapshot(&self, snapshot_id: &str) -> Result<Vec<(String, String)>> {
        let pattern = format!("%\"snapshot_id\":\"{snapshot_id}\"%");
        let rows = sqlx::query(
            "SELECT image_id, name FROM images WHERE disks LIKE $1 ORDER BY created_at, image_id",
        )
        .bind(pattern)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("image_id")?, r.try_get("name")?)))
            .collect()
    }

    /// Deletes snapshots (all or nothing: returns false and deletes none when one is gone).
    pub async fn delete_snapshots(&self, snapshot_ids: &[String]) -> Result<bool> {
        let mut tx = self.begin().await?;
        for id in snapshot_ids {
            let r = sqlx::query("DELETE FROM snapshots WHERE snapshot_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the snapshots made for an image; returns their ids.
    pub async fn delete_image_snapshots(&self, image_id: &str) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT snapshot_id FROM snapshots WHERE image_id = $1")
                .bind(image_id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM snapshots WHERE image_id = $1")
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Every manifest any image, disk or snapshot references (the chunk store's live set),
    /// as (manifest name, version); duplicates removed.
    pub async fn live_manifests(&self) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = self
            .image_disks()
            .await?
            .into_iter()
            .map(|d| (d.disk_id, d.version))
            .collect();
        for table in ["disks", "snapshots"] {
            let rows = sqlx::query(&format!(
                "SELECT manifest_disk, manifest_version FROM {table} WHERE manifest_disk <> ''"
            ))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                out.push((
                    r.try_get("manifest_disk")?,
                    u64_col(&r, "manifest_version")?,
                ));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
