//! DMG (Apple UDIF) structures: the 512-byte big-endian "koly" trailer at the end of the file,
//! the "mish" block tables (BLKXTable) found base64-encoded in the XML property list or in the
//! resource fork, and a whitespace-tolerant base64 decoder.

use crate::bytes::{be32_or_zero, be64_or_zero};
use crate::error::{Error, Result};

/// Trailer signature "koly" (UDIF trailer, offset 0).
pub const KOLY: &[u8; 4] = b"koly";
/// Trailer size.
pub const KOLY_SIZE: u64 = 512;
/// BLKX table signature "mish".
pub const MISH: &[u8; 4] = b"mish";
/// Size of the BLKX table header before its chunk entries (ends with the chunk count).
pub const MISH_HEADER: usize = 204;
/// Size of one chunk entry.
pub const CHUNK_ENTRY: usize = 40;

/// Chunk type: zero fill (UDZE).
pub const CHUNK_ZERO: u32 = 0x0000_0000;
/// Chunk type: raw/uncompressed (UDRW).
pub const CHUNK_RAW: u32 = 0x0000_0001;
/// Chunk type: ignored, reads as zeros (UDIG).
pub const CHUNK_IGNORE: u32 = 0x0000_0002;
/// Chunk type: zlib (UDZO).
pub const CHUNK_ZLIB: u32 = 0x8000_0005;
/// Chunk type: bzip2 (UDBZ).
pub const CHUNK_BZIP2: u32 = 0x8000_0006;
/// Chunk type: LZFSE (ULFO).
pub const CHUNK_LZFSE: u32 = 0x8000_0007;
/// Chunk type: comment (no data).
pub const CHUNK_COMMENT: u32 = 0x7fff_fffe;
/// Chunk type: end of table.
pub const CHUNK_TERMINATOR: u32 = 0xffff_ffff;

/// The fields of the koly trailer Ikon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Koly {
    /// Trailer version.
    pub version: u32,
    /// Data fork offset (0x18).
    pub data_fork_offset: u64,
    /// Resource fork offset and length (0x28, 0x30).
    pub rsrc_offset: u64,
    /// Resource fork length.
    pub rsrc_length: u64,
    /// XML property list offset and length (0xd8, 0xe0).
    pub xml_offset: u64,
    /// XML property list length.
    pub xml_length: u64,
    /// Image variant (0x1e8).
    pub variant: u32,
    /// Virtual size in sectors (0x1ec).
    pub sector_count: u64,
}

impl Koly {
    /// Parse the trailer found at `at`; every fork must lie before it.
    pub fn parse(b: &[u8], at: u64) -> Result<Koly> {
        if b.get(..4) != Some(&KOLY[..]) {
            return Err(Error::corrupt(format!(
                "DMG trailer at 0x{at:x} has no \"koly\" signature"
            )));
        }
        let k = Koly {
            version: be32_or_zero(b, 4),
            data_fork_offset: be64_or_zero(b, 0x18),
            rsrc_offset: be64_or_zero(b, 0x28),
            rsrc_length: be64_or_zero(b, 0x30),
            xml_offset: be64_or_zero(b, 0xd8),
            xml_length: be64_or_zero(b, 0xe0),
            variant: be32_or_zero(b, 0x1e8),
            sector_count: be64_or_zero(b, 0x1ec),
        };
        let within = |off: u64, len: u64| off <= at && len <= at - off;
        if k.data_fork_offset > at
            || (k.rsrc_length != 0 && !within(k.rsrc_offset, k.rsrc_length))
            || (k.xml_length != 0 && !within(k.xml_offset, k.xml_length))
        {
            return Err(Error::corrupt(format!(
                "DMG trailer at 0x{at:x}: data fork, resource fork or XML plist lies past the trailer"
            )));
        }
        Ok(k)
    }
}

/// One chunk of a BLKX table, with absolute sectors and file offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Chunk type.
    pub kind: u32,
    /// First guest sector.
    pub sector: u64,
    /// Number of sectors.
    pub count: u64,
    /// File offset of the stored data.
    pub offset: u64,
    /// Stored length in bytes.
    pub length: u64,
}

/// Append the chunks of one "mish" table to `out` (tables with another signature or too
/// short are skipped, as QEMU does). `data_fork` is the trailer's data fork offset.
pub fn parse_mish(b: &[u8], data_fork: u64, out: &mut Vec<Chunk>) -> Result<()> {
    if b.get(..4) != Some(&MISH[..]) || b.len() < MISH_HEADER + CHUNK_ENTRY {
        return Ok(());
    }
    let first = be64_or_zero(b, 8);
    let base = data_fork
        .checked_add(be64_or_zero(b, 0x18))
        .ok_or_else(|| Error::corrupt("DMG mish data offset overflows"))?;
    let entries = b.get(MISH_HEADER..).unwrap_or_default();
    for e in entries.chunks_exact(CHUNK_ENTRY) {
        let kind = be32_or_zero(e, 0);
        if kind == CHUNK_COMMENT {
            continue;
        }
        if kind == CHUNK_TERMINATOR {
            break;
        }
        let c = Chunk {
            kind,
            sector: first
                .checked_add(be64_or_zero(e, 8))
                .ok_or_else(|| Error::corrupt("DMG chunk sector overflows"))?,
            count: be64_or_zero(e, 0x10),
            offset: base
                .checked_add(be64_or_zero(e, 0x18))
                .ok_or_else(|| Error::corrupt("DMG chunk offset overflows"))?,
            length: be64_or_zero(e, 0x20),
        };
        out.push(c);
    }
    Ok(())
}

/// Decode base64 ignoring whitespace; `None` on any other invalid character.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_with_whitespace() {
        assert_eq!(
            base64_decode(b"bWlz\n\taA==").as_deref(),
            Some(&b"mish"[..])
        );
        assert_eq!(base64_decode(b"bWlzaA"), Some(b"mish".to_vec()));
        assert!(base64_decode(b"bW<s").is_none());
    }
}
