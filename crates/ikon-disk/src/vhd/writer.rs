//! Writing new VHD images the way qemu-img lays them out (block/vpc.c create path):
//! dynamic = footer copy at 0, dynamic header at 512, BAT at 1536 (padded with 0xFF to a
//! sector), 2 MiB blocks appended in guest order each preceded by an all-ones sector bitmap,
//! footer at the end; fixed = the raw data followed by the footer.

use super::header::{
    geometry, rounded_size, DynHeader, Footer, BAT_UNUSED, FOOTER_SIZE, MAX_SECTORS, SECTOR,
    TYPE_DYNAMIC, TYPE_FIXED, VHD_EPOCH,
};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::writer::{CreateOptions, ImageWriter};
use std::sync::Arc;

/// Block size of new dynamic disks (what qemu and Hyper-V use: 2 MiB).
pub const BLOCK_SIZE: u64 = 2 << 20;
/// Sector bitmap bytes per 2 MiB block: 4096 sectors / 8, already a multiple of 512.
const BITMAP_SIZE: u64 = 512;
/// Offset of the dynamic header right after the footer copy (as qemu writes it).
const HEADER_OFFSET: u64 = 512;
/// Offset of the BAT after the 1024-byte header (as qemu writes it).
const BAT_OFFSET: u64 = 1536;

fn random_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut u = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut u))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        u = t.to_le_bytes();
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The footer qemu-img writes for a new image of `options.size` bytes, and the virtual size.
pub fn new_footer(options: &CreateOptions, dynamic: bool) -> Result<(Footer, u64)> {
    if options.size.div_ceil(SECTOR) > MAX_SECTORS {
        return Err(Error::invalid(format!(
            "the image size {} is too large for VHD (at most 2040 GiB)",
            options.size
        )));
    }
    let (geo, sectors, app) = if options.force_size {
        let s = options.size.div_ceil(SECTOR);
        (geometry(s), s, *b"qem2")
    } else {
        let (g, s) = rounded_size(options.size);
        (g, s, *b"qemu")
    };
    if sectors > MAX_SECTORS {
        return Err(Error::invalid(format!(
            "VHD size of {} bytes exceeds the 2040 GiB VHD maximum",
            options.size
        )));
    }
    let size = sectors * SECTOR;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(VHD_EPOCH))
        .unwrap_or(0);
    let footer = Footer {
        features: 2,
        version: 0x0001_0000,
        data_offset: if dynamic { HEADER_OFFSET } else { u64::MAX },
        timestamp: u32::try_from(ts).unwrap_or(u32::MAX),
        creator_app: app,
        creator_ver: 0x0005_0003,
        creator_os: *b"Wi2k",
        orig_size: size,
        current_size: size,
        cyls: geo.0,
        heads: geo.1,
        secs: geo.2,
        disk_type: if dynamic { TYPE_DYNAMIC } else { TYPE_FIXED },
        uuid: random_uuid(),
    };
    Ok((footer, size))
}

/// Create a new VHD (subformat `dynamic`, the default, or `fixed`).
pub fn create(storage: Arc<dyn Storage>, options: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
    if options.compress {
        return Err(Error::invalid("VHD images cannot be compressed"));
    }
    let dynamic = match options.subformat.as_deref() {
        None | Some("dynamic") => true,
        Some("fixed") => false,
        Some(o) => {
            return Err(Error::invalid(format!(
                "VHD subformat {o:?}: expected dynamic or fixed"
            )))
        }
    };
    if options.cluster_size.is_some() {
        return Err(Error::invalid(
            "VHD has no cluster_size option (blocks are 2 MiB)",
        ));
    }
    let (footer, size) = new_footer(options, dynamic)?;
    if !dynamic {
        storage.set_size(size)?;
        return Ok(Box::new(FixedWriter {
            storage,
            footer,
            size,
        }));
    }
    let entries = size.div_ceil(BLOCK_SIZE);
    let n = usize::try_from(entries).map_err(|_| Error::limit("VHD BAT does not fit in memory"))?;
    let bat_bytes = (entries * 4).div_ceil(SECTOR) * SECTOR;
    Ok(Box::new(DynamicWriter {
        storage,
        footer,
        size,
        bat: vec![BAT_UNUSED; n],
        next: BAT_OFFSET + bat_bytes,
        bat_bytes,
    }))
}

/// Writer for fixed VHDs.
struct FixedWriter {
    storage: Arc<dyn Storage>,
    footer: Footer,
    size: u64,
}

impl ImageWriter for FixedWriter {
    fn granularity(&self) -> u64 {
        4096
    }
    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        crate::device::check_range(offset, data.len(), self.size)?;
        self.storage.write_all_at(data, offset)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.storage
            .write_all_at(&self.footer.to_bytes(), self.size)?;
        self.storage.set_size(self.size + FOOTER_SIZE as u64)?;
        self.storage.sync()
    }
}

/// Writer for dynamic VHDs.
struct DynamicWriter {
    storage: Arc<dyn Storage>,
    footer: Footer,
    size: u64,
    bat: Vec<u32>,
    /// Where the next block goes.
    next: u64,
    bat_bytes: u64,
}

impl DynamicWriter {
    fn sector_of(&self, off: u64) -> Result<u32> {
        u32::try_from(off / SECTOR)
            .map_err(|_| Error::limit("VHD file grew past the 2 TiB the BAT can address"))
    }
}

impl ImageWriter for DynamicWriter {
    fn granularity(&self) -> u64 {
        // Zero 4 KiB units inside an allocated block are left as holes in the file (as qemu
        // does); a block is allocated only when a run touches it.
        4096
    }

    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        crate::device::check_range(offset, data.len(), self.size)?;
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let idx = usize::try_from(pos / BLOCK_SIZE).unwrap_or(usize::MAX);
            let in_block = pos % BLOCK_SIZE;
            let n = (BLOCK_SIZE - in_block).min(end - pos);
            let src_start = usize::try_from(pos - offset).unwrap_or(0);
            let src = &data[src_start..src_start + usize::try_from(n).unwrap_or(0)];
            let mut entry = *self
                .bat
                .get(idx)
                .ok_or_else(|| Error::invalid("VHD write past the BAT"))?;
            if entry == BAT_UNUSED {
                entry = self.sector_of(self.next)?;
                self.storage.write_all_at(&[0xFF; 512], self.next)?;
                if let Some(e) = self.bat.get_mut(idx) {
                    *e = entry;
                }
                self.next += BITMAP_SIZE + BLOCK_SIZE;
            }
            let at = u64::from(entry) * SECTOR + BITMAP_SIZE + in_block;
            self.storage.write_all_at(src, at)?;
            pos += n;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let mut bat = vec![0xFFu8; usize::try_from(self.bat_bytes).unwrap_or(0)];
        for (i, e) in self.bat.iter().enumerate() {
            bat[i * 4..i * 4 + 4].copy_from_slice(&e.to_be_bytes());
        }
        let header = DynHeader {
            table_offset: BAT_OFFSET,
            max_table_entries: u32::try_from(self.bat.len())
                .map_err(|_| Error::limit("VHD BAT has too many entries"))?,
            block_size: u32::try_from(BLOCK_SIZE).unwrap_or(0),
            parent_uuid: [0; 16],
            parent_name: String::new(),
            locators: Vec::new(),
        };
        let footer = self.footer.to_bytes();
        self.storage.write_all_at(&footer, 0)?;
        self.storage
            .write_all_at(&header.to_bytes(), HEADER_OFFSET)?;
        self.storage.write_all_at(&bat, BAT_OFFSET)?;
        self.storage.write_all_at(&footer, self.next)?;
        self.storage.set_size(self.next + FOOTER_SIZE as u64)?;
        self.storage.sync()
    }
}
