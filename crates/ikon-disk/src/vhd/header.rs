//! VHD on-disk structures: the 512-byte footer (hard disk footer), the 1024-byte dynamic disk
//! header, parent locators, CHS geometry and the virtual-size rules qemu applies.
//!
//! All fields are big-endian ("Virtual Hard Disk Image Format Specification", Microsoft,
//! October 2006, "Hard Disk Footer Format" and "Dynamic Disk Header Format").

use crate::bytes::{array_or_zero, be16_or_zero, be32_or_zero, be64_or_zero, uuid_string};
use crate::error::{Error, Result};

/// Footer cookie (spec: Hard Disk Footer, "Cookie").
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
/// Dynamic header cookie (spec: Dynamic Disk Header, "Cookie").
pub const DYN_COOKIE: &[u8; 8] = b"cxsparse";
/// Footer size (spec: Hard Disk Footer is 512 bytes).
pub const FOOTER_SIZE: usize = 512;
/// Dynamic disk header size (spec: Dynamic Disk Header is 1024 bytes).
pub const DYN_HEADER_SIZE: usize = 1024;
/// Sector size all VHD offsets and bitmaps count in (spec: "sector = 512 bytes").
pub const SECTOR: u64 = 512;
/// Largest block size Ikon accepts (the spec's default is 2 MiB; Hyper-V uses at most
/// 256 MiB for VHDX, and no tool writes larger VHD blocks).
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Disk type: fixed (spec: Disk Type field, value 2).
pub const TYPE_FIXED: u32 = 2;
/// Disk type: dynamic (spec: Disk Type field, value 3).
pub const TYPE_DYNAMIC: u32 = 3;
/// Disk type: differencing (spec: Disk Type field, value 4).
pub const TYPE_DIFFERENCING: u32 = 4;
/// Unallocated BAT entry (spec: Block Allocation Table, "0xFFFFFFFF").
pub const BAT_UNUSED: u32 = 0xFFFF_FFFF;
/// Largest CHS geometry: 65535 cylinders × 16 heads × 255 sectors (spec appendix, CHS
/// calculation); qemu block/vpc.c VHD_MAX_GEOMETRY.
pub const MAX_GEOMETRY: u64 = 65535 * 16 * 255;
/// Largest disk qemu accepts: 2040 GiB in sectors (qemu block/vpc.c VHD_MAX_SECTORS).
pub const MAX_SECTORS: u64 = 0xff00_0000;
/// Seconds between the Unix epoch and the VHD epoch 2000-01-01 00:00:00 UTC (spec: Time Stamp).
pub const VHD_EPOCH: u64 = 946_684_800;

fn put(b: &mut [u8], o: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(o..o + v.len()) {
        d.copy_from_slice(v);
    }
}

/// One's-complement checksum of `b` with the 4 bytes at `skip` treated as zero (spec:
/// "Checksum" field of footer and dynamic header).
pub fn checksum(b: &[u8], skip: usize) -> u32 {
    let mut sum: u32 = 0;
    for (i, &x) in b.iter().enumerate() {
        if i < skip || i >= skip + 4 {
            sum = sum.wrapping_add(u32::from(x));
        }
    }
    !sum
}

/// The hard disk footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// Features (offset 8).
    pub features: u32,
    /// Format version (offset 12).
    pub version: u32,
    /// Offset of the dynamic header (offset 16), all ones for fixed disks.
    pub data_offset: u64,
    /// Seconds since 2000-01-01 (offset 24).
    pub timestamp: u32,
    /// Creator application (offset 28), e.g. `vpc `, `win `, `qemu`, `qem2`, `d2v `.
    pub creator_app: [u8; 4],
    /// Creator version (offset 32).
    pub creator_ver: u32,
    /// Creator host OS (offset 36), `Wi2k` or `Mac `.
    pub creator_os: [u8; 4],
    /// Original size (offset 40).
    pub orig_size: u64,
    /// Current size (offset 48).
    pub current_size: u64,
    /// Cylinders (offset 56).
    pub cyls: u16,
    /// Heads (offset 58).
    pub heads: u8,
    /// Sectors per track (offset 59).
    pub secs: u8,
    /// Disk type (offset 60).
    pub disk_type: u32,
    /// Unique id (offset 68).
    pub uuid: [u8; 16],
}

impl Footer {
    /// Parse a 512-byte footer, verifying cookie and checksum. `at` names where it came from.
    pub fn parse(b: &[u8], at: &str) -> Result<Footer> {
        if b.len() < FOOTER_SIZE || b.get(..8) != Some(&FOOTER_COOKIE[..]) {
            return Err(Error::corrupt(format!(
                "VHD footer {at}: no \"conectix\" cookie"
            )));
        }
        let stored = be32_or_zero(b, 64);
        let want = checksum(&b[..FOOTER_SIZE], 64);
        if stored != want {
            return Err(Error::corrupt(format!(
                "VHD footer {at}: checksum 0x{stored:08x} does not match computed 0x{want:08x}"
            )));
        }
        Ok(Footer {
            features: be32_or_zero(b, 8),
            version: be32_or_zero(b, 12),
            data_offset: be64_or_zero(b, 16),
            timestamp: be32_or_zero(b, 24),
            creator_app: array_or_zero(b, 28),
            creator_ver: be32_or_zero(b, 32),
            creator_os: array_or_zero(b, 36),
            orig_size: be64_or_zero(b, 40),
            current_size: be64_or_zero(b, 48),
            cyls: be16_or_zero(b, 56),
            heads: b.get(58).copied().unwrap_or(0),
            secs: b.get(59).copied().unwrap_or(0),
            disk_type: be32_or_zero(b, 60),
            uuid: array_or_zero(b, 68),
        })
    }

    /// Serialize with a fresh checksum.
    pub fn to_bytes(&self) -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        put(&mut b, 0, FOOTER_COOKIE);
        put(&mut b, 8, &self.features.to_be_bytes());
        put(&mut b, 12, &self.version.to_be_bytes());
        put(&mut b, 16, &self.data_offset.to_be_bytes());
        put(&mut b, 24, &self.timestamp.to_be_bytes());
        put(&mut b, 28, &self.creator_app);
        put(&mut b, 32, &self.creator_ver.to_be_bytes());
        put(&mut b, 36, &self.creator_os);
        put(&mut b, 40, &self.orig_size.to_be_bytes());
        put(&mut b, 48, &self.current_size.to_be_bytes());
        put(&mut b, 56, &self.cyls.to_be_bytes());
        put(&mut b, 58, &[self.heads, self.secs]);
        put(&mut b, 60, &self.disk_type.to_be_bytes());
        put(&mut b, 68, &self.uuid);
        let c = checksum(&b, 64);
        put(&mut b, 64, &c.to_be_bytes());
        b
    }

    /// Sectors described by the CHS geometry.
    pub fn chs_sectors(&self) -> u64 {
        u64::from(self.cyls) * u64::from(self.heads) * u64::from(self.secs)
    }

    /// The guest-visible size exactly as qemu block/vpc.c computes it: the CHS geometry for
    /// Virtual PC / qemu / unknown creators, `current_size` for Hyper-V (`win `), qemu with
    /// force_size (`qem2`), Disk2VHD (`d2v `), XenConverter (`CTXS`), XenServer (`tap\0`),
    /// and whenever the geometry is the maximum one. Truncated to whole sectors.
    pub fn virtual_size(&self) -> Result<u64> {
        let app = &self.creator_app;
        let use_chs = !matches!(app, b"win " | b"qem2" | b"d2v " | b"CTXS" | b"tap\0");
        let chs = self.chs_sectors();
        let sectors = if !use_chs || chs == MAX_GEOMETRY {
            self.current_size / SECTOR
        } else {
            chs
        };
        if sectors > MAX_SECTORS {
            return Err(Error::unsupported(format!(
                "VHD disk size of {sectors} sectors exceeds the 2040 GiB VHD maximum"
            )));
        }
        Ok(sectors * SECTOR)
    }

    /// Creator application as printable text.
    pub fn creator_app_str(&self) -> String {
        printable(&self.creator_app)
    }
    /// Creator OS as printable text.
    pub fn creator_os_str(&self) -> String {
        printable(&self.creator_os)
    }
    /// UUID in the usual 8-4-4-4-12 text form.
    pub fn uuid_str(&self) -> String {
        uuid_string(&self.uuid)
    }
}

fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '.'
            }
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// One parent locator entry (spec: Dynamic Disk Header, "Parent Locator Entries", 8 × 24 bytes
/// at offset 576).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLocator {
    /// Platform code: `W2ru`, `W2ku`, `Wi2r`, `Wi2k`, `Mac `, `MacX`.
    pub platform: [u8; 4],
    /// Bytes of locator data.
    pub data_length: u32,
    /// Where the data lives in the file.
    pub data_offset: u64,
}

/// The dynamic disk header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynHeader {
    /// Absolute offset of the BAT (offset 16).
    pub table_offset: u64,
    /// BAT entries (offset 28).
    pub max_table_entries: u32,
    /// Block size in bytes (offset 32).
    pub block_size: u32,
    /// Parent unique id (offset 40).
    pub parent_uuid: [u8; 16],
    /// Parent name, UTF-16BE (offset 64, 512 bytes).
    pub parent_name: String,
    /// Parent locators in use (offset 576).
    pub locators: Vec<ParentLocator>,
}

impl DynHeader {
    /// Parse and validate a 1024-byte dynamic header read at `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<DynHeader> {
        if b.len() < DYN_HEADER_SIZE || b.get(..8) != Some(&DYN_COOKIE[..]) {
            return Err(Error::corrupt(format!(
                "VHD dynamic header at 0x{at:x}: no \"cxsparse\" cookie"
            )));
        }
        let stored = be32_or_zero(b, 36);
        let want = checksum(&b[..DYN_HEADER_SIZE], 36);
        if stored != want {
            return Err(Error::corrupt(format!(
                "VHD dynamic header at 0x{at:x}: checksum 0x{stored:08x} does not match computed 0x{want:08x}"
            )));
        }
        let block_size = be32_or_zero(b, 32);
        if !(512..=MAX_BLOCK_SIZE).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(Error::corrupt(format!(
                "VHD dynamic header at 0x{at:x}: block size {block_size} is not a power of two between 512 bytes and 256 MiB"
            )));
        }
        let name_units: Vec<u16> = (0..256)
            .map(|i| be16_or_zero(b, 64 + 2 * i))
            .take_while(|&u| u != 0)
            .collect();
        let mut locators = Vec::new();
        for i in 0..8 {
            let o = 576 + 24 * i;
            let platform: [u8; 4] = array_or_zero(b, o);
            if platform == [0; 4] {
                continue;
            }
            locators.push(ParentLocator {
                platform,
                data_length: be32_or_zero(b, o + 8),
                data_offset: be64_or_zero(b, o + 16),
            });
        }
        Ok(DynHeader {
            table_offset: be64_or_zero(b, 16),
            max_table_entries: be32_or_zero(b, 28),
            block_size,
            parent_uuid: array_or_zero(b, 40),
            parent_name: String::from_utf16_lossy(&name_units),
            locators,
        })
    }

    /// Serialize a dynamic-disk header (no parent) with a fresh checksum.
    pub fn to_bytes(&self) -> [u8; DYN_HEADER_SIZE] {
        let mut b = [0u8; DYN_HEADER_SIZE];
        put(&mut b, 0, DYN_COOKIE);
        put(&mut b, 8, &u64::MAX.to_be_bytes());
        put(&mut b, 16, &self.table_offset.to_be_bytes());
        put(&mut b, 24, &0x0001_0000u32.to_be_bytes());
        put(&mut b, 28, &self.max_table_entries.to_be_bytes());
        put(&mut b, 32, &self.block_size.to_be_bytes());
        let c = checksum(&b, 36);
        put(&mut b, 36, &c.to_be_bytes());
        b
    }
}

/// CHS geometry for `total_sectors` (spec appendix "CHS Calculation", as qemu's
/// calculate_geometry implements it). Returns (cylinders, heads, sectors per track).
pub fn geometry(total_sectors: u64) -> (u16, u8, u8) {
    let total = total_sectors.min(MAX_GEOMETRY);
    let (mut heads, mut secs): (u64, u64);
    let mut cth;
    if total >= 65535 * 16 * 63 {
        secs = 255;
        heads = 16;
        cth = total / secs;
    } else {
        secs = 17;
        cth = total / secs;
        heads = cth.div_ceil(1024).max(4);
        if cth >= heads * 1024 || heads > 16 {
            secs = 31;
            heads = 16;
            cth = total / secs;
        }
        if cth >= heads * 1024 {
            secs = 63;
            heads = 16;
            cth = total / secs;
        }
    }
    let cyls = u16::try_from(cth / heads).unwrap_or(u16::MAX);
    (
        cyls,
        u8::try_from(heads).unwrap_or(16),
        u8::try_from(secs).unwrap_or(255),
    )
}

/// Size qemu-img gives a new VHD of `size` bytes without force_size: the sector count is
/// increased until a CHS geometry covers it (qemu calculate_rounded_image_size). Returns
/// (geometry, total sectors).
pub fn rounded_size(size: u64) -> ((u16, u8, u8), u64) {
    let want = size.div_ceil(SECTOR);
    let mut g = (0u16, 0u8, 0u8);
    let chs = |g: (u16, u8, u8)| u64::from(g.0) * u64::from(g.1) * u64::from(g.2);
    let mut i = 0;
    while want > chs(g) {
        g = geometry(want + i);
        i += 1;
        if chs(g) == MAX_GEOMETRY {
            break;
        }
    }
    if chs(g) == MAX_GEOMETRY {
        (g, want.min(MAX_SECTORS))
    } else {
        (g, chs(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_roundtrip_and_checksum() {
        let f = Footer {
            features: 2,
            version: 0x10000,
            data_offset: 512,
            timestamp: 1,
            creator_app: *b"qemu",
            creator_ver: 0x50003,
            creator_os: *b"Wi2k",
            orig_size: 1 << 20,
            current_size: 1 << 20,
            cyls: 30,
            heads: 4,
            secs: 17,
            disk_type: TYPE_DYNAMIC,
            uuid: [7; 16],
        };
        let mut b = f.to_bytes();
        assert_eq!(Footer::parse(&b, "t").ok(), Some(f.clone()));
        b[100] ^= 1;
        assert!(Footer::parse(&b, "t").is_err());
        assert_eq!(f.virtual_size().ok(), Some(30 * 4 * 17 * 512));
    }

    #[test]
    fn geometry_rounding() {
        // 10 MiB = 20480 sectors -> 20 cyls x 16 heads x 63? qemu gives 10 MiB -> 20808 sectors.
        let (g, s) = rounded_size(10 << 20);
        assert!(s >= 20480);
        assert_eq!(u64::from(g.0) * u64::from(g.1) * u64::from(g.2), s);
    }
}
