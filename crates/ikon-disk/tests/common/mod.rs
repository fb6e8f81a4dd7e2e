//! Helpers shared by the ikon-disk integration tests: temporary directories, running the
//! real qemu-img (the oracle), comparing data maps and contents, opening images held in
//! memory, and writing on-disk integers into hand-built or mutated images.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use ikon_disk::{DiskImage, ErrorKind, ExtentKind, Format, MemStorage, OpenContext, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A temporary directory named after the test binary and `name`, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Create (emptying any leftover) `ikon-<test binary>-<name>-<pid>` in the temp dir.
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ikon-{}-{name}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }
    /// A file in the directory.
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run qemu-img (panics when it cannot be run: these tests need the oracle).
pub fn qemu_img(args: &[&str]) -> std::process::Output {
    Command::new("qemu-img").args(args).output().unwrap_or_else(|e| {
        panic!("qemu-img is required for these tests but could not be run ({e}); install qemu-utils")
    })
}

/// Run qemu-img, require success and return its stdout.
pub fn qemu_ok(args: &[&str]) -> String {
    let out = qemu_img(args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Virtual size of `path` as qemu-img reports it.
pub fn qemu_size(path: &Path, fmt: &str) -> u64 {
    let p = path.to_str().expect("utf8 path");
    let text = qemu_ok(&["info", "--output=json", "-f", fmt, p]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("qemu-img json");
    v["virtual-size"]
        .as_u64()
        .unwrap_or_else(|| panic!("no virtual-size in {text}"))
}

/// Append `[s, s+l)` to `out`, merging with the last range when they touch.
pub fn push_range(out: &mut Vec<(u64, u64)>, s: u64, l: u64) {
    if let Some(last) = out.last_mut() {
        if last.0 + last.1 == s {
            last.1 += l;
            return;
        }
    }
    out.push((s, l));
}

/// The data ranges of `path` as `qemu-img map` reports them, adjacent ones merged.
pub fn qemu_data_ranges(path: &Path, fmt: &str) -> Vec<(u64, u64)> {
    let p = path.to_str().expect("utf8 path");
    let v: serde_json::Value =
        serde_json::from_str(&qemu_ok(&["map", "--output=json", "-f", fmt, p])).expect("map json");
    let mut out = Vec::new();
    for e in v.as_array().expect("map array") {
        if e["data"].as_bool() == Some(true) {
            push_range(
                &mut out,
                e["start"].as_u64().unwrap_or(0),
                e["length"].as_u64().unwrap_or(0),
            );
        }
    }
    out
}

/// The data extents of `img`, adjacent ones merged.
pub fn ikon_data_ranges(img: &dyn DiskImage) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for e in img.map(0, img.len()).expect("map") {
        if e.kind == ExtentKind::Data {
            push_range(&mut out, e.offset, e.len);
        }
    }
    out
}

/// The whole disk, read in pieces of `step` bytes (odd sizes exercise block boundaries).
pub fn read_all(img: &dyn DiskImage, step: usize) -> Vec<u8> {
    let mut v = vec![0u8; usize::try_from(img.len()).expect("size")];
    let mut pos = 0usize;
    while pos < v.len() {
        let n = step.min(v.len() - pos);
        img.read_exact_at(&mut v[pos..pos + n], pos as u64)
            .expect("read");
        pos += n;
    }
    v
}

/// Open an image held in memory (detecting the format unless `format` is given).
pub fn open_mem(b: Vec<u8>, format: Option<Format>) -> ikon_disk::Result<Box<dyn DiskImage>> {
    let ctx = OpenContext::new(
        OpenOptions {
            format,
            ..OpenOptions::default()
        },
        None,
    );
    ikon_disk::open_storage(Arc::new(MemStorage::new(b)), &ctx)
}

/// A read-only image offers no write capability, and asking for one is a `ReadOnly` error.
pub fn assert_read_only(img: Box<dyn DiskImage>) {
    assert!(img.as_writable().is_none(), "read-only image offers writes");
    match img.into_writable() {
        Ok(_) => panic!("read-only image became writable"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ReadOnly, "{e}"),
    }
}

/// Write a little-endian `u32` at `o`.
pub fn put_le32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
/// Write a little-endian `u64` at `o`.
pub fn put_le64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}
/// Write a big-endian `u32` at `o`.
pub fn put_be32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_be_bytes());
}
/// Write a big-endian `u64` at `o`.
pub fn put_be64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_be_bytes());
}
