//! VHD (Microsoft Virtual PC / Hyper-V "Virtual Hard Disk", qemu's `vpc`): fixed, dynamic and
//! differencing disks. Opening finds and verifies the footer (end of file, 511-byte variant,
//! or the copy at offset 0 of dynamic disks), the dynamic header and the BAT; the read path is
//! in [`io`] and the writer for new images in [`writer`].

mod header;
mod io;
mod writer;

pub use header::{geometry, rounded_size, Footer};
pub use writer::create;

use crate::device::{CheckReport, DiskImage, ImageInfo, WritableImage};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::{Format, OpenContext};
use header::{
    DynHeader, BAT_UNUSED, DYN_HEADER_SIZE, FOOTER_SIZE, SECTOR, TYPE_DIFFERENCING, TYPE_DYNAMIC,
    TYPE_FIXED,
};
use std::sync::{Arc, Mutex, RwLock};

/// Largest BAT Ikon loads (bytes): 64 MiB = 16 Mi entries (32 TiB at 2 MiB blocks).
const MAX_BAT_BYTES: u64 = 64 << 20;
/// Largest parent locator payload Ikon reads (a path).
const MAX_LOCATOR_BYTES: u32 = 64 << 10;

/// The dynamic/differencing part of an opened VHD.
#[derive(Debug)]
pub(crate) struct Dynamic {
    pub header: DynHeader,
    pub block_size: u64,
    /// Sector bitmap bytes before each block, rounded up to 512 (spec: "Block Bitmap").
    pub bitmap_size: u64,
    /// BAT entries (sector numbers) covering the virtual size.
    pub bat: RwLock<Vec<u32>>,
    /// Where the next block is allocated (end of the last block or of the BAT, as qemu's
    /// free_data_block_offset).
    pub free: Mutex<u64>,
}

/// An opened VHD image.
pub struct VhdImage {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) footer: Footer,
    /// The footer as read (rewritten after each newly allocated block).
    pub(crate) footer_raw: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) dynamic: Option<Dynamic>,
    pub(crate) parent: Option<Box<dyn DiskImage>>,
    pub(crate) parent_name: Option<String>,
    pub(crate) writable: bool,
}

impl std::fmt::Debug for VhdImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdImage")
            .field("footer", &self.footer)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Find the footer: the copy at offset 0 of a dynamic/differencing disk when valid (what qemu
/// uses), otherwise the one at the end of the file (512 bytes, or 511 bytes as some old tools
/// wrote it).
fn find_footer(s: &dyn Storage, file_size: u64) -> Result<(Footer, Vec<u8>)> {
    let mut first_err = None;
    if file_size >= FOOTER_SIZE as u64 {
        let head = read_vec(s, 0, FOOTER_SIZE as u64, 512, "VHD footer copy at 0")?;
        if head.starts_with(header::FOOTER_COOKIE) {
            match Footer::parse(&head, "copy at offset 0") {
                Ok(f) if f.disk_type == TYPE_DYNAMIC || f.disk_type == TYPE_DIFFERENCING => {
                    return Ok((f, head))
                }
                Ok(_) => {}
                Err(e) => first_err = Some(e),
            }
        }
        let off = file_size - FOOTER_SIZE as u64;
        let tail = read_vec(s, off, FOOTER_SIZE as u64, 512, "VHD footer")?;
        let at = format!("at 0x{off:x}");
        if tail.starts_with(header::FOOTER_COOKIE) {
            return Footer::parse(&tail, &at)
                .map(|f| (f, tail.clone()))
                .map_err(|e| first_err.unwrap_or(e));
        }
        if tail.get(1..9) == Some(&header::FOOTER_COOKIE[..]) {
            let mut b = tail.get(1..).map(<[u8]>::to_vec).unwrap_or_default();
            b.push(0);
            return Footer::parse(&b, &format!("(511 bytes) at 0x{:x}", off + 1))
                .map(|f| (f, b.clone()))
                .map_err(|e| first_err.unwrap_or(e));
        }
    }
    Err(first_err.unwrap_or_else(|| {
        Error::corrupt(format!(
            "no VHD footer (\"conectix\") at the start or end of the file (size {file_size})"
        ))
    }))
}

/// Open `storage` as a VHD.
pub fn open(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Ok(Box::new(open_vhd(storage, ctx)?))
}

/// Open `storage` as a VHD, returning the concrete type.
pub fn open_vhd(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<VhdImage> {
    let file_size = storage.size()?;
    let (footer, footer_raw) = find_footer(storage.as_ref(), file_size)?;
    let size = footer.virtual_size()?;
    let mut img = VhdImage {
        storage,
        size,
        dynamic: None,
        parent: None,
        parent_name: None,
        writable: ctx.options.writable,
        footer,
        footer_raw,
    };
    match img.footer.disk_type {
        TYPE_FIXED => {
            if size > file_size.saturating_sub(511) {
                return Err(Error::corrupt(format!(
                    "fixed VHD of {size} bytes is larger than its file ({file_size} bytes with the footer)"
                )));
            }
        }
        TYPE_DYNAMIC | TYPE_DIFFERENCING => {
            img.dynamic = Some(load_dynamic(&img, file_size)?);
            if img.footer.disk_type == TYPE_DIFFERENCING {
                open_parent(&mut img, ctx)?;
            }
        }
        t => {
            return Err(Error::unsupported(format!(
                "VHD disk type {t} (expected 2 fixed, 3 dynamic or 4 differencing)"
            )))
        }
    }
    Ok(img)
}

fn load_dynamic(img: &VhdImage, file_size: u64) -> Result<Dynamic> {
    let s = img.storage.as_ref();
    let hoff = img.footer.data_offset;
    if hoff
        .checked_add(DYN_HEADER_SIZE as u64)
        .is_none_or(|e| e > file_size)
    {
        return Err(Error::corrupt(format!(
            "VHD dynamic header at 0x{hoff:x} lies past the end of the file (size {file_size})"
        )));
    }
    let hb = read_vec(s, hoff, DYN_HEADER_SIZE as u64, 1024, "VHD dynamic header")?;
    let header = DynHeader::parse(&hb, hoff)?;
    let block_size = u64::from(header.block_size);
    let bitmap_size = (block_size / (8 * SECTOR)).div_ceil(SECTOR) * SECTOR;
    let needed = img.size.div_ceil(block_size);
    let entries = u64::from(header.max_table_entries);
    if entries < needed {
        return Err(Error::corrupt(format!(
            "VHD BAT has {entries} entries but the disk of {} bytes needs {needed} blocks of {block_size}",
            img.size
        )));
    }
    // The whole table (max table entries) must fit the limit and the file, as qemu
    // requires; only the entries covering the virtual size are loaded.
    let table_bytes = entries.mul_or(4, "VHD BAT size")?;
    if table_bytes > MAX_BAT_BYTES {
        return Err(Error::limit(format!(
            "VHD BAT of {entries} entries ({table_bytes} bytes) exceeds the limit of {MAX_BAT_BYTES} bytes"
        )));
    }
    let bat_bytes = needed.mul_or(4, "VHD BAT size")?;
    let toff = header.table_offset;
    if toff.checked_add(table_bytes).is_none_or(|e| e > file_size) {
        return Err(Error::corrupt(format!(
            "VHD BAT at 0x{toff:x} ({entries} entries) extends past the end of the file (size {file_size})"
        )));
    }
    if table_bytes > 0
        && (toff < FOOTER_SIZE as u64
            || (toff < hoff + DYN_HEADER_SIZE as u64 && hoff < toff + table_bytes))
    {
        return Err(Error::corrupt(format!(
            "VHD BAT at 0x{toff:x} overlaps the footer copy or the dynamic header at 0x{hoff:x}"
        )));
    }
    let raw = read_vec(s, toff, bat_bytes, MAX_BAT_BYTES, "VHD BAT")?;
    let bat: Vec<u32> = crate::bytes::be32_table(&raw);
    let mut free = (toff + table_bytes).div_ceil(SECTOR) * SECTOR;
    for (i, &e) in bat.iter().enumerate() {
        if e == BAT_UNUSED {
            continue;
        }
        let start = u64::from(e) * SECTOR;
        let end = start + bitmap_size + block_size;
        free = free.max(end);
        if end > file_size {
            return Err(Error::corrupt(format!(
                "VHD BAT entry {i} points at block 0x{start:x}..0x{end:x} past the end of the file (size {file_size}); the image is truncated"
            )));
        }
        let overlaps = |a: u64, b: u64| start < b && a < end;
        if overlaps(0, FOOTER_SIZE as u64)
            || overlaps(hoff, hoff + DYN_HEADER_SIZE as u64)
            || overlaps(toff, toff + table_bytes)
        {
            return Err(Error::corrupt(format!(
                "VHD BAT entry {i} points at block 0x{start:x}..0x{end:x}, which overlaps the footer copy, the dynamic header or the BAT"
            )));
        }
    }
    Ok(Dynamic {
        header,
        block_size,
        bitmap_size,
        bat: RwLock::new(bat),
        free: Mutex::new(free),
    })
}

/// Parent references in the order tried: relative Windows path, absolute Windows path,
/// Mac OS X URL, then the Unicode parent name.
fn parent_candidates(img: &VhdImage, d: &Dynamic) -> Result<Vec<String>> {
    let s = img.storage.as_ref();
    let mut out = Vec::new();
    for code in [b"W2ru", b"W2ku", b"MacX"] {
        for l in d.header.locators.iter().filter(|l| &l.platform == code) {
            if l.data_length == 0 || l.data_length > MAX_LOCATOR_BYTES {
                continue;
            }
            let b = read_vec(
                s,
                l.data_offset,
                u64::from(l.data_length),
                u64::from(MAX_LOCATOR_BYTES),
                "VHD parent locator",
            )?;
            let text = if code == b"MacX" {
                let t = String::from_utf8_lossy(&b)
                    .trim_end_matches('\0')
                    .to_string();
                t.strip_prefix("file://").map(str::to_string).unwrap_or(t)
            } else {
                let units: Vec<u16> = crate::bytes::le16_table(&b)
                    .into_iter()
                    .take_while(|&u| u != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            };
            let t = text.replace('\\', "/");
            let t = t.strip_prefix("./").unwrap_or(&t).to_string();
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    let n = d.header.parent_name.replace('\\', "/");
    if !n.is_empty() && !out.contains(&n) {
        out.push(n);
    }
    Ok(out)
}

fn open_parent(img: &mut VhdImage, ctx: &OpenContext) -> Result<()> {
    let Some(d) = img.dynamic.as_ref() else {
        return Ok(());
    };
    let names = parent_candidates(img, d)?;
    let mut first_err = None;
    for n in &names {
        match ctx.open_image(n, "VHD parent", None) {
            Ok(p) => {
                img.parent = Some(p);
                img.parent_name = Some(n.clone());
                return Ok(());
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        Error::corrupt("differencing VHD has no usable parent locator or parent name")
    }))
}

impl DiskImage for VhdImage {
    fn into_writable(self: Box<Self>) -> Result<Box<dyn WritableImage>> {
        match self.write_refusal() {
            Some(refusal) => Err(refusal),
            None => Ok(self),
        }
    }
    fn info(&self) -> ImageInfo {
        let f = &self.footer;
        let sub = match f.disk_type {
            TYPE_FIXED => "fixed",
            TYPE_DIFFERENCING => "differencing",
            _ => "dynamic",
        };
        let mut info = ImageInfo::new(Format::Vhd, self.size)
            .detail("creator_app", f.creator_app_str())
            .detail(
                "creator_version",
                format!("{}.{}", f.creator_ver >> 16, f.creator_ver & 0xffff),
            )
            .detail("creator_os", f.creator_os_str())
            .detail("geometry", format!("{}/{}/{}", f.cyls, f.heads, f.secs))
            .detail("current_size", f.current_size)
            .detail("original_size", f.orig_size)
            .detail("uuid", f.uuid_str());
        info.subformat = Some(sub.to_string());
        if let Some(d) = &self.dynamic {
            info.cluster_size = Some(d.block_size);
        }
        if let Some(p) = &self.parent_name {
            info.external_files.push(p.clone());
        }
        info
    }

    fn check(&self) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        let Some(d) = &self.dynamic else {
            return Ok(r);
        };
        let file_size = self.storage.size()?;
        let bat = d
            .bat
            .read()
            .map_err(|_| Error::invalid("VHD BAT lock poisoned"))?
            .clone();
        r.total_clusters = bat.len() as u64;
        let meta_end = d.header.table_offset + bat.len() as u64 * 4;
        let mut blocks: Vec<(u64, usize)> = Vec::new();
        for (i, &e) in bat.iter().enumerate() {
            if e == BAT_UNUSED {
                continue;
            }
            r.allocated_clusters += 1;
            let start = u64::from(e) * SECTOR;
            if start + d.bitmap_size + d.block_size > file_size {
                r.corruptions.push(format!(
                    "BAT entry {i}: block at 0x{start:x} past end of file"
                ));
            }
            if start < meta_end && start + d.bitmap_size + d.block_size > d.header.table_offset {
                r.corruptions.push(format!(
                    "BAT entry {i}: block at 0x{start:x} overlaps the BAT"
                ));
            }
            let hoff = self.footer.data_offset;
            if start < FOOTER_SIZE as u64
                || (start < hoff + DYN_HEADER_SIZE as u64
                    && hoff < start + d.bitmap_size + d.block_size)
            {
                r.corruptions.push(format!(
                    "BAT entry {i}: block at 0x{start:x} overlaps the footer copy or the dynamic header"
                ));
            }
            blocks.push((start, i));
        }
        blocks.sort_unstable();
        let span = d.bitmap_size + d.block_size;
        let mut prev_idx = None;
        for w in blocks.windows(2) {
            if w[0].0 + span > w[1].0 {
                r.corruptions.push(format!(
                    "BAT entries {} and {} overlap (blocks at 0x{:x} and 0x{:x})",
                    w[0].1, w[1].1, w[0].0, w[1].0
                ));
            }
        }
        for &(_, i) in &blocks {
            if let Some(p) = prev_idx {
                if i != p + 1 {
                    r.fragmented_clusters += 1;
                }
            }
            prev_idx = Some(i);
        }
        Ok(r)
    }
}
