//! Apple disk images (UDIF, QEMU's `dmg`), read only. The koly trailer at the end of the file
//! points at the block tables ("mish"/BLKX), read from the resource fork when it has one and
//! from the XML property list otherwise (the `<data>` elements, base64); each table lists
//! chunks of guest sectors stored zero-filled, raw, zlib-compressed (bzip2 and LZFSE chunks
//! are reported as unsupported when read).

mod header;

pub use header::{base64_decode, Chunk, Koly};

use crate::bytes::be32_or_zero;
use crate::device::{
    check_range, push_extent, BlockDevice, DiskImage, Extent, ExtentKind, ImageInfo,
};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::{Format, OpenContext};
use header::{
    parse_mish, CHUNK_BZIP2, CHUNK_IGNORE, CHUNK_LZFSE, CHUNK_RAW, CHUNK_ZERO, CHUNK_ZLIB,
    KOLY_SIZE,
};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// Largest XML plist / resource fork Ikon reads (QEMU caps the plist at 16 MiB too).
const MAX_METADATA: u64 = 16 << 20;
/// Largest stored or expanded chunk (QEMU: DMG_LENGTHS_MAX 64 MiB).
const MAX_CHUNK_BYTES: u64 = 64 << 20;
/// Sector size.
const SECTOR: u64 = 512;

/// An opened DMG image.
#[derive(Debug)]
pub struct DmgImage {
    storage: Arc<dyn Storage>,
    koly: Koly,
    size: u64,
    /// Chunks with data or zeros, sorted by sector, non-overlapping.
    chunks: Vec<Chunk>,
    /// Last expanded chunk (index, bytes).
    cache: Mutex<Option<(usize, Vec<u8>)>>,
}

/// Open `storage` as a DMG image.
pub fn open(storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Ok(Box::new(open_dmg(storage)?))
}

/// The `<data>` elements of an XML plist, base64-decoded.
fn xml_tables(xml: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(p) = find(rest, b"<data>") {
        let body = rest.get(p + 6..).unwrap_or_default();
        let end = find(body, b"</data>")
            .ok_or_else(|| Error::corrupt("DMG XML plist: <data> element is not closed"))?;
        let text = body.get(..end).unwrap_or_default();
        let decoded = base64_decode(text)
            .ok_or_else(|| Error::corrupt("DMG XML plist: <data> is not valid base64"))?;
        out.push(decoded);
        rest = body.get(end + 7..).unwrap_or_default();
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The resources of a resource fork (a data-length header, then length-prefixed resources).
fn rsrc_tables(fork: &[u8]) -> Result<Vec<Vec<u8>>> {
    let data_off = u64::from(be32_or_zero(fork, 0));
    let data_len = u64::from(be32_or_zero(fork, 8));
    let flen = fork.len() as u64;
    if fork.len() < 16 || data_len == 0 || data_off.saturating_add(data_len) > flen {
        return Err(Error::corrupt(
            "DMG resource fork header points outside the fork",
        ));
    }
    let mut out = Vec::new();
    let mut pos = data_off;
    let end = data_off + data_len;
    while pos < end {
        let at = usize::try_from(pos).map_err(|_| Error::corrupt("DMG resource offset"))?;
        let n = u64::from(be32_or_zero(fork, at));
        if n == 0 || n > (end - pos).saturating_sub(4) {
            return Err(Error::corrupt(format!(
                "DMG resource at fork offset {pos} has an invalid length {n}"
            )));
        }
        let s = at + 4;
        let e = s + usize::try_from(n).map_err(|_| Error::corrupt("DMG resource length"))?;
        out.push(fork.get(s..e).unwrap_or_default().to_vec());
        pos += 4 + n;
    }
    Ok(out)
}

/// Open `storage` as a DMG image, returning the concrete type.
pub fn open_dmg(storage: Arc<dyn Storage>) -> Result<DmgImage> {
    let file_size = storage.size()?;
    if file_size < KOLY_SIZE {
        return Err(Error::corrupt(format!(
            "DMG file of {file_size} bytes is shorter than its 512-byte trailer"
        )));
    }
    let at = file_size - KOLY_SIZE;
    let kb = read_vec(storage.as_ref(), at, KOLY_SIZE, KOLY_SIZE, "DMG trailer")?;
    let koly = Koly::parse(&kb, at)?;
    let size = koly.sector_count.mul_or(SECTOR, "DMG virtual size")?;
    let tables = if koly.rsrc_length != 0 {
        let fork = read_vec(
            storage.as_ref(),
            koly.rsrc_offset,
            koly.rsrc_length,
            MAX_METADATA,
            "DMG resource fork",
        )?;
        rsrc_tables(&fork)?
    } else if koly.xml_length != 0 {
        let xml = read_vec(
            storage.as_ref(),
            koly.xml_offset,
            koly.xml_length,
            MAX_METADATA,
            "DMG XML plist",
        )?;
        xml_tables(&xml)?
    } else {
        return Err(Error::corrupt(format!(
            "DMG trailer at 0x{at:x} has neither a resource fork nor an XML plist"
        )));
    };
    let mut chunks = Vec::new();
    for t in &tables {
        parse_mish(t, koly.data_fork_offset, &mut chunks)?;
    }
    chunks.retain(|c| c.count != 0);
    for c in &chunks {
        let stored = matches!(c.kind, CHUNK_RAW | CHUNK_ZLIB | CHUNK_BZIP2 | CHUNK_LZFSE);
        if !stored {
            continue;
        }
        if c.length > MAX_CHUNK_BYTES || c.count > MAX_CHUNK_BYTES / SECTOR {
            return Err(Error::limit(format!(
                "DMG chunk at sector {} ({} sectors, {} bytes stored) exceeds the {MAX_CHUNK_BYTES}-byte limit",
                c.sector, c.count, c.length
            )));
        }
        if c.offset.checked_add(c.length).is_none_or(|e| e > at) {
            return Err(Error::corrupt(format!(
                "DMG chunk at sector {} stored at 0x{:x} ({} bytes) extends past the trailer at 0x{at:x}",
                c.sector, c.offset, c.length
            )));
        }
    }
    chunks.sort_by_key(|c| c.sector);
    for w in chunks.windows(2) {
        if w[0]
            .sector
            .checked_add(w[0].count)
            .is_none_or(|e| e > w[1].sector)
        {
            return Err(Error::corrupt(format!(
                "DMG chunks at sectors {} and {} overlap",
                w[0].sector, w[1].sector
            )));
        }
    }
    Ok(DmgImage {
        storage,
        koly,
        size,
        chunks,
        cache: Mutex::new(None),
    })
}

impl DmgImage {
    /// Index of the chunk containing `sector`, or of the first chunk after it (Err).
    fn find_chunk(&self, sector: u64) -> std::result::Result<usize, usize> {
        let i = self.chunks.partition_point(|c| c.sector <= sector);
        match i
            .checked_sub(1)
            .and_then(|j| self.chunks.get(j).map(|c| (j, c)))
        {
            Some((j, c)) if sector - c.sector < c.count => Ok(j),
            _ => Err(i),
        }
    }

    /// Expand chunk `i` to its full `count * 512` bytes.
    fn expand(&self, i: usize) -> Result<Vec<u8>> {
        let c = self
            .chunks
            .get(i)
            .ok_or_else(|| Error::invalid("DMG chunk index"))?;
        // Chunks of unknown types reach here with an unbounded count (only stored types
        // are bounded at open): multiply checked, before the type is refused below.
        let want = crate::error::to_usize(c.count.mul_or(SECTOR, "DMG chunk size")?, "DMG chunk")?;
        let stored = read_vec(
            self.storage.as_ref(),
            c.offset,
            c.length,
            MAX_CHUNK_BYTES,
            "DMG chunk",
        )?;
        match c.kind {
            CHUNK_RAW => {
                let mut v = stored;
                v.resize(want, 0);
                Ok(v)
            }
            CHUNK_ZLIB => {
                let mut out = Vec::with_capacity(want);
                flate2::read::ZlibDecoder::new(&stored[..])
                    .take(want as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        Error::corrupt(format!(
                            "DMG zlib chunk at 0x{:x}: invalid data ({e})",
                            c.offset
                        ))
                    })?;
                if out.len() != want {
                    return Err(Error::corrupt(format!(
                        "DMG zlib chunk at 0x{:x} expands to {} bytes instead of {want}",
                        c.offset,
                        out.len()
                    )));
                }
                Ok(out)
            }
            CHUNK_BZIP2 => Err(Error::unsupported(
                "DMG bzip2 (UDBZ) chunks are not supported",
            )),
            CHUNK_LZFSE => Err(Error::unsupported(
                "DMG LZFSE (ULFO) chunks are not supported",
            )),
            k => Err(Error::unsupported(format!(
                "DMG chunk type 0x{k:08x} is not supported"
            ))),
        }
    }
}

impl BlockDevice for DmgImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let left = (buf.len() - done) as u64;
            let (n, chunk) = match self.find_chunk(pos / SECTOR) {
                Ok(i) => {
                    let c = self
                        .chunks
                        .get(i)
                        .ok_or_else(|| Error::invalid("DMG chunk"))?;
                    // `c` holds `pos`, so `start <= pos < end`; the end saturates (a zero
                    // or ignored chunk's count is not bounded by the stored-chunk limit).
                    let start = c.sector * SECTOR;
                    let end = c.sector.saturating_add(c.count).saturating_mul(SECTOR);
                    ((end - pos).min(left), Some((i, c, pos - start)))
                }
                Err(i) => {
                    let next = self
                        .chunks
                        .get(i)
                        .map_or(u64::MAX, |c| c.sector.saturating_mul(SECTOR));
                    (next.saturating_sub(pos).min(left), None)
                }
            };
            let n = usize::try_from(n).map_err(|_| Error::invalid("DMG read run"))?;
            let piece = &mut buf[done..done + n];
            match chunk {
                Some((_, c, _)) if matches!(c.kind, CHUNK_ZERO | CHUNK_IGNORE) => piece.fill(0),
                Some((i, _, inner)) => {
                    let inner = usize::try_from(inner).map_err(|_| Error::invalid("DMG"))?;
                    let mut cache = self
                        .cache
                        .lock()
                        .map_err(|_| Error::invalid("DMG cache lock poisoned"))?;
                    if cache.as_ref().is_none_or(|(j, _)| *j != i) {
                        *cache = Some((i, self.expand(i)?));
                    }
                    let src = cache
                        .as_ref()
                        .and_then(|(_, d)| d.get(inner..inner + n))
                        .ok_or_else(|| Error::invalid("DMG cache"))?;
                    piece.copy_from_slice(src);
                }
                None => piece.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let (n, kind, comp) = match self.find_chunk(pos / SECTOR) {
                Ok(i) => {
                    let c = self
                        .chunks
                        .get(i)
                        .ok_or_else(|| Error::invalid("DMG chunk"))?;
                    let chunk_end = c.sector.saturating_add(c.count).saturating_mul(SECTOR);
                    let n = (chunk_end - pos).min(end - pos);
                    match c.kind {
                        CHUNK_ZERO | CHUNK_IGNORE => (n, ExtentKind::Zero, false),
                        CHUNK_RAW => (n, ExtentKind::Data, false),
                        _ => (n, ExtentKind::Data, true),
                    }
                }
                Err(i) => {
                    let next = self
                        .chunks
                        .get(i)
                        .map_or(u64::MAX, |c| c.sector.saturating_mul(SECTOR));
                    (next.min(end) - pos, ExtentKind::Unallocated, false)
                }
            };
            if n == 0 {
                break;
            }
            push_extent(&mut out, pos, n, kind, comp);
            pos += n;
        }
        Ok(out)
    }
}

impl DiskImage for DmgImage {
    fn info(&self) -> ImageInfo {
        let mut kinds: Vec<&str> = Vec::new();
        for c in &self.chunks {
            let k = match c.kind {
                CHUNK_ZERO => "zero",
                CHUNK_RAW => "raw",
                CHUNK_IGNORE => "ignore",
                CHUNK_ZLIB => "zlib",
                CHUNK_BZIP2 => "bzip2",
                CHUNK_LZFSE => "lzfse",
                _ => "other",
            };
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        let mut info = ImageInfo::new(Format::Dmg, self.size)
            .detail("koly_version", self.koly.version)
            .detail("chunks", self.chunks.len())
            .detail("chunk_types", kinds.join(","))
            .detail(
                "metadata",
                if self.koly.rsrc_length != 0 {
                    "resource fork"
                } else {
                    "xml plist"
                },
            );
        info.subformat = Some("udif".to_string());
        info
    }
}
