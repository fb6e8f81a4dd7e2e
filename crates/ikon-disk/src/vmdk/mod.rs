//! VMDK hosted sparse extents (read-only): monolithicSparse and streamOptimized single-file
//! images, per VMware "Virtual Disk Format 1.1" section "Hosted Sparse Extent Header".
//! Descriptor files with separate extents and writing are not implemented yet.

use crate::device::{
    check_range, push_extent, BlockDevice, DiskImage, Extent, ExtentKind, ImageInfo,
};
use crate::error::{to_usize, CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::writer::{CreateOptions, ImageWriter};
use crate::{Format, OpenContext};
use std::io::Read;
use std::sync::Arc;

/// Sparse extent magic "KDMV" as a little-endian u32 (spec: SparseExtentHeader.magicNumber).
const MAGIC: u32 = 0x564d_444b;
/// Sector size in bytes (spec: all offsets are in 512-byte sectors).
const SECTOR: u64 = 512;
/// numGTEsPerGT must be 512 (spec: "Grain Table Entries").
const GTES_PER_GT: u64 = 512;
/// gdOffset value meaning "grain directory at the end, header in the footer" (spec: stream-optimized).
const GD_AT_END: u64 = u64::MAX;
/// Flag bit 16: grains are compressed (spec: flags).
const FLAG_COMPRESSED: u32 = 1 << 16;
/// Flag bit 17: metadata markers present (spec: flags).
const FLAG_MARKERS: u32 = 1 << 17;
/// Cap on the grain-table memory loaded at open (entries * 4 bytes).
const MAX_GT_ENTRIES: u64 = 32 << 20;
/// Largest grain accepted (qemu: 2 MiB grains max... 128 MiB is far beyond any real file).
const MAX_GRAIN_SECTORS: u64 = 1 << 17;

/// Parsed sparse header.
#[derive(Debug, Clone, Copy)]
struct Header {
    version: u32,
    flags: u32,
    capacity: u64,
    grain_sectors: u64,
    gd_offset: u64,
}

fn le32(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(o..o + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(o..o + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn parse_header(b: &[u8], at: u64) -> Result<Header> {
    if le32(b, 0) != MAGIC {
        return Err(Error::corrupt(format!(
            "vmdk sparse header at {at:#x}: bad magic"
        )));
    }
    let h = Header {
        version: le32(b, 4),
        flags: le32(b, 8),
        capacity: le64(b, 12),
        grain_sectors: le64(b, 20),
        gd_offset: le64(b, 56),
    };
    if !(1..=3).contains(&h.version) {
        return Err(Error::unsupported(format!(
            "vmdk sparse header version {}",
            h.version
        )));
    }
    if u64::from(le32(b, 44)) != GTES_PER_GT {
        return Err(Error::corrupt(format!(
            "vmdk numGTEsPerGT {} (must be 512)",
            le32(b, 44)
        )));
    }
    if h.grain_sectors == 0
        || h.grain_sectors > MAX_GRAIN_SECTORS
        || !h.grain_sectors.is_power_of_two()
    {
        return Err(Error::corrupt(format!(
            "vmdk grain size {} sectors invalid",
            h.grain_sectors
        )));
    }
    Ok(h)
}

/// Refuse an embedded descriptor whose extent lines name a file other than this one
/// (OpenStack treats that as an attempt to read host files).
fn check_embedded_descriptor(storage: &dyn Storage, first: &[u8]) -> Result<()> {
    let (off, len) = (le64(first, 28), le64(first, 36));
    if off == 0 || len == 0 {
        return Ok(());
    }
    let len = len.min(2048).mul_or(SECTOR, "vmdk descriptor size")?;
    let pos = off.mul_or(SECTOR, "vmdk descriptor offset")?;
    let avail = storage.size()?.saturating_sub(pos).min(len);
    let text = read_vec(storage, pos, avail, 1 << 20, "vmdk embedded descriptor")?;
    let is_file = storage.base_dir().is_some();
    let own = storage.name();
    let own = own.rsplit('/').next().unwrap_or("");
    for line in String::from_utf8_lossy(&text).lines() {
        let line = line.trim();
        if !(line.starts_with("RW ")
            || line.starts_with("RDONLY ")
            || line.starts_with("NOACCESS "))
        {
            continue;
        }
        let name = line.split('"').nth(1).unwrap_or("");
        if name.contains('/') || name.contains('\\') || (is_file && name != own) {
            return Err(Error::unsafe_ref(format!(
                "vmdk embedded descriptor names extent file {name:?}, not the image itself"
            )));
        }
    }
    Ok(())
}

/// An opened sparse VMDK.
struct Vmdk {
    storage: Arc<dyn Storage>,
    header: Header,
    size: u64,
    grain: u64,
    /// All grain table entries, in guest grain order.
    gtes: Vec<u32>,
}

/// Open `storage` as vmdk.
pub fn open(storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    let file_size = storage.size()?;
    if file_size < SECTOR {
        return Err(Error::corrupt(format!(
            "vmdk file too small ({file_size} bytes)"
        )));
    }
    let first = read_vec(storage.as_ref(), 0, SECTOR, SECTOR, "vmdk header")?;
    if le32(&first, 0) != MAGIC {
        return Err(Error::unsupported(
            "vmdk descriptor files are not supported yet",
        ));
    }
    let mut header = parse_header(&first, 0)?;
    if header.gd_offset == GD_AT_END {
        let at = file_size
            .checked_sub(1024)
            .ok_or_else(|| Error::corrupt("vmdk footer missing"))?;
        let foot = read_vec(storage.as_ref(), at, SECTOR, SECTOR, "vmdk footer")?;
        header = parse_header(&foot, at)?;
        if header.gd_offset == GD_AT_END {
            return Err(Error::corrupt(format!(
                "vmdk footer at {at:#x} has no grain directory"
            )));
        }
    }
    check_embedded_descriptor(storage.as_ref(), &first)?;
    let size = header.capacity.mul_or(SECTOR, "vmdk capacity")?;
    let grain = header.grain_sectors * SECTOR;
    let grains = size.div_ceil(grain);
    if grains > MAX_GT_ENTRIES {
        return Err(Error::limit(format!(
            "vmdk needs {grains} grain table entries (limit {MAX_GT_ENTRIES})"
        )));
    }
    let gts = grains.div_ceil(GTES_PER_GT);
    let gd_pos = header.gd_offset.mul_or(SECTOR, "vmdk gdOffset")?;
    let gd = read_vec(
        storage.as_ref(),
        gd_pos,
        gts * 4,
        gts * 4,
        "vmdk grain directory",
    )
    .map_err(|e| {
        e.within(format!(
            "vmdk grain directory at {gd_pos:#x} ({gts} entries)"
        ))
    })?;
    let mut gtes = Vec::with_capacity(to_usize(grains, "vmdk grains")?);
    for i in 0..to_usize(gts, "vmdk gts")? {
        let gt_sector = u64::from(le32(&gd, i * 4));
        let n = (grains - gtes.len() as u64).min(GTES_PER_GT);
        if gt_sector == 0 {
            gtes.extend(std::iter::repeat_n(0u32, to_usize(n, "n")?));
            continue;
        }
        let pos = gt_sector * SECTOR;
        let gt = read_vec(storage.as_ref(), pos, n * 4, n * 4, "vmdk grain table")
            .map_err(|e| e.within(format!("vmdk grain table {i} at {pos:#x}")))?;
        for j in 0..to_usize(n, "n")? {
            let e = le32(&gt, j * 4);
            if e > 1 && u64::from(e) * SECTOR >= file_size {
                return Err(Error::corrupt(format!(
                    "vmdk grain table {i} entry {j} points past end of file ({e} sectors)"
                )));
            }
            gtes.push(e);
        }
    }
    Ok(Box::new(Vmdk {
        storage,
        header,
        size,
        grain,
        gtes,
    }))
}

impl Vmdk {
    fn read_grain(&self, gte: u32, out: &mut [u8], within: u64) -> Result<()> {
        let pos = u64::from(gte) * SECTOR;
        if self.header.flags & FLAG_COMPRESSED == 0 {
            return self
                .storage
                .read_exact_at(out, pos.add_or(within, "vmdk grain")?);
        }
        let hdr = read_vec(self.storage.as_ref(), pos, 12, 12, "vmdk grain marker")?;
        let csize = u64::from(le32(&hdr, 8));
        if csize > self.grain * 2 + 4096 {
            return Err(Error::corrupt(format!(
                "vmdk grain marker at {pos:#x}: size {csize} too large"
            )));
        }
        let comp = read_vec(
            self.storage.as_ref(),
            pos + 12,
            csize,
            csize,
            "vmdk compressed grain",
        )?;
        let mut plain = Vec::with_capacity(to_usize(self.grain, "grain")?);
        flate2::read::ZlibDecoder::new(&comp[..])
            .take(self.grain + 1)
            .read_to_end(&mut plain)
            .map_err(|e| Error::corrupt(format!("vmdk compressed grain at {pos:#x}: {e}")))?;
        let start = to_usize(within, "within")?;
        let src = plain.get(start..start + out.len()).ok_or_else(|| {
            Error::corrupt(format!("vmdk compressed grain at {pos:#x} is too short"))
        })?;
        out.copy_from_slice(src);
        Ok(())
    }
}

impl BlockDevice for Vmdk {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let off = offset + done as u64;
            let g = off / self.grain;
            let within = off % self.grain;
            let n = to_usize((self.grain - within).min((buf.len() - done) as u64), "n")?;
            let gte = self.gtes.get(to_usize(g, "g")?).copied().unwrap_or(0);
            let out = &mut buf[done..done + n];
            if gte <= 1 {
                out.fill(0);
            } else {
                self.read_grain(gte, out, within)?;
            }
            done += n;
        }
        Ok(())
    }
    fn write_all_at(&self, _buf: &[u8], _offset: u64) -> Result<()> {
        Err(Error::read_only("vmdk images are opened read-only"))
    }
    fn write_zeroes(&self, _offset: u64, _len: u64) -> Result<()> {
        Err(Error::read_only("vmdk images are opened read-only"))
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        let mut off = offset;
        let compressed = self.header.flags & FLAG_COMPRESSED != 0;
        while off < end {
            let g = off / self.grain;
            let n = ((g + 1) * self.grain).min(end) - off;
            let gte = self.gtes.get(to_usize(g, "g")?).copied().unwrap_or(0);
            let (kind, c) = match gte {
                0 => (ExtentKind::Unallocated, false),
                1 => (ExtentKind::Zero, false),
                _ => (ExtentKind::Data, compressed),
            };
            push_extent(&mut out, off, n, kind, c);
            off += n;
        }
        Ok(out)
    }
}

impl DiskImage for Vmdk {
    fn info(&self) -> ImageInfo {
        let streamed = self.header.flags & FLAG_MARKERS != 0;
        let mut i = ImageInfo::new(Format::Vmdk, self.size)
            .detail("version", self.header.version)
            .detail("compressed", self.header.flags & FLAG_COMPRESSED != 0);
        i.subformat = Some(
            if streamed {
                "streamOptimized"
            } else {
                "monolithicSparse"
            }
            .to_string(),
        );
        i.cluster_size = Some(self.grain);
        i
    }
}

/// Create a new vmdk image.
pub fn create(
    _storage: Arc<dyn Storage>,
    _options: &CreateOptions,
) -> Result<Box<dyn ImageWriter>> {
    Err(Error::unsupported("writing vmdk is not implemented yet"))
}
