//! Windows fixtures built by scripts/fixtures/make-windows.sh at test time (mkntfs, ntfscp,
//! hivexregedit; no mounts), inspected in every format of `FORMATS` and checked against the
//! Tencent rules. Missing tools FAIL (run scripts/install-guest-deps.sh).

mod common;

use common::rules_like;
use ikon_guest::rules::{self, Verdict};
use ikon_guest::{Inspection, TableKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Container formats each fixture is inspected in (qemu-img `-O` names); extend with
/// "qcow2", "vmdk", "vpc" when ikon-disk supports them on this branch.
const FORMATS: &[&str] = &["raw", "qcow2", "vpc", "vmdk", "vhdx"];

fn build(name: &str, env: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("ikon-guest-win-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let raw = dir.join("disk.raw");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/make-windows.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&raw)
        .envs(env.iter().copied())
        .env("TMPDIR", &dir)
        .output()
        .unwrap_or_else(|e| panic!("make-windows.sh: {e}"));
    assert!(
        out.status.success(),
        "make-windows.sh failed (run scripts/install-guest-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, raw)
}

fn inspect_all(dir: &Path, raw: &Path) -> Inspection {
    let mut first: Option<Inspection> = None;
    for fmt in FORMATS {
        let path = if *fmt == "raw" {
            raw.to_path_buf()
        } else {
            let p = dir.join(format!("disk.{fmt}"));
            let st = Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", fmt])
                .arg(raw)
                .arg(&p)
                .status()
                .unwrap_or_else(|e| panic!("qemu-img (run scripts/install-guest-deps.sh): {e}"));
            assert!(st.success(), "qemu-img convert -O {fmt} failed");
            p
        };
        let t = Instant::now();
        let img = ikon_disk::open(&path, &ikon_disk::OpenOptions::default())
            .unwrap_or_else(|e| panic!("open {fmt}: {e}"));
        let ins = ikon_guest::inspect(img.as_ref(), img.info().format.name())
            .unwrap_or_else(|e| panic!("{e}"));
        let el = t.elapsed();
        eprintln!("inspect {} ({fmt}): {el:?}", raw.display());
        assert!(el.as_secs_f64() < 1.0, "inspect took {el:?}");
        if let Some(f) = &first {
            assert_eq!(
                serde_json::to_value(&f.operating_systems).unwrap_or_default(),
                serde_json::to_value(&ins.operating_systems).unwrap_or_default(),
                "format {fmt} inspects differently"
            );
        } else {
            first = Some(ins);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    first.unwrap_or_else(|| panic!("FORMATS empty"))
}

fn verdict(r: &[rules::Rule], id: &str) -> Verdict {
    r.iter()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("rule {id} missing: {r:?}"))
        .verdict
}

fn osinfo(ins: &Inspection) -> Option<&str> {
    ins.operating_systems
        .first()
        .and_then(|o| o.osinfo.as_deref())
}

fn windows(ins: &Inspection) -> ikon_guest::windows::WindowsInfo {
    assert_eq!(ins.partition_table.kind, TableKind::Mbr);
    let os = ins
        .operating_systems
        .first()
        .unwrap_or_else(|| panic!("no OS: {ins:?}"));
    assert_eq!(os.os_type, "windows");
    assert_eq!(os.root_partition, 2);
    os.windows
        .clone()
        .unwrap_or_else(|| panic!("no windows info: {:?}", ins.problems))
}

#[test]
fn server_2012r2_passes() {
    let (d, raw) = build("2012r2", &[]);
    let ins = inspect_all(&d, &raw);
    let w = windows(&ins);
    assert_eq!(w.product_name, "Windows Server 2012 R2 Standard");
    assert_eq!(w.version, "6.3");
    assert_eq!(w.build, "9600");
    assert_eq!(w.edition, "ServerStandard");
    assert!(w.server);
    assert_eq!(w.arch.as_deref(), Some("x86_64"));
    assert_eq!(w.bits, Some(64));
    assert_eq!(w.system_root, "C:\\Windows");
    assert!(w.virtio_storage && w.virtio_net);
    assert_eq!(w.hostname.as_deref(), Some("WIN2012R2-TEST"));
    assert_eq!(osinfo(&ins), Some("win2k12r2"));
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert!(rules::importable(&r), "{r:?}");
}

#[test]
fn server_2008r2_passes() {
    let env = [
        ("PRODUCT", "Windows Server 2008 R2 Enterprise"),
        ("CURVER", "6.1"),
        ("BUILD", "7601"),
        ("EDITION", "ServerEnterprise"),
    ];
    let (d, raw) = build("2008r2", &env);
    let ins = inspect_all(&d, &raw);
    let w = windows(&ins);
    assert_eq!(w.version, "6.1");
    assert_eq!(w.build, "7601");
    assert_eq!(osinfo(&ins), Some("win2k8r2"));
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert!(rules::importable(&r), "{r:?}");
}

#[test]
fn client_edition_fails() {
    // Windows 10 keeps CurrentVersion at 6.3; the version comes from the DWORDs.
    let env = [
        ("PRODUCT", "Windows 10 Pro"),
        ("CURVER", "6.3"),
        ("NTVER", "10.0"),
        ("BUILD", "19045"),
        ("INSTTYPE", "Client"),
        ("EDITION", "Professional"),
    ];
    let (d, raw) = build("client", &env);
    let ins = inspect_all(&d, &raw);
    let w = windows(&ins);
    assert!(!w.server);
    assert_eq!(w.version, "10.0");
    assert_eq!(osinfo(&ins), Some("win10"));
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "os"), Verdict::Fail);
    assert!(!rules::importable(&r));
}

#[test]
fn windows_32bit_fails() {
    let env = [
        ("PE_ARCH", "i386"),
        ("PRODUCT", "Windows Server 2008 Standard"),
        ("CURVER", "6.0"),
        ("BUILD", "6002"),
    ];
    let (d, raw) = build("x86", &env);
    let ins = inspect_all(&d, &raw);
    let w = windows(&ins);
    assert_eq!(w.bits, Some(32));
    assert_eq!(w.arch.as_deref(), Some("i386"));
    assert_eq!(osinfo(&ins), Some("win2k8"));
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "os"), Verdict::Pass);
    assert_eq!(verdict(&r, "arch"), Verdict::Fail);
    assert!(!rules::importable(&r));
}

/// Server 2016, 2019 and 2022 are all NT 10.0: the product name tells them apart.
#[test]
fn server_2019_is_win2k19() {
    let env = [
        ("PRODUCT", "Windows Server 2019 Datacenter"),
        ("CURVER", "6.3"),
        ("NTVER", "10.0"),
        ("BUILD", "17763"),
        ("EDITION", "ServerDatacenter"),
    ];
    let (d, raw) = build("2019", &env);
    let ins = inspect_all(&d, &raw);
    let w = windows(&ins);
    assert_eq!(w.version, "10.0");
    assert!(w.server);
    assert_eq!(osinfo(&ins), Some("win2k19"));
}

#[test]
fn windows_without_virtio_fails() {
    let (d, raw) = build("novirtio", &[("NO_VIRTIO", "1")]);
    let ins = inspect_all(&d, &raw);
    let w = windows(&ins);
    assert!(!w.virtio_storage && !w.virtio_net);
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "virtio"), Verdict::Fail);
    assert!(!rules::importable(&r));
}
