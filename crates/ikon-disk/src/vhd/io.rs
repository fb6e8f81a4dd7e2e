//! VHD read, write and mapping paths. Dynamic disks are read block by block (each block is
//! preceded by its sector bitmap, so blocks are never contiguous in the file). Like qemu,
//! the sector bitmap of a dynamic disk is not consulted when reading an allocated block; a
//! differencing disk uses it to choose between its own sectors and the parent's. Writes to
//! dynamic disks allocate new blocks at the end of the file as qemu does.

use super::header::{BAT_UNUSED, SECTOR, TYPE_DIFFERENCING};
use super::{Dynamic, VhdImage};
use crate::device::{
    check_range, push_backing_extents, push_extent, BlockDevice, Extent, ExtentKind, WritableDevice,
};
use crate::error::{Error, Result};
use crate::storage::read_vec;

impl VhdImage {
    /// Why this image cannot be written in place, if it cannot: opened read-only, or a
    /// differencing disk (whose writes would need the parent's sectors merged in).
    pub(crate) fn write_refusal(&self) -> Option<Error> {
        if !self.writable {
            return Some(Error::read_only("VHD image opened read-only"));
        }
        if self.footer.disk_type == TYPE_DIFFERENCING {
            return Some(Error::read_only(
                "in-place writes to differencing VHD images are not supported; convert the image instead",
            ));
        }
        None
    }

    fn block_entry(d: &Dynamic, idx: u64) -> Option<u64> {
        let i = usize::try_from(idx).ok()?;
        let bat = d.bat.read().ok()?;
        match bat.get(i) {
            Some(&e) if e != BAT_UNUSED => Some(u64::from(e) * SECTOR),
            _ => None,
        }
    }

    /// Allocate block `idx` of a dynamic disk at the end of the data area the way qemu does:
    /// an all-ones sector bitmap, the block (left as a hole: zeros), the footer after it,
    /// then the BAT entry on disk and in memory.
    fn allocate(&self, d: &Dynamic, idx: u64) -> Result<u64> {
        let mut free = d
            .free
            .lock()
            .map_err(|_| Error::invalid("VHD allocation lock poisoned"))?;
        if let Some(b) = Self::block_entry(d, idx) {
            return Ok(b);
        }
        let start = *free;
        let sector = u32::try_from(start / SECTOR)
            .ok()
            .filter(|&s| s != BAT_UNUSED)
            .ok_or_else(|| Error::limit("VHD file grew past the 2 TiB the BAT can address"))?;
        let i = usize::try_from(idx).map_err(|_| Error::invalid("VHD block index"))?;
        let bm = vec![0xFFu8; usize::try_from(d.bitmap_size).unwrap_or(0)];
        self.storage.write_all_at(&bm, start)?;
        let end = start + d.bitmap_size + d.block_size;
        self.storage.write_all_at(&self.footer_raw, end)?;
        self.storage
            .write_all_at(&sector.to_be_bytes(), d.header.table_offset + idx * 4)?;
        let mut bat = d
            .bat
            .write()
            .map_err(|_| Error::invalid("VHD BAT lock poisoned"))?;
        if let Some(e) = bat.get_mut(i) {
            *e = sector;
        }
        *free = end;
        Ok(start)
    }

    /// Read from the parent (zeros past its end or without one).
    fn read_parent(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let Some(p) = &self.parent else {
            buf.fill(0);
            return Ok(());
        };
        let plen = p.len();
        let avail = usize::try_from(plen.saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = avail.min(buf.len());
        let (a, b) = buf.split_at_mut(n);
        if !a.is_empty() {
            p.read_exact_at(a, offset)?;
        }
        b.fill(0);
        Ok(())
    }

    /// Read an allocated block piece of a differencing disk, sector by sector run, using the
    /// block's bitmap (bit 7 of byte 0 is the first sector).
    fn read_diff_block(
        &self,
        d: &Dynamic,
        block_off: u64,
        in_block: u64,
        buf: &mut [u8],
        guest: u64,
    ) -> Result<()> {
        let bitmap = read_vec(
            self.storage.as_ref(),
            block_off,
            d.bitmap_size,
            1 << 20,
            "VHD sector bitmap",
        )?;
        let bit = |sector: u64| -> bool {
            let byte = usize::try_from(sector / 8).unwrap_or(usize::MAX);
            bitmap
                .get(byte)
                .is_some_and(|b| b & (0x80 >> (sector % 8)) != 0)
        };
        let mut done = 0usize;
        while done < buf.len() {
            let pos = in_block + done as u64;
            let sector = pos / SECTOR;
            let present = bit(sector);
            // extend the run while sectors have the same state
            let mut end = (sector + 1) * SECTOR;
            while end < in_block + buf.len() as u64 && bit(end / SECTOR) == present {
                end += SECTOR;
            }
            let n = usize::try_from(end.min(in_block + buf.len() as u64) - pos).unwrap_or(0);
            let piece = &mut buf[done..done + n];
            if present {
                self.storage
                    .read_exact_at(piece, block_off + d.bitmap_size + pos)?;
            } else {
                self.read_parent(piece, guest + done as u64)?;
            }
            done += n;
        }
        Ok(())
    }
}

impl BlockDevice for VhdImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let Some(d) = &self.dynamic else {
            return self.storage.read_exact_at(buf, offset);
        };
        let diff = self.footer.disk_type == TYPE_DIFFERENCING;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let in_block = pos % d.block_size;
            let n = usize::try_from((d.block_size - in_block).min((buf.len() - done) as u64))
                .unwrap_or(0);
            let piece = &mut buf[done..done + n];
            match Self::block_entry(d, pos / d.block_size) {
                None => self.read_parent(piece, pos)?,
                Some(b) if diff => self.read_diff_block(d, b, in_block, piece, pos)?,
                Some(b) => self
                    .storage
                    .read_exact_at(piece, b + d.bitmap_size + in_block)?,
            }
            done += n;
        }
        Ok(())
    }

    fn as_writable(&self) -> Option<&dyn WritableDevice> {
        self.write_refusal()
            .is_none()
            .then_some(self as &dyn WritableDevice)
    }

    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        if offset >= end {
            return Ok(out);
        }
        let Some(d) = &self.dynamic else {
            let mut pos = offset;
            for (h, hl) in self.storage.holes(offset, end - offset)? {
                let hs = h.max(pos);
                let he = (h + hl).min(end);
                if hs > pos {
                    push_extent(&mut out, pos, hs - pos, ExtentKind::Data, false);
                }
                if he > hs {
                    push_extent(&mut out, hs, he - hs, ExtentKind::Zero, false);
                }
                pos = pos.max(he);
            }
            if end > pos {
                push_extent(&mut out, pos, end - pos, ExtentKind::Data, false);
            }
            return Ok(out);
        };
        let mut pos = offset;
        while pos < end {
            let n = (d.block_size - pos % d.block_size).min(end - pos);
            if Self::block_entry(d, pos / d.block_size).is_some() {
                push_extent(&mut out, pos, n, ExtentKind::Data, false);
            } else if let Some(p) = &self.parent {
                push_backing_extents(&mut out, p.as_ref(), pos, n)?;
            } else {
                push_extent(&mut out, pos, n, ExtentKind::Unallocated, false);
            }
            pos += n;
        }
        Ok(out)
    }
}

impl WritableDevice for VhdImage {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        check_range(offset, buf.len(), self.size)?;
        let Some(d) = &self.dynamic else {
            return self.storage.write_all_at(buf, offset);
        };
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let idx = pos / d.block_size;
            let in_block = pos % d.block_size;
            let n = usize::try_from((d.block_size - in_block).min((buf.len() - done) as u64))
                .unwrap_or(0);
            let block = match Self::block_entry(d, idx) {
                Some(b) => b,
                None => self.allocate(d, idx)?,
            };
            self.storage
                .write_all_at(&buf[done..done + n], block + d.bitmap_size + in_block)?;
            done += n;
        }
        Ok(())
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        let zeros = vec![0u8; 1 << 20];
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::invalid("write_zeroes range overflows"))?;
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        let mut pos = offset;
        while pos < end {
            let mut n = (end - pos).min(zeros.len() as u64);
            if let Some(d) = &self.dynamic {
                n = n.min(d.block_size - pos % d.block_size);
                if Self::block_entry(d, pos / d.block_size).is_none() && self.parent.is_none() {
                    // an unallocated block of a dynamic disk already reads as zeros
                    check_range(pos, 0, self.size)?;
                    pos += n;
                    continue;
                }
            }
            let k = usize::try_from(n).unwrap_or(0);
            self.write_all_at(&zeros[..k], pos)?;
            pos += n;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        if self.writable {
            self.storage.sync()
        } else {
            Ok(())
        }
    }
}
