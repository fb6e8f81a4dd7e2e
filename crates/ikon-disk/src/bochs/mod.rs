//! Bochs growing ("Redolog"/"Growing") images as QEMU's `bochs` driver reads them, read only.
//!
//! Layout (Bochs redolog header, little-endian, 512 bytes): magic "Bochs Virtual HD Image"
//! (32 bytes), type "Redolog" (16), subtype "Growing" (16), version u32 at 64 (0x00020000, or
//! 0x00010000 for v1), header size u32 at 68, then catalog entries u32 at 72, bitmap bytes u32
//! at 76, extent bytes u32 at 80, and the disk size u64 at 88 (v2, after a timestamp) or 84
//! (v1). The catalog (u32 per extent, 0xffffffff = unallocated) follows the header; extent `n`
//! lives at `header + catalog*4 + n * (bitmap_blocks + extent_blocks) * 512`: a sector bitmap
//! (bit `s % 8` of byte `s / 8` set = sector stored) then the extent's sectors.

use crate::bytes::le32_or_zero;
use crate::device::{
    check_range, push_extent, BlockDevice, DiskImage, Extent, ExtentKind, ImageInfo,
};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::{Format, OpenContext};
use std::sync::Arc;

/// Header magic (Bochs redolog header).
pub const MAGIC: &[u8] = b"Bochs Virtual HD Image";
/// Header type of redolog images.
pub const TYPE_REDOLOG: &[u8] = b"Redolog";
/// Subtype of growing images (the only one QEMU reads).
pub const SUBTYPE_GROWING: &[u8] = b"Growing";
/// Current header version.
pub const VERSION_2: u32 = 0x0002_0000;
/// Version 1 header (no timestamp field).
pub const VERSION_1: u32 = 0x0001_0000;
/// Header size.
pub const HEADER_SIZE: u64 = 512;
/// Catalog entry of an unallocated extent.
pub const UNALLOCATED: u32 = 0xffff_ffff;
/// Largest extent QEMU accepts (block/bochs.c: 0x800000).
pub const MAX_EXTENT: u64 = 0x80_0000;
/// Sector size.
const SECTOR: u64 = 512;
/// Largest catalog Ikon loads (bytes).
const MAX_CATALOG_BYTES: u64 = 64 << 20;

/// An opened Bochs image.
#[derive(Debug)]
pub struct BochsImage {
    storage: Arc<dyn Storage>,
    version: u32,
    size: u64,
    extent: u64,
    /// Start of extent storage.
    data_offset: u64,
    /// Bytes per stored extent (bitmap blocks + extent blocks, in bytes).
    stride: u64,
    /// Bitmap bytes before each extent's data (rounded up to sectors).
    bitmap_bytes: u64,
    catalog: Vec<u32>,
}

fn field_is(b: &[u8], at: usize, len: usize, want: &[u8]) -> bool {
    b.get(at..at + len).is_some_and(|f| {
        let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
        f.get(..end) == Some(want)
    })
}

/// Open `storage` as a Bochs image.
pub fn open(storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Ok(Box::new(open_bochs(storage)?))
}

/// Open `storage` as a Bochs image, returning the concrete type.
pub fn open_bochs(storage: Arc<dyn Storage>) -> Result<BochsImage> {
    let file_size = storage.size()?;
    if file_size < HEADER_SIZE {
        return Err(Error::corrupt(format!(
            "Bochs file of {file_size} bytes is shorter than its {HEADER_SIZE}-byte header"
        )));
    }
    let h = read_vec(
        storage.as_ref(),
        0,
        HEADER_SIZE,
        HEADER_SIZE,
        "Bochs header",
    )?;
    if !field_is(&h, 0, 32, MAGIC)
        || !field_is(&h, 32, 16, TYPE_REDOLOG)
        || !field_is(&h, 48, 16, SUBTYPE_GROWING)
    {
        return Err(Error::unsupported(
            "Bochs header at 0x0 is not a growing redolog image",
        ));
    }
    let version = le32_or_zero(&h, 64);
    let disk_at = match version {
        VERSION_2 => 88,
        VERSION_1 => 84,
        v => {
            return Err(Error::unsupported(format!(
                "Bochs header at 0x40: version 0x{v:x} (0x10000 and 0x20000 are known)"
            )))
        }
    };
    let header_size = u64::from(le32_or_zero(&h, 68));
    let catalog_len = u64::from(le32_or_zero(&h, 72));
    let bitmap = u64::from(le32_or_zero(&h, 76));
    let extent = u64::from(le32_or_zero(&h, 80));
    let disk =
        u64::from(le32_or_zero(&h, disk_at)) | (u64::from(le32_or_zero(&h, disk_at + 4)) << 32);
    let size = disk / SECTOR * SECTOR;
    if extent < SECTOR || !extent.is_power_of_two() || extent > MAX_EXTENT {
        return Err(Error::corrupt(format!(
            "Bochs header at 0x50: extent size {extent} is not a power of two in 512..={MAX_EXTENT}"
        )));
    }
    if header_size < HEADER_SIZE || header_size > file_size {
        return Err(Error::corrupt(format!(
            "Bochs header at 0x44: header size {header_size} is outside 512..={file_size}"
        )));
    }
    let needed = size.div_ceil(extent);
    if catalog_len < needed {
        return Err(Error::corrupt(format!(
            "Bochs catalog has {catalog_len} entries but the disk of {size} bytes needs {needed}"
        )));
    }
    let cat_bytes = catalog_len * 4;
    if cat_bytes > MAX_CATALOG_BYTES {
        return Err(Error::limit(format!(
            "Bochs catalog of {catalog_len} entries exceeds the limit of {MAX_CATALOG_BYTES} bytes"
        )));
    }
    let data_offset = header_size + cat_bytes;
    if data_offset > file_size {
        return Err(Error::corrupt(format!(
            "Bochs catalog at 0x{header_size:x} ({catalog_len} entries) extends past the end of the file (size {file_size})"
        )));
    }
    let raw = read_vec(
        storage.as_ref(),
        header_size,
        cat_bytes,
        MAX_CATALOG_BYTES,
        "Bochs catalog",
    )?;
    let catalog: Vec<u32> = crate::bytes::le32_table(&raw);
    // bitmap_blocks = 1 + (bitmap - 1) / 512 (at least one sector), as Bochs lays it out.
    let bitmap_bytes = bitmap.max(1).div_ceil(SECTOR) * SECTOR;
    let stride = bitmap_bytes + extent;
    for (i, &e) in catalog.iter().enumerate() {
        if e == UNALLOCATED {
            continue;
        }
        let start = u64::from(e)
            .mul_or(stride, "Bochs extent offset")?
            .add_or(data_offset, "Bochs extent offset")?;
        let bm_end = start.add_or(extent / SECTOR / 8, "Bochs bitmap end")?;
        if bm_end > file_size {
            return Err(Error::corrupt(format!(
                "Bochs catalog entry {i} points at extent 0x{start:x}, past the end of the file (size {file_size})"
            )));
        }
    }
    Ok(BochsImage {
        storage,
        version,
        size,
        extent,
        data_offset,
        stride,
        bitmap_bytes,
        catalog,
    })
}

impl BochsImage {
    /// Start of the stored extent for guest offset `pos` (its bitmap), if allocated.
    fn extent_start(&self, pos: u64) -> Option<u64> {
        let idx = usize::try_from(pos / self.extent).ok()?;
        let e = *self.catalog.get(idx)?;
        (e != UNALLOCATED).then(|| self.data_offset + u64::from(e) * self.stride)
    }
}

impl BlockDevice for BochsImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let in_ext = pos % self.extent;
            let n = usize::try_from((self.extent - in_ext).min((buf.len() - done) as u64))
                .map_err(|_| Error::invalid("Bochs read run"))?;
            let piece = &mut buf[done..done + n];
            match self.extent_start(pos) {
                None => piece.fill(0),
                Some(start) => {
                    let first = in_ext / SECTOR;
                    let last = (in_ext + n as u64).div_ceil(SECTOR);
                    let bm = read_vec(
                        self.storage.as_ref(),
                        start + first / 8,
                        (last - 1) / 8 - first / 8 + 1,
                        self.bitmap_bytes,
                        "Bochs extent bitmap",
                    )?;
                    let data = start + self.bitmap_bytes;
                    let bit = |s: u64| {
                        usize::try_from(s / 8 - first / 8)
                            .ok()
                            .and_then(|b| bm.get(b))
                            .is_some_and(|b| b & (1 << (s % 8)) != 0)
                    };
                    let mut p = 0usize;
                    while p < n {
                        // One storage read (or fill) per run of sectors with the same bit.
                        let at = in_ext + p as u64;
                        let present = bit(at / SECTOR);
                        let mut run_end = (at / SECTOR + 1) * SECTOR;
                        let stop = in_ext + n as u64;
                        while run_end < stop && bit(run_end / SECTOR) == present {
                            run_end += SECTOR;
                        }
                        let m = usize::try_from(run_end.min(stop) - at)
                            .map_err(|_| Error::invalid("Bochs sector run"))?;
                        let chunk = &mut piece[p..p + m];
                        if present {
                            self.storage.read_exact_at(chunk, data + at)?;
                        } else {
                            chunk.fill(0);
                        }
                        p += m;
                    }
                }
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
            let n = (self.extent - pos % self.extent).min(end - pos);
            let kind = if self.extent_start(pos).is_some() {
                ExtentKind::Data
            } else {
                ExtentKind::Unallocated
            };
            push_extent(&mut out, pos, n, kind, false);
            pos += n;
        }
        Ok(out)
    }
}

impl DiskImage for BochsImage {
    fn info(&self) -> ImageInfo {
        let mut info = ImageInfo::new(Format::Bochs, self.size)
            .detail("version", format!("0x{:x}", self.version))
            .detail("catalog_entries", self.catalog.len())
            .detail("bitmap_bytes", self.bitmap_bytes);
        info.subformat = Some("growing".to_string());
        info.cluster_size = Some(self.extent);
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_compare_up_to_nul() {
        let mut b = [0u8; 16];
        b[..7].copy_from_slice(b"Redolog");
        assert!(field_is(&b, 0, 16, TYPE_REDOLOG));
        assert!(!field_is(&b, 0, 16, SUBTYPE_GROWING));
        assert!(!field_is(&b, 8, 16, TYPE_REDOLOG));
    }

    #[test]
    fn header_only_file_is_refused() {
        let s: Arc<dyn Storage> = Arc::new(crate::storage::MemStorage::new(vec![0u8; 512]));
        assert!(open_bochs(s).is_err());
    }
}
