//! Catalog: accounts, keys, images, shares, quotas, counters, instances, disks, snapshots
//! and durable tasks on sqlx.
//!
//! One schema ([`schema`]) and one set of SQL statements run on SQLite (embedded default)
//! and PostgreSQL (several nodes sharing state) through sqlx's `Any` driver: `$N`
//! placeholders, `ON CONFLICT … DO UPDATE`, `RETURNING`, integers as BIGINT, booleans as 0/1
//! and times as unix seconds. Operations that must be atomic against concurrent callers
//! (quota reservation, share limits, state transitions, task leases) are single conditional
//! statements or transactions here; *which* limits and transitions apply is decided by the
//! service layer, which passes them in.

mod accounts;
mod facts;
pub mod ids;
mod images;
mod instances;
mod market;
pub mod schema;
mod sessions;
mod sql;
mod tasks;

pub use accounts::{Account, ApiKey};
pub use facts::{fstate, Facts, FactsWanted};
pub use images::{Category, DeleteOutcome, DiskRef, Image, ImageOs, ImageQuery, NewImage, Share};
pub use instances::{Disk, Instance, ResourceQuery, Snapshot};
pub use market::{Listing, Usage};
pub use sessions::ConsoleSession;
pub use tasks::{
    ImageChange, Inserted, NewTask, Task, TaskOutcome, TaskQuery, TaskStart, TaskState,
};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

/// What went wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed or refused a statement.
    #[error("catalog database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored value could not be understood (e.g. a JSON column).
    #[error("catalog holds a malformed value: {0}")]
    Corrupt(String),
    /// A uniqueness rule was broken (duplicate name, existing account, ...).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database URL is not usable.
    #[error("invalid catalog URL {0}")]
    InvalidUrl(String),
}

/// Catalog result.
pub type Result<T> = std::result::Result<T, Error>;

/// Which engine a catalog runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Most cached listing results (the cache is cleared whenever it fills).
pub(crate) const LIST_CACHE_ENTRIES: usize = 4096;

/// Cached listing results, valid for one images generation.
#[derive(Debug, Default)]
pub(crate) struct ListCache {
    pub(crate) gen: i64,
    pub(crate) entries: std::collections::HashMap<String, (i64, Vec<Image>)>,
}

/// A connection pool to the catalog database.
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: AnyPool,
    engine: Engine,
    cache: Option<std::sync::Arc<std::sync::Mutex<ListCache>>>,
}

impl Catalog {
    /// Connects to `url` (`sqlite:///path/to/catalog.db` or `postgres://…`), creating the
    /// SQLite file if needed, and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Catalog> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            return Err(Error::InvalidUrl(format!(
                "{url}: expected sqlite://PATH or postgres://…"
            )));
        };
        let url = if engine == Engine::Sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let max = if engine == Engine::Sqlite { 8 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        if engine == Engine::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        // IKON_CATALOG_CACHE=0 turns the listing cache off (benchmarks of the raw queries).
        let cache = (std::env::var("IKON_CATALOG_CACHE").as_deref() != Ok("0"))
            .then(|| std::sync::Arc::new(std::sync::Mutex::new(ListCache::default())));
        let cat = Catalog {
            pool,
            engine,
            cache,
        };
        cat.migrate().await?;
        Ok(cat)
    }

    pub(crate) fn list_cache(&self) -> Option<&std::sync::Mutex<ListCache>> {
        self.cache.as_deref()
    }

    /// The engine behind this catalog.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The pool, for callers that need raw access in tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`, waiting up to the busy timeout): a deferred transaction that read first
    /// fails with SQLITE_BUSY, without waiting, when another connection committed a write
    /// since its read.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        })
    }

    async fn migrate(&self) -> Result<()> {
        // Several nodes may start at once: every statement is idempotent (IF NOT EXISTS).
        let mut tx = self.begin().await?;
        if self.engine == Engine::Postgres {
            // Nodes starting together must not run the DDL concurrently (PostgreSQL's
            // IF NOT EXISTS is not safe against a concurrent CREATE).
            tx.execute("SELECT pg_advisory_xact_lock(7349021)").await?;
        }
        tx.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'schema_version'")
                .fetch_optional(&mut *tx)
                .await?;
        let current: usize = match current {
            Some(v) => v
                .parse()
                .map_err(|_| Error::Corrupt(format!("schema_version {v:?}")))?,
            None => 0,
        };
        if current > schema::MIGRATIONS.len() {
            return Err(Error::Corrupt(format!(
                "catalog schema version {current} is newer than this program ({})",
                schema::MIGRATIONS.len()
            )));
        }
        for (i, stmts) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            for s in *stmts {
                tx.execute(*s).await?;
            }
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind((i + 1).to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Reads a value from the `meta` table.
    pub async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a value in the `meta` table.
    pub async fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets a value in the `meta` table only if it is absent; returns whether it was set.
    pub async fn meta_set_if_absent(&self, key: &str, value: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Counts a call to a limited operation for `account` in `region` on `day`
    /// (`YYYY-MM-DD`), unless `limit` calls were already counted; returns whether the call
    /// is allowed. Atomic on both engines (one conditional upsert).
    pub async fn count_daily_op(
        &self,
        account: &str,
        region: &str,
        day: &str,
        limit: i64,
    ) -> Result<bool> {
        let row: Option<i64> = sqlx::query_scalar(
            "INSERT INTO daily_ops (account_id, region, day, used) VALUES ($1, $2, $3, 1)
             ON CONFLICT (account_id, region, day)
             DO UPDATE SET used = daily_ops.used + 1 WHERE daily_ops.used < $4
             RETURNING used",
        )
        .bind(account)
        .bind(region)
        .bind(day)
        .bind(limit)
        .fetch_optional(&self.pool)
        .await?;
        Ok(matches!(row, Some(n) if n <= limit))
    }

    /// Calls already counted for `account` in `region` on `day`.
    pub async fn daily_ops_used(&self, account: &str, region: &str, day: &str) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM daily_ops WHERE account_id = $1 AND region = $2 AND day = $3",
        )
        .bind(account)
        .bind(region)
        .bind(day)
        .fetch_optional(&self.pool)
        .await?;
        Ok(n.unwrap_or(0))
    }
}

/// Maps a unique-constraint violation to [`Error::Conflict`] with `what`.
pub(crate) fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> Error {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return Error::Conflict(what());
        }
    }
    Error::Db(e)
}
