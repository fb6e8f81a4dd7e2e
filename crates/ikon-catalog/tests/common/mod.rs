//! Helpers shared by the catalog suites: a fresh SQLite file and a fresh PostgreSQL database
//! (from `IKON_TEST_DATABASE_URL`; the tests fail, not skip, without it) per test, and the
//! `both!` macro that runs a test body on each engine.
#![allow(dead_code)]

use ikon_catalog::Catalog;
use sqlx::Executor;
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{}", std::process::id(), t % 1_000_000_000)
}

pub async fn sqlite() -> Catalog {
    let dir = std::env::temp_dir().join(unique("ikon_cat"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("sqlite://{}", dir.join("catalog.db").display());
    Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("sqlite: {e}"))
}

pub async fn postgres() -> Catalog {
    let base = std::env::var("IKON_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("IKON_TEST_DATABASE_URL is not set: the catalog suite must also run on PostgreSQL (scripts/start-postgres.sh starts one)")
    });
    let admin = Catalog::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("postgres {base}: {e}"));
    let db = unique("t");
    admin
        .pool()
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap_or_else(|e| panic!("create database: {e}"));
    let (prefix, _) = base
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("bad url {base}"));
    Catalog::connect(&format!("{prefix}/{db}"))
        .await
        .unwrap_or_else(|e| panic!("postgres: {e}"))
}

/// Runs `f` on a fresh catalog of each engine.
#[macro_export]
macro_rules! both {
    ($name:ident, $f:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $f($crate::common::sqlite().await).await;
            $f($crate::common::postgres().await).await;
        }
    };
}
