//! The registry reader against hives built by hivex (scripts/fixtures/make-hive.sh), plus
//! hostile hives (cyclic ri lists, truncated, garbage). Missing tools FAIL the test (run
//! scripts/install-guest-deps.sh).

use ikon_guest::regf::{Hive, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

static SEQ: AtomicU32 = AtomicU32::new(0);

fn build(name: &str, prefix: &str, reg: &str) -> Vec<u8> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("ikon-guest-reg-{}-{name}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let regf = dir.join("in.reg");
    std::fs::write(&regf, reg).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("hive");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/make-hive.sh");
    let o = Command::new("bash")
        .arg(script)
        .arg(&out)
        .arg(prefix)
        .arg(&regf)
        .output()
        .unwrap_or_else(|e| panic!("make-hive.sh: {e}"));
    assert!(
        o.status.success(),
        "make-hive.sh failed (run scripts/install-guest-deps.sh): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let data = std::fs::read(&out).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    data
}

fn software() -> Vec<u8> {
    let mut reg = String::from("Windows Registry Editor Version 5.00\n\n");
    for k in ["Microsoft", "Microsoft\\Windows NT"] {
        let _ = write!(reg, "[HKEY_LOCAL_MACHINE\\SOFTWARE\\{k}]\n\n");
    }
    reg.push_str(
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion]\n\
         \"ProductName\"=\"Windows Server 2012 R2 Standard\"\n\
         \"CurrentVersion\"=\"6.3\"\n\
         \"CurrentBuildNumber\"=\"9600\"\n\
         \"InstallDate\"=dword:52a1b2c3\n\
         \"Multi\"=hex(7):61,00,00,00,62,00,00,00,00,00\n\n",
    );
    // Many subkeys so hivex writes large lh lists.
    for i in 0..600 {
        let _ = write!(
            reg,
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Many{i:04}]\n\"V\"=\"{i}\"\n\n"
        );
    }
    build("sw", "HKEY_LOCAL_MACHINE\\SOFTWARE", &reg)
}

#[test]
fn reads_current_version_values() {
    let h = Hive::new(software()).unwrap_or_else(|e| panic!("{e}"));
    let k = h
        .open_key("Microsoft\\Windows NT\\CurrentVersion")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("CurrentVersion missing"));
    let v = |n: &str| h.value(k, n).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v("productname"),
        Some(Value::String("Windows Server 2012 R2 Standard".into()))
    );
    assert_eq!(v("CurrentVersion"), Some(Value::String("6.3".into())));
    assert_eq!(v("CurrentBuildNumber"), Some(Value::String("9600".into())));
    assert_eq!(v("InstallDate"), Some(Value::Dword(0x52a1_b2c3)));
    assert_eq!(
        v("Multi"),
        Some(Value::MultiString(vec!["a".into(), "b".into()]))
    );
    assert_eq!(v("Absent"), None);
    let root = h.root().unwrap_or_else(|e| panic!("{e}"));
    let subs = h.subkeys(root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(subs.len(), 601);
    let k = h
        .open_key("many0599")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("Many0599"));
    assert_eq!(
        h.value(k, "V").unwrap_or_else(|e| panic!("{e}")),
        Some(Value::String("599".into()))
    );
}

#[test]
fn cyclic_subkey_list_is_an_error_not_a_hang() {
    let mut d = software();
    let h = Hive::new(d.clone()).unwrap_or_else(|e| panic!("{e}"));
    let root = h.root().unwrap_or_else(|e| panic!("{e}"));
    drop(h);
    // Root nk: subkey list offset at payload +28; rewrite that list as an ri pointing to itself.
    let root_off = u32::from_le_bytes([d[0x24], d[0x25], d[0x26], d[0x27]]) as usize;
    let _ = root;
    let nk = 0x1000 + root_off + 4;
    let list = u32::from_le_bytes([d[nk + 28], d[nk + 29], d[nk + 30], d[nk + 31]]);
    let l = 0x1000 + list as usize + 4;
    d[l..l + 2].copy_from_slice(b"ri");
    d[l + 2..l + 4].copy_from_slice(&1u16.to_le_bytes());
    d[l + 4..l + 8].copy_from_slice(&list.to_le_bytes());
    let h = Hive::new(d).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let r = h.open_key("Microsoft");
    assert!(r.is_err(), "cyclic list accepted: {r:?}");
    assert!(t.elapsed().as_secs_f64() < 2.0);
}

#[test]
fn garbage_and_truncated_hives_are_errors() {
    assert!(Hive::new(vec![0u8; 100]).is_err());
    let mut d = software();
    d.truncate(0x1010);
    if let Ok(h) = Hive::new(d) {
        assert!(h.root().is_err() || h.open_key("Microsoft\\Windows NT").is_err());
    }
    let mut d = software();
    for (i, b) in d.iter_mut().enumerate().skip(0x1000) {
        if i % 7 == 0 {
            *b ^= 0x5a;
        }
    }
    if let Ok(h) = Hive::new(d) {
        let _ = h.open_key("Microsoft\\Windows NT\\CurrentVersion");
    }
}
