//! Linux fixtures built by scripts/fixtures/make-linux.sh at test time, inspected through
//! `ikon_disk::open` in every container format listed in `FORMATS`, then checked against
//! the Tencent / Alibaba rules. Missing tools make the tests FAIL (run
//! scripts/install-guest-deps.sh).

mod common;

use common::rules_like;
use ikon_guest::rules::{self, RulesConfig, Verdict};
use ikon_guest::{FsType, Inspection, TableKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Container formats each fixture is inspected in (qemu-img `-O` names). Only raw is
/// supported by ikon-disk on this branch; extend with "qcow2", "vmdk", "vpc", "vhdx" when
/// those formats are merged. Nothing is skipped: every listed format must open.
const FORMATS: &[&str] = &["raw", "qcow2", "vpc", "vmdk", "vhdx"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn need(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is missing: run scripts/install-guest-deps.sh");
}

/// Build a fixture into a fresh temp dir; returns (dir, raw path).
fn build(name: &str, distro: &str, env: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    for t in ["mkfs.ext4", "debugfs", "sfdisk", "mkswap", "qemu-img"] {
        need(t);
    }
    let dir = std::env::temp_dir().join(format!("ikon-guest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let raw = dir.join("disk.raw");
    let out = Command::new("bash")
        .arg(repo().join("scripts/fixtures/make-linux.sh"))
        .arg(&raw)
        .arg(distro)
        .envs(env.iter().copied())
        .env("TMPDIR", &dir)
        .output()
        .unwrap_or_else(|e| panic!("run make-linux.sh: {e}"));
    assert!(
        out.status.success(),
        "make-linux.sh {distro} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, raw)
}

/// Inspect `raw` converted into every format of `FORMATS`; asserts all give the same
/// answer and returns the raw one.
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
                .unwrap_or_else(|e| panic!("qemu-img: {e}"));
            assert!(st.success(), "qemu-img convert -O {fmt} failed");
            p
        };
        let t = Instant::now();
        let img = ikon_disk::open(&path, &ikon_disk::OpenOptions::default())
            .unwrap_or_else(|e| panic!("open {fmt}: {e}"));
        let name = img.info().format.name();
        let ins = ikon_guest::inspect(img.as_ref(), name)
            .unwrap_or_else(|e| panic!("inspect {fmt}: {e}"));
        let el = t.elapsed();
        assert!(el.as_secs_f64() < 1.0, "inspect of {fmt} took {el:?}");
        eprintln!("inspect {} ({fmt}): {el:?}", raw.display());
        if let Some(f) = &first {
            let a = serde_json::to_value(&f.operating_systems).unwrap_or_default();
            let b = serde_json::to_value(&ins.operating_systems).unwrap_or_default();
            assert_eq!(a, b, "format {fmt} inspects differently from raw");
        } else {
            first = Some(ins);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    first.unwrap_or_else(|| panic!("FORMATS is empty"))
}

fn verdict(rules: &[rules::Rule], id: &str) -> Verdict {
    rules
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("rule {id} missing in {rules:?}"))
        .verdict
}

struct Expect<'a> {
    distro: &'a str,
    version: &'a str,
    kernel_prefix: &'a str,
    hostname: &'a str,
    /// libosinfo short id, as libguestfs would give it.
    osinfo: &'a str,
}

fn check_linux(ins: &Inspection, e: &Expect) -> ikon_guest::LinuxInfo {
    assert_eq!(ins.partition_table.kind, TableKind::Mbr);
    assert!(!ins.partial, "unexpected problems: {:?}", ins.problems);
    let os = ins
        .operating_systems
        .first()
        .unwrap_or_else(|| panic!("no OS found: {ins:?}"));
    assert_eq!(os.os_type, "linux");
    assert_eq!(os.root_partition, 1);
    assert_eq!(os.osinfo.as_deref(), Some(e.osinfo));
    let l = os.linux.clone().unwrap_or_else(|| panic!("no linux info"));
    assert_eq!(l.distro, e.distro);
    assert_eq!(l.version, e.version);
    assert_eq!(l.arch.as_deref(), Some(std::env::consts::ARCH));
    assert_eq!(l.bits, Some(64));
    assert!(
        l.kernels.iter().any(|k| k.starts_with(e.kernel_prefix)),
        "kernels {:?}",
        l.kernels
    );
    assert_eq!(
        l.fstab_root.as_deref(),
        Some("UUID=6a1c7e4e-0f7d-4e3a-9a3b-2d7c1e0f0a01")
    );
    assert_eq!(l.hostname.as_deref(), Some(e.hostname));
    assert!(ins
        .filesystems
        .iter()
        .any(|f| f.info.fs_type == FsType::Swap));
    l
}

fn pass_case(name: &str, distro: &str, e: &Expect) -> ikon_guest::LinuxInfo {
    let (dir, raw) = build(name, distro, &[]);
    let ins = inspect_all(&dir, &raw);
    let l = check_linux(&ins, e);
    assert!(l.virtio_blk && l.virtio_net);
    assert_eq!(l.nics, vec!["eth0".to_string()]);
    assert!(!l.ipv6);
    for cfg in [rules_like("tencent", false), rules_like("alibaba", true)] {
        let r = rules::evaluate(&ins, &cfg);
        assert!(
            rules::importable(&r),
            "{distro} should be importable under {}: {r:?}",
            cfg.name
        );
    }
    l
}

#[test]
fn ubuntu2204_passes() {
    let l = pass_case(
        "u2204",
        "ubuntu2204",
        &Expect {
            distro: "ubuntu",
            version: "22.04",
            kernel_prefix: "5.15.0-91",
            hostname: "ubuntu2204-test",
            osinfo: "ubuntu22.04",
        },
    );
    assert!(l.cloud_init);
}

#[test]
fn centos7_passes() {
    let l = pass_case(
        "c7",
        "centos7",
        &Expect {
            distro: "centos",
            version: "7",
            kernel_prefix: "3.10.0",
            hostname: "centos7-test",
            osinfo: "centos7.0",
        },
    );
    assert!(!l.byol_required);
}

#[test]
fn debian12_passes() {
    pass_case(
        "d12",
        "debian12",
        &Expect {
            distro: "debian",
            version: "12",
            kernel_prefix: "6.1.0",
            hostname: "debian12-test",
            osinfo: "debian12",
        },
    );
}

#[test]
fn opensuse_passes() {
    pass_case(
        "os15",
        "opensuse15",
        &Expect {
            distro: "opensuse",
            version: "15.5",
            kernel_prefix: "5.14.21",
            hostname: "opensuse-test",
            osinfo: "opensuse15.5",
        },
    );
}

#[test]
fn sles15_os_release_symlink_passes() {
    pass_case(
        "sles15",
        "sles15",
        &Expect {
            distro: "sles",
            version: "15.5",
            kernel_prefix: "5.14.21",
            hostname: "sles-test",
            osinfo: "sle15sp5",
        },
    );
}

#[test]
fn fedora_coreos_passes() {
    pass_case(
        "fcos",
        "fcos39",
        &Expect {
            distro: "fcos",
            version: "39",
            kernel_prefix: "6.5.6",
            hostname: "fcos-test",
            osinfo: "fedora39",
        },
    );
}

#[test]
fn sles11_suse_release_fallback() {
    let (dir, raw) = build("sles11", "sles11", &[]);
    let ins = inspect_all(&dir, &raw);
    let l = check_linux(
        &ins,
        &Expect {
            distro: "sles",
            version: "11.4",
            kernel_prefix: "3.0.101",
            hostname: "sles11-test",
            osinfo: "sles11sp4",
        },
    );
    assert!(l.virtio_blk);
}

#[test]
fn rhel8_needs_byol_warning() {
    let (dir, raw) = build("rhel8", "rhel8", &[]);
    let ins = inspect_all(&dir, &raw);
    let l = check_linux(
        &ins,
        &Expect {
            distro: "rhel",
            version: "8.9",
            kernel_prefix: "4.18.0",
            hostname: "rhel8-test",
            osinfo: "rhel8.9",
        },
    );
    assert!(l.byol_required);
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "byol"), Verdict::Warn);
    assert!(rules::importable(&r));
}

#[test]
fn gpt_disk_fails() {
    let (dir, raw) = build("gpt", "ubuntu2204", &[("TABLE", "gpt")]);
    let ins = inspect_all(&dir, &raw);
    assert_eq!(ins.partition_table.kind, TableKind::Gpt);
    assert!(ins.problems.is_empty(), "{:?}", ins.problems);
    assert_eq!(ins.partition_table.partitions.len(), 2);
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "partition-table"), Verdict::Fail);
    assert_eq!(verdict(&r, "os"), Verdict::Pass);
    assert!(!rules::importable(&r));
}

#[test]
fn xfs_root_fails() {
    need("mkfs.xfs");
    let (dir, raw) = build(
        "xfs",
        "centos7",
        &[("ROOTFS", "xfs"), ("DISK_SIZE", "400M")],
    );
    let ins = inspect_all(&dir, &raw);
    assert_eq!(
        ins.filesystems.first().map(|f| f.info.fs_type),
        Some(FsType::Xfs)
    );
    // Ikon does not read xfs: no distro, so no libosinfo id.
    assert_eq!(
        ins.operating_systems.first().map(|o| o.osinfo.clone()),
        Some(None)
    );
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "root-fs"), Verdict::Fail);
    assert!(!rules::importable(&r));
}

#[test]
fn ext3_root_is_ext3_and_passes() {
    let (dir, raw) = build("ext3", "centos7", &[("ROOTFS", "ext3")]);
    let ins = inspect_all(&dir, &raw);
    assert_eq!(
        ins.filesystems.first().map(|f| f.info.fs_type),
        Some(FsType::Ext3)
    );
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert!(rules::importable(&r), "{r:?}");
}

#[test]
fn sixty_gib_disk_fails() {
    let (dir, raw) = build("60g", "debian12", &[("DISK_SIZE", "60G")]);
    let ins = inspect_all(&dir, &raw);
    assert_eq!(ins.virtual_size, 60 << 30);
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "disk-size"), Verdict::Fail);
    assert!(!rules::importable(&r));
}

#[test]
fn no_virtio_fails() {
    let (dir, raw) = build("novirtio", "ubuntu2204", &[("NO_VIRTIO", "1")]);
    let ins = inspect_all(&dir, &raw);
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "virtio"), Verdict::Fail);
    assert!(!rules::importable(&r));
}

#[test]
fn two_nics_and_ipv6_warn() {
    let (dir, raw) = build("nics", "ubuntu2204", &[("EXTRA_NIC", "1"), ("IPV6", "1")]);
    let ins = inspect_all(&dir, &raw);
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert_eq!(verdict(&r, "nics"), Verdict::Warn);
    assert_eq!(verdict(&r, "ipv6"), Verdict::Warn);
    assert!(rules::importable(&r));
}

#[test]
fn rules_config_deserializes_what_it_is_given() {
    // The values are the policy's; keys left out are empty (nothing is accepted).
    let cfg: RulesConfig =
        serde_json::from_str(r#"{"max_virtual_size": 1024}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.max_virtual_size, 1024);
    assert!(cfg.formats.is_empty() && cfg.linux_distros.is_empty());
}

/// A real Debian 12 root tree from Debian's packages (debootstrap, with the real
/// linux-image-amd64: vmlinuz, config, virtio modules, initrd), cached under
/// `.cache/debootstrap`, on an MBR disk, inspected in every format.
#[test]
fn debootstrapped_debian12_with_real_kernel_passes() {
    need("debootstrap");
    let tree = repo().join(".cache/debootstrap/bookworm");
    let st = Command::new("bash")
        .arg(repo().join("scripts/fixtures/make-debootstrap-tree.sh"))
        .arg(&tree)
        .status()
        .unwrap_or_else(|e| panic!("make-debootstrap-tree.sh: {e}"));
    assert!(st.success(), "make-debootstrap-tree.sh failed");
    for t in ["mkfs.ext4", "sfdisk", "mkswap", "qemu-img"] {
        need(t);
    }
    let dir = std::env::temp_dir().join(format!("ikon-guest-{}-debootstrap", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let raw = dir.join("disk.raw");
    let out = Command::new("bash")
        .arg(repo().join("scripts/fixtures/make-linux.sh"))
        .arg(&raw)
        .arg("debian12")
        .arg(&tree)
        .env("ROOT_MIB", "400")
        .env("DISK_SIZE", "1G")
        .env("TMPDIR", &dir)
        .output()
        .unwrap_or_else(|e| panic!("make-linux.sh: {e}"));
    assert!(
        out.status.success(),
        "make-linux.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ins = inspect_all(&dir, &raw);
    let l = check_linux(
        &ins,
        &Expect {
            distro: "debian",
            version: "12",
            kernel_prefix: "6.",
            hostname: "debian-bookworm-real",
            osinfo: "debian12",
        },
    );
    assert!(l.virtio_blk && l.virtio_net, "real virtio modules: {l:?}");
    let r = rules::evaluate(&ins, &rules_like("tencent", false));
    assert!(
        rules::importable(&r),
        "a real Debian 12 should be importable: {r:?}"
    );
}
