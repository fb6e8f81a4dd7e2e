//! Secrets at rest: API secret keys are sealed under the master key (a 0600 file made at
//! the first start of a catalog), so the catalog's files never hold one; a node with another
//! master key refuses to start; rotation re-seals every key and a running server picks the
//! new key up by itself (a signed call answers with the API's own "not found", not an
//! authentication failure, before and after).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn ikon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ikon"))
}

fn run(args: &[&str]) -> Output {
    Command::new(ikon())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ikon-secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

/// Whether any file of the data directory (catalog, WAL) holds `needle`.
fn catalog_holds(data: &Path, needle: &str) -> bool {
    std::fs::read_dir(data)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("catalog.db"))
        .any(|e| {
            let b = std::fs::read(e.path()).unwrap_or_default();
            b.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &str) -> Server {
    let mut child = Command::new(ikon())
        .args([
            "serve",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:0",
            "--nbd-listen",
            "off",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut url = String::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap_or_default();
        if let Some(u) = line.strip_prefix("ikon listening on ") {
            url = u.trim().to_string();
            break;
        }
    }
    assert!(url.starts_with("http://"), "the server did not start");
    Server(child, url)
}

/// A signed call: the API's own answer (not found) shows the key was accepted.
fn signed_call_accepted(url: &str, id: &str, key: &str) {
    let o = run(&[
        "image",
        "scan",
        "img-00000000",
        "--endpoint",
        url,
        "--secret-id",
        id,
        "--secret-key",
        key,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("InvalidImageId.NotFound"), "{err}");
}

#[test]
fn master_key_seals_rotates_and_refuses_another() {
    let d = tmp();
    let data = d.join("data");
    let ds = data.to_string_lossy().to_string();
    let out = ok(&run(&[
        "admin",
        "--data-dir",
        &ds,
        "account",
        "create",
        "gina",
        "--output",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    let (id, key) = (
        v["SecretId"].as_str().unwrap_or("").to_string(),
        v["SecretKey"].as_str().unwrap_or("").to_string(),
    );
    assert!(!key.is_empty());
    assert!(
        !catalog_holds(&data, &key),
        "the catalog holds a secret key in clear"
    );
    assert!(catalog_holds(&data, &id), "the SecretId is stored as it is");
    let mk = data.join("master.key");
    let mode = std::fs::metadata(&mk)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = ok(&run(&["admin", "--data-dir", &ds, "master-key", "show"]));

    // Another node with its own (new) key file refuses, saying why.
    let other = d.join("other.key");
    let o = run(&[
        "admin",
        "--data-dir",
        &ds,
        "--master-key",
        &other.to_string_lossy(),
        "account",
        "list",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sealed under master key"), "{err}");
    assert!(!other.exists(), "a refused node keeps no key of its own");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&[
        "admin",
        "--data-dir",
        &ds,
        "--master-key",
        &other.to_string_lossy(),
        "account",
        "list",
    ]);
    assert!(!o.status.success(), "a different key must be refused");

    // The running server verifies with the sealed key, before and after a rotation.
    let srv = serve(&ds);
    signed_call_accepted(&srv.1, &id, &key);
    let rotated = ok(&run(&["admin", "--data-dir", &ds, "master-key", "rotate"]));
    assert!(rotated.contains("master key rotated"), "{rotated}");
    let second = ok(&run(&["admin", "--data-dir", &ds, "master-key", "show"]));
    assert_ne!(first, second);
    assert!(!data.join("master.key.new").exists());
    signed_call_accepted(&srv.1, &id, &key);
    // A key made after the rotation by the running server's side works too.
    let out = ok(&run(&[
        "admin",
        "--data-dir",
        &ds,
        "account",
        "create",
        "hal",
        "--output",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    signed_call_accepted(
        &srv.1,
        v["SecretId"].as_str().unwrap_or(""),
        v["SecretKey"].as_str().unwrap_or(""),
    );
    assert!(!catalog_holds(
        &data,
        v["SecretKey"].as_str().unwrap_or("-")
    ));
    drop(srv);
    let _ = std::fs::remove_dir_all(&d);
}
