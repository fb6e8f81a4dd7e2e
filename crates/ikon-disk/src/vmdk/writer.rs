//! Writing VMDK: monolithicSparse (header, embedded descriptor, redundant and primary grain
//! directories with preallocated grain tables, grains appended in guest order) and
//! streamOptimized (deflate-compressed grains with markers, compressed on every core, then
//! grain tables, grain directory, footer and end-of-stream marker). Memory holds one grain
//! table at a time (plus the grain directory for stream files).

use super::descriptor;
use super::sparse::{
    FLAG_COMPRESSED, FLAG_MARKERS, FLAG_NEWLINE_TEST, FLAG_REDUNDANT_GT, GD_AT_END, GTES_PER_GT,
    MAGIC, SECTOR,
};
use crate::deflate::{self, Framing};
use crate::error::{Error, Result};
use crate::pool::OrderedPool;
use crate::storage::Storage;
use crate::writer::{CreateOptions, ImageWriter};
use std::sync::Arc;

/// A grain to compress (grain number, bytes) and its finished record (grain number, bytes).
type Grain = (u64, Vec<u8>);

/// Sectors reserved for the embedded descriptor (as qemu).
const DESC_SECTORS: u64 = 20;
/// Marker types of stream-optimized files (spec: "Stream-Optimized Compressed Sparse Extents").
const MARKER_EOS: u32 = 0;
/// Grain table marker.
const MARKER_GT: u32 = 1;
/// Grain directory marker.
const MARKER_GD: u32 = 2;
/// Footer marker.
const MARKER_FOOTER: u32 = 3;
/// Largest capacity written (qemu's limit for VMDK: 64 TiB... sparse files address grains
/// with 32-bit sector numbers, so the file must stay under 2 TiB).
const MAX_SIZE: u64 = 64 << 40;

#[allow(clippy::too_many_arguments)]
fn header(
    flags: u32,
    version: u32,
    capacity: u64,
    grain_sectors: u64,
    desc: (u64, u64),
    rgd: u64,
    gd: u64,
    overhead: u64,
) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&version.to_le_bytes());
    h[8..12].copy_from_slice(&flags.to_le_bytes());
    h[12..20].copy_from_slice(&capacity.to_le_bytes());
    h[20..28].copy_from_slice(&grain_sectors.to_le_bytes());
    h[28..36].copy_from_slice(&desc.0.to_le_bytes());
    h[36..44].copy_from_slice(&desc.1.to_le_bytes());
    h[44..48].copy_from_slice(&512u32.to_le_bytes());
    h[48..56].copy_from_slice(&rgd.to_le_bytes());
    h[56..64].copy_from_slice(&gd.to_le_bytes());
    h[64..72].copy_from_slice(&overhead.to_le_bytes());
    // singleEndLineChar, nonEndLineChar, doubleEndLineChar1/2 (the new-line test).
    h[73] = b'\n';
    h[74] = b' ';
    h[75] = b'\r';
    h[76] = b'\n';
    if flags & FLAG_COMPRESSED != 0 {
        h[77..79].copy_from_slice(&1u16.to_le_bytes());
    }
    h
}

/// Create a writer for `o.subformat`.
pub fn create(storage: Arc<dyn Storage>, o: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
    let grain = o.cluster_size.unwrap_or(64 << 10);
    if !grain.is_power_of_two() || !(4096..=(1 << 20)).contains(&grain) {
        return Err(Error::invalid(format!(
            "vmdk grain size {grain}: a power of two from 4k to 1M"
        )));
    }
    if o.size > MAX_SIZE {
        return Err(Error::invalid(format!(
            "vmdk size {} exceeds 64 TiB",
            o.size
        )));
    }
    if o.compat.is_some() || o.extended_l2 || o.force_size {
        return Err(Error::invalid(
            "vmdk takes only subformat and cluster_size options",
        ));
    }
    let capacity = o.size.div_ceil(SECTOR);
    let name = o.name_hint.clone().unwrap_or_else(|| {
        storage
            .name()
            .rsplit('/')
            .next()
            .unwrap_or("disk.vmdk")
            .to_string()
    });
    let cid = u32::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            & 0xffff_ffff,
    )
    .unwrap_or(1);
    let grains = o.size.div_ceil(grain);
    let gts = grains.div_ceil(GTES_PER_GT);
    let gs = grain / SECTOR;
    match o.subformat.as_deref().unwrap_or("monolithicSparse") {
        "monolithicSparse" => {
            if o.compress {
                return Err(Error::invalid(
                    "monolithicSparse is not compressed; use subformat=streamOptimized",
                ));
            }
            // Layout (sectors): header 0, descriptor 1..21, redundant GD, redundant GTs, GD, GTs.
            let gd_sectors = (gts * 4).div_ceil(SECTOR);
            let gt_sectors = gts * 4;
            let rgd = 1 + DESC_SECTORS;
            let gd = rgd + gd_sectors + gt_sectors;
            let overhead = (gd + gd_sectors + gt_sectors).div_ceil(gs) * gs;
            let desc = descriptor::build("monolithicSparse", capacity, &name, cid);
            let h = header(
                FLAG_NEWLINE_TEST | FLAG_REDUNDANT_GT,
                1,
                capacity,
                gs,
                (1, DESC_SECTORS),
                rgd,
                gd,
                overhead,
            );
            storage.set_size(overhead * SECTOR)?;
            storage.write_all_at(&h, 0)?;
            storage.write_all_at(desc.as_bytes(), SECTOR)?;
            // Both grain directories point at their preallocated grain tables.
            for (dir, first_gt) in [(rgd, rgd + gd_sectors), (gd, gd + gd_sectors)] {
                let mut raw = Vec::with_capacity(usize::try_from(gts * 4).unwrap_or(0));
                for i in 0..gts {
                    let gt = u32::try_from(first_gt + i * 4)
                        .map_err(|_| Error::invalid("vmdk image too large"))?;
                    raw.extend_from_slice(&gt.to_le_bytes());
                }
                storage.write_all_at(&raw, dir * SECTOR)?;
            }
            Ok(Box::new(SparseWriter {
                storage,
                size: o.size,
                grain,
                cursor: overhead,
                gt_starts: (rgd + gd_sectors, gd + gd_sectors),
                cur: None,
            }))
        }
        "streamOptimized" => {
            let desc = descriptor::build("streamOptimized", capacity, &name, cid);
            let flags = FLAG_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS;
            let overhead = (1 + DESC_SECTORS).div_ceil(gs) * gs;
            let h = header(
                flags,
                3,
                capacity,
                gs,
                (1, DESC_SECTORS),
                0,
                GD_AT_END,
                overhead,
            );
            storage.write_all_at(&h, 0)?;
            storage.write_all_at(desc.as_bytes(), SECTOR)?;
            let unit = usize::try_from(grain).unwrap_or(usize::MAX);
            Ok(Box::new(StreamWriter {
                storage,
                size: o.size,
                grain,
                pool: OrderedPool::new(o.threads, move |(g, chunk): Grain| {
                    Ok((g, grain_record(g * gs, &chunk, unit)?))
                })?,
                cursor: overhead,
                gd: vec![0; usize::try_from(gts).unwrap_or(0)],
                cur: None,
                flags,
                overhead,
            }))
        }
        other => Err(Error::invalid(format!(
            "vmdk subformat {other:?}: monolithicSparse or streamOptimized"
        ))),
    }
}

/// The grain table being filled: index and entries.
type OpenGt = Option<(u64, Vec<u32>)>;

fn gt_bytes(gt: &[u32]) -> Vec<u8> {
    gt.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn sector_u32(s: u64) -> Result<u32> {
    u32::try_from(s).map_err(|_| Error::invalid("vmdk file exceeds 2 TiB (32-bit sector numbers)"))
}

/// monolithicSparse writer.
struct SparseWriter {
    storage: Arc<dyn Storage>,
    size: u64,
    grain: u64,
    /// Next free sector.
    cursor: u64,
    /// First sector of the redundant and primary grain tables.
    gt_starts: (u64, u64),
    cur: OpenGt,
}

impl SparseWriter {
    fn flush_gt(&mut self) -> Result<()> {
        if let Some((i, gt)) = self.cur.take() {
            let raw = gt_bytes(&gt);
            self.storage
                .write_all_at(&raw, (self.gt_starts.0 + i * 4) * SECTOR)?;
            self.storage
                .write_all_at(&raw, (self.gt_starts.1 + i * 4) * SECTOR)?;
        }
        Ok(())
    }
    fn set(&mut self, g: u64, sector: u32) -> Result<()> {
        let i = g / GTES_PER_GT;
        if self.cur.as_ref().map(|c| c.0) != Some(i) {
            self.flush_gt()?;
            self.cur = Some((i, vec![0; 512]));
        }
        if let Some((_, gt)) = self.cur.as_mut() {
            gt[usize::try_from(g % GTES_PER_GT).unwrap_or(0)] = sector;
        }
        Ok(())
    }
}

impl ImageWriter for SparseWriter {
    fn granularity(&self) -> u64 {
        self.grain
    }
    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if !offset.is_multiple_of(self.grain) || offset + data.len() as u64 > self.size {
            return Err(Error::invalid(
                "vmdk writer: run not grain aligned or past the end",
            ));
        }
        // One write for the whole run; the tail grain is padded to a full grain.
        let gs = self.grain / SECTOR;
        let n = (data.len() as u64).div_ceil(self.grain);
        let start = self.cursor;
        self.storage.write_all_at(data, start * SECTOR)?;
        let pad = n * self.grain - data.len() as u64;
        if pad > 0 {
            self.storage.write_all_at(
                &vec![0u8; usize::try_from(pad).unwrap_or(0)],
                start * SECTOR + data.len() as u64,
            )?;
        }
        for k in 0..n {
            self.set(offset / self.grain + k, sector_u32(start + k * gs)?)?;
        }
        self.cursor += n * gs;
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush_gt()?;
        self.storage.sync()
    }
}

/// streamOptimized writer.
struct StreamWriter {
    storage: Arc<dyn Storage>,
    size: u64,
    grain: u64,
    /// Compression workers.
    pool: OrderedPool<Grain, Grain>,
    cursor: u64,
    gd: Vec<u32>,
    cur: OpenGt,
    flags: u32,
    overhead: u64,
}

/// A marker sector: value, size, type (spec: "Markers").
fn marker(val: u64, size: u32, kind: u32) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[0..8].copy_from_slice(&val.to_le_bytes());
    m[8..12].copy_from_slice(&size.to_le_bytes());
    m[12..16].copy_from_slice(&kind.to_le_bytes());
    m
}

impl StreamWriter {
    fn flush_gt(&mut self) -> Result<()> {
        if let Some((i, gt)) = self.cur.take() {
            self.storage
                .write_all_at(&marker(4, 0, MARKER_GT), self.cursor * SECTOR)?;
            self.storage
                .write_all_at(&gt_bytes(&gt), (self.cursor + 1) * SECTOR)?;
            if let Some(e) = usize::try_from(i).ok().and_then(|i| self.gd.get_mut(i)) {
                *e = sector_u32(self.cursor + 1)?;
            }
            self.cursor += 5;
        }
        Ok(())
    }
}

/// Compress one grain as a zlib stream (padded to a full grain) behind its grain marker,
/// padded to whole sectors.
fn grain_record(lba: u64, data: &[u8], grain: usize) -> Result<Vec<u8>> {
    let padded;
    let input = if data.len() < grain {
        let mut v = data.to_vec();
        v.resize(grain, 0);
        padded = v;
        &padded[..]
    } else {
        data
    };
    // Incompressible grains still have to be zlib streams: store them (level 0).
    let level = if crate::compressible::incompressible(input) {
        0
    } else {
        deflate::VMDK_LEVEL
    };
    let body = deflate::compress(input, Framing::Zlib, level, grain + grain / 64 + 64)
        .ok_or_else(|| Error::invalid("vmdk compression did not finish"))?;
    let mut rec = Vec::with_capacity(body.len() + 512);
    rec.extend_from_slice(&lba.to_le_bytes());
    rec.extend_from_slice(
        &u32::try_from(body.len())
            .map_err(|_| Error::invalid("grain too large"))?
            .to_le_bytes(),
    );
    rec.extend_from_slice(&body);
    rec.resize(rec.len().div_ceil(512) * 512, 0);
    Ok(rec)
}

impl StreamWriter {
    /// Append finished grain records (one write for the lot) and enter them in their grain
    /// tables.
    fn store_records(&mut self, records: Vec<Grain>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.1.len()).sum());
        let start = self.cursor;
        let mut entries = Vec::with_capacity(records.len());
        for (g, r) in &records {
            entries.push((*g, start + (buf.len() as u64) / SECTOR));
            buf.extend_from_slice(r);
        }
        self.storage.write_all_at(&buf, start * SECTOR)?;
        self.cursor += buf.len() as u64 / SECTOR;
        for (g, sector) in entries {
            let i = g / GTES_PER_GT;
            if self.cur.as_ref().map(|c| c.0) != Some(i) {
                // Grain tables go after the grains they describe; the GT of a finished range
                // is written here, behind the grains just stored.
                self.flush_gt()?;
                self.cur = Some((i, vec![0; 512]));
            }
            if let Some((_, gt)) = self.cur.as_mut() {
                gt[usize::try_from(g % GTES_PER_GT).unwrap_or(0)] = sector_u32(sector)?;
            }
        }
        Ok(())
    }
}

impl ImageWriter for StreamWriter {
    fn granularity(&self) -> u64 {
        self.grain
    }
    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if !offset.is_multiple_of(self.grain) || offset + data.len() as u64 > self.size {
            return Err(Error::invalid(
                "vmdk writer: run not grain aligned or past the end",
            ));
        }
        let unit = usize::try_from(self.grain).unwrap_or(usize::MAX);
        let first = offset / self.grain;
        let jobs = (first..)
            .zip(data.chunks(unit))
            .map(|(g, c)| (g, c.to_vec()));
        let ready = self.pool.submit_all(jobs)?;
        self.store_records(ready)
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        let rest = self.pool.drain()?;
        self.store_records(rest)?;
        self.flush_gt()?;
        let gd_sectors = (self.gd.len() as u64 * 4).div_ceil(SECTOR);
        self.storage
            .write_all_at(&marker(gd_sectors, 0, MARKER_GD), self.cursor * SECTOR)?;
        let gd_at = self.cursor + 1;
        let mut raw = gt_bytes(&self.gd);
        raw.resize(usize::try_from(gd_sectors * SECTOR).unwrap_or(0), 0);
        self.storage.write_all_at(&raw, gd_at * SECTOR)?;
        self.cursor = gd_at + gd_sectors;
        let capacity = self.size.div_ceil(SECTOR);
        let footer = header(
            self.flags,
            3,
            capacity,
            self.grain / SECTOR,
            (1, DESC_SECTORS),
            0,
            gd_at,
            self.overhead,
        );
        let mut tail = Vec::with_capacity(1536);
        tail.extend_from_slice(&marker(1, 0, MARKER_FOOTER));
        tail.extend_from_slice(&footer);
        tail.extend_from_slice(&marker(0, 0, MARKER_EOS));
        self.storage.write_all_at(&tail, self.cursor * SECTOR)?;
        self.storage.set_size((self.cursor + 3) * SECTOR)?;
        self.storage.sync()
    }
}
