//! What this crate's integration tests share: a service on a fresh SQLite catalog and local
//! chunk store, with the catalog beneath it kept by the test (the service keeps its own
//! private; tests look at rows directly).

use ikon_service::{ids, Config, Service};
use std::path::PathBuf;

/// The service under test and the catalog beneath it.
pub struct Env {
    pub svc: Service,
    pub cat: ikon_catalog::Catalog,
    /// The data directory (catalog file and chunks).
    #[allow(dead_code)]
    pub dir: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.svc
    }
}

impl Env {
    /// The catalog beneath the service.
    pub fn catalog(&self) -> &ikon_catalog::Catalog {
        &self.cat
    }
}

/// A service with the default policy in a fresh directory named after `what`.
pub async fn service(what: &str) -> Env {
    let dir = std::env::temp_dir().join(format!("ikon-{what}-{}", ids::uuid4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cat = ikon_catalog::Catalog::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let svc = Service::new(cat.clone(), Config::default(), store);
    Env { svc, cat, dir }
}
