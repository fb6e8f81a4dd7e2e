//! Copying and comparing disks, written once against [`BlockDevice`].
//!
//! The source's mapping is walked a window at a time; ranges that hold data are read by a
//! small pool of threads (decompression of compressed sources happens there) and handed in
//! order to the output writer, which never sees all-zero units. Memory is bounded by the
//! number of buffers in flight (threads + a small reorder window), whatever the image size.

use crate::device::{is_zero, BlockDevice, ExtentKind};
use crate::error::{Error, Result};
use crate::writer::ImageWriter;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

/// Guest bytes examined per mapping query (bounds the extent list for fragmented images).
const MAP_WINDOW: u64 = 1 << 30;
/// Default size of one read buffer.
pub const DEFAULT_BUFFER: u64 = 4 << 20;
/// Buffers that may wait for their turn beyond the ones being worked on.
const REORDER_WINDOW: u64 = 4;

/// Tuning for [`convert`] and [`compare`].
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Read buffer size in bytes.
    pub buffer: u64,
    /// Reader threads.
    pub threads: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            buffer: DEFAULT_BUFFER,
            threads: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2)
                .min(4),
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Guest bytes read from the source.
    pub bytes_read: u64,
    /// Guest bytes handed to the writer as data.
    pub bytes_written: u64,
    /// Guest bytes that were read but found to be all zeros, and so not written.
    pub zero_bytes_skipped: u64,
}

/// Ranges `[start, end)` of `dev` that may hold non-zero data, expanded to multiples of
/// `align` and split at `max` bytes, produced lazily a mapping window at a time.
struct DataRanges<'a> {
    dev: &'a dyn BlockDevice,
    align: u64,
    max: u64,
    scanned: u64,
    pending: std::collections::VecDeque<(u64, u64)>,
}

impl<'a> DataRanges<'a> {
    fn new(dev: &'a dyn BlockDevice, align: u64, max: u64) -> Self {
        let align = align.max(1);
        let max = (max / align).max(1) * align;
        DataRanges {
            dev,
            align,
            max,
            scanned: 0,
            pending: Default::default(),
        }
    }

    fn next_range(&mut self) -> Result<Option<(u64, u64)>> {
        let size = self.dev.len();
        while self.pending.is_empty() && self.scanned < size {
            let win = (size - self.scanned).min(MAP_WINDOW);
            let extents = self.dev.map(self.scanned, win)?;
            let mut covered = self.scanned;
            for e in extents {
                if e.offset != covered || e.len == 0 {
                    return Err(Error::corrupt(format!(
                        "mapping of the source is not contiguous at offset {covered} (got {}+{})",
                        e.offset, e.len
                    )));
                }
                covered = e.end();
                if e.kind != ExtentKind::Data {
                    continue;
                }
                let start = e.offset / self.align * self.align;
                let end = e
                    .end()
                    .div_ceil(self.align)
                    .saturating_mul(self.align)
                    .min(size);
                self.push(start, end);
            }
            if covered <= self.scanned {
                return Err(Error::corrupt("mapping of the source made no progress"));
            }
            self.scanned = covered;
        }
        Ok(self.pending.pop_front())
    }

    fn push(&mut self, mut start: u64, end: u64) {
        if let Some(last) = self.pending.back_mut() {
            if start < last.1 {
                start = last.1;
            }
            if start == last.1 && last.1 - last.0 < self.max {
                let room = self.max - (last.1 - last.0);
                let take = room.min(end.saturating_sub(start));
                last.1 += take;
                start += take;
            }
        }
        while start < end {
            let n = (end - start).min(self.max);
            self.pending.push_back((start, start + n));
            start += n;
        }
    }
}

/// A finished job: its guest range and the work's result.
type JobResult<T> = Result<(u64, u64, T)>;

struct Shared<'a> {
    ranges: DataRanges<'a>,
    next_job: u64,
    failed: bool,
}

/// Run `work` on the data ranges of `dev` with `threads` threads and hand the results to
/// `consume` in guest order. At most `threads + REORDER_WINDOW` results exist at once.
fn ordered_pipeline<T, W, C>(
    dev: &dyn BlockDevice,
    align: u64,
    opts: CopyOptions,
    work: W,
    mut consume: C,
) -> Result<()>
where
    T: Send,
    W: Fn(u64, u64) -> Result<T> + Sync,
    C: FnMut(u64, u64, T) -> Result<()>,
{
    let shared = Mutex::new(Shared {
        ranges: DataRanges::new(dev, align, opts.buffer),
        next_job: 0,
        failed: false,
    });
    let done_upto = Mutex::new(0u64);
    let turn = Condvar::new();
    let results: Mutex<BTreeMap<u64, JobResult<T>>> = Mutex::new(BTreeMap::new());
    let ready = Condvar::new();
    let threads = opts.threads.max(1);
    let lock_err = || Error::invalid("convert pipeline lock poisoned");

    std::thread::scope(|s| -> Result<()> {
        for _ in 0..threads {
            s.spawn(|| loop {
                let (idx, range) = {
                    let Ok(mut sh) = shared.lock() else { return };
                    if sh.failed {
                        return;
                    }
                    let r = sh.ranges.next_range();
                    let idx = sh.next_job;
                    sh.next_job += 1;
                    (idx, r)
                };
                // Wait until this job is within the reorder window.
                {
                    let Ok(mut d) = done_upto.lock() else { return };
                    while idx >= *d + threads as u64 + REORDER_WINDOW {
                        let Ok(g) = turn.wait(d) else { return };
                        d = g;
                    }
                }
                let out = match range {
                    Ok(Some((a, b))) => work(a, b - a).map(|t| (a, b - a, t)),
                    Ok(None) => {
                        if let Ok(mut r) = results.lock() {
                            r.insert(idx, Err(Error::new(crate::ErrorKind::Io, "")));
                        }
                        ready.notify_all();
                        return;
                    }
                    Err(e) => Err(e),
                };
                let stop = out.is_err();
                if let Ok(mut r) = results.lock() {
                    r.insert(idx, out);
                }
                ready.notify_all();
                if stop {
                    if let Ok(mut sh) = shared.lock() {
                        sh.failed = true;
                    }
                    return;
                }
            });
        }
        // Consumer: take results in order. An `Io` error with empty context marks the end.
        let mut next = 0u64;
        let outcome = loop {
            let item = {
                let mut r = results.lock().map_err(|_| lock_err())?;
                loop {
                    if let Some(v) = r.remove(&next) {
                        break v;
                    }
                    r = ready.wait(r).map_err(|_| lock_err())?;
                }
            };
            match item {
                Ok((off, len, t)) => {
                    if let Err(e) = consume(off, len, t) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == crate::ErrorKind::Io && e.context().is_empty() => {
                    break Ok(())
                }
                Err(e) => break Err(e),
            }
            next += 1;
            if let Ok(mut d) = done_upto.lock() {
                *d = next;
            }
            turn.notify_all();
        };
        if let Ok(mut sh) = shared.lock() {
            sh.failed = true;
        }
        if let Ok(mut d) = done_upto.lock() {
            *d = u64::MAX / 2;
        }
        turn.notify_all();
        outcome
    })
}

/// Memory alignment of read buffers.
const PAGE: usize = 4096;

/// A read buffer whose bytes start on a page boundary, so that a writer using direct I/O
/// can write from it without copying.
#[derive(Default)]
struct PageBuf {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl PageBuf {
    /// Make the buffer `n` bytes long (contents unspecified).
    fn set_len(&mut self, n: usize) {
        if self.mem.len() < n + PAGE {
            self.mem = vec![0; n + PAGE];
        }
        self.start = (PAGE - self.mem.as_ptr() as usize % PAGE) % PAGE;
        self.len = n;
    }
    fn as_slice(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.start + self.len]
    }
}

/// Copy the guest content of `src` into `dst` and finish it. `progress(done, total)` is
/// called as guest bytes are completed.
pub fn convert(
    src: &dyn BlockDevice,
    mut dst: Box<dyn ImageWriter>,
    opts: CopyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CopyStats> {
    let total = src.len();
    let gran = dst.granularity().max(512);
    let mut stats = CopyStats::default();
    // Buffers are recycled: allocating and zeroing a fresh buffer per read costs page faults
    // and a memset on the hot path.
    let pool: Mutex<Vec<PageBuf>> = Mutex::new(Vec::new());
    let read = |off: u64, len: u64| -> Result<PageBuf> {
        let n = crate::error::to_usize(len, "read buffer")?;
        let mut buf = pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        buf.set_len(n);
        src.read_exact_at(buf.as_mut_slice(), off)?;
        Ok(buf)
    };
    ordered_pipeline(src, gran, opts, read, |off, len, page: PageBuf| {
        let buf = page.as_slice();
        stats.bytes_read += len;
        let g = usize::try_from(gran).unwrap_or(usize::MAX);
        let mut run_start: Option<usize> = None;
        let mut pos = 0usize;
        while pos < buf.len() {
            let end = (pos + g).min(buf.len());
            let zero = is_zero(&buf[pos..end]);
            match (zero, run_start) {
                (false, None) => run_start = Some(pos),
                (true, Some(s)) => {
                    dst.write_run(off + s as u64, &buf[s..pos])?;
                    stats.bytes_written += (pos - s) as u64;
                    run_start = None;
                }
                _ => {}
            }
            if zero {
                stats.zero_bytes_skipped += (end - pos) as u64;
            }
            pos = end;
        }
        if let Some(s) = run_start {
            dst.write_run(off + s as u64, &buf[s..])?;
            stats.bytes_written += (buf.len() - s) as u64;
        }
        progress(off + len, total);
        if let Ok(mut p) = pool.lock() {
            p.push(page);
        }
        Ok(())
    })?;
    dst.finish()?;
    progress(total, total);
    Ok(stats)
}

/// Outcome of [`compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Same guest content (a size difference is allowed when the extra part is all zeros,
    /// as qemu-img compare does without `-s`).
    Identical,
    /// First differing guest offset.
    DiffersAt(u64),
    /// Sizes differ (only in strict mode).
    SizeDiffers(u64, u64),
}

/// Compare the guest content of `a` and `b`.
pub fn compare(
    a: &dyn BlockDevice,
    b: &dyn BlockDevice,
    strict: bool,
    opts: CopyOptions,
) -> Result<Comparison> {
    if strict && a.len() != b.len() {
        return Ok(Comparison::SizeDiffers(a.len(), b.len()));
    }
    // Every range where either side may hold data is read from both sides.
    let common = a.len().min(b.len());
    let union = Union { a, b, len: common };
    let mut first: Option<u64> = None;
    let work = |off: u64, len: u64| -> Result<Option<u64>> {
        let n = crate::error::to_usize(len, "compare buffer")?;
        let mut x = vec![0u8; n];
        let mut y = vec![0u8; n];
        a.read_exact_at(&mut x, off)?;
        b.read_exact_at(&mut y, off)?;
        Ok(x.iter()
            .zip(&y)
            .position(|(p, q)| p != q)
            .map(|i| off + i as u64))
    };
    ordered_pipeline(&union, 512, opts, work, |_, _, diff| {
        if first.is_none() {
            first = diff;
        }
        if first.is_some() {
            return Err(Error::new(crate::ErrorKind::InvalidInput, "\u{0}stop"));
        }
        Ok(())
    })
    .or_else(|e| {
        if e.context() == "\u{0}stop" {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    if let Some(off) = first {
        return Ok(Comparison::DiffersAt(off));
    }
    // The longer image's tail must read as zeros.
    let (long, short_len) = if a.len() > b.len() {
        (a, b.len())
    } else {
        (b, a.len())
    };
    if long.len() > short_len {
        let tail = Tail {
            dev: long,
            start: short_len,
        };
        let mut found = None;
        let work = |off: u64, len: u64| -> Result<Option<u64>> {
            let mut x = vec![0u8; crate::error::to_usize(len, "compare buffer")?];
            long.read_exact_at(&mut x, off)?;
            Ok(x.iter().position(|&p| p != 0).map(|i| off + i as u64))
        };
        ordered_pipeline(&tail, 512, opts, work, |_, _, d| {
            if found.is_none() {
                found = d;
            }
            Ok(())
        })?;
        if let Some(off) = found {
            return Ok(Comparison::DiffersAt(off));
        }
    }
    Ok(Comparison::Identical)
}

/// A view whose mapping is the union of two devices' data ranges (reads are not used).
struct Union<'a> {
    a: &'a dyn BlockDevice,
    b: &'a dyn BlockDevice,
    len: u64,
}

/// A view of `dev` whose mapping covers only `[start, len)`.
struct Tail<'a> {
    dev: &'a dyn BlockDevice,
    start: u64,
}

fn not_readable() -> Error {
    Error::invalid("mapping-only view cannot be read or written")
}

impl BlockDevice for Union<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, _: &mut [u8], _: u64) -> Result<()> {
        Err(not_readable())
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<crate::Extent>> {
        let len = len.min(self.len.saturating_sub(offset));
        let mut data: Vec<(u64, u64)> = Vec::new();
        for dev in [self.a, self.b] {
            for e in dev.map(offset, len)? {
                if e.kind == ExtentKind::Data {
                    data.push((e.offset, e.end().min(offset + len)));
                }
            }
        }
        data.sort_unstable();
        let mut out = Vec::new();
        let mut pos = offset;
        for (s, e) in data {
            let s = s.max(pos);
            if e <= s {
                continue;
            }
            crate::device::push_extent(&mut out, pos, s - pos, ExtentKind::Unallocated, false);
            crate::device::push_extent(&mut out, s, e - s, ExtentKind::Data, false);
            pos = e;
        }
        crate::device::push_extent(
            &mut out,
            pos,
            offset + len - pos,
            ExtentKind::Unallocated,
            false,
        );
        Ok(out)
    }
}

impl BlockDevice for Tail<'_> {
    fn len(&self) -> u64 {
        self.dev.len()
    }
    fn read_exact_at(&self, _: &mut [u8], _: u64) -> Result<()> {
        Err(not_readable())
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<crate::Extent>> {
        let end = offset + len;
        let mut out = Vec::new();
        if offset < self.start {
            let head = self.start.min(end) - offset;
            crate::device::push_extent(&mut out, offset, head, ExtentKind::Unallocated, false);
        }
        if end > self.start {
            let from = offset.max(self.start);
            for e in self.dev.map(from, end - from)? {
                crate::device::push_extent(&mut out, e.offset, e.len, e.kind, false);
            }
        }
        Ok(out)
    }
}
