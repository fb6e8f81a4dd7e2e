//! Manifests: a disk as a list of chunks. Encoding (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `IKONMAN1` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | chunk size in bytes (power of two, 64 KiB – 8 MiB) |
//! | 16 | 8 | disk size in bytes (≤ 64 TiB) |
//! | 24 | 8 | entry count (= ceil(disk size / chunk size)) |
//! | 32 | … | entries: tag byte 0 = all-zero chunk, 1 = followed by a 32-byte BLAKE3 hash |
//! | end-32 | 32 | BLAKE3 of every byte before it |

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Manifest magic.
pub const MAGIC: &[u8; 8] = b"IKONMAN1";
/// Encoding version.
pub const VERSION: u32 = 1;
/// Largest disk a manifest may describe (64 TiB).
pub const MAX_DISK: u64 = 64 << 40;
/// Smallest and largest chunk sizes.
pub const MIN_CHUNK: u32 = 64 << 10;
/// Largest chunk size.
pub const MAX_CHUNK: u32 = 8 << 20;
const HEADER: usize = 32;

/// A chunk's BLAKE3 hash (its name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkHash(pub [u8; 32]);

impl ChunkHash {
    /// The hash of `data`.
    pub fn of(data: &[u8]) -> ChunkHash {
        ChunkHash(*blake3::hash(data).as_bytes())
    }

    /// Store key of the chunk.
    pub fn key(&self) -> String {
        let h = self.to_string();
        format!("chunks/{}/{}/{h}", &h[0..2], &h[2..4])
    }
}

impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkHash({self})")
    }
}

impl FromStr for ChunkHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<ChunkHash> {
        let bad = || Error::corrupt(format!("{s:?} is not a 64-digit hex hash"));
        if s.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(ChunkHash(out))
    }
}

/// A disk: size, chunk size, one entry per chunk (None = all zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Virtual size in bytes.
    pub disk_size: u64,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Entries.
    pub chunks: Vec<Option<ChunkHash>>,
}

/// Checks a chunk size.
pub fn check_chunk_size(cs: u32) -> Result<()> {
    if cs.is_power_of_two() && (MIN_CHUNK..=MAX_CHUNK).contains(&cs) {
        Ok(())
    } else {
        Err(Error::new(
            crate::ErrorKind::InvalidInput,
            format!("chunk size {cs} must be a power of two between {MIN_CHUNK} and {MAX_CHUNK}"),
        ))
    }
}

/// Number of chunks of a disk.
pub fn chunk_count(disk_size: u64, chunk_size: u32) -> u64 {
    disk_size.div_ceil(u64::from(chunk_size))
}

impl Manifest {
    /// An all-zero disk.
    pub fn empty(disk_size: u64, chunk_size: u32) -> Result<Manifest> {
        check_chunk_size(chunk_size)?;
        if disk_size > MAX_DISK {
            return Err(Error::new(
                crate::ErrorKind::InvalidInput,
                format!("disk size {disk_size} exceeds 64 TiB"),
            ));
        }
        let n = usize::try_from(chunk_count(disk_size, chunk_size))
            .map_err(|_| Error::new(crate::ErrorKind::InvalidInput, "disk too large"))?;
        Ok(Manifest {
            disk_size,
            chunk_size,
            chunks: vec![None; n],
        })
    }

    /// Bytes of chunk `i` (the last one may be short).
    pub fn chunk_len(&self, i: usize) -> u64 {
        let cs = u64::from(self.chunk_size);
        let start = (i as u64).saturating_mul(cs);
        self.disk_size.saturating_sub(start).min(cs)
    }

    /// Guest bytes held in non-zero chunks.
    pub fn stored_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| self.chunk_len(i))
            .sum()
    }

    /// Binary encoding (see the module table).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.chunks.len() * 33 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&self.disk_size.to_le_bytes());
        out.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        for c in &self.chunks {
            match c {
                None => out.push(0),
                Some(h) => {
                    out.push(1);
                    out.extend_from_slice(&h.0);
                }
            }
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Decodes and validates an encoding; anything malformed is a Corrupt error.
    pub fn decode(b: &[u8]) -> Result<Manifest> {
        let le32 = |o: usize| {
            b.get(o..o + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let le64 = |o: usize| {
            b.get(o..o + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        if b.len() < HEADER + 32 || &b[0..8] != MAGIC {
            return Err(Error::corrupt(format!(
                "manifest of {} bytes has no IKONMAN1 header",
                b.len()
            )));
        }
        let body = &b[..b.len() - 32];
        if blake3::hash(body).as_bytes() != &b[b.len() - 32..] {
            return Err(Error::corrupt("manifest checksum mismatch"));
        }
        let version = le32(8).unwrap_or(0);
        if version != VERSION {
            return Err(Error::corrupt(format!(
                "manifest format version {version} at byte 8 (expected {VERSION})"
            )));
        }
        let chunk_size = le32(12).unwrap_or(0);
        check_chunk_size(chunk_size)
            .map_err(|e| Error::corrupt(format!("manifest byte 12: {}", e.context)))?;
        let disk_size = le64(16).unwrap_or(u64::MAX);
        if disk_size > MAX_DISK {
            return Err(Error::corrupt(format!(
                "manifest disk size {disk_size} at byte 16 exceeds 64 TiB"
            )));
        }
        let count = le64(24).unwrap_or(u64::MAX);
        if count != chunk_count(disk_size, chunk_size) {
            return Err(Error::corrupt(format!(
                "manifest entry count {count} at byte 24 does not match the disk size"
            )));
        }
        let n = usize::try_from(count).map_err(|_| Error::corrupt("manifest too large"))?;
        let mut chunks = Vec::with_capacity(n.min(body.len()));
        let mut pos = HEADER;
        for i in 0..n {
            match body.get(pos) {
                Some(0) => {
                    chunks.push(None);
                    pos += 1;
                }
                Some(1) => {
                    let h = body.get(pos + 1..pos + 33).ok_or_else(|| {
                        Error::corrupt(format!("manifest entry {i} at byte {pos} is truncated"))
                    })?;
                    let mut a = [0u8; 32];
                    a.copy_from_slice(h);
                    chunks.push(Some(ChunkHash(a)));
                    pos += 33;
                }
                Some(t) => {
                    return Err(Error::corrupt(format!(
                        "manifest entry {i} at byte {pos} has tag {t}"
                    )))
                }
                None => return Err(Error::corrupt(format!("manifest ends at entry {i} of {n}"))),
            }
        }
        if pos != body.len() {
            return Err(Error::corrupt(format!(
                "manifest has {} trailing bytes",
                body.len() - pos
            )));
        }
        Ok(Manifest {
            disk_size,
            chunk_size,
            chunks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut m = Manifest::empty((3 << 20) + 5, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        m.chunks[1] = Some(ChunkHash::of(b"x"));
        m.chunks[3] = Some(ChunkHash::of(b"y"));
        assert_eq!(m.chunks.len(), 4);
        assert_eq!(m.stored_bytes(), (1 << 20) + 5);
        let e = m.encode();
        assert_eq!(Manifest::decode(&e).ok(), Some(m.clone()));
        for i in 0..e.len() {
            let mut d = e.clone();
            d[i] ^= 0x40;
            assert!(Manifest::decode(&d).is_err(), "flip at {i} accepted");
        }
        for n in 0..e.len() {
            assert!(Manifest::decode(&e[..n]).is_err());
        }
        let h = ChunkHash::of(b"abc");
        assert_eq!(h.to_string().parse::<ChunkHash>().ok(), Some(h));
        assert!(h
            .key()
            .starts_with(&format!("chunks/{}/", &h.to_string()[..2])));
    }
}
