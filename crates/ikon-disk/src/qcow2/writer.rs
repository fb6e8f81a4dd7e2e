//! Writing new qcow2 images for convert. Data arrives in guest order, so the file is laid
//! out append-only: header and L1 table first, then data clusters, each L2 table in a
//! cluster reserved when its range starts and written when the range is complete, and a
//! refcount block placed inline at the first cluster of every range it covers (written when
//! the allocation cursor leaves the range). Memory holds one L2 table, one refcount block,
//! the L1 table and the refcount table, whatever the image size. Compressed clusters are
//! compressed by a pool of workers on every core (while the source is still being read) and
//! packed back to back in guest order.

use super::header::{self, CompressionType};
use super::io::{L2_COMPRESSED, L2_COPIED};
use crate::deflate::{self, Framing};
use crate::error::{Error, Result};
use crate::pool::OrderedPool;
use crate::storage::Storage;
use crate::writer::{Compression, CreateOptions, ImageWriter};
use std::cell::RefCell;
use std::sync::Arc;

/// A compression job: guest cluster and its bytes.
type Job = (u64, Vec<u8>);
/// Its result: guest cluster, its bytes, and their compressed form when that saves space.
type Packed = (u64, Vec<u8>, Option<Vec<u8>>);

/// Refcount width Ikon writes (refcount_order 4, as qemu's default).
const REFCOUNT_BITS: u64 = 16;

/// The host-space allocator with inline refcount blocks.
struct Alloc {
    storage: Arc<dyn Storage>,
    cs: u64,
    /// Next free byte in the file.
    cursor: u64,
    per_block: u64,
    /// Refcount table: host offset of each block (0 = none yet).
    table: Vec<u64>,
    /// Index and contents of the block in memory.
    cur: Option<(u64, Vec<u16>)>,
    /// Unused tails of host clusters that hold compressed data, left behind when a plain
    /// cluster or a table needed a whole cluster: later compressed clusters that fit go there
    /// (as qemu keeps filling its partly used compressed cluster).
    holes: Vec<(u64, u64)>,
}

/// Most cluster tails [`Alloc`] remembers for compressed data; the smallest is forgotten.
const MAX_HOLES: usize = 16;

impl Alloc {
    fn align(&mut self) {
        let end = self.cursor.div_ceil(self.cs) * self.cs;
        if end > self.cursor {
            self.holes.push((self.cursor, end));
            if self.holes.len() > MAX_HOLES {
                if let Some(i) = (0..self.holes.len()).min_by_key(|&i| {
                    let (s, e) = self.holes[i];
                    e - s
                }) {
                    self.holes.swap_remove(i);
                }
            }
        }
        self.cursor = end;
    }

    /// `len` bytes from a remembered cluster tail whose refcount block is the one in memory
    /// (the cluster gets one more reference), if one has room.
    fn take_hole(&mut self, len: u64) -> Result<Option<u64>> {
        let loaded = self.cur.as_ref().map(|(i, _)| *i);
        let cs = self.cs;
        let per_block = self.per_block;
        let found = self
            .holes
            .iter()
            .position(|&(s, e)| e - s >= len && loaded == Some(s / cs / per_block));
        let Some(i) = found else {
            return Ok(None);
        };
        let start = self.holes[i].0;
        self.holes[i].0 += len;
        if self.holes[i].1 - self.holes[i].0 < 512 {
            self.holes.swap_remove(i);
        }
        self.count(start / cs)?;
        Ok(Some(start))
    }

    fn block_of(&self, cluster: u64) -> u64 {
        cluster / self.per_block
    }

    /// Add one reference to host cluster `c`, loading (placing if needed) its block.
    fn count(&mut self, c: u64) -> Result<()> {
        let bi = self.block_of(c);
        if self.cur.as_ref().map(|(i, _)| *i) != Some(bi) {
            self.flush_block()?;
            self.cur = Some((bi, vec![0u16; usize::try_from(self.per_block).unwrap_or(0)]));
        }
        if let Some((_, b)) = self.cur.as_mut() {
            let k = usize::try_from(c % self.per_block).unwrap_or(0);
            b[k] = b[k].saturating_add(1);
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if let Some((bi, b)) = self.cur.take() {
            let off = self
                .table
                .get(usize::try_from(bi).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or(0);
            if off == 0 {
                return Err(Error::invalid(
                    "qcow2 writer: refcount block was never placed",
                ));
            }
            let raw: Vec<u8> = b.iter().flat_map(|v| v.to_be_bytes()).collect();
            self.storage.write_all_at(&raw, off)?;
        }
        Ok(())
    }

    /// Make sure the block covering cluster `c` has a home; it goes at the cursor (which
    /// must be cluster aligned) when it does not.
    fn ensure_block(&mut self, c: u64) -> Result<bool> {
        let bi =
            usize::try_from(self.block_of(c)).map_err(|_| Error::limit("qcow2 image too large"))?;
        if self.table.len() <= bi {
            self.table.resize(bi + 1, 0);
        }
        if self.table[bi] != 0 {
            return Ok(false);
        }
        let at = self.cursor;
        self.table[bi] = at;
        self.cursor += self.cs;
        self.count(at / self.cs)?;
        Ok(true)
    }

    /// Allocate `n` whole clusters; returns runs (host offset, clusters) — a refcount block
    /// may split them.
    fn clusters(&mut self, n: u64) -> Result<Vec<(u64, u64)>> {
        self.align();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut left = n;
        while left > 0 {
            let c = self.cursor / self.cs;
            if self.ensure_block(c)? {
                continue;
            }
            self.count(c)?;
            match runs.last_mut() {
                Some((off, k)) if *off + *k * self.cs == self.cursor => *k += 1,
                _ => runs.push((self.cursor, 1)),
            }
            self.cursor += self.cs;
            left -= 1;
        }
        Ok(runs)
    }

    /// Allocate `len` contiguous bytes for a compressed cluster; every host cluster it
    /// touches gets one reference.
    fn bytes(&mut self, len: u64) -> Result<u64> {
        if let Some(at) = self.take_hole(len)? {
            return Ok(at);
        }
        loop {
            let start = self.cursor;
            let end = start + len;
            let first_new = start.div_ceil(self.cs);
            let last = (end - 1) / self.cs;
            // A fresh cluster whose range has no refcount block yet: place the block first.
            let mut placed = false;
            for c in first_new..=last {
                if self
                    .table
                    .get(usize::try_from(self.block_of(c)).unwrap_or(usize::MAX))
                    .copied()
                    .unwrap_or(0)
                    == 0
                {
                    self.align();
                    self.ensure_block(self.cursor / self.cs)?;
                    placed = true;
                    break;
                }
            }
            if placed {
                continue;
            }
            for c in start / self.cs..=last {
                self.count(c)?;
            }
            self.cursor = end;
            return Ok(start);
        }
    }
}

/// A qcow2 image being written.
pub struct Qcow2Writer {
    alloc: Alloc,
    size: u64,
    version: u32,
    cluster_bits: u32,
    ext: bool,
    compress: Option<Compression>,
    /// Compression workers, when the image is compressed.
    pool: Option<OrderedPool<Job, Packed>>,
    l1: Vec<u64>,
    l1_off: u64,
    /// Current L2 table: L1 index, host offset, entries (two words each with extended L2).
    l2: Option<(u64, u64, Vec<u64>)>,
}

impl Qcow2Writer {
    /// Start a new image in `storage`.
    pub fn create(storage: Arc<dyn Storage>, o: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
        let cs = o.cluster_size.unwrap_or(64 << 10);
        if !cs.is_power_of_two() || !(512..=(2 << 20)).contains(&cs) {
            return Err(Error::invalid(format!(
                "qcow2 cluster_size {cs}: must be a power of two from 512 to 2M"
            )));
        }
        let cluster_bits = cs.trailing_zeros();
        let version = match o.compat.as_deref() {
            Some("0.10") => 2,
            _ => 3,
        };
        if version == 2 && (o.extended_l2 || (o.compress && o.compression == Compression::Zstd)) {
            return Err(Error::invalid(
                "extended_l2 and zstd compression need compat=1.1",
            ));
        }
        if o.extended_l2 && cs < 16 << 10 {
            return Err(Error::invalid(
                "extended_l2 needs cluster_size of at least 16k",
            ));
        }
        if o.subformat.is_some() || o.force_size {
            return Err(Error::invalid(
                "qcow2 has no subformat or force_size option",
            ));
        }
        let ext = o.extended_l2;
        let per_l2 = cs / if ext { 16 } else { 8 };
        let l1_size = o.size.div_ceil(cs.saturating_mul(per_l2));
        let l1_bytes = l1_size * 8;
        if l1_bytes > header::MAX_L1_BYTES {
            return Err(Error::invalid(format!(
                "qcow2 size {} needs an L1 table beyond 32 MiB; use larger clusters",
                o.size
            )));
        }
        let mut alloc = Alloc {
            storage,
            cs,
            cursor: 0,
            per_block: cs * 8 / REFCOUNT_BITS,
            table: Vec::new(),
            holes: Vec::new(),
            cur: None,
        };
        // Header cluster and L1 table first; the first refcount block follows them.
        alloc.table.push(0);
        alloc.cur = Some((0, vec![0u16; usize::try_from(alloc.per_block).unwrap_or(0)]));
        alloc.count(0)?;
        alloc.cursor = cs;
        let l1_clusters = l1_bytes.div_ceil(cs);
        for k in 0..l1_clusters {
            alloc.count(1 + k)?;
        }
        alloc.cursor = cs * (1 + l1_clusters);
        let first_block = alloc.cursor;
        alloc.table[0] = first_block;
        alloc.cursor += cs;
        alloc.count(first_block / cs)?;
        let pool = if o.compress {
            let (algo, unit) = (o.compression, usize::try_from(cs).unwrap_or(usize::MAX));
            Some(OrderedPool::new(o.threads, move |(gc, c): Job| {
                let z = compress_cluster(&c, unit, algo)?;
                Ok((gc, c, z))
            })?)
        } else {
            None
        };
        let w = Qcow2Writer {
            alloc,
            size: o.size,
            version,
            cluster_bits,
            ext,
            compress: o.compress.then_some(o.compression),
            pool,
            l1: vec![0; usize::try_from(l1_size).unwrap_or(0)],
            l1_off: cs,
            l2: None,
        };
        // An empty but valid header now, so a crash leaves a recognisable (if incomplete) file.
        w.write_header(0, 0)?;
        Ok(Box::new(w))
    }

    fn cs(&self) -> u64 {
        self.alloc.cs
    }

    fn per_l2(&self) -> u64 {
        self.cs() / if self.ext { 16 } else { 8 }
    }

    /// Make the L2 table for guest cluster `gc` current, writing out the previous one.
    fn l2_for(&mut self, gc: u64) -> Result<()> {
        let l1i = gc / self.per_l2();
        if self.l2.as_ref().map(|t| t.0) == Some(l1i) {
            return Ok(());
        }
        self.flush_l2()?;
        let runs = self.alloc.clusters(1)?;
        let off = runs
            .first()
            .map(|r| r.0)
            .ok_or_else(|| Error::invalid("qcow2 writer: no cluster"))?;
        let words = usize::try_from(self.cs() / 8).unwrap_or(0);
        self.l2 = Some((l1i, off, vec![0; words]));
        Ok(())
    }

    fn flush_l2(&mut self) -> Result<()> {
        if let Some((l1i, off, t)) = self.l2.take() {
            let raw: Vec<u8> = t.iter().flat_map(|v| v.to_be_bytes()).collect();
            self.alloc.storage.write_all_at(&raw, off)?;
            if let Some(e) = usize::try_from(l1i).ok().and_then(|i| self.l1.get_mut(i)) {
                *e = off | L2_COPIED;
            }
        }
        Ok(())
    }

    fn set_entry(&mut self, gc: u64, word: u64, bitmap: u64) {
        let per = self.per_l2();
        let ext = self.ext;
        if let Some((_, _, t)) = self.l2.as_mut() {
            let i = usize::try_from(gc % per).unwrap_or(0);
            if ext {
                t[i * 2] = word;
                t[i * 2 + 1] = bitmap;
            } else {
                t[i] = word;
            }
        }
    }

    fn write_plain(&mut self, gc0: u64, data: &[u8]) -> Result<()> {
        let cs = self.cs();
        let n = (data.len() as u64).div_ceil(cs);
        let mut done = 0u64;
        while done < n {
            let gc = gc0 + done;
            self.l2_for(gc)?;
            // Clusters up to the end of this L2 table's range go in one allocation.
            let in_table = (self.per_l2() - gc % self.per_l2()).min(n - done);
            let runs = self.alloc.clusters(in_table)?;
            let mut k = done;
            for (host, count) in runs {
                let s = usize::try_from(k * cs).unwrap_or(usize::MAX);
                let e = usize::try_from((k + count) * cs)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.alloc.storage.write_all_at(&data[s..e], host)?;
                for j in 0..count {
                    let bitmap = if self.ext { 0xffff_ffff } else { 0 };
                    self.set_entry(gc0 + k + j, (host + j * cs) | L2_COPIED, bitmap);
                }
                k += count;
            }
            done += in_table;
        }
        Ok(())
    }

    /// Queue every cluster of `data` for compression; clusters whose compression is done are
    /// stored now, the rest at a later call or in [`Self::drain_compressed`].
    fn write_compressed(&mut self, gc0: u64, data: &[u8]) -> Result<()> {
        let unit = usize::try_from(self.cs()).unwrap_or(usize::MAX);
        let jobs = (gc0..)
            .zip(data.chunks(unit))
            .map(|(gc, c)| (gc, c.to_vec()));
        let ready = match self.pool.as_mut() {
            Some(pool) => pool.submit_all(jobs)?,
            None => return Err(Error::invalid("qcow2 writer: compression was not enabled")),
        };
        self.store_packed(ready)
    }

    /// Wait for the compression workers and store what they still hold.
    fn drain_compressed(&mut self) -> Result<()> {
        if let Some(mut pool) = self.pool.take() {
            let rest = pool.drain()?;
            self.store_packed(rest)?;
        }
        Ok(())
    }

    /// Store compressed clusters (packed back to back) or, where compression saved nothing,
    /// the plain cluster.
    fn store_packed(&mut self, packed: Vec<Packed>) -> Result<()> {
        for (gc, plain, z) in packed {
            self.l2_for(gc)?;
            match z {
                Some(z) => {
                    let host = self.alloc.bytes(z.len() as u64)?;
                    self.alloc.storage.write_all_at(&z, host)?;
                    let x = 62 - (u64::from(self.cluster_bits) - 8);
                    let sectors = (host + z.len() as u64 - 1) / 512 - host / 512;
                    self.set_entry(gc, L2_COMPRESSED | (sectors << x) | host, 0);
                }
                None => self.write_plain(gc, &plain)?,
            }
        }
        Ok(())
    }

    fn write_header(&self, rt_off: u64, rt_clusters: u32) -> Result<()> {
        let mut incompat = 0;
        if self.ext {
            incompat |= header::INCOMPAT_EXTL2;
        }
        let ctype = match self.compress {
            Some(Compression::Zstd) => {
                incompat |= header::INCOMPAT_COMPRESSION;
                CompressionType::Zstd
            }
            _ => CompressionType::Zlib,
        };
        let l1_size =
            u32::try_from(self.l1.len()).map_err(|_| Error::limit("qcow2 L1 too large"))?;
        let h = header::encode(
            self.version,
            self.cluster_bits,
            self.size,
            l1_size,
            self.l1_off,
            rt_off,
            rt_clusters,
            incompat,
            ctype,
        );
        self.alloc.storage.write_all_at(&h, 0)
    }
}

thread_local! {
    /// Each compression worker's zstd context (default level), reused between clusters.
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// Compress one cluster; None when compression does not save space (stored plainly).
fn compress_cluster(c: &[u8], unit: usize, algo: Compression) -> Result<Option<Vec<u8>>> {
    // The last cluster of an odd-sized disk is compressed as a full, zero-padded cluster.
    let padded;
    let input = if c.len() < unit {
        let mut v = c.to_vec();
        v.resize(unit, 0);
        padded = v;
        &padded[..]
    } else {
        c
    };
    if crate::compressible::incompressible(input) {
        return Ok(None);
    }
    let out = match algo {
        Compression::Zlib => {
            match deflate::compress(input, Framing::Qcow2, deflate::QCOW2_LEVEL, unit) {
                Some(out) => out,
                None => return Ok(None),
            }
        }
        Compression::Zstd => ZSTD.with(|cell| {
            let mut slot = cell.borrow_mut();
            let z = match slot.as_mut() {
                Some(z) => z,
                None => slot.insert(
                    zstd::bulk::Compressor::new(0).map_err(|e| Error::io(e, "zstd compression"))?,
                ),
            };
            z.compress(input)
                .map_err(|e| Error::io(e, "zstd compression"))
        })?,
    };
    Ok((out.len() < unit - 512).then_some(out))
}

impl ImageWriter for Qcow2Writer {
    fn granularity(&self) -> u64 {
        self.cs()
    }

    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let cs = self.cs();
        if !offset.is_multiple_of(cs) {
            return Err(Error::invalid(format!(
                "qcow2 writer: run at {offset} is not cluster aligned"
            )));
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= self.size);
        if end.is_none() {
            return Err(Error::invalid("qcow2 writer: run past the end of the disk"));
        }
        if self.compress.is_some() {
            self.write_compressed(offset / cs, data)
        } else {
            self.write_plain(offset / cs, data)
        }
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.drain_compressed()?;
        self.flush_l2()?;
        let cs = self.cs();
        // L1 table (reserved at creation).
        let raw: Vec<u8> = self.l1.iter().flat_map(|v| v.to_be_bytes()).collect();
        self.alloc.storage.write_all_at(&raw, self.l1_off)?;
        // Refcount table at the end: size it for the blocks that exist plus any its own
        // clusters may need.
        self.alloc.align();
        // One spare entry: placing the table may need one more refcount block. Blocks for
        // every range the table will touch are placed first, so the table is contiguous.
        let rt_clusters = ((self.alloc.table.len() as u64 + 1) * 8).div_ceil(cs);
        'place: loop {
            let start = self.alloc.cursor / cs;
            for c in start..start + rt_clusters {
                if self.alloc.ensure_block(c)? {
                    continue 'place;
                }
            }
            break;
        }
        let runs = self.alloc.clusters(rt_clusters)?;
        let rt_off = match runs.as_slice() {
            [(off, n)]
                if *n == rt_clusters && self.alloc.table.len() as u64 * 8 <= rt_clusters * cs =>
            {
                *off
            }
            _ => {
                return Err(Error::invalid(
                    "qcow2 writer: refcount table placement failed",
                ))
            }
        };
        self.alloc.flush_block()?;
        let mut t: Vec<u8> = self
            .alloc
            .table
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        t.resize(usize::try_from(rt_clusters * cs).unwrap_or(0), 0);
        self.alloc.storage.write_all_at(&t, rt_off)?;
        let end = self.alloc.cursor.div_ceil(cs) * cs;
        self.alloc.storage.set_size(end)?;
        let rtc = u32::try_from(rt_clusters)
            .map_err(|_| Error::limit("qcow2 refcount table too large"))?;
        self.alloc.storage.sync()?;
        // The header last: until it names the refcount table the file is not a usable image.
        self.write_header(rt_off, rtc)?;
        self.alloc.storage.sync()
    }
}
