//! Filesystem identification by signature (no contents read).
//!
//! Signatures: ext2/3/4 magic 0xEF53 at superblock+56 (superblock at byte 1024, feature
//! words at +92/+96/+100, kernel `Documentation/filesystems/ext4`); NTFS "NTFS    " OEM id at
//! byte 3; FAT boot sector "FAT12/FAT16" at 54 or "FAT32" at 82; xfs "XFSB" at 0; btrfs
//! "_BHRfS_M" at 65536+64; swap "SWAPSPACE2" at page end (4096-10); LVM2 "LABELONE" in one
//! of the first four sectors with "LVM2 001" at +24.

use crate::partition::read;
use ikon_disk::bytes::{array_or_zero, le16_or_zero, le32_or_zero, uuid_string};
use ikon_disk::{BlockDevice, Result};
use serde::Serialize;

/// ext superblock magic (offset 56 in the superblock).
const EXT_MAGIC: u16 = 0xEF53;
/// ext feature bits (compat: has_journal 0x4; incompat: extents 0x40, 64bit 0x80,
/// flex_bg 0x200; ro_compat: huge_file 0x8, dir_nlink 0x20, metadata_csum 0x400).
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const RO_COMPAT_HUGE_FILE: u32 = 0x8;
const RO_COMPAT_DIR_NLINK: u32 = 0x20;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// What a filesystem signature says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    /// ext2 (no journal, no ext4 features).
    Ext2,
    /// ext3 (journal, no ext4 features).
    Ext3,
    /// ext4.
    Ext4,
    /// NTFS.
    Ntfs,
    /// FAT12.
    Fat12,
    /// FAT16.
    Fat16,
    /// FAT32.
    Fat32,
    /// XFS.
    Xfs,
    /// Btrfs.
    Btrfs,
    /// Linux swap.
    Swap,
    /// LVM2 physical volume.
    Lvm2,
    /// Nothing recognised.
    Unknown,
}

impl FsType {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            FsType::Ext2 => "ext2",
            FsType::Ext3 => "ext3",
            FsType::Ext4 => "ext4",
            FsType::Ntfs => "ntfs",
            FsType::Fat12 => "fat12",
            FsType::Fat16 => "fat16",
            FsType::Fat32 => "fat32",
            FsType::Xfs => "xfs",
            FsType::Btrfs => "btrfs",
            FsType::Swap => "swap",
            FsType::Lvm2 => "lvm2",
            FsType::Unknown => "unknown",
        }
    }
}

/// Identification result.
#[derive(Debug, Clone, Serialize)]
pub struct FsInfo {
    /// Type.
    pub fs_type: FsType,
    /// Label, where the signature carries one.
    pub label: Option<String>,
    /// UUID, where the signature carries one.
    pub uuid: Option<String>,
    /// Feature names (ext only).
    pub features: Vec<String>,
}

/// The big-endian UUID at `at` in text form (zeros past the end of `b`).
fn uuid_at(b: &[u8], at: usize) -> String {
    uuid_string(&array_or_zero(b, at))
}

fn cstr(b: &[u8]) -> Option<String> {
    let s: Vec<u8> = b.iter().copied().take_while(|&c| c != 0).collect();
    let s = String::from_utf8_lossy(&s).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Identify the filesystem in `[off, off+len)` of `dev`.
pub fn identify(dev: &dyn BlockDevice, off: u64, len: u64) -> Result<FsInfo> {
    let mut info = FsInfo {
        fs_type: FsType::Unknown,
        label: None,
        uuid: None,
        features: vec![],
    };
    let head_len = usize::try_from(len.min(4096)).unwrap_or(4096);
    if head_len < 512 {
        return Ok(info);
    }
    let head = read(dev, off, head_len)?;
    if &head[3..11] == b"NTFS    " {
        info.fs_type = FsType::Ntfs;
        return Ok(info);
    }
    if head.len() >= 2048 && le16_or_zero(&head, 1024 + 56) == EXT_MAGIC {
        let sb = &head[1024..2048];
        let (c, i, r) = (
            le32_or_zero(sb, 92),
            le32_or_zero(sb, 96),
            le32_or_zero(sb, 100),
        );
        let mut f = Vec::new();
        for (bit, word, name) in [
            (COMPAT_HAS_JOURNAL, c, "has_journal"),
            (INCOMPAT_EXTENTS, i, "extents"),
            (INCOMPAT_64BIT, i, "64bit"),
            (INCOMPAT_FLEX_BG, i, "flex_bg"),
            (RO_COMPAT_HUGE_FILE, r, "huge_file"),
            (RO_COMPAT_DIR_NLINK, r, "dir_nlink"),
            (RO_COMPAT_METADATA_CSUM, r, "metadata_csum"),
        ] {
            if word & bit != 0 {
                f.push(name.to_string());
            }
        }
        let ext4 = i & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG) != 0
            || r & (RO_COMPAT_HUGE_FILE | RO_COMPAT_DIR_NLINK | RO_COMPAT_METADATA_CSUM) != 0;
        info.fs_type = if ext4 {
            FsType::Ext4
        } else if c & COMPAT_HAS_JOURNAL != 0 {
            FsType::Ext3
        } else {
            FsType::Ext2
        };
        info.features = f;
        info.uuid = Some(uuid_at(sb, 104));
        info.label = cstr(&sb[120..136]);
        return Ok(info);
    }
    if &head[0..4] == b"XFSB" {
        info.fs_type = FsType::Xfs;
        info.uuid = Some(uuid_at(&head, 32));
        info.label = cstr(&head[108..120]);
        return Ok(info);
    }
    if head[510..512] == [0x55, 0xAA] {
        if &head[82..87] == b"FAT32" {
            info.fs_type = FsType::Fat32;
            info.label = cstr(&head[71..82]);
            return Ok(info);
        }
        if &head[54..59] == b"FAT12" {
            info.fs_type = FsType::Fat12;
            return Ok(info);
        }
        if &head[54..59] == b"FAT16" || &head[54..57] == b"FAT" {
            info.fs_type = FsType::Fat16;
            info.label = cstr(&head[43..54]);
            return Ok(info);
        }
    }
    if head.len() >= 4096 && &head[4086..4096] == b"SWAPSPACE2" {
        info.fs_type = FsType::Swap;
        info.uuid = Some(uuid_at(&head, 1024 + 12));
        info.label = cstr(&head[1024 + 28..1024 + 44]);
        return Ok(info);
    }
    for s in 0..4 {
        let o = s * 512;
        if head.get(o..o + 8) == Some(b"LABELONE") && head.get(o + 24..o + 32) == Some(b"LVM2 001")
        {
            info.fs_type = FsType::Lvm2;
            return Ok(info);
        }
    }
    if len >= 65536 + 4096 {
        let b = read(dev, off + 65536, 4096)?;
        if &b[64..72] == b"_BHRfS_M" {
            info.fs_type = FsType::Btrfs;
            info.uuid = Some(uuid_at(&b, 32));
            info.label = cstr(&b[299..299 + 256]);
        }
    }
    Ok(info)
}
