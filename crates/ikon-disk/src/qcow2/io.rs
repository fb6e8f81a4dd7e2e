//! qcow2 lookups and the read path: L1 → L2 → cluster (or subcluster with extended L2),
//! coalesced into runs so that host-contiguous clusters are read with one call, compressed
//! clusters are inflated outside any lock, and unallocated ranges come from the backing image.

use super::header::CompressionType;
use super::Qcow2Image;
use crate::device::{push_extent, Extent, ExtentKind};
use crate::error::{Error, Result};
use std::sync::Arc;

/// L2 entry bit 63: refcount is exactly one (qcow2.txt "Standard Cluster Descriptor").
pub const L2_COPIED: u64 = 1 << 63;
/// L2 entry bit 62: compressed cluster.
pub const L2_COMPRESSED: u64 = 1 << 62;
/// Bit 0 of a standard descriptor: the cluster reads as zeros (v3).
pub const L2_ZERO: u64 = 1;
/// Host offset bits 9–55 of a standard descriptor / L1 entry.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Subclusters per cluster with extended L2 entries.
pub const SUBCLUSTERS: u64 = 32;

/// What one piece of guest space maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Stored uncompressed at this host offset.
    Host(u64),
    /// Stored compressed: host offset and compressed byte span of the whole cluster.
    Compressed(u64, u64),
    /// Reads as zeros.
    Zero,
    /// Nothing here: the backing image, or zeros.
    Unalloc,
}

/// A run of guest space with one mapping.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Guest offset.
    pub guest: u64,
    /// Length in bytes.
    pub len: u64,
    /// Mapping of the first byte (host offsets advance with the guest offset).
    pub seg: Seg,
}

impl Run {
    fn extend(&mut self, next: &Run) -> bool {
        if self.guest + self.len != next.guest {
            return false;
        }
        let ok = match (self.seg, next.seg) {
            (Seg::Host(a), Seg::Host(b)) => a + self.len == b,
            (Seg::Zero, Seg::Zero) | (Seg::Unalloc, Seg::Unalloc) => true,
            _ => false,
        };
        if ok {
            self.len += next.len;
        }
        ok
    }
}

impl Qcow2Image {
    /// The L2 table for L1 index `l1`, or None when the L1 entry is empty.
    fn l2_table(&self, l1: u64) -> Result<Option<Arc<Vec<u64>>>> {
        let entry = usize::try_from(l1)
            .ok()
            .and_then(|i| self.l1.get(i))
            .copied()
            .unwrap_or(0);
        let off = entry & OFFSET_MASK;
        if off == 0 {
            return Ok(None);
        }
        if let Some(t) = self.l2_cache.lock().map_err(|_| poisoned())?.get(&off) {
            return Ok(Some(Arc::clone(t)));
        }
        let cs = self.header.cluster_size();
        super::header::check_table(
            off,
            cs,
            cs,
            self.file_size,
            &format!("L2 table of L1 entry {l1}"),
        )?;
        let raw = crate::storage::read_vec(self.storage.as_ref(), off, cs, cs, "qcow2 L2 table")?;
        let table: Vec<u64> = crate::bytes::be64_table(&raw);
        let table = Arc::new(table);
        let mut cache = self.l2_cache.lock().map_err(|_| poisoned())?;
        if (cache.len() as u64 + 1) * cs > super::L2_CACHE_BYTES {
            cache.clear();
        }
        cache.insert(off, Arc::clone(&table));
        Ok(Some(table))
    }

    /// Decode the compressed-cluster descriptor of an L2 entry: (host offset, byte span).
    fn compressed_desc(&self, entry: u64) -> (u64, u64) {
        let cb = u64::from(self.header.cluster_bits);
        let x = 62 - (cb - 8);
        let desc = entry & ((1u64 << 62) - 1);
        let off = desc & ((1u64 << x) - 1);
        let sectors = (desc >> x) & ((1u64 << (cb - 8)) - 1);
        (off, (sectors + 1) * 512 - (off & 511))
    }

    /// Call `f` with the runs covering `[offset, offset+len)`, merged where possible.
    pub(super) fn walk(
        &self,
        offset: u64,
        len: u64,
        f: &mut dyn FnMut(Run) -> Result<()>,
    ) -> Result<()> {
        let cs = self.header.cluster_size();
        let per_l2 = self.header.l2_entries();
        let ext = self.header.extended_l2();
        let v3 = self.header.version >= 3;
        let end = offset.saturating_add(len).min(self.header.size);
        let mut pos = offset;
        let mut pending: Option<Run> = None;
        let mut emit = |r: Run, pending: &mut Option<Run>| -> Result<()> {
            if let Some(p) = pending.as_mut() {
                if p.extend(&r) {
                    return Ok(());
                }
                let done = *p;
                *pending = Some(r);
                return f(done);
            }
            *pending = Some(r);
            Ok(())
        };
        while pos < end {
            let cluster = pos / cs;
            let l1 = cluster / per_l2;
            let table = self.l2_table(l1)?;
            let table_end = ((l1 + 1) * per_l2 * cs).min(end);
            while pos < table_end {
                let cstart = pos / cs * cs;
                let cend = (cstart + cs).min(end);
                let idx = usize::try_from((pos / cs) % per_l2).unwrap_or(0);
                let (word, bitmap) = match &table {
                    None => (0, 0),
                    Some(t) if ext => (
                        t.get(idx * 2).copied().unwrap_or(0),
                        t.get(idx * 2 + 1).copied().unwrap_or(0),
                    ),
                    Some(t) => (t.get(idx).copied().unwrap_or(0), 0),
                };
                if word & L2_COMPRESSED != 0 {
                    let (host, span) = self.compressed_desc(word);
                    emit(
                        Run {
                            guest: pos,
                            len: cend - pos,
                            seg: Seg::Compressed(host, span),
                        },
                        &mut pending,
                    )?;
                    pos = cend;
                    continue;
                }
                let host = word & OFFSET_MASK;
                if host != 0 && !host.is_multiple_of(cs) {
                    return Err(Error::corrupt(format!(
                        "qcow2 L2 entry for guest offset {cstart} has unaligned host offset 0x{host:x}"
                    )));
                }
                if ext {
                    let sub = cs / SUBCLUSTERS;
                    while pos < cend {
                        let i = (pos - cstart) / sub;
                        let send = (cstart + (i + 1) * sub).min(cend);
                        let seg = if bitmap & (1u64 << (32 + i)) != 0 {
                            Seg::Zero
                        } else if bitmap & (1u64 << i) != 0 {
                            if host == 0 {
                                return Err(Error::corrupt(format!(
                                    "qcow2 extended L2 entry for guest offset {cstart} marks subcluster {i} allocated without a host cluster"
                                )));
                            }
                            Seg::Host(host + (pos - cstart))
                        } else {
                            Seg::Unalloc
                        };
                        emit(
                            Run {
                                guest: pos,
                                len: send - pos,
                                seg,
                            },
                            &mut pending,
                        )?;
                        pos = send;
                    }
                    continue;
                }
                let seg = if v3 && word & L2_ZERO != 0 {
                    Seg::Zero
                } else if host == 0 {
                    Seg::Unalloc
                } else {
                    Seg::Host(host + (pos - cstart))
                };
                emit(
                    Run {
                        guest: pos,
                        len: cend - pos,
                        seg,
                    },
                    &mut pending,
                )?;
                pos = cend;
            }
        }
        if let Some(p) = pending {
            f(p)?;
        }
        Ok(())
    }

    /// Read host bytes from the data storage; bytes past its end read as zeros (as qemu
    /// does for a partially written last cluster), but a start past the end is corrupt.
    fn read_host(&self, buf: &mut [u8], host: u64, guest: u64) -> Result<()> {
        let (storage, size) = match &self.data_file {
            Some((s, n)) => (s.as_ref(), *n),
            None => (self.storage.as_ref(), self.file_size),
        };
        if host >= size {
            return Err(Error::corrupt(format!(
                "qcow2 cluster for guest offset {guest} points to host offset 0x{host:x}, past the end of the file ({size} bytes)"
            )));
        }
        let avail = usize::try_from(size - host)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let (head, tail) = buf.split_at_mut(avail);
        storage.read_exact_at(head, host)?;
        tail.fill(0);
        Ok(())
    }

    /// Inflate the compressed cluster at `host` (span bytes) into `out` (one cluster).
    fn inflate(&self, host: u64, span: u64, out: &mut [u8], guest: u64) -> Result<()> {
        let cs = self.header.cluster_size();
        if span > 2 * cs + 512 {
            return Err(Error::corrupt(format!(
                "qcow2 compressed cluster at guest {guest} claims {span} bytes"
            )));
        }
        if host >= self.file_size {
            return Err(Error::corrupt(format!(
                "qcow2 compressed cluster for guest offset {guest} at 0x{host:x} lies past the end of the file"
            )));
        }
        let n = span.min(self.file_size - host);
        let input = crate::storage::read_vec(
            self.storage.as_ref(),
            host,
            n,
            2 * cs + 512,
            "qcow2 compressed cluster",
        )?;
        let bad = |why: String| {
            Error::corrupt(format!(
                "qcow2 compressed cluster for guest offset {guest} at 0x{host:x}: {why}"
            ))
        };
        match self.header.compression {
            CompressionType::Zlib => {
                let mut d = flate2::Decompress::new(false);
                d.decompress(&input, out, flate2::FlushDecompress::Finish)
                    .map_err(|e| bad(e.to_string()))?;
                if d.total_out() != out.len() as u64 {
                    return Err(bad(format!(
                        "inflates to {} bytes instead of {}",
                        d.total_out(),
                        out.len()
                    )));
                }
            }
            CompressionType::Zstd => {
                use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
                let mut dec = Decoder::new().map_err(|e| bad(e.to_string()))?;
                let mut inb = InBuffer::around(&input);
                let mut outb = OutBuffer::around(out);
                loop {
                    let hint = dec
                        .run(&mut inb, &mut outb)
                        .map_err(|e| bad(e.to_string()))?;
                    if outb.pos() == outb.capacity() {
                        break;
                    }
                    if hint == 0 || inb.pos() == input.len() {
                        return Err(bad(format!("zstd data ends after {} bytes", outb.pos())));
                    }
                }
            }
        }
        Ok(())
    }

    /// Fill `buf` from guest `offset` (the caller checked the range).
    pub(super) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let cs = self.header.cluster_size();
        let mut scratch: Vec<u8> = Vec::new();
        self.walk(offset, buf.len() as u64, &mut |r: Run| {
            let s =
                usize::try_from(r.guest - offset).map_err(|_| Error::invalid("read too large"))?;
            let e = s + usize::try_from(r.len).map_err(|_| Error::invalid("read too large"))?;
            let dst = &mut buf[s..e];
            match r.seg {
                Seg::Host(h) => self.read_host(dst, h, r.guest),
                Seg::Zero => {
                    dst.fill(0);
                    Ok(())
                }
                Seg::Unalloc => match &self.backing {
                    Some(b) => read_backing(b.as_ref(), dst, r.guest),
                    None => {
                        dst.fill(0);
                        Ok(())
                    }
                },
                Seg::Compressed(h, span) => {
                    scratch.resize(usize::try_from(cs).unwrap_or(0), 0);
                    self.inflate(h, span, &mut scratch, r.guest)?;
                    let within = usize::try_from(r.guest % cs).unwrap_or(0);
                    dst.copy_from_slice(&scratch[within..within + dst.len()]);
                    Ok(())
                }
            }
        })
    }

    /// The mapping query.
    pub(super) fn map_range(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let mut out = Vec::new();
        self.walk(offset, len, &mut |r: Run| {
            match r.seg {
                Seg::Host(_) => push_extent(&mut out, r.guest, r.len, ExtentKind::Data, false),
                Seg::Compressed(..) => {
                    push_extent(&mut out, r.guest, r.len, ExtentKind::Data, true)
                }
                Seg::Zero => push_extent(&mut out, r.guest, r.len, ExtentKind::Zero, false),
                Seg::Unalloc => match &self.backing {
                    Some(b) if r.guest < b.len() => {
                        let inside = r.len.min(b.len() - r.guest);
                        for e in b.map(r.guest, inside)? {
                            push_extent(&mut out, e.offset, e.len, e.kind, e.compressed);
                        }
                        push_extent(
                            &mut out,
                            r.guest + inside,
                            r.len - inside,
                            ExtentKind::Unallocated,
                            false,
                        );
                    }
                    _ => push_extent(&mut out, r.guest, r.len, ExtentKind::Unallocated, false),
                },
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Read from a backing image that may be shorter than the overlay (zeros past its end).
fn read_backing(b: &dyn crate::DiskImage, dst: &mut [u8], guest: u64) -> Result<()> {
    let blen = b.len();
    if guest >= blen {
        dst.fill(0);
        return Ok(());
    }
    let n = usize::try_from(blen - guest)
        .unwrap_or(usize::MAX)
        .min(dst.len());
    let (head, tail) = dst.split_at_mut(n);
    b.read_exact_at(head, guest)?;
    tail.fill(0);
    Ok(())
}

fn poisoned() -> Error {
    Error::new(crate::ErrorKind::Io, "qcow2 L2 cache lock poisoned")
}
