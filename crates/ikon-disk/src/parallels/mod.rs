//! Parallels expanding images (QEMU `parallels`, docs/interop/parallels.txt), read only.
//! A 64-byte header, a BAT of 32-bit entries right after it (0 = unallocated; sector offsets
//! for the `WithoutFreeSpace` magic, cluster offsets for `WithouFreSpacExt`), then clusters of
//! `tracks` sectors. The optional format extension (dirty bitmaps) does not change guest
//! content and is only reported.

mod header;

pub use header::Header;

use crate::device::{
    check_range, push_extent, BlockDevice, DiskImage, Extent, ExtentKind, ImageInfo,
};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::{Format, OpenContext};
use header::{HEADER_SIZE, SECTOR};
use std::sync::Arc;

/// Largest BAT Ikon loads: 64 MiB = 16 Mi entries.
const MAX_BAT_BYTES: u64 = 64 << 20;
/// Largest cluster accepted (QEMU refuses `tracks` above INT32_MAX / 513).
const MAX_TRACKS: u32 = i32::MAX as u32 / 513;

/// An opened Parallels image.
#[derive(Debug)]
pub struct ParallelsImage {
    storage: Arc<dyn Storage>,
    header: Header,
    size: u64,
    cluster: u64,
    /// Host byte offset of each cluster, 0 = unallocated.
    bat: Vec<u64>,
}

/// Open `storage` as a Parallels image.
pub fn open(storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Ok(Box::new(open_parallels(storage)?))
}

/// Open `storage` as a Parallels image, returning the concrete type.
pub fn open_parallels(storage: Arc<dyn Storage>) -> Result<ParallelsImage> {
    let file_size = storage.size()?;
    if file_size < HEADER_SIZE {
        return Err(Error::corrupt(format!(
            "Parallels file of {file_size} bytes is shorter than its {HEADER_SIZE}-byte header"
        )));
    }
    let hb = read_vec(
        storage.as_ref(),
        0,
        HEADER_SIZE,
        HEADER_SIZE,
        "Parallels header",
    )?;
    let header = Header::parse(&hb)?;
    if header.tracks > MAX_TRACKS {
        return Err(Error::limit(format!(
            "Parallels cluster of {} sectors is too large",
            header.tracks
        )));
    }
    let cluster = u64::from(header.tracks) * SECTOR;
    let size = header.nb_sectors.mul_or(SECTOR, "Parallels virtual size")?;
    let entries = u64::from(header.bat_entries);
    let bat_bytes = entries * 4;
    if bat_bytes > MAX_BAT_BYTES {
        return Err(Error::limit(format!(
            "Parallels BAT of {entries} entries exceeds the limit of {MAX_BAT_BYTES} bytes"
        )));
    }
    let bat_end = HEADER_SIZE + bat_bytes;
    if bat_end > file_size {
        return Err(Error::corrupt(format!(
            "Parallels BAT at 0x40 ({entries} entries) extends past the end of the file (size {file_size})"
        )));
    }
    let raw = read_vec(
        storage.as_ref(),
        HEADER_SIZE,
        bat_bytes,
        MAX_BAT_BYTES,
        "Parallels BAT",
    )?;
    let unit = if header.ext { cluster } else { SECTOR };
    let mut bat = Vec::with_capacity(raw.len() / 4);
    for (i, c) in raw.chunks_exact(4).enumerate() {
        let e = u64::from(crate::bytes::le32_or_zero(c, 0));
        if e == 0 {
            bat.push(0);
            continue;
        }
        let host = e.mul_or(unit, "Parallels BAT entry")?;
        let end = host.add_or(cluster, "Parallels cluster end")?;
        if host < bat_end {
            return Err(Error::corrupt(format!(
                "Parallels BAT entry {i} points at 0x{host:x}, inside the header or the BAT (ends at 0x{bat_end:x})"
            )));
        }
        if end > file_size {
            return Err(Error::corrupt(format!(
                "Parallels BAT entry {i} points at cluster 0x{host:x}..0x{end:x} past the end of the file (size {file_size})"
            )));
        }
        bat.push(host);
    }
    Ok(ParallelsImage {
        storage,
        header,
        size,
        cluster,
        bat,
    })
}

impl ParallelsImage {
    /// Host offset of the cluster holding guest offset `pos`, if allocated.
    fn host(&self, pos: u64) -> Option<u64> {
        let idx = usize::try_from(pos / self.cluster).ok()?;
        self.bat.get(idx).copied().filter(|&h| h != 0)
    }
}

impl BlockDevice for ParallelsImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let first = self.host(pos).map(|h| h + pos % self.cluster);
            // Extend the run while clusters stay contiguous on the host (or unallocated).
            let mut n = (self.cluster - pos % self.cluster).min((buf.len() - done) as u64);
            while (done as u64 + n) < buf.len() as u64 {
                let next = pos + n;
                let h = self.host(next);
                let contiguous = match (first, h) {
                    (None, None) => true,
                    (Some(f), Some(h)) => h == f + n,
                    _ => false,
                };
                if !contiguous {
                    break;
                }
                n = (n + self.cluster).min((buf.len() - done) as u64);
            }
            let n = usize::try_from(n).map_err(|_| Error::invalid("read run too large"))?;
            let piece = &mut buf[done..done + n];
            match first {
                Some(h) => self.storage.read_exact_at(piece, h)?,
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
            if usize::try_from(pos / self.cluster).map_or(true, |i| i >= self.bat.len()) {
                // Past the BAT: nothing is allocated up to the end.
                push_extent(&mut out, pos, end - pos, ExtentKind::Unallocated, false);
                break;
            }
            let n = (self.cluster - pos % self.cluster).min(end - pos);
            let kind = if self.host(pos).is_some() {
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

impl DiskImage for ParallelsImage {
    fn info(&self) -> ImageInfo {
        let h = &self.header;
        let mut info = ImageInfo::new(Format::Parallels, self.size)
            .detail(
                "magic",
                if h.ext {
                    "WithouFreSpacExt"
                } else {
                    "WithoutFreeSpace"
                },
            )
            .detail(
                "geometry",
                format!("{}/{}/{}", h.cylinders, h.heads, h.tracks),
            )
            .detail("bat_entries", h.bat_entries)
            .detail("data_offset", u64::from(h.data_off) * SECTOR)
            .detail("in_use", h.inuse == 0x746F_6E59)
            .detail("extension", h.ext_off != 0);
        info.subformat = Some(if h.ext { "v2" } else { "v1" }.to_string());
        info.cluster_size = Some(self.cluster);
        info
    }
}
