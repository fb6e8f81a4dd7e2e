//! cloop (Linux compressed loop, v2 as QEMU's `cloop` driver reads it), read only.
//!
//! Layout (cloop v2 header, `#!/bin/sh` preamble): a 128-byte shell preamble, then
//! big-endian `block_size` (u32 at 128) and `n_blocks` (u32 at 132), then `n_blocks + 1`
//! big-endian u64 file offsets at 136. Block `i` is the zlib stream between offsets `i` and
//! `i + 1` and inflates to exactly `block_size` bytes; the virtual size is
//! `n_blocks * block_size`.

use crate::bytes::be32_or_zero;
use crate::device::{
    check_range, push_extent, BlockDevice, DiskImage, Extent, ExtentKind, ImageInfo,
};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::{Format, OpenContext};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// Size of the shell-script preamble before the binary header (cloop v2).
pub const PREAMBLE: u64 = 128;
/// Offset of the offsets table (preamble + block_size + n_blocks).
pub const TABLE_OFFSET: u64 = 136;
/// Largest block QEMU accepts (block/cloop.c MAX_BLOCK_SIZE: 64 MiB).
pub const MAX_BLOCK_SIZE: u64 = 64 << 20;
/// Largest offsets table Ikon loads (bytes).
const MAX_TABLE_BYTES: u64 = 64 << 20;

/// An opened cloop image.
#[derive(Debug)]
pub struct CloopImage {
    storage: Arc<dyn Storage>,
    block_size: u64,
    size: u64,
    /// `n_blocks + 1` file offsets.
    offsets: Vec<u64>,
    /// Last inflated block (index, data).
    cache: Mutex<Option<(u64, Vec<u8>)>>,
}

/// Open `storage` as a cloop image.
pub fn open(storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Ok(Box::new(open_cloop(storage)?))
}

/// Open `storage` as a cloop image, returning the concrete type.
pub fn open_cloop(storage: Arc<dyn Storage>) -> Result<CloopImage> {
    let file_size = storage.size()?;
    if file_size < TABLE_OFFSET {
        return Err(Error::corrupt(format!(
            "cloop file of {file_size} bytes is shorter than its {TABLE_OFFSET}-byte header"
        )));
    }
    let h = read_vec(storage.as_ref(), PREAMBLE, 8, 8, "cloop header")?;
    let block_size = u64::from(be32_or_zero(&h, 0));
    let n_blocks = u64::from(be32_or_zero(&h, 4));
    if block_size == 0 || block_size % 512 != 0 {
        return Err(Error::corrupt(format!(
            "cloop header at 0x80: block size {block_size} is not a non-zero multiple of 512"
        )));
    }
    if block_size > MAX_BLOCK_SIZE {
        return Err(Error::limit(format!(
            "cloop header at 0x80: block size {block_size} exceeds {MAX_BLOCK_SIZE}"
        )));
    }
    let table_bytes = (n_blocks + 1) * 8;
    if table_bytes > MAX_TABLE_BYTES {
        return Err(Error::limit(format!(
            "cloop offsets table of {n_blocks} blocks exceeds the limit of {MAX_TABLE_BYTES} bytes"
        )));
    }
    if TABLE_OFFSET + table_bytes > file_size {
        return Err(Error::corrupt(format!(
            "cloop offsets table at 0x88 ({} entries) extends past the end of the file (size {file_size})",
            n_blocks + 1
        )));
    }
    let raw = read_vec(
        storage.as_ref(),
        TABLE_OFFSET,
        table_bytes,
        MAX_TABLE_BYTES,
        "cloop offsets table",
    )?;
    let offsets: Vec<u64> = crate::bytes::be64_table(&raw);
    let table_end = TABLE_OFFSET + table_bytes;
    for (i, w) in offsets.windows(2).enumerate() {
        if w[0] < table_end || w[1] < w[0] {
            return Err(Error::corrupt(format!(
                "cloop block {i} spans 0x{:x}..0x{:x}, which is inside the header or goes backwards",
                w[0], w[1]
            )));
        }
        if w[1] - w[0] > 2 * MAX_BLOCK_SIZE {
            return Err(Error::corrupt(format!(
                "cloop block {i} at 0x{:x} has a compressed size of {} bytes (over {})",
                w[0],
                w[1] - w[0],
                2 * MAX_BLOCK_SIZE
            )));
        }
        if w[1] > file_size {
            return Err(Error::corrupt(format!(
                "cloop block {i} at 0x{:x}..0x{:x} extends past the end of the file (size {file_size})",
                w[0], w[1]
            )));
        }
    }
    let size = n_blocks.mul_or(block_size, "cloop virtual size")?;
    Ok(CloopImage {
        storage,
        block_size,
        size,
        offsets,
        cache: Mutex::new(None),
    })
}

impl CloopImage {
    /// Inflate block `idx` (exactly `block_size` bytes).
    fn inflate(&self, idx: u64) -> Result<Vec<u8>> {
        let i = usize::try_from(idx).map_err(|_| Error::invalid("cloop block index"))?;
        let (start, end) = match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&s), Some(&e)) => (s, e),
            _ => return Err(Error::invalid(format!("cloop block {idx} out of range"))),
        };
        let comp = read_vec(
            self.storage.as_ref(),
            start,
            end - start,
            2 * MAX_BLOCK_SIZE,
            "cloop block",
        )?;
        let want =
            usize::try_from(self.block_size).map_err(|_| Error::limit("cloop block size"))?;
        let mut out = Vec::with_capacity(want);
        let mut dec = flate2::read::ZlibDecoder::new(&comp[..]).take(self.block_size + 1);
        dec.read_to_end(&mut out).map_err(|e| {
            Error::corrupt(format!(
                "cloop block {idx} at 0x{start:x}: zlib data is invalid ({e})"
            ))
        })?;
        if out.len() != want {
            return Err(Error::corrupt(format!(
                "cloop block {idx} at 0x{start:x} inflates to {} bytes instead of {want}",
                out.len()
            )));
        }
        Ok(out)
    }
}

impl BlockDevice for CloopImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let idx = pos / self.block_size;
            let inb = usize::try_from(pos % self.block_size)
                .map_err(|_| Error::invalid("cloop offset"))?;
            let n = usize::try_from(self.block_size)
                .map_err(|_| Error::invalid("cloop block size"))?
                .saturating_sub(inb)
                .min(buf.len() - done);
            let mut cache = self
                .cache
                .lock()
                .map_err(|_| Error::invalid("cloop cache lock poisoned"))?;
            if cache.as_ref().is_none_or(|(i, _)| *i != idx) {
                *cache = Some((idx, self.inflate(idx)?));
            }
            let src = cache
                .as_ref()
                .and_then(|(_, d)| d.get(inb..inb + n))
                .ok_or_else(|| Error::invalid("cloop cache"))?;
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        if end > offset {
            push_extent(&mut out, offset, end - offset, ExtentKind::Data, true);
        }
        Ok(out)
    }
}

impl DiskImage for CloopImage {
    fn info(&self) -> ImageInfo {
        let mut info = ImageInfo::new(Format::Cloop, self.size)
            .detail("blocks", self.offsets.len().saturating_sub(1))
            .detail("compression", "zlib");
        info.subformat = Some("v2".to_string());
        info.cluster_size = Some(self.block_size);
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_image_has_no_blocks() {
        let mut b = vec![0u8; 136];
        b[128..132].copy_from_slice(&512u32.to_be_bytes());
        b.extend_from_slice(&144u64.to_be_bytes());
        let s: Arc<dyn Storage> = Arc::new(crate::storage::MemStorage::new(b));
        let img = open_cloop(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(img.len(), 0);
        assert!(img.map(0, 100).map(|m| m.is_empty()).unwrap_or(false));
    }
}
