//! VHDX (Hyper-V, [MS-VHDX]), read only: verifies the file identifier, picks the current
//! header (valid CRC-32C, higher sequence number), refuses images with a log to replay,
//! reads the region table, metadata items and the BAT, and serves reads block by block,
//! coalescing blocks that are contiguous in the file into one read. Differencing disks
//! reach their parent only through the caller's policy and consult the sector bitmaps of
//! partially present blocks.

mod header;
mod io;

use crate::bytes::{le16_or_zero, le32_or_zero, le64_or_zero};
use crate::device::{DiskImage, ImageInfo};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::{Format, OpenContext};
use header::*;
use std::sync::Arc;

/// Payload block states ([MS-VHDX] §2.5.1.1).
const PAYLOAD_NOT_PRESENT: u8 = 0;
const PAYLOAD_UNDEFINED: u8 = 1;
const PAYLOAD_ZERO: u8 = 2;
const PAYLOAD_UNMAPPED: u8 = 3;
const PAYLOAD_FULLY_PRESENT: u8 = 6;
const PAYLOAD_PARTIALLY_PRESENT: u8 = 7;
/// Largest BAT Ikon loads (bytes).
const MAX_BAT_BYTES: u64 = 128 << 20;
/// Largest virtual size ([MS-VHDX] §2.6.2.2: 64 TiB).
const MAX_DISK_SIZE: u64 = 64 << 40;
/// Block size bounds ([MS-VHDX] §2.6.2.1: 1 MiB to 256 MiB, power of two).
const MIN_BLOCK: u32 = 1 << 20;
const MAX_BLOCK: u32 = 256 << 20;

/// An opened VHDX image.
pub struct VhdxImage {
    storage: Arc<dyn Storage>,
    size: u64,
    block_size: u64,
    chunk_ratio: u64,
    /// Payload entries only (sector bitmap entries removed), one per block.
    blocks: Vec<u64>,
    logical_sector: u32,
    physical_sector: u32,
    leave_allocated: bool,
    creator: String,
    page83: [u8; 16],
    sequence: u64,
    /// Differencing disks: the parent (opened through the caller's policy) and its name.
    parent: Option<Box<dyn DiskImage>>,
    parent_name: Option<String>,
    /// Differencing disks: the sector bitmap BAT entry of each chunk.
    bitmaps: Vec<u64>,
}

impl std::fmt::Debug for VhdxImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdxImage")
            .field("size", &self.size)
            .field("block_size", &self.block_size)
            .field("parent", &self.parent_name)
            .finish_non_exhaustive()
    }
}

/// Sector bitmap block state "present" ([MS-VHDX] §2.5.1.2).
const SB_PRESENT: u8 = 6;
/// Sectors described by one 1 MiB sector bitmap block ([MS-VHDX] §2.4: 2^23).
const SECTORS_PER_BITMAP: u64 = 1 << 23;

fn read_header(s: &dyn Storage) -> Result<Header> {
    let mut best: Option<Header> = None;
    let mut first_err = None;
    for (slot, &at) in HEADER_OFFSETS.iter().enumerate() {
        let b = read_vec(s, at, HEADER_SIZE as u64, 4096, "VHDX header")?;
        match Header::parse(&b, slot) {
            Ok(h) => {
                if best.as_ref().is_none_or(|c| h.sequence > c.sequence) {
                    best = Some(h);
                }
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    best.ok_or_else(|| {
        first_err
            .unwrap_or_else(|| Error::corrupt("no valid VHDX header"))
            .within("both VHDX headers are invalid")
    })
}

fn read_regions(s: &dyn Storage, file_size: u64) -> Result<(Region, Region)> {
    let mut first_err = None;
    for at in REGION_OFFSETS {
        let b = read_vec(s, at, KIB64, KIB64, "VHDX region table")?;
        match parse_regions(&b, at).and_then(|r| pick_regions(&r, at, file_size)) {
            Ok(r) => return Ok(r),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Error::corrupt("no valid VHDX region table")))
}

fn pick_regions(regions: &[Region], at: u64, file_size: u64) -> Result<(Region, Region)> {
    let (bat_g, meta_g) = (guid(GUID_BAT), guid(GUID_METADATA));
    let mut bat = None;
    let mut meta = None;
    for r in regions {
        let end = r.offset.checked_add(r.length);
        if r.offset < MIB || r.offset % MIB != 0 || r.length == 0 || r.length % MIB != 0 {
            return Err(Error::corrupt(format!(
                "VHDX region table at 0x{at:x}: region {} at 0x{:x} ({} bytes) is not 1 MiB aligned or overlaps the headers",
                guid_str(&r.guid), r.offset, r.length
            )));
        }
        if end.is_none_or(|e| e > file_size) {
            return Err(Error::corrupt(format!(
                "VHDX region {} at 0x{:x} ({} bytes) extends past the end of the file (size {file_size})",
                guid_str(&r.guid), r.offset, r.length
            )));
        }
        for o in regions {
            if !std::ptr::eq(o, r)
                && o.offset < r.offset + r.length
                && r.offset < o.offset.saturating_add(o.length)
            {
                return Err(Error::corrupt(format!(
                    "VHDX regions {} and {} overlap",
                    guid_str(&r.guid),
                    guid_str(&o.guid)
                )));
            }
        }
        if r.guid == bat_g {
            if bat.replace(r.clone()).is_some() {
                return Err(Error::corrupt("VHDX region table lists the BAT twice"));
            }
        } else if r.guid == meta_g {
            if meta.replace(r.clone()).is_some() {
                return Err(Error::corrupt("VHDX region table lists the metadata twice"));
            }
        } else if r.required {
            return Err(Error::unsupported(format!(
                "VHDX has an unknown required region {}",
                guid_str(&r.guid)
            )));
        }
    }
    match (bat, meta) {
        (Some(b), Some(m)) => Ok((b, m)),
        _ => Err(Error::corrupt(format!(
            "VHDX region table at 0x{at:x} lacks the BAT or metadata region"
        ))),
    }
}

struct Params {
    block_size: u32,
    leave_allocated: bool,
    has_parent: bool,
    size: u64,
    logical: u32,
    physical: u32,
    page83: [u8; 16],
    /// Raw Parent Locator item, if present.
    locator: Option<Vec<u8>>,
}

fn read_metadata(s: &dyn Storage, meta: &Region) -> Result<Params> {
    let region = read_vec(
        s,
        meta.offset,
        meta.length,
        64 << 20,
        "VHDX metadata region",
    )?;
    let entries = parse_metadata_table(&region, meta.offset)?;
    let item = |name: &str, g: &str, len: usize| -> Result<Option<&[u8]>> {
        let g = guid(g);
        let Some(e) = entries.iter().find(|e| e.guid == g && !e.is_user) else {
            return Ok(None);
        };
        let off = u64::from(e.offset);
        let end = off + u64::from(e.length);
        if (e.length as usize) < len || off < KIB64 || end > meta.length {
            return Err(Error::corrupt(format!(
                "VHDX metadata item {name} at region offset 0x{off:x} ({} bytes) is out of bounds or too short",
                e.length
            )));
        }
        let full = if len == 0 { e.length as usize } else { len };
        Ok(region.get(e.offset as usize..e.offset as usize + full))
    };
    let known = [
        GUID_FILE_PARAMS,
        GUID_DISK_SIZE,
        GUID_PAGE83,
        GUID_LOGICAL,
        GUID_PHYSICAL,
        GUID_PARENT_LOCATOR,
    ]
    .map(guid);
    if let Some(e) = entries
        .iter()
        .find(|e| e.required && !e.is_user && !known.contains(&e.guid))
    {
        return Err(Error::unsupported(format!(
            "VHDX has an unknown required metadata item {}",
            guid_str(&e.guid)
        )));
    }
    let missing = |n: &str| Error::corrupt(format!("VHDX metadata lacks the {n} item"));
    let fp =
        item("File Parameters", GUID_FILE_PARAMS, 8)?.ok_or_else(|| missing("File Parameters"))?;
    let ds = item("Virtual Disk Size", GUID_DISK_SIZE, 8)?
        .ok_or_else(|| missing("Virtual Disk Size"))?;
    let ls = item("Logical Sector Size", GUID_LOGICAL, 4)?
        .ok_or_else(|| missing("Logical Sector Size"))?;
    let ps = item("Physical Sector Size", GUID_PHYSICAL, 4)?;
    let p83 = item("Page 83 Data", GUID_PAGE83, 16)?;
    let locator = item("Parent Locator", GUID_PARENT_LOCATOR, 0)?.map(<[u8]>::to_vec);
    let flags = le32_or_zero(fp, 4);
    Ok(Params {
        block_size: le32_or_zero(fp, 0),
        leave_allocated: flags & 1 != 0,
        has_parent: flags & 2 != 0,
        size: le64_or_zero(ds, 0),
        logical: le32_or_zero(ls, 0),
        physical: ps.map_or(512, |p| le32_or_zero(p, 0)),
        page83: p83.map_or([0; 16], |p| crate::bytes::array_or_zero::<16>(p, 0)),
        locator,
    })
}

/// Open `storage` as a VHDX.
pub fn open(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Ok(Box::new(open_vhdx(storage, ctx)?))
}

/// Open `storage` as a VHDX, returning the concrete type.
pub fn open_vhdx(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<VhdxImage> {
    let s = storage.as_ref();
    let file_size = s.size()?;
    if file_size < MIB {
        return Err(Error::corrupt(format!(
            "VHDX file of {file_size} bytes is shorter than its 1 MiB header area"
        )));
    }
    let ident = read_vec(s, 0, 520, 520, "VHDX file identifier")?;
    if ident.get(..8) != Some(&FILE_SIG[..]) {
        return Err(Error::corrupt("no \"vhdxfile\" signature at offset 0"));
    }
    let units: Vec<u16> = (0..256)
        .map(|i| le16_or_zero(&ident, 8 + 2 * i))
        .take_while(|&u| u != 0)
        .collect();
    let creator = String::from_utf16_lossy(&units);
    let h = read_header(s)?;
    if h.log_guid != [0; 16] {
        return Err(Error::unsupported(
            "VHDX has a dirty log that must be replayed by Hyper-V or qemu-img check -r all; refused",
        ));
    }
    let (bat_r, meta_r) = read_regions(s, file_size)?;
    let p = read_metadata(s, &meta_r)?;
    if p.block_size < MIN_BLOCK || p.block_size > MAX_BLOCK || !p.block_size.is_power_of_two() {
        return Err(Error::corrupt(format!(
            "VHDX block size {} is not a power of two between 1 MiB and 256 MiB",
            p.block_size
        )));
    }
    if p.logical != 512 && p.logical != 4096 {
        return Err(Error::corrupt(format!(
            "VHDX logical sector size {} (expected 512 or 4096)",
            p.logical
        )));
    }
    if p.physical != 512 && p.physical != 4096 {
        return Err(Error::corrupt(format!(
            "VHDX physical sector size {} (expected 512 or 4096)",
            p.physical
        )));
    }
    if p.size == 0 || p.size > MAX_DISK_SIZE || p.size % u64::from(p.logical) != 0 {
        return Err(Error::corrupt(format!(
            "VHDX virtual disk size {} is zero, above 64 TiB or not a multiple of the sector size",
            p.size
        )));
    }
    let block_size = u64::from(p.block_size);
    let chunk_ratio = SECTORS_PER_BITMAP * u64::from(p.logical) / block_size;
    let nblocks = p.size.div_ceil(block_size);
    // [MS-VHDX] §2.5: differencing disks also need the last chunk's sector bitmap entry.
    let total = if p.has_parent {
        nblocks.div_ceil(chunk_ratio) * (chunk_ratio + 1)
    } else {
        nblocks + (nblocks - 1) / chunk_ratio
    };
    let bat_bytes = total.mul_or(8, "VHDX BAT size")?;
    if bat_bytes > MAX_BAT_BYTES {
        return Err(Error::limit(format!(
            "VHDX BAT of {total} entries exceeds the limit of {MAX_BAT_BYTES} bytes"
        )));
    }
    if bat_bytes > bat_r.length {
        return Err(Error::corrupt(format!(
            "VHDX BAT region at 0x{:x} ({} bytes) is too small for {total} entries",
            bat_r.offset, bat_r.length
        )));
    }
    let raw = read_vec(s, bat_r.offset, bat_bytes, MAX_BAT_BYTES, "VHDX BAT")?;
    let mut bitmaps = Vec::new();
    if p.has_parent {
        for k in 0..nblocks.div_ceil(chunk_ratio) {
            let bi = k * (chunk_ratio + 1) + chunk_ratio;
            let e = le64_or_zero(&raw, usize::try_from(bi * 8).unwrap_or(usize::MAX));
            let off = (e >> 20) << 20;
            if state_of(e) == SB_PRESENT
                && (off < MIB || off.checked_add(MIB).is_none_or(|x| x > file_size))
            {
                return Err(Error::corrupt(format!(
                    "VHDX BAT entry {bi}: sector bitmap at 0x{off:x} lies in the header area or past the end of the file (size {file_size})"
                )));
            }
            bitmaps.push(e);
        }
    }
    let mut blocks = Vec::with_capacity(usize::try_from(nblocks).unwrap_or(0));
    for i in 0..nblocks {
        let bi = i + i / chunk_ratio;
        let o = usize::try_from(bi * 8).unwrap_or(usize::MAX);
        let e = le64_or_zero(&raw, o);
        let state = state_of(e);
        let off = (e >> 20) << 20;
        match state {
            PAYLOAD_NOT_PRESENT | PAYLOAD_UNDEFINED | PAYLOAD_ZERO | PAYLOAD_UNMAPPED => {}
            PAYLOAD_FULLY_PRESENT | PAYLOAD_PARTIALLY_PRESENT
                if state == PAYLOAD_FULLY_PRESENT || p.has_parent =>
            {
                let chunk = usize::try_from(i / chunk_ratio).unwrap_or(usize::MAX);
                if state == PAYLOAD_PARTIALLY_PRESENT
                    && bitmaps
                        .get(chunk)
                        .is_none_or(|&b| state_of(b) != SB_PRESENT)
                {
                    return Err(Error::corrupt(format!(
                        "VHDX BAT entry {bi} is PARTIALLY_PRESENT but its chunk has no sector bitmap"
                    )));
                }
                // the last block may be cut short at the virtual size (qemu writes it so)
                let used = block_size.min(p.size - i * block_size);
                if off < MIB || off.checked_add(used).is_none_or(|e| e > file_size) {
                    return Err(Error::corrupt(format!(
                        "VHDX BAT entry {bi}: block at 0x{off:x} lies in the header area or past the end of the file (size {file_size})"
                    )));
                }
            }
            PAYLOAD_PARTIALLY_PRESENT => {
                return Err(Error::corrupt(format!(
                    "VHDX BAT entry {bi} is PARTIALLY_PRESENT in a disk without a parent"
                )))
            }
            _ => {
                return Err(Error::corrupt(format!(
                    "VHDX BAT entry {bi} has undefined state {state}"
                )))
            }
        }
        blocks.push(e);
    }
    let (parent, parent_name) = if p.has_parent {
        let (img, name) = open_parent(ctx, p.locator.as_deref().unwrap_or(&[]))?;
        (Some(img), Some(name))
    } else {
        (None, None)
    };
    Ok(VhdxImage {
        storage,
        parent,
        parent_name,
        bitmaps,
        size: p.size,
        block_size,
        chunk_ratio,
        blocks,
        logical_sector: p.logical,
        physical_sector: p.physical,
        leave_allocated: p.leave_allocated,
        creator,
        page83: p.page83,
        sequence: h.sequence,
    })
}

/// Open the parent named by the Parent Locator item, only through the caller's policy
/// (refused with `Unsafe` by default).
fn open_parent(ctx: &OpenContext, locator: &[u8]) -> Result<(Box<dyn DiskImage>, String)> {
    let paths = parent_paths(locator)?;
    let mut first_err = None;
    for path in paths {
        match ctx.open_image(&path, "VHDX parent", None) {
            Ok(img) => return Ok((img, path)),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err
        .unwrap_or_else(|| Error::corrupt("differencing VHDX has no usable parent locator entry")))
}

/// Parent paths from a Parent Locator item ([MS-VHDX] §2.6.2.6): a 20-byte header
/// (locator type GUID, reserved, key/value count) then 12-byte entries (key offset, value
/// offset, key length, value length) pointing at UTF-16LE strings inside the item. Returns
/// `relative_path` then `absolute_win32_path`, with backslashes turned into slashes.
fn parent_paths(item: &[u8]) -> Result<Vec<String>> {
    let count = usize::from(le16_or_zero(item, 18));
    if item.len() < 20 || 20 + count * 12 > item.len() {
        return Err(Error::corrupt(format!(
            "VHDX parent locator of {} bytes cannot hold {count} entries",
            item.len()
        )));
    }
    let text = |off: u32, len: u16| -> Result<String> {
        let start = off as usize;
        let bytes = item
            .get(start..start + usize::from(len))
            .ok_or_else(|| Error::corrupt("VHDX parent locator entry points outside the item"))?;
        let units: Vec<u16> = crate::bytes::le16_table(bytes);
        Ok(String::from_utf16_lossy(&units))
    };
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0..count {
        let o = 20 + 12 * i;
        let key = text(le32_or_zero(item, o), le16_or_zero(item, o + 8))?;
        let value = text(le32_or_zero(item, o + 4), le16_or_zero(item, o + 10))?;
        found.push((key, value));
    }
    let mut out = Vec::new();
    for want in ["relative_path", "absolute_win32_path"] {
        for (k, v) in &found {
            if k == want {
                let p = v.replace('\\', "/");
                let p = p.strip_prefix("./").unwrap_or(&p).to_string();
                if !p.is_empty() && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    Ok(out)
}

/// The state bits (0-2) of a BAT entry ([MS-VHDX] §2.5.1).
fn state_of(e: u64) -> u8 {
    u8::try_from(e & 7).unwrap_or(0)
}

impl DiskImage for VhdxImage {
    fn info(&self) -> ImageInfo {
        let mut info = ImageInfo::new(Format::Vhdx, self.size)
            .detail("creator", &self.creator)
            .detail("logical_sector_size", self.logical_sector)
            .detail("physical_sector_size", self.physical_sector)
            .detail("block_size", self.block_size)
            .detail("chunk_ratio", self.chunk_ratio)
            .detail("leave_blocks_allocated", self.leave_allocated)
            .detail("header_sequence", self.sequence)
            .detail("page83", guid_str(&self.page83));
        let sub = if self.parent.is_some() {
            "differencing"
        } else if self.leave_allocated {
            "fixed"
        } else {
            "dynamic"
        };
        info.subformat = Some(sub.to_string());
        if let Some(p) = &self.parent_name {
            info.external_files.push(p.clone());
        }
        info.cluster_size = Some(self.block_size);
        info
    }

    fn check(&self) -> Result<crate::device::CheckReport> {
        let mut r = crate::device::CheckReport {
            total_clusters: self.blocks.len() as u64,
            ..Default::default()
        };
        let mut offs: Vec<(u64, usize)> = Vec::new();
        for (i, &e) in self.blocks.iter().enumerate() {
            if state_of(e) == PAYLOAD_FULLY_PRESENT {
                r.allocated_clusters += 1;
                offs.push(((e >> 20) << 20, i));
            }
        }
        offs.sort_unstable();
        for w in offs.windows(2) {
            if w[0].0 + self.block_size > w[1].0 {
                r.corruptions.push(format!(
                    "VHDX blocks {} and {} overlap at 0x{:x}",
                    w[0].1, w[1].1, w[1].0
                ));
            }
        }
        Ok(r)
    }
}
