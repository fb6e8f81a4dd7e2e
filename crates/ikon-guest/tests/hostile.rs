//! Hostile input: overlapping / past-end partition entries, looping extended chains, absurd
//! GPT arrays, corrupt ext superblocks, symlink loops and long chains, huge directories.
//! Each must give a clear error or a partial result marked as such, fast, never a panic.

use ikon_disk::{ErrorKind, MemStorage, OpenContext, OpenOptions};
use ikon_guest::vfs::GuestFs;
use ikon_guest::{partition, TableKind};
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

#[test]
fn overlapping_and_past_end_partitions_are_reported() {
    let mut d = vec![0u8; 1 << 20];
    entry(&mut d, 0, 0, 0x83, 64, 512);
    entry(&mut d, 0, 1, 0x83, 300, 100);
    entry(&mut d, 0, 2, 0x83, 1_000_000, 4_000_000_000);
    let img = dev(d);
    let ins = fast(|| ikon_guest::inspect(img.as_ref(), "raw")).unwrap_or_else(|e| panic!("{e}"));
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
    let ins = fast(|| ikon_guest::inspect(img.as_ref(), "raw")).unwrap_or_else(|e| panic!("{e}"));
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
    let ins = fast(|| ikon_guest::inspect(img.as_ref(), "raw")).unwrap_or_else(|e| panic!("{e}"));
    assert!(ins.partial);
    assert!(ins.operating_systems.is_empty());
    // A sane superblock whose inode table points far past the end.
    let mut d = vec![0u8; 1 << 20];
    d[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
    d[1024..1028].copy_from_slice(&1000u32.to_le_bytes());
    d[1024 + 40..1024 + 44].copy_from_slice(&1000u32.to_le_bytes());
    d[2048 + 8..2048 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let img = dev(d);
    let ins = fast(|| ikon_guest::inspect(img.as_ref(), "raw")).unwrap_or_else(|e| panic!("{e}"));
    assert!(ins.operating_systems.is_empty());
}

/// A real ext4 (mkfs.ext4 -d) with symlink loops, a 60-link chain and a 5000-entry dir.
#[test]
fn symlink_loops_chains_and_huge_dirs_are_bounded() {
    let dir = std::env::temp_dir().join(format!("ikon-guest-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = dir.join("tree");
    let mk = |p: &std::path::Path| std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
    mk(&t.join("etc"));
    mk(&t.join("usr/bin"));
    mk(&t.join("big"));
    let ln = |a: &str, b: &std::path::Path| {
        std::os::unix::fs::symlink(a, b).unwrap_or_else(|e| panic!("{e}"))
    };
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
    let fs = dir.join("fs.img");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("PATH=$PATH:/usr/sbin:/sbin; truncate -s 64M {0} && mkfs.ext4 -q -F -N 32768 -d {1} {0}", fs.display(), t.display()))
        .output()
        .unwrap_or_else(|e| panic!("mkfs.ext4 (run scripts/install-guest-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "mkfs.ext4 failed (run scripts/install-guest-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = ikon_disk::open(&fs, &OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let ins = fast(|| ikon_guest::inspect(img.as_ref(), "raw")).unwrap_or_else(|e| panic!("{e}"));
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
