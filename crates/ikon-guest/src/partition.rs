//! Partition tables: MBR (primary, extended, logical), GPT (behind a protective or hybrid
//! MBR), or none (a filesystem on the whole disk).
//!
//! Layouts: MBR per the IBM PC partition record (signature 0x55AA at byte 510, four 16-byte
//! entries at 446); GPT per UEFI 2.10 §5.3 (header "EFI PART" at LBA 1, entries array).
//! Sector sizes 512 and 4096 are tried for GPT. Entries that overlap or point past the end
//! of the disk are kept but reported in `problems` (the result is then partial).

use ikon_disk::bytes::{array_or_zero, guid_string, le32_or_zero, le64_or_zero};
use ikon_disk::{BlockDevice, Result};
use serde::Serialize;

/// MBR boot signature at byte 510 (IBM PC partition record).
const MBR_SIGNATURE: [u8; 2] = [0x55, 0xAA];
/// Offset of the four primary entries in the MBR.
const MBR_ENTRIES: usize = 446;
/// MBR type of a GPT protective partition (UEFI 2.10 §5.2.3).
const MBR_TYPE_GPT: u8 = 0xEE;
/// MBR extended partition types (CHS 0x05, LBA 0x0F, Linux 0x85).
const MBR_EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
/// GPT header signature (UEFI 2.10 §5.3.2).
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
/// Bound on logical partitions followed in an extended chain (loops impossible).
const MAX_LOGICAL: usize = 128;
/// Bound on GPT entries read (UEFI default is 128; we accept up to 1024).
const MAX_GPT_ENTRIES: u32 = 1024;

/// Kind of partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// DOS/MBR table.
    Mbr,
    /// GUID partition table.
    Gpt,
    /// No table: the whole disk is one filesystem (or empty).
    None,
}

/// One partition.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    /// 1-based number (MBR logical partitions start at 5).
    pub number: u32,
    /// Byte offset on the disk.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// MBR type byte as hex ("0x83") or GPT type GUID.
    pub type_id: String,
    /// MBR bootable flag.
    pub bootable: bool,
}

/// The partition table found on a disk.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionTable {
    /// Kind of table.
    pub kind: TableKind,
    /// Logical sector size used to interpret it.
    pub sector_size: u32,
    /// Partitions, in table order.
    pub partitions: Vec<Partition>,
    /// Structural problems (overlaps, entries past the end, bad CRCs); non-empty = partial.
    pub problems: Vec<String>,
}

pub(crate) fn read(dev: &dyn BlockDevice, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    if off.checked_add(len as u64).is_none_or(|e| e > dev.len()) {
        return Err(ikon_disk::Error::corrupt(format!(
            "read of {len} bytes at 0x{off:x} past end of disk (size {})",
            dev.len()
        )));
    }
    dev.read_exact_at(&mut v, off)?;
    Ok(v)
}

/// Read the partition table of `dev`.
pub fn read_table(dev: &dyn BlockDevice) -> Result<PartitionTable> {
    let disk = dev.len();
    if disk < 512 {
        return Ok(PartitionTable {
            kind: TableKind::None,
            sector_size: 512,
            partitions: vec![],
            problems: vec![],
        });
    }
    let mbr = read(dev, 0, 512)?;
    let has_sig = mbr.get(510..512) == Some(&MBR_SIGNATURE[..]);
    let entries: Vec<&[u8]> = (0..4)
        .filter_map(|i| mbr.get(MBR_ENTRIES + i * 16..MBR_ENTRIES + i * 16 + 16))
        .collect();
    let protective = has_sig && entries.iter().any(|e| e[4] == MBR_TYPE_GPT);
    if protective {
        for ss in [512u32, 4096] {
            if let Some(t) = read_gpt(dev, ss)? {
                return Ok(t);
            }
        }
    }
    // A boot sector of a whole-disk FAT/NTFS also ends in 55AA: entries must look sane.
    let sane = has_sig
        && entries
            .iter()
            .all(|e| (e[0] == 0 || e[0] == 0x80) && (e[4] == 0 || le32_or_zero(e, 12) != 0))
        && entries.iter().any(|e| e[4] != 0);
    if !sane || &mbr[3..11] == b"NTFS    " {
        return Ok(PartitionTable {
            kind: TableKind::None,
            sector_size: 512,
            partitions: vec![],
            problems: vec![],
        });
    }
    let mut t = PartitionTable {
        kind: TableKind::Mbr,
        sector_size: 512,
        partitions: vec![],
        problems: vec![],
    };
    for (i, e) in entries.iter().enumerate() {
        let ty = e[4];
        if ty == 0 {
            continue;
        }
        let start = u64::from(le32_or_zero(e, 8)) * 512;
        let size = u64::from(le32_or_zero(e, 12)) * 512;
        let n = u32::try_from(i + 1).unwrap_or(0);
        if MBR_EXTENDED.contains(&ty) {
            read_logical(dev, start, size, &mut t)?;
        }
        t.partitions.push(Partition {
            number: n,
            offset: start,
            size,
            type_id: format!("0x{ty:02x}"),
            bootable: e[0] == 0x80,
        });
    }
    t.partitions.sort_by_key(|p| p.number);
    check_bounds(&mut t, disk);
    Ok(t)
}

fn read_logical(
    dev: &dyn BlockDevice,
    ext_start: u64,
    ext_size: u64,
    t: &mut PartitionTable,
) -> Result<()> {
    let mut ebr = ext_start;
    let mut seen = Vec::new();
    for k in 0..MAX_LOGICAL {
        if seen.contains(&ebr) {
            t.problems
                .push(format!("extended partition chain loops at 0x{ebr:x}"));
            return Ok(());
        }
        seen.push(ebr);
        let b = match read(dev, ebr, 512) {
            Ok(b) => b,
            Err(e) => {
                t.problems.push(format!("logical partition table: {e}"));
                return Ok(());
            }
        };
        if b.get(510..512) != Some(&MBR_SIGNATURE[..]) {
            t.problems
                .push(format!("EBR at 0x{ebr:x} lacks the 55AA signature"));
            return Ok(());
        }
        let e1 = &b[MBR_ENTRIES..MBR_ENTRIES + 16];
        let e2 = &b[MBR_ENTRIES + 16..MBR_ENTRIES + 32];
        if e1[4] != 0 {
            let off = ebr.saturating_add(u64::from(le32_or_zero(e1, 8)) * 512);
            t.partitions.push(Partition {
                number: u32::try_from(k + 5).unwrap_or(0),
                offset: off,
                size: u64::from(le32_or_zero(e1, 12)) * 512,
                type_id: format!("0x{:02x}", e1[4]),
                bootable: e1[0] == 0x80,
            });
        }
        if e2[4] == 0 || le32_or_zero(e2, 8) == 0 {
            return Ok(());
        }
        ebr = ext_start.saturating_add(u64::from(le32_or_zero(e2, 8)) * 512);
        if ebr >= ext_start.saturating_add(ext_size) {
            t.problems.push(format!(
                "EBR link 0x{ebr:x} points outside the extended partition"
            ));
            return Ok(());
        }
    }
    t.problems.push(format!(
        "more than {MAX_LOGICAL} logical partitions; rest ignored"
    ));
    Ok(())
}

fn read_gpt(dev: &dyn BlockDevice, ss: u32) -> Result<Option<PartitionTable>> {
    let ssz = u64::from(ss);
    if dev.len() < ssz * 3 {
        return Ok(None);
    }
    let h = read(dev, ssz, 512)?;
    if &h[0..8] != GPT_SIGNATURE {
        return Ok(None);
    }
    let mut t = PartitionTable {
        kind: TableKind::Gpt,
        sector_size: ss,
        partitions: vec![],
        problems: vec![],
    };
    let hsize = usize::try_from(le32_or_zero(&h, 12)).unwrap_or(0);
    if (92..=512).contains(&hsize) {
        let mut hh = h[..hsize].to_vec();
        hh[16..20].fill(0);
        if crc32(&hh) != le32_or_zero(&h, 16) {
            t.problems.push("GPT header CRC mismatch".into());
        }
    } else {
        t.problems.push(format!("GPT header size {hsize} invalid"));
    }
    let lba = le64_or_zero(&h, 72);
    let count = le32_or_zero(&h, 80);
    let esz = le32_or_zero(&h, 84);
    if count > MAX_GPT_ENTRIES || !(128..=4096).contains(&esz) || !esz.is_multiple_of(8) {
        t.problems.push(format!(
            "GPT entry array ({count} entries of {esz} bytes) out of bounds"
        ));
        return Ok(Some(t));
    }
    let total = usize::try_from(u64::from(count) * u64::from(esz)).unwrap_or(0);
    let arr = match lba.checked_mul(ssz).map(|o| read(dev, o, total)) {
        Some(Ok(a)) => a,
        _ => {
            t.problems.push(format!(
                "GPT entry array at LBA {lba} unreadable or past end"
            ));
            return Ok(Some(t));
        }
    };
    if crc32(&arr) != le32_or_zero(&h, 88) {
        t.problems.push("GPT entry array CRC mismatch".into());
    }
    let esz = usize::try_from(esz).unwrap_or(128);
    for (i, e) in arr.chunks_exact(esz).enumerate() {
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64_or_zero(e, 32);
        let last = le64_or_zero(e, 40);
        let (Some(off), Some(end)) = (
            first.checked_mul(ssz),
            last.checked_add(1).and_then(|l| l.checked_mul(ssz)),
        ) else {
            t.problems
                .push(format!("GPT entry {} has absurd LBAs", i + 1));
            continue;
        };
        t.partitions.push(Partition {
            number: u32::try_from(i + 1).unwrap_or(0),
            offset: off,
            size: end.saturating_sub(off),
            type_id: guid_string(&array_or_zero(e, 0)),
            bootable: false,
        });
    }
    check_bounds(&mut t, dev.len());
    Ok(Some(t))
}

fn check_bounds(t: &mut PartitionTable, disk: u64) {
    let mut probs = Vec::new();
    for (i, p) in t.partitions.iter().enumerate() {
        if p.offset.saturating_add(p.size) > disk {
            probs.push(format!(
                "partition {} (0x{:x}+0x{:x}) extends past the end of the disk (0x{disk:x})",
                p.number, p.offset, p.size
            ));
        }
        for q in t.partitions.iter().skip(i + 1) {
            let ext = |x: &Partition| {
                MBR_EXTENDED
                    .iter()
                    .any(|e| x.type_id == format!("0x{e:02x}"))
            };
            if ext(p) || ext(q) {
                continue;
            }
            if p.offset < q.offset.saturating_add(q.size)
                && q.offset < p.offset.saturating_add(p.size)
            {
                probs.push(format!("partitions {} and {} overlap", p.number, q.number));
            }
        }
    }
    t.problems.extend(probs);
}

/// CRC-32 (IEEE, reflected), as GPT uses (UEFI 2.10 §5.3.2).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Whether an MBR type byte denotes an extended container.
pub fn is_extended(p: &Partition) -> bool {
    MBR_EXTENDED
        .iter()
        .any(|e| p.type_id == format!("0x{e:02x}"))
}
