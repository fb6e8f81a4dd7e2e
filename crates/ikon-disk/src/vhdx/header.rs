//! VHDX on-disk structures ([MS-VHDX] §2.2): file type identifier, the two headers, the
//! region table, the metadata table and the metadata items Ikon understands. All integers
//! are little-endian; GUIDs are stored in the Windows mixed-endian layout.

use crate::bytes::{
    array_or_zero, guid_from_str, guid_string, le16_or_zero, le32_or_zero, le64_or_zero,
};
use crate::error::{Error, Result};

/// 1 MiB: alignment of regions and BAT offsets ([MS-VHDX] §2.2, §2.5.1).
pub const MIB: u64 = 1 << 20;
/// 64 KiB: size of the identifier, each header slot and each region table ([MS-VHDX] §2.2).
pub const KIB64: u64 = 64 << 10;
/// [`KIB64`] as a buffer length.
pub const KIB64_LEN: usize = 64 << 10;
/// File type identifier signature at offset 0 ([MS-VHDX] §2.2.1).
pub const FILE_SIG: &[u8; 8] = b"vhdxfile";
/// Header 1 and 2 offsets ([MS-VHDX] §2.2.2).
pub const HEADER_OFFSETS: [u64; 2] = [64 << 10, 128 << 10];
/// Header structure size covered by its checksum ([MS-VHDX] §2.2.2: 4 KiB).
pub const HEADER_SIZE: usize = 4096;
/// Header signature "head" ([MS-VHDX] §2.2.2.1).
pub const HEADER_SIG: &[u8; 4] = b"head";
/// Region table offsets ([MS-VHDX] §2.2.3).
pub const REGION_OFFSETS: [u64; 2] = [192 << 10, 256 << 10];
/// Region table signature "regi" ([MS-VHDX] §2.2.3.1).
pub const REGION_SIG: &[u8; 4] = b"regi";
/// Most region table entries ([MS-VHDX] §2.2.3.1: EntryCount ≤ 2047).
pub const MAX_REGIONS: u32 = 2047;
/// Metadata table signature ([MS-VHDX] §2.6.1.1).
pub const METADATA_SIG: &[u8; 8] = b"metadata";
/// Most metadata entries ([MS-VHDX] §2.6.1.1: EntryCount ≤ 2047).
pub const MAX_METADATA: u16 = 2047;

/// BAT region ([MS-VHDX] §2.2.3.2).
pub const GUID_BAT: &str = "2DC27766-F623-4200-9D64-115E9BFD4A08";
/// Metadata region ([MS-VHDX] §2.2.3.2).
pub const GUID_METADATA: &str = "8B7CA206-4790-4B9A-B8FE-575F050F886E";
/// File Parameters item ([MS-VHDX] §2.6.2.1).
pub const GUID_FILE_PARAMS: &str = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B";
/// Virtual Disk Size item ([MS-VHDX] §2.6.2.2).
pub const GUID_DISK_SIZE: &str = "2FA54224-CD1B-4876-B211-5DBED83BF4B8";
/// Page 83 Data item ([MS-VHDX] §2.6.2.3).
pub const GUID_PAGE83: &str = "BECA12AB-B2E6-4523-93EF-C309E000C746";
/// Logical Sector Size item ([MS-VHDX] §2.6.2.4).
pub const GUID_LOGICAL: &str = "8141BF1D-A96F-4709-BA47-F233A8FAAB5F";
/// Physical Sector Size item ([MS-VHDX] §2.6.2.5).
pub const GUID_PHYSICAL: &str = "CDA348C7-445D-4471-9CC9-E9885251C556";
/// Parent Locator item ([MS-VHDX] §2.6.2.6).
pub const GUID_PARENT_LOCATOR: &str = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C";

/// The on-disk bytes of one of the GUID constants above (all-zero for text that is not a
/// GUID, which none of them is).
pub fn guid(s: &str) -> [u8; 16] {
    guid_from_str(s).unwrap_or_default()
}

/// Text form of an on-disk GUID, uppercase as [MS-VHDX] writes them.
pub fn guid_str(g: &[u8; 16]) -> String {
    guid_string(g).to_ascii_uppercase()
}

/// CRC-32C of `b` with the 4-byte checksum field at offset 4 taken as zero ([MS-VHDX]
/// §2.2.2.1, §2.2.3.1).
pub fn crc_with_zeroed_field(b: &[u8]) -> u32 {
    let head = b.get(..4).unwrap_or(&[]);
    let tail = b.get(8..).unwrap_or(&[]);
    let c = crc32c::crc32c(head);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, tail)
}

/// One VHDX header ([MS-VHDX] §2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Which of the two slots it came from (0 or 1).
    pub slot: usize,
    /// Sequence number; the valid header with the higher one is current.
    pub sequence: u64,
    /// Log GUID; non-zero means a log must be replayed.
    pub log_guid: [u8; 16],
    /// Format version (must be 1).
    pub version: u16,
    /// Log size and position.
    pub log_length: u32,
    /// Log offset.
    pub log_offset: u64,
}

impl Header {
    /// Parse and verify a header slot.
    pub fn parse(b: &[u8], slot: usize) -> Result<Header> {
        let at = HEADER_OFFSETS.get(slot).copied().unwrap_or(0);
        if b.len() < HEADER_SIZE || b.get(..4) != Some(&HEADER_SIG[..]) {
            return Err(Error::corrupt(format!(
                "VHDX header {} at 0x{at:x}: no \"head\" signature",
                slot + 1
            )));
        }
        let stored = le32_or_zero(b, 4);
        let want = crc_with_zeroed_field(&b[..HEADER_SIZE]);
        if stored != want {
            return Err(Error::corrupt(format!(
                "VHDX header {} at 0x{at:x}: CRC-32C 0x{stored:08x} does not match computed 0x{want:08x}",
                slot + 1
            )));
        }
        let h = Header {
            slot,
            sequence: le64_or_zero(b, 8),
            log_guid: array_or_zero::<16>(b, 48),
            version: le16_or_zero(b, 66),
            log_length: le32_or_zero(b, 68),
            log_offset: le64_or_zero(b, 72),
        };
        if h.version != 1 {
            return Err(Error::unsupported(format!(
                "VHDX header {} at 0x{at:x}: version {} (only 1 is defined)",
                slot + 1,
                h.version
            )));
        }
        Ok(h)
    }
}

/// A region table entry ([MS-VHDX] §2.2.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Region GUID.
    pub guid: [u8; 16],
    /// Absolute file offset.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// Whether a reader must understand the region.
    pub required: bool,
}

/// Parse and verify a 64 KiB region table read at `at`.
pub fn parse_regions(b: &[u8], at: u64) -> Result<Vec<Region>> {
    if b.len() < KIB64_LEN || b.get(..4) != Some(&REGION_SIG[..]) {
        return Err(Error::corrupt(format!(
            "VHDX region table at 0x{at:x}: no \"regi\" signature"
        )));
    }
    let stored = le32_or_zero(b, 4);
    let want = crc_with_zeroed_field(&b[..KIB64_LEN]);
    if stored != want {
        return Err(Error::corrupt(format!(
            "VHDX region table at 0x{at:x}: CRC-32C 0x{stored:08x} does not match computed 0x{want:08x}"
        )));
    }
    let n = le32_or_zero(b, 8);
    if n > MAX_REGIONS {
        return Err(Error::corrupt(format!(
            "VHDX region table at 0x{at:x}: {n} entries (at most {MAX_REGIONS})"
        )));
    }
    let mut out = Vec::new();
    for i in 0..n as usize {
        let o = 16 + 32 * i;
        out.push(Region {
            guid: array_or_zero::<16>(b, o),
            offset: le64_or_zero(b, o + 16),
            length: u64::from(le32_or_zero(b, o + 24)),
            required: le32_or_zero(b, o + 28) & 1 != 0,
        });
    }
    Ok(out)
}

/// A metadata table entry ([MS-VHDX] §2.6.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    /// Item GUID.
    pub guid: [u8; 16],
    /// Offset from the start of the metadata region.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
    /// IsUser flag (bit 0).
    pub is_user: bool,
    /// IsRequired flag (bit 2).
    pub required: bool,
}

/// Parse the metadata table at the start of the metadata region `b` (region at `at`).
pub fn parse_metadata_table(b: &[u8], at: u64) -> Result<Vec<MetaEntry>> {
    if b.get(..8) != Some(&METADATA_SIG[..]) {
        return Err(Error::corrupt(format!(
            "VHDX metadata table at 0x{at:x}: no \"metadata\" signature"
        )));
    }
    let n = le16_or_zero(b, 10);
    if n > MAX_METADATA {
        return Err(Error::corrupt(format!(
            "VHDX metadata table at 0x{at:x}: {n} entries (at most {MAX_METADATA})"
        )));
    }
    let mut out = Vec::new();
    for i in 0..usize::from(n) {
        let o = 32 + 32 * i;
        let flags = le32_or_zero(b, o + 24);
        out.push(MetaEntry {
            guid: array_or_zero::<16>(b, o),
            offset: le32_or_zero(b, o + 16),
            length: le32_or_zero(b, o + 20),
            is_user: flags & 1 != 0,
            required: flags & 4 != 0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_layout() {
        let g = guid(GUID_BAT);
        assert_eq!(
            g,
            [
                0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD,
                0x4A, 0x08
            ]
        );
        assert_eq!(guid_str(&g), GUID_BAT);
    }
}
