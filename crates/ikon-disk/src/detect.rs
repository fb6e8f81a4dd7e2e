//! Format detection from content (never from a file name). Looks at the first 64 KiB and the
//! last 512 bytes. Formats Ikon does not handle are named in a clear `Unsupported` error
//! instead of being silently read as raw, and files that carry the signature of a format
//! inside another container (a qcow2 header in an ISO's system area) are refused.

use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::Format;

/// qcow/qcow2 magic `QFI\xfb` at offset 0 (QEMU docs/interop/qcow2.txt).
pub const QCOW_MAGIC: &[u8; 4] = b"QFI\xfb";
/// VMDK hosted sparse extent magic `KDMV` at offset 0 (VMware Virtual Disk Format 1.1, §4).
pub const VMDK_SPARSE_MAGIC: &[u8; 4] = b"KDMV";
/// VMDK ESX sparse (COWD) magic (VMware Virtual Disk Format 1.1, §5): the extent format of
/// `vmfsSparse` snapshot deltas.
pub const VMDK_COWD_MAGIC: &[u8; 4] = b"COWD";
/// VMware ESXi seSparse extent: constant-header magic 0xcafebabe as a little-endian u64 at
/// offset 0, followed by the version 0x200000001 as a little-endian u64 (the layout QEMU's
/// block/vmdk.c reads; VMware does not publish it). seSparse extents are snapshot deltas.
pub const VMDK_SESPARSE_MAGIC: [u8; 16] = [
    0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x02, 0, 0, 0,
];
/// What every refusal of a VMware delta disk tells the user.
pub const VMDK_DELTA_ADVICE: &str = "it holds only the blocks written since a snapshot and \
     cannot be read without its parent disk; consolidate the snapshots in VMware (or export \
     the whole disk as OVF/OVA) and import the result";
/// VHDX file type identifier `vhdxfile` at offset 0 (MS-VHDX §2.2.1).
pub const VHDX_MAGIC: &[u8; 8] = b"vhdxfile";
/// VHD footer cookie `conectix` (Virtual Hard Disk Image Format Specification, footer).
pub const VHD_COOKIE: &[u8; 8] = b"conectix";
/// QED magic `QED\0` (QEMU docs/interop/qed_spec.txt).
pub const QED_MAGIC: &[u8; 4] = b"QED\0";
/// VDI signature 0xbeda107f at offset 0x40 (VirtualBox VDI header).
pub const VDI_SIGNATURE: [u8; 4] = [0x7f, 0x10, 0xda, 0xbe];
/// ISO 9660 primary volume descriptor identifier `CD001` at offset 0x8001 (ECMA-119 §8.1).
pub const ISO9660_ID_OFFSET: usize = 0x8001;
/// LUKS magic (LUKS on-disk format specification).
pub const LUKS_MAGIC: &[u8; 6] = b"LUKS\xba\xbe";

/// How much of the start of the file detection reads.
const HEAD: u64 = 64 * 1024;

/// Detect the format of the image in `storage`.
pub fn detect(storage: &dyn Storage) -> Result<Format> {
    let size = storage.size()?;
    let head_len = size.min(HEAD);
    let mut head = vec![0u8; crate::error::to_usize(head_len, "detection buffer")?];
    storage.read_exact_at(&mut head, 0)?;
    let mut tail = [0u8; 512];
    let tail_ok = size >= 512 && storage.read_exact_at(&mut tail, size - 512).is_ok();
    detect_bytes(&head, if tail_ok { Some(&tail) } else { None })
}

/// Detect from the first bytes of a file (up to 64 KiB) and, if the file is at least 512
/// bytes long, its last 512 bytes.
pub fn detect_bytes(head: &[u8], tail: Option<&[u8; 512]>) -> Result<Format> {
    let iso = head.len() > ISO9660_ID_OFFSET + 5
        && &head[ISO9660_ID_OFFSET..ISO9660_ID_OFFSET + 5] == b"CD001";
    let found = signature(head, tail)?;
    if iso && found != Format::Raw {
        return Err(Error::unsafe_ref(format!(
            "file is an ISO 9660 image whose system area carries a {found} header (format confusion); refused"
        )));
    }
    Ok(found)
}

fn signature(head: &[u8], tail: Option<&[u8; 512]>) -> Result<Format> {
    let starts = |m: &[u8]| head.len() >= m.len() && &head[..m.len()] == m;
    if starts(QCOW_MAGIC) {
        let version = crate::bytes::be32(head, 4);
        return match version {
            Some(2) | Some(3) => Ok(Format::Qcow2),
            Some(1) => Err(Error::unsupported(
                "qcow version 1 images are not supported (qcow2 v2/v3 are)",
            )),
            Some(v) => Err(Error::unsupported(format!(
                "qcow2 version {v} is not supported"
            ))),
            None => Err(Error::corrupt("qcow2 header is truncated")),
        };
    }
    if starts(VMDK_SPARSE_MAGIC) || is_vmdk_descriptor(head) {
        return Ok(Format::Vmdk);
    }
    if starts(VMDK_COWD_MAGIC) {
        return Err(Error::unsupported(format!(
            "VMware COWD (vmfsSparse) delta disk: {VMDK_DELTA_ADVICE}"
        )));
    }
    if starts(&VMDK_SESPARSE_MAGIC) {
        return Err(Error::unsupported(format!(
            "VMware ESXi seSparse delta disk: {VMDK_DELTA_ADVICE}"
        )));
    }
    if starts(VHDX_MAGIC) {
        return Ok(Format::Vhdx);
    }
    if starts(VHD_COOKIE) {
        return Ok(Format::Vhd);
    }
    if let Some(t) = tail {
        // A fixed VHD has only the footer; some old tools wrote a 511-byte footer.
        if &t[..8] == VHD_COOKIE || &t[1..9] == VHD_COOKIE {
            return Ok(Format::Vhd);
        }
        if &t[..4] == b"koly" {
            return Ok(Format::Dmg);
        }
    }
    if starts(QED_MAGIC) {
        return Err(Error::unsupported(
            "QED images are not supported (convert with qemu-img first)",
        ));
    }
    if head.len() >= 0x44 && head[0x40..0x44] == VDI_SIGNATURE {
        return Err(Error::unsupported(
            "VirtualBox VDI images are not supported",
        ));
    }
    if starts(LUKS_MAGIC) {
        return Err(Error::unsupported(
            "LUKS encrypted images are not supported",
        ));
    }
    if starts(b"WithoutFreeSpace") || starts(b"WithouFreSpacExt") {
        return Ok(Format::Parallels);
    }
    if starts(b"Bochs Virtual HD Image") {
        return Ok(Format::Bochs);
    }
    if starts(b"#!/bin/sh") && head.windows(9).take(256).any(|w| w == b"#V2.0 For") {
        return Ok(Format::Cloop);
    }
    Ok(Format::Raw)
}

/// A VMDK text descriptor: plain text starting with a comment or key line and naming a
/// `createType` within the first 4 KiB (the descriptor-file form of VMDK).
fn is_vmdk_descriptor(head: &[u8]) -> bool {
    let window = &head[..head.len().min(4096)];
    let text_start =
        window.starts_with(b"# Disk DescriptorFile") || window.starts_with(b"version=");
    text_start && window.windows(11).any(|w| w == b"createType=")
}
