//! Parallels expanding-image header (QEMU docs/interop/parallels.txt, "Header"): 64 bytes,
//! little-endian, followed directly by the block allocation table (BAT).

use crate::bytes::{le32_or_zero, le64_or_zero};
use crate::error::{Error, Result};

/// Magic of images whose BAT entries are sector offsets (parallels.txt: "WithoutFreeSpace").
pub const MAGIC_V1: &[u8; 16] = b"WithoutFreeSpace";
/// Magic of images whose BAT entries are cluster offsets (parallels.txt: "WithouFreSpacExt").
pub const MAGIC_V2: &[u8; 16] = b"WithouFreSpacExt";
/// The only header version defined (parallels.txt: "version ... must be 2").
pub const VERSION: u32 = 2;
/// Header size; the BAT starts right after it (parallels.txt: "BAT ... at offset 64").
pub const HEADER_SIZE: u64 = 64;
/// Sector size all header units are expressed in.
pub const SECTOR: u64 = 512;

/// The parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// True for the `WithouFreSpacExt` magic (BAT in clusters).
    pub ext: bool,
    /// Disk geometry heads (informational).
    pub heads: u32,
    /// Disk geometry cylinders (informational).
    pub cylinders: u32,
    /// Sectors per cluster (`tracks`).
    pub tracks: u32,
    /// Number of BAT entries.
    pub bat_entries: u32,
    /// Virtual size in sectors.
    pub nb_sectors: u64,
    /// `inuse` marker (0x746F6E59 while opened by a writer).
    pub inuse: u32,
    /// First data sector.
    pub data_off: u32,
    /// Header flags.
    pub flags: u32,
    /// Format extension offset in clusters (0 = none).
    pub ext_off: u64,
}

impl Header {
    /// Parse the first 64 bytes of the file.
    pub fn parse(b: &[u8]) -> Result<Header> {
        if (b.len() as u64) < HEADER_SIZE {
            return Err(Error::corrupt(format!(
                "Parallels header is truncated ({} of {HEADER_SIZE} bytes)",
                b.len()
            )));
        }
        let ext = match b.get(..16) {
            Some(m) if m == MAGIC_V2 => true,
            Some(m) if m == MAGIC_V1 => false,
            _ => return Err(Error::corrupt("Parallels header at 0x0 has no known magic")),
        };
        let version = le32_or_zero(b, 16);
        if version != VERSION {
            return Err(Error::unsupported(format!(
                "Parallels header at 0x0: version {version} (only {VERSION} is defined)"
            )));
        }
        let mut nb_sectors = le64_or_zero(b, 36);
        if !ext {
            // Old images only define the low 32 bits (QEMU masks them too).
            nb_sectors &= 0xffff_ffff;
        }
        let h = Header {
            ext,
            heads: le32_or_zero(b, 20),
            cylinders: le32_or_zero(b, 24),
            tracks: le32_or_zero(b, 28),
            bat_entries: le32_or_zero(b, 32),
            nb_sectors,
            inuse: le32_or_zero(b, 44),
            data_off: le32_or_zero(b, 48),
            flags: le32_or_zero(b, 52),
            ext_off: le64_or_zero(b, 56),
        };
        if h.tracks == 0 {
            return Err(Error::corrupt(
                "Parallels header at 0x1c: cluster size (tracks) is 0",
            ));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: &[u8; 16], nb_sectors: u64) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..16].copy_from_slice(magic);
        b[16..20].copy_from_slice(&VERSION.to_le_bytes());
        b[28..32].copy_from_slice(&8u32.to_le_bytes());
        b[32..36].copy_from_slice(&3u32.to_le_bytes());
        b[36..44].copy_from_slice(&nb_sectors.to_le_bytes());
        b
    }

    #[test]
    fn v1_masks_the_size_to_32_bits() {
        let h = Header::parse(&header(MAGIC_V1, (1 << 32) | 100)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!h.ext);
        assert_eq!(h.nb_sectors, 100);
        let h = Header::parse(&header(MAGIC_V2, (1 << 32) | 100)).unwrap_or_else(|e| panic!("{e}"));
        assert!(h.ext);
        assert_eq!(h.nb_sectors, (1 << 32) | 100);
        assert_eq!(h.bat_entries, 3);
    }

    #[test]
    fn refuses_bad_headers() {
        assert!(Header::parse(&[0u8; 10]).is_err());
        assert!(Header::parse(&[0u8; 64]).is_err());
        let mut b = header(MAGIC_V2, 8);
        b[28..32].fill(0);
        assert!(Header::parse(&b).is_err());
    }
}
