//! VMDK integration tests against the real qemu-img.

#![allow(clippy::expect_used, clippy::cast_possible_truncation)]

use ikon_disk::{open, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn qemu_img(args: &[&str]) {
    let st = Command::new("qemu-img")
        .args(args)
        .status()
        .expect("qemu-img is required for the vmdk tests but could not be run");
    assert!(st.success(), "qemu-img {args:?} failed");
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ikon-vmdk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

fn pattern(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut x: u32 = 12345;
    for (i, b) in v.iter_mut().enumerate() {
        if (i / 300_000) % 3 == 1 {
            continue;
        }
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    v
}

fn roundtrip(subformat: &str) {
    let d = tmpdir(subformat);
    let raw = d.join("src.raw");
    let data = pattern(8 << 20);
    std::fs::write(&raw, &data).expect("write raw");
    let img = d.join("img.vmdk");
    let opt = format!("subformat={subformat}");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        &opt,
        p(&raw),
        p(&img),
    ]);
    let disk = open(&img, &OpenOptions::default()).expect("ikon opens qemu vmdk");
    assert_eq!(disk.len(), data.len() as u64);
    let mut buf = vec![0u8; data.len()];
    disk.read_exact_at(&mut buf, 0).expect("read");
    assert!(buf == data, "{subformat}: bytes differ from source");
    let _ = std::fs::remove_dir_all(&d);
}

fn p(x: &Path) -> &str {
    x.to_str().expect("utf-8 path")
}

#[test]
fn qemu_monolithic_sparse_reads_identically() {
    roundtrip("monolithicSparse");
}

#[test]
fn qemu_stream_optimized_reads_identically() {
    roundtrip("streamOptimized");
}

fn hostile(edit: impl Fn(&mut Vec<u8>)) -> ikon_disk::ErrorKind {
    use ikon_disk::{open_storage, Format, MemStorage, OpenContext};
    let mut h = vec![0u8; 4096];
    h[0..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[12..20].copy_from_slice(&2048u64.to_le_bytes());
    h[20..28].copy_from_slice(&128u64.to_le_bytes());
    h[44..48].copy_from_slice(&512u32.to_le_bytes());
    h[56..64].copy_from_slice(&2u64.to_le_bytes());
    edit(&mut h);
    let options = OpenOptions {
        format: Some(Format::Vmdk),
        ..OpenOptions::default()
    };
    let ctx = OpenContext::new(options, None);
    let start = std::time::Instant::now();
    let r = open_storage(std::sync::Arc::new(MemStorage::new(h)), &ctx);
    assert!(start.elapsed().as_secs_f64() < 1.0);
    match r {
        Ok(_) => panic!("hostile vmdk was accepted"),
        Err(e) => e.kind(),
    }
}

#[test]
fn hostile_headers_are_refused() {
    use ikon_disk::ErrorKind;
    assert_eq!(hostile(|h| h.truncate(100)), ErrorKind::Corrupt);
    let huge = hostile(|h| h[12..20].copy_from_slice(&(1u64 << 60).to_le_bytes()));
    assert!(matches!(
        huge,
        ErrorKind::Corrupt | ErrorKind::LimitExceeded
    ));
    assert_eq!(
        hostile(|h| h[44..48].copy_from_slice(&4u32.to_le_bytes())),
        ErrorKind::Corrupt
    );
    let past = hostile(|h| h[56..64].copy_from_slice(&1_000_000u64.to_le_bytes()));
    assert_ne!(past, ErrorKind::Unsafe);
    assert_eq!(
        hostile(|h| {
            h[28..36].copy_from_slice(&4u64.to_le_bytes());
            h[36..44].copy_from_slice(&1u64.to_le_bytes());
            let d = b"RW 2048 SPARSE \"/etc/hosts\"\n";
            h[2048..2048 + d.len()].copy_from_slice(d);
        }),
        ErrorKind::Unsafe
    );
}

/// Opens `bytes` (written as `name` in a fresh directory) and returns the error's kind and text.
fn refusal(name: &str, bytes: &[u8]) -> (ikon_disk::ErrorKind, String) {
    let d = tmpdir(name);
    let f = d.join(name);
    std::fs::write(&f, bytes).expect("write");
    let err = match open(&f, &OpenOptions::default()) {
        Ok(_) => panic!("{name}: a delta disk was opened"),
        Err(e) => e,
    };
    let _ = std::fs::remove_dir_all(&d);
    (err.kind(), err.to_string())
}

#[test]
fn vmware_delta_disks_are_refused_by_name() {
    use ikon_disk::ErrorKind;
    // ESX sparse (COWD) extent header: magic, version 1, flags 3, 20480 sectors, grain 1.
    let mut cowd = vec![0u8; 64 * 1024];
    cowd[..4].copy_from_slice(b"COWD");
    cowd[4..8].copy_from_slice(&1u32.to_le_bytes());
    cowd[8..12].copy_from_slice(&3u32.to_le_bytes());
    cowd[12..16].copy_from_slice(&20480u32.to_le_bytes());
    cowd[16..20].copy_from_slice(&1u32.to_le_bytes());
    let (kind, msg) = refusal("disk-delta.vmdk", &cowd);
    assert_eq!(kind, ErrorKind::Unsupported, "{msg}");
    assert!(msg.contains("COWD") && msg.contains("parent"), "{msg}");

    // seSparse constant header: magic 0xcafebabe, version 0x200000001 (little-endian u64s).
    let mut se = vec![0u8; 64 * 1024];
    se[..8].copy_from_slice(&0xcafe_babeu64.to_le_bytes());
    se[8..16].copy_from_slice(&0x2_0000_0001u64.to_le_bytes());
    let (kind, msg) = refusal("disk-sesparse.vmdk", &se);
    assert_eq!(kind, ErrorKind::Unsupported, "{msg}");
    assert!(msg.contains("seSparse") && msg.contains("parent"), "{msg}");

    // Descriptors of delta disks name the extent format before any extent is opened.
    for (create, extent, word) in [
        ("vmfsSparse", "VMFSSPARSE", "COWD"),
        ("seSparse", "SESPARSE", "seSparse"),
    ] {
        let text = format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
             createType=\"{create}\"\n\nRW 20480 {extent} \"disk-delta.vmdk\"\n"
        );
        let (kind, msg) = refusal("disk.vmdk", text.as_bytes());
        assert_eq!(kind, ErrorKind::Unsupported, "{msg}");
        assert!(msg.contains(word) && msg.contains("parent"), "{msg}");
    }

    // A random disk that merely starts with the seSparse magic but not its version is raw.
    let mut not_se = vec![0u8; 4096];
    not_se[..8].copy_from_slice(&0xcafe_babeu64.to_le_bytes());
    assert!(open_bytes_is_raw(&not_se));
}

fn open_bytes_is_raw(bytes: &[u8]) -> bool {
    let d = tmpdir("not-sesparse");
    let f = d.join("disk.img");
    std::fs::write(&f, bytes).expect("write");
    let ok = matches!(
        ikon_disk::detect::detect(&ikon_disk::FileStorage::open(&f, false).expect("open")),
        Ok(ikon_disk::Format::Raw)
    );
    let _ = std::fs::remove_dir_all(&d);
    ok
}
