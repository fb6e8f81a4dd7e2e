//! Bodies of the ikon-disk fuzz targets: the input is an image file, opened from memory with
//! the format forced (or detected, for `detect`) and external references denied, then asked
//! everything a caller would — info, check, the whole mapping, reads at the start, the end and
//! the first data extents (at most 4 MiB in all; see `ikon_disk::fuzzing::exercise`).
//!
//! Shared with `crates/ikon-disk/tests/fuzz_regressions.rs` (through `#[path]`).

use ikon_disk::fuzzing::exercise;
use ikon_disk::Format;

/// Every ikon-disk target: (cargo-fuzz binary, body).
pub const TARGETS: &[crate::harness::Target] = &[
    ("detect", detect),
    ("qcow2", qcow2),
    ("vhd", vhd),
    ("vhdx", vhdx),
    ("vmdk", vmdk),
    ("bochs", bochs),
    ("parallels", parallels),
    ("cloop", cloop),
    ("dmg", dmg),
];

/// Content detection, then whatever format it picks (every parser, raw included).
pub fn detect(data: &[u8]) {
    exercise(data, None);
}

/// qcow2 v2/v3 (L1/L2 tables, refcounts, compressed clusters, extensions).
pub fn qcow2(data: &[u8]) {
    exercise(data, Some(Format::Qcow2));
}

/// VHD fixed and dynamic (footer, dynamic header, BAT, sector bitmaps).
pub fn vhd(data: &[u8]) {
    exercise(data, Some(Format::Vhd));
}

/// VHDX (headers, log, region table, metadata, BAT).
pub fn vhdx(data: &[u8]) {
    exercise(data, Some(Format::Vhdx));
}

/// VMDK (descriptor, sparse and streamOptimized extents, grain tables).
pub fn vmdk(data: &[u8]) {
    exercise(data, Some(Format::Vmdk));
}

/// Bochs growing (redolog) images, read only.
pub fn bochs(data: &[u8]) {
    exercise(data, Some(Format::Bochs));
}

/// Parallels expanding images v1/v2, read only.
pub fn parallels(data: &[u8]) {
    exercise(data, Some(Format::Parallels));
}

/// cloop compressed loop images, read only.
pub fn cloop(data: &[u8]) {
    exercise(data, Some(Format::Cloop));
}

/// Apple UDIF (DMG): koly trailer, XML plist or resource fork, mish tables, chunks.
pub fn dmg(data: &[u8]) {
    exercise(data, Some(Format::Dmg));
}
