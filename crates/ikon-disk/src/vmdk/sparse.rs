//! VMDK hosted sparse extents (VMware "Virtual Disk Format 1.1", "Hosted Sparse Extents"
//! and "Stream-Optimized Compressed Sparse Extents"): header, grain directory and grain
//! tables, plain and compressed grains, the footer of stream-optimized files.

use crate::bytes::{le32_or_zero, le64_or_zero};
use crate::device::{push_extent, CheckReport, Extent, ExtentKind};
use crate::error::{to_usize, CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use std::io::Read;
use std::sync::Arc;

/// Sparse extent magic "KDMV" as a little-endian u32 (SparseExtentHeader.magicNumber).
pub const MAGIC: u32 = 0x564d_444b;
/// Sector size in bytes (all offsets in the format are in 512-byte sectors).
pub const SECTOR: u64 = 512;
/// numGTEsPerGT is always 512 (spec: "Grain Table Entries").
pub const GTES_PER_GT: u64 = 512;
/// gdOffset meaning "grain directory at the end; read the footer" (stream-optimized).
pub const GD_AT_END: u64 = u64::MAX;
/// Flag bit 0: valid new-line detection test.
pub const FLAG_NEWLINE_TEST: u32 = 1;
/// Flag bit 1: redundant grain table in use.
pub const FLAG_REDUNDANT_GT: u32 = 1 << 1;
/// Flag bit 16: grains are compressed.
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// Flag bit 17: metadata markers present.
pub const FLAG_MARKERS: u32 = 1 << 17;
/// Cap on grain table entries loaded at open (4 bytes each: 128 MiB).
const MAX_GT_ENTRIES: u64 = 32 << 20;
/// Largest grain accepted (qemu refuses grains above 2 MiB; we accept up to 64 MiB).
const MAX_GRAIN_SECTORS: u64 = 1 << 17;

/// Parsed sparse header.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Format version 1–3.
    pub version: u32,
    /// Flags.
    pub flags: u32,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Grain size in sectors.
    pub grain_sectors: u64,
    /// Embedded descriptor offset and size in sectors.
    pub descriptor: (u64, u64),
    /// Grain directory offset in sectors.
    pub gd_offset: u64,
}

/// Parse a sparse header at file offset `at` (for messages).
pub fn parse_header(b: &[u8], at: u64) -> Result<Header> {
    if le32_or_zero(b, 0) != MAGIC {
        return Err(Error::corrupt(format!(
            "vmdk sparse header at {at:#x}: bad magic"
        )));
    }
    let h = Header {
        version: le32_or_zero(b, 4),
        flags: le32_or_zero(b, 8),
        capacity: le64_or_zero(b, 12),
        grain_sectors: le64_or_zero(b, 20),
        descriptor: (le64_or_zero(b, 28), le64_or_zero(b, 36)),
        gd_offset: le64_or_zero(b, 56),
    };
    if !(1..=3).contains(&h.version) {
        return Err(Error::unsupported(format!(
            "vmdk sparse header version {}",
            h.version
        )));
    }
    if u64::from(le32_or_zero(b, 44)) != GTES_PER_GT {
        return Err(Error::corrupt(format!(
            "vmdk numGTEsPerGT {} at byte 44 (must be 512)",
            le32_or_zero(b, 44)
        )));
    }
    if h.grain_sectors == 0
        || h.grain_sectors > MAX_GRAIN_SECTORS
        || !h.grain_sectors.is_power_of_two()
    {
        return Err(Error::corrupt(format!(
            "vmdk grain size {} sectors at byte 20 is invalid",
            h.grain_sectors
        )));
    }
    Ok(h)
}

/// One opened sparse extent.
pub struct SparseExtent {
    storage: Arc<dyn Storage>,
    file_size: u64,
    /// The effective header (the footer's for stream-optimized files).
    pub header: Header,
    /// Extent size in bytes.
    pub size: u64,
    /// Grain size in bytes.
    pub grain: u64,
    gtes: Vec<u32>,
}

impl SparseExtent {
    /// Open the sparse extent in `storage`.
    pub fn open(storage: Arc<dyn Storage>) -> Result<SparseExtent> {
        let file_size = storage.size()?;
        if file_size < SECTOR {
            return Err(Error::corrupt(format!(
                "vmdk file too small ({file_size} bytes)"
            )));
        }
        let first = read_vec(storage.as_ref(), 0, SECTOR, SECTOR, "vmdk header")?;
        let mut header = parse_header(&first, 0)?;
        if header.gd_offset == GD_AT_END {
            // Footer marker, footer, end-of-stream marker are the last three sectors.
            let at = file_size
                .checked_sub(1024)
                .ok_or_else(|| Error::corrupt("vmdk footer missing"))?;
            let foot = read_vec(storage.as_ref(), at, SECTOR, SECTOR, "vmdk footer")?;
            header = parse_header(&foot, at)
                .map_err(|e| e.within("vmdk footer (header says grain directory at end)"))?;
            header.descriptor = parse_header(&first, 0)?.descriptor;
            if header.gd_offset == GD_AT_END {
                return Err(Error::corrupt(format!(
                    "vmdk footer at {at:#x} has no grain directory"
                )));
            }
        }
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
        for i in 0..to_usize(gts, "vmdk grain tables")? {
            let gt_sector = u64::from(le32_or_zero(&gd, i * 4));
            let n = (grains - gtes.len() as u64).min(GTES_PER_GT);
            if gt_sector == 0 {
                gtes.extend(std::iter::repeat_n(0u32, to_usize(n, "n")?));
                continue;
            }
            let pos = gt_sector * SECTOR;
            let gt = read_vec(storage.as_ref(), pos, n * 4, n * 4, "vmdk grain table")
                .map_err(|e| e.within(format!("vmdk grain table {i} at {pos:#x}")))?;
            for j in 0..to_usize(n, "n")? {
                let e = le32_or_zero(&gt, j * 4);
                if e > 1 && u64::from(e) * SECTOR >= file_size {
                    return Err(Error::corrupt(format!(
                        "vmdk grain table {i} entry {j} points past the end of the file (sector {e})"
                    )));
                }
                gtes.push(e);
            }
        }
        Ok(SparseExtent {
            storage,
            file_size,
            header,
            size,
            grain,
            gtes,
        })
    }

    fn compressed(&self) -> bool {
        self.header.flags & FLAG_COMPRESSED != 0
    }

    fn gte(&self, g: u64) -> u32 {
        usize::try_from(g)
            .ok()
            .and_then(|i| self.gtes.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn read_compressed(&self, gte: u32, out: &mut [u8], within: u64) -> Result<()> {
        let pos = u64::from(gte) * SECTOR;
        let hdr = read_vec(self.storage.as_ref(), pos, 12, 12, "vmdk grain marker")?;
        let csize = u64::from(le32_or_zero(&hdr, 8));
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
        if plain.len() as u64 > self.grain {
            return Err(Error::corrupt(format!(
                "vmdk compressed grain at {pos:#x} inflates beyond the grain size"
            )));
        }
        let start = to_usize(within, "within")?;
        let src = plain.get(start..start + out.len()).ok_or_else(|| {
            Error::corrupt(format!("vmdk compressed grain at {pos:#x} is too short"))
        })?;
        out.copy_from_slice(src);
        Ok(())
    }

    /// Read `buf` at extent offset `offset` (within the extent).
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let off = offset + done as u64;
            let g = off / self.grain;
            let within = off % self.grain;
            let gte = self.gte(g);
            // Uncompressed grains that follow each other on disk are read in one call.
            let mut n = (self.grain - within).min((buf.len() - done) as u64);
            if gte > 1 && !self.compressed() {
                let mut next = g + 1;
                while done as u64 + n < buf.len() as u64
                    && u64::from(self.gte(next))
                        == u64::from(self.gte(next - 1)) + self.header.grain_sectors
                {
                    n += self.grain.min(buf.len() as u64 - done as u64 - n);
                    next += 1;
                }
            }
            let n = to_usize(n, "read length")?;
            let out = &mut buf[done..done + n];
            if gte <= 1 {
                out.fill(0);
            } else if self.compressed() {
                self.read_compressed(gte, out, within)?;
            } else {
                let pos = (u64::from(gte) * SECTOR).add_or(within, "vmdk grain")?;
                let avail = usize::try_from(self.file_size.saturating_sub(pos))
                    .unwrap_or(usize::MAX)
                    .min(out.len());
                let (head, tail) = out.split_at_mut(avail);
                self.storage.read_exact_at(head, pos)?;
                tail.fill(0);
            }
            done += n;
        }
        Ok(())
    }

    /// Mapping of `[offset, offset+len)` in extent coordinates, shifted by `base`.
    pub fn map(&self, base: u64, offset: u64, len: u64, out: &mut Vec<Extent>) {
        let end = offset.saturating_add(len).min(self.size);
        let mut off = offset;
        while off < end {
            let g = off / self.grain;
            let n = ((g + 1) * self.grain).min(end) - off;
            let (kind, c) = match self.gte(g) {
                0 => (ExtentKind::Unallocated, false),
                1 => (ExtentKind::Zero, false),
                _ => (ExtentKind::Data, self.compressed()),
            };
            push_extent(out, base + off, n, kind, c);
            off += n;
        }
    }

    /// Consistency: grains inside the file, no grain referenced twice.
    pub fn check(&self, report: &mut CheckReport) {
        let mut seen = std::collections::HashSet::new();
        let mut last = 0u32;
        for (g, &e) in self.gtes.iter().enumerate() {
            if e <= 1 {
                continue;
            }
            report.allocated_clusters += 1;
            if self.compressed() {
                report.compressed_clusters += 1;
            } else if last != 0 && u64::from(e) != u64::from(last) + self.header.grain_sectors {
                report.fragmented_clusters += 1;
            }
            last = e;
            if !seen.insert(e) {
                report
                    .corruptions
                    .push(format!("grain {g} shares sector {e} with another grain"));
            }
            if u64::from(e) * SECTOR >= self.file_size {
                report.corruptions.push(format!(
                    "grain {g} at sector {e} lies past the end of the file"
                ));
            }
        }
        report.total_clusters += self.size.div_ceil(self.grain);
    }
}
