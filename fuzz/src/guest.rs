//! Bodies of the ikon-guest fuzz targets. The disk ones take the input as a raw disk (opened
//! from memory through ikon-disk, as every image is inspected); `registry` takes it as a
//! hive file. Everything must return, without panicking, in bounded time and memory.
//!
//! NTFS goes through the third-party `ntfs` crate, which ikon-guest runs under
//! `catch_unwind` (see `ikon_guest::inspect` and `ikon_guest::scan::scan`); the `ntfs` body
//! does the same, and only panics raised inside that crate are tolerated (see
//! `harness::contained_by_design`).
//!
//! Shared with `crates/ikon-guest/tests/fuzz_regressions.rs` (through `#[path]`).

use ikon_disk::{BlockDevice, DiskImage, Format, MemStorage, OpenContext, OpenOptions};
use ikon_guest::regf::Hive;
use ikon_guest::scan::{self, ScanConfig};
use ikon_guest::vfs::{FileKind, GuestFs};
use ikon_guest::{ext4, fsid, linux, ntfsfs, partition, rules, windows, RulesConfig};
use std::collections::VecDeque;
use std::sync::Arc;

/// Every ikon-guest target: (cargo-fuzz binary, body).
pub const TARGETS: &[crate::harness::Target] = &[
    ("partition", partition),
    ("inspect", inspect),
    ("scan", scan),
    ("ext4", ext4),
    ("ntfs", ntfs),
    ("registry", registry),
];

/// Nodes one filesystem walk visits.
const WALK_NODES: usize = 256;
/// Entries listed per directory in a walk.
const WALK_LIST: usize = 64;
/// Bytes read per file in a walk.
const WALK_READ: u64 = 64 << 10;

fn raw_disk(data: &[u8]) -> Option<Box<dyn DiskImage>> {
    let o = OpenOptions {
        format: Some(Format::Raw),
        ..OpenOptions::default()
    };
    ikon_disk::open_storage(
        Arc::new(MemStorage::new(data.to_vec())),
        &OpenContext::new(o, None),
    )
    .ok()
}

/// Partition tables (MBR with extended chains, GPT with its CRCs and backup), then the
/// filesystem signature of every partition, as inspection reads them.
pub fn partition(data: &[u8]) {
    let Some(img) = raw_disk(data) else { return };
    let dev: &dyn BlockDevice = img.as_ref();
    let Ok(table) = partition::read_table(dev) else {
        return;
    };
    for p in table.partitions.iter().take(128) {
        if !partition::is_extended(p) {
            let size = p.size.min(dev.len().saturating_sub(p.offset));
            let _ = fsid::identify(dev, p.offset, size);
        }
    }
    let _ = fsid::identify(dev, 0, dev.len());
}

/// `ikon_guest::inspect` on a raw disk (partitions, filesystems, Linux and Windows
/// detection, osinfo ids), then the import rules over what it found.
pub fn inspect(data: &[u8]) {
    let Some(img) = raw_disk(data) else { return };
    if let Ok(ins) = ikon_guest::inspect(img.as_ref(), "raw") {
        let _ = rules::evaluate(&ins, &RulesConfig::default());
    }
}

/// The hygiene scan, `ikon_guest::scan::scan`, over what `inspect` found on a raw disk.
pub fn scan(data: &[u8]) {
    let Some(img) = raw_disk(data) else { return };
    if let Ok(ins) = ikon_guest::inspect(img.as_ref(), "raw") {
        let _ = scan::scan(img.as_ref(), &ins, &ScanConfig::default());
    }
}

/// A bounded breadth-first walk: list directories, stat, read files and symlinks.
fn walk<F: GuestFs>(fs: &F) {
    let mut todo = VecDeque::from([fs.root()]);
    let mut seen = 0usize;
    while let Some(n) = todo.pop_front() {
        seen += 1;
        if seen > WALK_NODES {
            break;
        }
        let _ = fs.size(&n);
        match fs.kind(&n) {
            Ok(FileKind::Dir) => {
                let _ = fs.list_node(&n, WALK_LIST);
                if let Ok(c) = fs.children(&n, WALK_LIST) {
                    todo.extend(c.into_iter().map(|(_, n)| n));
                }
            }
            Ok(FileKind::File) => {
                let _ = fs.read_node(&n, WALK_READ);
            }
            Ok(FileKind::Symlink) => {
                let _ = fs.read_link(&n);
            }
            _ => {}
        }
    }
    for p in [
        "/etc/os-release",
        "/bin/../etc/./passwd",
        "/Windows/System32/config/SOFTWARE",
    ] {
        let _ = fs.read_file(p, WALK_READ);
    }
    let _ = fs.list_dir("/etc", WALK_LIST);
}

/// An ext2/3/4 filesystem (the whole input): a walk, Linux detection and the Linux checks
/// of the hygiene scan.
pub fn ext4(data: &[u8]) {
    let Some(img) = raw_disk(data) else { return };
    let dev: &dyn BlockDevice = img.as_ref();
    let Ok(fs) = ext4::Ext4::open(dev, 0, dev.len()) else {
        return;
    };
    walk(&fs);
    let root = linux::is_linux_root(&fs);
    let info = linux::detect(&fs);
    let (mut hits, mut problems) = (Vec::new(), Vec::new());
    scan::linux::scan(&fs, root && info.cloud_init, &mut hits, &mut problems);
}

/// An NTFS volume (the whole input): a walk, Windows detection (registry hives read from
/// the volume) and the Windows checks of the hygiene scan, under `catch_unwind` as in
/// ikon-guest.
pub fn ntfs(data: &[u8]) {
    let Some(img) = raw_disk(data) else { return };
    let dev: &dyn BlockDevice = img.as_ref();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Ok(fs) = ntfsfs::NtfsFs::open(dev, 0, dev.len()) else {
            return;
        };
        walk(&fs);
        let _ = windows::is_windows_root(&fs);
        let _ = windows::detect(&fs);
        let (mut hits, mut problems) = (Vec::new(), Vec::new());
        scan::windows::scan(&fs, &mut hits, &mut problems);
    }));
}

/// A registry hive: root, a bounded walk of keys and values, lookups by path.
pub fn registry(data: &[u8]) {
    let Ok(h) = Hive::new(data.to_vec()) else {
        return;
    };
    if let Ok(root) = h.root() {
        let _ = h.name(root);
        let mut todo = VecDeque::from([root]);
        let mut seen = 0usize;
        while let Some(k) = todo.pop_front() {
            seen += 1;
            if seen > 256 {
                break;
            }
            if let Ok(names) = h.value_names(k) {
                for n in names.iter().take(16) {
                    if let Ok(Some(v)) = h.value(k, n) {
                        let _ = v.as_string();
                    }
                }
            }
            if let Ok(subs) = h.subkeys(k) {
                todo.extend(subs.into_iter().take(64).map(|(_, k)| k));
            }
        }
    }
    for p in [
        "Microsoft\\Windows NT\\CurrentVersion",
        "Microsoft\\Windows NT\\CurrentVersion\\Winlogon",
        "Select",
        "ControlSet001\\Control\\ComputerName\\ComputerName",
    ] {
        if let Ok(Some(k)) = h.open_key(p) {
            let _ = h.child(k, "x");
        }
    }
}
