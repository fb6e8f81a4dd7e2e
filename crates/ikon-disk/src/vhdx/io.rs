//! VHDX read path and mapping: fully present blocks are read straight from the file,
//! coalescing blocks that are contiguous in the file; differencing disks take absent blocks
//! and absent sectors of partially present blocks from the parent.

use super::header::MIB;
use super::{
    state_of, VhdxImage, PAYLOAD_FULLY_PRESENT, PAYLOAD_NOT_PRESENT, PAYLOAD_PARTIALLY_PRESENT,
    PAYLOAD_ZERO, SECTORS_PER_BITMAP,
};
use crate::device::{
    check_range, push_backing_extents, push_extent, BlockDevice, Extent, ExtentKind,
};
use crate::error::{Error, Result};
use crate::storage::read_vec;

impl VhdxImage {
    /// Read from the parent (zeros past its end or without one).
    fn read_parent(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let Some(p) = &self.parent else {
            buf.fill(0);
            return Ok(());
        };
        let avail = usize::try_from(p.len().saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = avail.min(buf.len());
        let (a, b) = buf.split_at_mut(n);
        if !a.is_empty() {
            p.read_exact_at(a, offset)?;
        }
        b.fill(0);
        Ok(())
    }

    /// Read part of a PARTIALLY_PRESENT block (within one block): sectors whose bit is set
    /// in the chunk's sector bitmap (bit 0 of byte 0 = first sector, [MS-VHDX] §2.4) come
    /// from this file at `file_pos`, the others from the parent.
    fn read_partial(&self, buf: &mut [u8], guest: u64, file_pos: u64) -> Result<()> {
        let ss = u64::from(self.logical_sector);
        let first = guest / ss;
        let last = (guest + buf.len() as u64 - 1) / ss;
        let chunk = first / SECTORS_PER_BITMAP;
        let e = usize::try_from(chunk)
            .ok()
            .and_then(|c| self.bitmaps.get(c))
            .copied()
            .ok_or_else(|| Error::corrupt("VHDX sector bitmap entry missing"))?;
        let sb = (e >> 20) << 20;
        let bit0 = first % SECTORS_PER_BITMAP;
        let byte0 = bit0 / 8;
        let nbytes = (bit0 + (last - first)) / 8 - byte0 + 1;
        let bm = read_vec(
            self.storage.as_ref(),
            sb + byte0,
            nbytes,
            MIB,
            "VHDX sector bitmap",
        )?;
        let present = |sector: u64| -> bool {
            let b = sector % SECTORS_PER_BITMAP - byte0 * 8;
            usize::try_from(b / 8)
                .ok()
                .and_then(|i| bm.get(i))
                .is_some_and(|&x| x & (1 << (b % 8)) != 0)
        };
        let mut done = 0usize;
        while done < buf.len() {
            let pos = guest + done as u64;
            let sector = pos / ss;
            let here = present(sector);
            let mut end = (sector + 1) * ss;
            while end < guest + buf.len() as u64 && present(end / ss) == here {
                end += ss;
            }
            let n = usize::try_from(end.min(guest + buf.len() as u64) - pos).unwrap_or(0);
            let piece = &mut buf[done..done + n];
            if here {
                self.storage.read_exact_at(piece, file_pos + done as u64)?;
            } else {
                self.read_parent(piece, pos)?;
            }
            done += n;
        }
        Ok(())
    }

    /// (state, file offset) of block `idx`.
    fn entry(&self, idx: u64) -> (u8, u64) {
        let e = usize::try_from(idx)
            .ok()
            .and_then(|i| self.blocks.get(i))
            .copied()
            .unwrap_or(0);
        (state_of(e), (e >> 20) << 20)
    }
}

impl BlockDevice for VhdxImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let bs = self.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (state, file_off) = self.entry(pos / bs);
            let in_block = pos % bs;
            let mut n = (bs - in_block).min((buf.len() - done) as u64);
            if state == PAYLOAD_FULLY_PRESENT {
                // extend over following blocks that continue contiguously in the file
                let start = file_off + in_block;
                while done as u64 + n < buf.len() as u64 {
                    let next = pos + n;
                    let (st, fo) = self.entry(next / bs);
                    if st != PAYLOAD_FULLY_PRESENT || fo != start + n {
                        break;
                    }
                    n += bs.min(buf.len() as u64 - done as u64 - n);
                }
                let k = usize::try_from(n).unwrap_or(0);
                self.storage
                    .read_exact_at(&mut buf[done..done + k], start)?;
                done += k;
            } else {
                let k = usize::try_from(n).unwrap_or(0);
                let piece = &mut buf[done..done + k];
                match state {
                    PAYLOAD_NOT_PRESENT => self.read_parent(piece, pos)?,
                    PAYLOAD_PARTIALLY_PRESENT => {
                        self.read_partial(piece, pos, file_off + in_block)?
                    }
                    _ => piece.fill(0),
                }
                done += k;
            }
        }
        Ok(())
    }

    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let n = (self.block_size - pos % self.block_size).min(end - pos);
            let kind = match self.entry(pos / self.block_size).0 {
                PAYLOAD_FULLY_PRESENT | PAYLOAD_PARTIALLY_PRESENT => ExtentKind::Data,
                PAYLOAD_ZERO => ExtentKind::Zero,
                PAYLOAD_NOT_PRESENT if self.parent.is_some() => {
                    if let Some(p) = &self.parent {
                        push_backing_extents(&mut out, p.as_ref(), pos, n)?;
                    }
                    pos += n;
                    continue;
                }
                _ => ExtentKind::Unallocated,
            };
            push_extent(&mut out, pos, n, kind, false);
            pos += n;
        }
        Ok(out)
    }
}
