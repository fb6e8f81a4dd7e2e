//! qcow2 consistency check, as `qemu-img check` does it: count every reference to every host
//! cluster (header, L1/L2 tables of the active layer and of every snapshot, refcount
//! structures, snapshot table, data and compressed clusters) and compare with the stored
//! refcounts. Stored < counted is corruption (a cluster could be freed while in use);
//! stored > counted is a leak.

use super::io::{L2_COMPRESSED, OFFSET_MASK};
use super::Qcow2Image;
use crate::bytes::{be16_or_zero, be32_or_zero, be64_or_zero, be64_table};
use crate::device::CheckReport;
use crate::error::{Error, Result};
use crate::storage::read_vec;

/// Most host clusters a check tracks (bounds its memory to 256 MiB of u32 counters).
const MAX_TRACKED: u64 = 64 << 20;

struct Counter {
    cs: u64,
    counts: Vec<u32>,
    report: CheckReport,
}

impl Counter {
    fn add(&mut self, off: u64, len: u64, what: &str) {
        if len == 0 {
            return;
        }
        let first = off / self.cs;
        let last = (off + len - 1) / self.cs;
        for c in first..=last {
            match usize::try_from(c).ok().and_then(|i| self.counts.get_mut(i)) {
                Some(n) => *n = n.saturating_add(1),
                None => self
                    .report
                    .corruptions
                    .push(format!("{what} at 0x{off:x} lies past the end of the file")),
            }
        }
    }
}

/// Snapshot L1 tables: (offset, entries).
fn snapshot_l1s(img: &Qcow2Image, c: &mut Counter) -> Result<Vec<(u64, u32)>> {
    let h = &img.header;
    let mut out = Vec::new();
    let mut pos = h.snapshots_offset;
    for i in 0..h.nb_snapshots {
        let fixed = read_vec(img.storage.as_ref(), pos, 40, 40, "qcow2 snapshot header")?;
        // read_vec returned exactly the 40 bytes of the fixed snapshot header part
        let l1_off = be64_or_zero(&fixed, 0);
        let l1_size = be32_or_zero(&fixed, 8);
        let id_len = u64::from(be16_or_zero(&fixed, 12));
        let name_len = u64::from(be16_or_zero(&fixed, 14));
        let extra = u64::from(be32_or_zero(&fixed, 36));
        if extra > 1024 {
            return Err(Error::corrupt(format!(
                "qcow2 snapshot {i} has {extra} bytes of extra data"
            )));
        }
        let len = (40 + extra + id_len + name_len).div_ceil(8) * 8;
        c.add(pos, len, "snapshot table entry");
        out.push((l1_off, l1_size));
        pos = pos
            .checked_add(len)
            .filter(|p| *p <= img.file_size)
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "qcow2 snapshot table entry {i} runs past the end of the file"
                ))
            })?;
    }
    Ok(out)
}

/// Run the check.
pub fn check(img: &Qcow2Image) -> Result<CheckReport> {
    let h = &img.header;
    let cs = h.cluster_size();
    let nclusters = img.file_size.div_ceil(cs);
    if nclusters > MAX_TRACKED {
        return Err(Error::limit(format!(
            "qcow2 check of {nclusters} host clusters exceeds {MAX_TRACKED}"
        )));
    }
    let mut c = Counter {
        cs,
        counts: vec![0; usize::try_from(nclusters).unwrap_or(0)],
        report: CheckReport::default(),
    };
    c.add(0, cs, "header");
    let mut l1s = vec![(h.l1_table_offset, h.l1_size)];
    l1s.extend(snapshot_l1s(img, &mut c)?);
    let per_l2 = h.l2_entries();
    let ext = h.extended_l2();
    let mut seen_l2 = std::collections::HashSet::new();
    let mut last_host = 0u64;
    for (n, &(l1_off, l1_size)) in l1s.iter().enumerate() {
        if l1_size == 0 {
            continue;
        }
        let bytes = u64::from(l1_size) * 8;
        if bytes > super::header::MAX_L1_BYTES
            || l1_off % cs != 0
            || l1_off.saturating_add(bytes) > img.file_size
        {
            c.report.corruptions.push(format!(
                "L1 table {n} at 0x{l1_off:x} ({l1_size} entries) is invalid"
            ));
            continue;
        }
        c.add(l1_off, bytes, "L1 table");
        let l1 = be64_table(&read_vec(
            img.storage.as_ref(),
            l1_off,
            bytes,
            bytes,
            "qcow2 L1 table",
        )?);
        for (i, e) in l1.iter().enumerate() {
            let l2_off = e & OFFSET_MASK;
            if l2_off == 0 {
                continue;
            }
            if !l2_off.is_multiple_of(cs) || l2_off + cs > img.file_size {
                c.report.corruptions.push(format!(
                    "L1 entry {i} points to invalid L2 table 0x{l2_off:x}"
                ));
                continue;
            }
            c.add(l2_off, cs, "L2 table");
            // An L2 table shared between layers references its clusters once.
            if !seen_l2.insert(l2_off) {
                continue;
            }
            let l2 = be64_table(&read_vec(
                img.storage.as_ref(),
                l2_off,
                cs,
                cs,
                "qcow2 L2 table",
            )?);
            let step = if ext { 2 } else { 1 };
            for (j, w) in l2.iter().step_by(step).enumerate() {
                let guest = (i as u64 * per_l2 + j as u64) * cs;
                if w & L2_COMPRESSED != 0 {
                    let cb = u64::from(h.cluster_bits);
                    let x = 62 - (cb - 8);
                    let desc = w & ((1u64 << 62) - 1);
                    let off = desc & ((1u64 << x) - 1);
                    let span = (((desc >> x) & ((1u64 << (cb - 8)) - 1)) + 1) * 512 - (off & 511);
                    c.add(off, span, "compressed cluster");
                    if n == 0 {
                        c.report.compressed_clusters += 1;
                        c.report.allocated_clusters += 1;
                    }
                    continue;
                }
                let host = w & OFFSET_MASK;
                if host == 0 {
                    continue;
                }
                if !host.is_multiple_of(cs) {
                    c.report.corruptions.push(format!(
                        "L2 entry for guest {guest} has unaligned offset 0x{host:x}"
                    ));
                    continue;
                }
                c.add(
                    host,
                    cs.min(img.file_size.saturating_sub(host)).max(1),
                    "data cluster",
                );
                if n == 0 {
                    c.report.allocated_clusters += 1;
                    if last_host != 0 && host != last_host + cs {
                        c.report.fragmented_clusters += 1;
                    }
                    last_host = host;
                }
            }
        }
    }
    // Refcount structures.
    let rt_bytes = u64::from(h.refcount_table_clusters) * cs;
    c.add(h.refcount_table_offset, rt_bytes, "refcount table");
    let table = be64_table(&read_vec(
        img.storage.as_ref(),
        h.refcount_table_offset,
        rt_bytes,
        rt_bytes,
        "qcow2 refcount table",
    )?);
    let bits = 1u64 << h.refcount_order;
    let per_block = cs * 8 / bits;
    let mut stored = vec![0u64; c.counts.len()];
    for (bi, e) in table.iter().enumerate() {
        let boff = e & OFFSET_MASK;
        if boff == 0 {
            continue;
        }
        if !boff.is_multiple_of(cs) || boff + cs > img.file_size {
            c.report
                .corruptions
                .push(format!("refcount block {bi} at 0x{boff:x} is invalid"));
            continue;
        }
        c.add(boff, cs, "refcount block");
        let raw = read_vec(img.storage.as_ref(), boff, cs, cs, "qcow2 refcount block")?;
        for k in 0..per_block {
            let cl = bi as u64 * per_block + k;
            let Some(slot) = usize::try_from(cl).ok().and_then(|i| stored.get_mut(i)) else {
                break;
            };
            *slot = refcount_at(&raw, k, bits);
        }
    }
    c.report.total_clusters = h.size.div_ceil(cs);
    for (i, (&have, &want)) in stored.iter().zip(&c.counts).enumerate() {
        let want = u64::from(want);
        if have < want {
            c.report.corruptions.push(format!(
                "cluster {i} (0x{:x}) has refcount {have} but is referenced {want} times",
                i as u64 * cs
            ));
        } else if have > want {
            c.report.leaks += 1;
        }
    }
    Ok(c.report)
}

fn refcount_at(block: &[u8], k: u64, bits: u64) -> u64 {
    let bit = k * bits;
    let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
    match bits {
        64 | 32 | 16 | 8 => {
            let n = usize::try_from(bits / 8).unwrap_or(0);
            block
                .get(byte..byte + n)
                .map(|s| s.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
                .unwrap_or(0)
        }
        _ => {
            let v = u64::from(block.get(byte).copied().unwrap_or(0));
            let shift = bit % 8;
            (v >> shift) & ((1 << bits) - 1)
        }
    }
}
