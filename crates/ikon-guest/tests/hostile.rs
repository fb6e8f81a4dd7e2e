//! Hostile input: overlapping / past-end partition entries, looping extended chains, absurd
//! GPT arrays, corrupt ext superblocks, symlink loops and long chains, huge directories.
//! Each must give a clear error or a partial result marked as such, fast, never a panic;
//! the hygiene scan (`ikon_guest::scan`) runs on every inspected case too, and has cases of
//! its own (an sshd_config that includes itself, a directory symlink loop in a home).

use ikon_disk::{BlockDevice, ErrorKind, MemStorage, OpenContext, OpenOptions};
use ikon_guest::scan::{self, Scan, ScanConfig};
use ikon_guest::vfs::GuestFs;
use ikon_guest::{partition, Inspection, TableKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn dev(data: Vec<u8>) -> Box<dyn ikon_disk::DiskImage> {
    let o = OpenOptions {
        format: Some(ikon_disk::Format::Raw),
        ..OpenOptions::default()
    };
    ikon_disk::open_storage(Arc::new(MemStorage::new(data)), &OpenContext::new(o, None))
        .unwrap_or_else(|e| panic!("open: {e}"))
}

fn entry(d: &mut [u8], base: usize, i: usize, ty: u8, start: u32, size: u32) {
    let e = base + 446 + i * 16;
    d[e + 4] = ty;
    d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
    d[e + 12..e + 16].copy_from_slice(&size.to_le_bytes());
    d[base + 510] = 0x55;
    d[base + 511] = 0xAA;
}

fn fast<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    r
}

/// Inspects `img` and scans what was found, each fast and without panicking.
fn inspect_and_scan(img: &dyn BlockDevice) -> (Inspection, Scan) {
    let ins = fast(|| ikon_guest::inspect(img, "raw")).unwrap_or_else(|e| panic!("{e}"));
    let s = fast(|| scan::scan(img, &ins, &ScanConfig::default()));
    (ins, s)
}

#[test]
fn overlapping_and_past_end_partitions_are_reported() {
    let mut d = vec![0u8; 1 << 20];
    entry(&mut d, 0, 0, 0x83, 64, 512);
    entry(&mut d, 0, 1, 0x83, 300, 100);
    entry(&mut d, 0, 2, 0x83, 1_000_000, 4_000_000_000);
    let img = dev(d);
    let (ins, _) = inspect_and_scan(img.as_ref());
    assert_eq!(ins.partition_table.kind, TableKind::Mbr);
    assert!(ins.partial);
    assert!(
        ins.problems.iter().any(|p| p.contains("overlap")),
        "{:?}",
        ins.problems
    );
    assert!(
        ins.problems.iter().any(|p| p.contains("past the end")),
        "{:?}",
        ins.problems
    );
}

#[test]
fn looping_extended_chain_is_bounded() {
    let mut d = vec![0u8; 1 << 20];
    entry(&mut d, 0, 0, 0x05, 100, 1000);
    entry(&mut d, 100 * 512, 0, 0x83, 10, 10);
    entry(&mut d, 100 * 512, 1, 0x05, 100, 10);
    entry(&mut d, 200 * 512, 0, 0x83, 10, 10);
    entry(&mut d, 200 * 512, 1, 0x05, 100, 10);
    let img = dev(d);
    let t = fast(|| partition::read_table(img.as_ref())).unwrap_or_else(|e| panic!("{e}"));
    inspect_and_scan(img.as_ref());
    assert!(
        t.problems.iter().any(|p| p.contains("loops")),
        "{:?}",
        t.problems
    );
    assert_eq!(t.partitions.iter().filter(|p| p.number >= 5).count(), 2);
}

#[test]
fn absurd_gpt_array_is_refused() {
    let mut d = vec![0u8; 1 << 20];
    entry(&mut d, 0, 0, 0xEE, 1, 2047);
    d[512..520].copy_from_slice(b"EFI PART");
    d[512 + 12..512 + 16].copy_from_slice(&92u32.to_le_bytes());
    d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
    d[512 + 80..512 + 84].copy_from_slice(&50_000_000u32.to_le_bytes());
    d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
    let img = dev(d);
    let (ins, _) = inspect_and_scan(img.as_ref());
    assert_eq!(ins.partition_table.kind, TableKind::Gpt);
    assert!(ins.partial);
    assert!(
        ins.problems.iter().any(|p| p.contains("out of bounds")),
        "{:?}",
        ins.problems
    );
}

#[test]
fn gpt_entry_past_end_and_bad_crc() {
    let mut d = vec![0u8; 1 << 20];
    entry(&mut d, 0, 0, 0xEE, 1, 2047);
    d[512..520].copy_from_slice(b"EFI PART");
    d[512 + 12..512 + 16].copy_from_slice(&92u32.to_le_bytes());
    d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
    d[512 + 80..512 + 84].copy_from_slice(&4u32.to_le_bytes());
    d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
    let e = 1024;
    d[e] = 1;
    d[e + 32..e + 40].copy_from_slice(&34u64.to_le_bytes());
    d[e + 40..e + 48].copy_from_slice(&u64::MAX.to_le_bytes());
    let img = dev(d);
    let t = fast(|| partition::read_table(img.as_ref())).unwrap_or_else(|e| panic!("{e}"));
    inspect_and_scan(img.as_ref());
    assert!(
        t.problems.iter().any(|p| p.contains("CRC")),
        "{:?}",
        t.problems
    );
    assert!(
        t.problems
            .iter()
            .any(|p| p.contains("absurd") || p.contains("past the end")),
        "{:?}",
        t.problems
    );
}

#[test]
fn corrupt_ext_superblock_is_a_marked_problem() {
    let mut d = vec![0u8; 1 << 20];
    d[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
    d[1024 + 24..1024 + 28].copy_from_slice(&99u32.to_le_bytes());
    d[1024..1028].copy_from_slice(&u32::MAX.to_le_bytes());
    let img = dev(d);
    let (ins, _) = inspect_and_scan(img.as_ref());
    assert!(ins.partial);
    assert!(ins.operating_systems.is_empty());
    // A sane superblock whose inode table points far past the end.
    let mut d = vec![0u8; 1 << 20];
    d[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
    d[1024..1028].copy_from_slice(&1000u32.to_le_bytes());
    d[1024 + 40..1024 + 44].copy_from_slice(&1000u32.to_le_bytes());
    d[2048 + 8..2048 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let img = dev(d);
    let (ins, _) = inspect_and_scan(img.as_ref());
    assert!(ins.operating_systems.is_empty());
}

/// A 64 MiB ext4 made from `tree` with mkfs.ext4 -d, as `dir`/fs.img.
fn mkfs(dir: &Path, tree: &Path) -> PathBuf {
    let fs = dir.join("fs.img");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("PATH=$PATH:/usr/sbin:/sbin; truncate -s 64M {0} && mkfs.ext4 -q -F -N 32768 -d {1} {0}", fs.display(), tree.display()))
        .output()
        .unwrap_or_else(|e| panic!("mkfs.ext4 (run scripts/install-guest-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "mkfs.ext4 failed (run scripts/install-guest-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs
}

/// A real ext4 (mkfs.ext4 -d) with symlink loops, a 60-link chain and a 5000-entry dir.
#[test]
fn symlink_loops_chains_and_huge_dirs_are_bounded() {
    let dir = std::env::temp_dir().join(format!("ikon-guest-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = dir.join("tree");
    let mk = |p: &Path| std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
    mk(&t.join("etc"));
    mk(&t.join("usr/bin"));
    mk(&t.join("big"));
    let ln = |a: &str, b: &Path| std::os::unix::fs::symlink(a, b).unwrap_or_else(|e| panic!("{e}"));
    ln("usr/bin", &t.join("bin"));
    ln("/loop/a", &t.join("etc/os-release"));
    mk(&t.join("loop"));
    ln("b", &t.join("loop/a"));
    ln("a", &t.join("loop/b"));
    mk(&t.join("chain"));
    for i in 0..60 {
        ln(&format!("c{}", i + 1), &t.join(format!("chain/c{i}")));
    }
    std::fs::write(t.join("chain/c60"), b"end").unwrap_or_else(|e| panic!("{e}"));
    for i in 0..5000 {
        std::fs::write(t.join(format!("big/f{i}")), b"").unwrap_or_else(|e| panic!("{e}"));
    }
    let fs = mkfs(&dir, &t);
    let img = ikon_disk::open(&fs, &OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (ins, _) = inspect_and_scan(img.as_ref());
    assert_eq!(ins.partition_table.kind, TableKind::None);
    let l = ins
        .operating_systems
        .first()
        .and_then(|o| o.linux.clone())
        .unwrap_or_else(|| panic!("{ins:?}"));
    assert_eq!(l.distro, "unknown");
    let e4 =
        ikon_guest::ext4::Ext4::open(img.as_ref(), 0, img.len()).unwrap_or_else(|e| panic!("{e}"));
    fast(|| {
        let err = e4
            .resolve("/loop/a", true)
            .err()
            .unwrap_or_else(|| panic!("loop resolved"));
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        let err = e4
            .resolve("/chain/c0", true)
            .err()
            .unwrap_or_else(|| panic!("60-hop chain resolved"));
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        assert!(e4.read_file("/chain/c30", 10).ok().flatten().is_some());
        let long = "/a".repeat(5000);
        assert_eq!(
            e4.resolve(&long, true).err().map(|e| e.kind()),
            Some(ErrorKind::LimitExceeded)
        );
        assert_eq!(
            e4.list_dir("/big", 1000).map(|v| v.len()).unwrap_or(0),
            1000
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scan's own hostile input: an sshd_config that includes itself (the recursion stops at
/// sshd's include depth with a problem, like sshd refusing to start) and directory symlinks
/// that loop (/root/a -> /root, /root/b -> ., /home/loop -> /home, /home/self -> self), which
/// the private key walk must not follow: the one real key is found once.
#[test]
fn scan_stops_self_including_sshd_config_and_home_symlink_loops() {
    let dir = std::env::temp_dir().join(format!("ikon-guest-hostile-scan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = dir.join("tree");
    let mk = |p: &Path| std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
    let write = |p: &str, data: &str| {
        std::fs::write(t.join(p), data).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let ln = |a: &str, b: &str| {
        std::os::unix::fs::symlink(a, t.join(b)).unwrap_or_else(|e| panic!("{b}: {e}"))
    };
    for d in ["etc/ssh", "usr/bin", "root/.ssh", "home"] {
        mk(&t.join(d));
    }
    ln("usr/bin", "bin");
    write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    write(
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config\nPermitRootLogin yes\n",
    );
    write(
        "root/.ssh/id_rsa",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEtest\n-----END RSA PRIVATE KEY-----\n",
    );
    ln("/root", "root/a");
    ln(".", "root/b");
    ln("/home", "home/loop");
    ln("self", "home/self");
    let fs = mkfs(&dir, &t);
    let img = ikon_disk::open(&fs, &OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (ins, s) = inspect_and_scan(img.as_ref());
    assert_eq!(ins.operating_systems.len(), 1, "{ins:?}");
    assert_eq!(s.scanned, ["linux"]);
    assert!(
        s.problems
            .iter()
            .any(|p| p.starts_with("sshd configuration") && p.contains("nesting")),
        "{:?}",
        s.problems
    );
    let found: Vec<(&str, &str)> = s
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("private-key", "/root/.ssh/id_rsa"),
            ("no-first-boot-agent", "/etc/cloud/cloud.cfg")
        ],
        "{s:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Homes crowded with long names: each home is listed once (not once per check or per
/// entry), and
/// the scan's reads stay far below its budget.
#[test]
fn scan_reads_of_crowded_homes_are_bounded() {
    let dir = std::env::temp_dir().join(format!("ikon-guest-hostile-crowd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = dir.join("tree");
    for d in ["etc", "usr/bin", "root", "home/a", "home/b"] {
        std::fs::create_dir_all(t.join(d)).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(t.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n")
        .unwrap_or_else(|e| panic!("{e}"));
    for home in ["root", "home/a", "home/b"] {
        for i in 0..2000 {
            let name = format!("{i:05}-{}", "x".repeat(200));
            std::fs::write(t.join(home).join(name), b"").unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let fs = mkfs(&dir, &t);
    let img = ikon_disk::open(&fs, &OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let counted = ikon_disk::CountingDevice::new(img.as_ref());
    let (_, s) = inspect_and_scan(&counted);
    assert_eq!(s.scanned, ["linux"]);
    eprintln!("crowded homes: {} bytes read", counted.bytes());
    assert!(counted.bytes() < 16 << 20, "{} bytes read", counted.bytes());
    let _ = std::fs::remove_dir_all(&dir);
}
