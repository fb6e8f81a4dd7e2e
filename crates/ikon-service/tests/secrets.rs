//! The master key's life on a real catalog: secrets stored in clear by an older version are
//! sealed at the first open; a rotation that committed but died before renaming its file is
//! finished at the next open; one that never committed is discarded.

use ikon_catalog::{ApiKey, Catalog};
use ikon_service::secrets::{open_master_key, pending_path, MasterKey, MASTER_KEY_ID};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ikon-mk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

async fn catalog(d: &std::path::Path) -> Catalog {
    let c = Catalog::connect(&format!("sqlite://{}", d.join("c.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.create_account(&ikon_catalog::Account {
        account_id: "100000000001".into(),
        name: "gina".into(),
        is_admin: false,
        created_at: 1,
        disabled: false,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    c
}

async fn stored(c: &Catalog, id: &str) -> String {
    c.key(id)
        .await
        .ok()
        .flatten()
        .map(|k| k.secret_key)
        .unwrap_or_default()
}

#[tokio::test]
async fn clear_secrets_are_sealed_and_rotations_finish() {
    let d = dir("life");
    let c = catalog(&d).await;
    c.create_key(
        &ApiKey {
            secret_id: "AKIDold".into(),
            secret_key: "clear-secret".into(),
            account_id: "100000000001".into(),
            enabled: true,
        },
        1,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let path = d.join("master.key");
    let k = open_master_key(&path, &c)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    let s = stored(&c, "AKIDold").await;
    assert_eq!(MasterKey::sealed_under(&s), Some(k.id()));
    assert_eq!(k.open("AKIDold", &s).ok().as_deref(), Some("clear-secret"));

    // A rotation that committed (rows and meta under the new key) and died before renaming.
    // (The new key is made as a rotation makes it: a key file written by open_master_key
    // for another catalog, copied to the `.new` path.)
    let new_text = {
        let p = pending_path(&path);
        let tmp = dir("gen");
        let other = tmp.join("k");
        let c2 = catalog(&tmp).await;
        let g = open_master_key(&other, &c2)
            .await
            .unwrap_or_else(|e| panic!("{}", e.message));
        std::fs::copy(&other, &p).unwrap_or_else(|e| panic!("{e}"));
        g
    };
    let resealed = new_text
        .seal("AKIDold", "clear-secret")
        .unwrap_or_else(|e| panic!("{}", e.message));
    c.reseal_keys(
        &[("AKIDold".to_string(), resealed)],
        Some((MASTER_KEY_ID, k.id(), new_text.id())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let k2 = open_master_key(&path, &c)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(k2.id(), new_text.id());
    assert!(!pending_path(&path).exists(), "the rotation was finished");
    assert_eq!(
        k2.open("AKIDold", &stored(&c, "AKIDold").await)
            .ok()
            .as_deref(),
        Some("clear-secret")
    );

    // A rotation that never committed: its file is discarded, the key in force stays.
    std::fs::write(pending_path(&path), format!("{}\n", "cd".repeat(32)))
        .unwrap_or_else(|e| panic!("{e}"));
    let k3 = open_master_key(&path, &c)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(k3.id(), k2.id());
    assert!(!pending_path(&path).exists());
    // A malformed key file is an error, not a new key.
    std::fs::write(&path, "not hex").unwrap_or_else(|e| panic!("{e}"));
    assert!(open_master_key(&path, &c).await.is_err());
    let _ = std::fs::remove_dir_all(&d);
}
