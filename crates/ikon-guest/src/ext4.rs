//! A small read-only ext2/3/4 reader over a byte range of a `BlockDevice`: superblock, group
//! descriptors, inodes, extent trees (and classic indirect blocks), linear directory scan
//! (htree directories are readable linearly), fast and slow symlinks, inline data.
//!
//! Layouts from the kernel's `Documentation/filesystems/ext4/` (superblock, group
//! descriptors, inode table, extent tree, directory entries). Every number from disk is
//! bounded before use; reads are limited by the caller.

use crate::partition::read;
use crate::vfs::{DirEntry, FileKind, GuestFs};
use ikon_disk::bytes::{le16_or_zero, le32_or_zero};
use ikon_disk::{BlockDevice, Error, Result};

/// Superblock magic (superblock offset 56).
const EXT_MAGIC: u16 = 0xEF53;
/// incompat 64bit: group descriptors may be larger than 32 bytes.
const INCOMPAT_64BIT: u32 = 0x80;
/// Inode flag: inode uses an extent tree (EXT4_EXTENTS_FL).
const FL_EXTENTS: u32 = 0x8_0000;
/// Inode flag: data stored inline in the inode (EXT4_INLINE_DATA_FL).
const FL_INLINE: u32 = 0x1000_0000;
/// Extent header magic.
const EXTENT_MAGIC: u16 = 0xF30A;
/// Maximum extent tree depth (the kernel allows 5).
const MAX_DEPTH: u16 = 5;
/// Root inode number.
pub const ROOT_INO: u32 = 2;

/// An open ext filesystem.
pub struct Ext4<'a> {
    dev: &'a dyn BlockDevice,
    base: u64,
    len: u64,
    block: u64,
    inodes_per_group: u32,
    inodes_count: u32,
    inode_size: u64,
    desc_size: u64,
    gdt: u64,
}

/// An inode, as much as we need of it.
pub struct Inode {
    mode: u16,
    flags: u32,
    size: u64,
    iblock: Vec<u8>,
}

impl Inode {
    fn kind(&self) -> FileKind {
        match self.mode & 0xF000 {
            0x4000 => FileKind::Dir,
            0x8000 => FileKind::File,
            0xA000 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
}

impl<'a> Ext4<'a> {
    /// Open the filesystem at `[base, base+len)`.
    pub fn open(dev: &'a dyn BlockDevice, base: u64, len: u64) -> Result<Self> {
        let sb = read(dev, base.saturating_add(1024), 1024)?;
        if le16_or_zero(&sb, 56) != EXT_MAGIC {
            return Err(Error::corrupt(format!(
                "ext superblock at 0x{:x}: bad magic",
                base + 1024
            )));
        }
        let log = le32_or_zero(&sb, 24);
        if log > 6 {
            return Err(Error::corrupt(format!(
                "ext superblock: block size 2^{} KiB absurd",
                log
            )));
        }
        let block = 1024u64 << log;
        let ipg = le32_or_zero(&sb, 40);
        let inode_size = if le32_or_zero(&sb, 76) == 0 {
            128
        } else {
            u64::from(le16_or_zero(&sb, 88))
        };
        if ipg == 0 || !(128..=block).contains(&inode_size) || !inode_size.is_power_of_two() {
            return Err(Error::corrupt(format!(
                "ext superblock: inodes per group {ipg} / inode size {inode_size} invalid"
            )));
        }
        let desc_size = if le32_or_zero(&sb, 96) & INCOMPAT_64BIT != 0 {
            u64::from(le16_or_zero(&sb, 254)).max(32)
        } else {
            32
        };
        if desc_size > 1024 {
            return Err(Error::corrupt(format!(
                "ext descriptor size {desc_size} invalid"
            )));
        }
        let first = u64::from(le32_or_zero(&sb, 20));
        Ok(Ext4 {
            dev,
            base,
            len,
            block,
            inodes_per_group: ipg,
            inodes_count: le32_or_zero(&sb, 0),
            inode_size,
            desc_size,
            gdt: (first + 1) * block,
        })
    }

    fn rd(&self, off: u64, n: usize) -> Result<Vec<u8>> {
        let end = off
            .checked_add(n as u64)
            .ok_or_else(|| Error::corrupt("ext offset overflow"))?;
        if end > self.len {
            return Err(Error::corrupt(format!(
                "ext read at 0x{off:x}+{n} past end of filesystem (0x{:x})",
                self.len
            )));
        }
        read(self.dev, self.base + off, n)
    }

    /// Read inode `ino`.
    pub fn inode(&self, ino: u32) -> Result<Inode> {
        if ino == 0 || ino > self.inodes_count {
            return Err(Error::corrupt(format!(
                "ext inode number {ino} out of range"
            )));
        }
        let g = u64::from((ino - 1) / self.inodes_per_group);
        let idx = u64::from((ino - 1) % self.inodes_per_group);
        let d = self.rd(
            self.gdt + g * self.desc_size,
            usize::try_from(self.desc_size).unwrap_or(32),
        )?;
        let mut table = u64::from(le32_or_zero(&d, 8));
        if self.desc_size >= 64 {
            table |= u64::from(le32_or_zero(&d, 0x28)) << 32;
        }
        let off = table
            .checked_mul(self.block)
            .and_then(|t| t.checked_add(idx * self.inode_size))
            .ok_or_else(|| Error::corrupt(format!("ext inode table of group {g} absurd")))?;
        let b = self.rd(
            off,
            160.min(usize::try_from(self.inode_size).unwrap_or(128)),
        )?;
        Ok(Inode {
            mode: le16_or_zero(&b, 0),
            flags: le32_or_zero(&b, 32),
            size: u64::from(le32_or_zero(&b, 4)) | (u64::from(le32_or_zero(&b, 108)) << 32),
            iblock: b.get(40..100).map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }

    /// Physical runs (logical block, physical block, count) of an inode, up to `max_blocks`.
    fn runs(&self, ino: &Inode, max_blocks: u64) -> Result<Vec<(u64, u64, u64)>> {
        let mut out = Vec::new();
        if ino.flags & FL_EXTENTS != 0 {
            self.extent_node(&ino.iblock, MAX_DEPTH, max_blocks, &mut out)?;
        } else {
            let mut lb = 0u64;
            for i in 0..12 {
                let p = u64::from(le32_or_zero(&ino.iblock, i * 4));
                if p != 0 {
                    out.push((lb, p, 1));
                }
                lb += 1;
            }
            let per = self.block / 4;
            for (lvl, slot) in [(1u32, 12usize), (2, 13), (3, 14)] {
                let p = u64::from(le32_or_zero(&ino.iblock, slot * 4));
                self.indirect(p, lvl, &mut lb, per, max_blocks, &mut out)?;
            }
        }
        Ok(out)
    }

    fn indirect(
        &self,
        p: u64,
        lvl: u32,
        lb: &mut u64,
        per: u64,
        max: u64,
        out: &mut Vec<(u64, u64, u64)>,
    ) -> Result<()> {
        let span = per.saturating_pow(lvl);
        if *lb >= max {
            return Ok(());
        }
        if p == 0 {
            *lb = lb.saturating_add(span);
            return Ok(());
        }
        let b = self.rd(p * self.block, usize::try_from(self.block).unwrap_or(4096))?;
        for i in 0..usize::try_from(per).unwrap_or(0) {
            let q = u64::from(le32_or_zero(&b, i * 4));
            if lvl == 1 {
                if q != 0 {
                    out.push((*lb, q, 1));
                }
                *lb += 1;
            } else {
                self.indirect(q, lvl - 1, lb, per, max, out)?;
            }
            if *lb >= max {
                break;
            }
        }
        Ok(())
    }

    fn extent_node(
        &self,
        node: &[u8],
        depth_left: u16,
        max: u64,
        out: &mut Vec<(u64, u64, u64)>,
    ) -> Result<()> {
        if le16_or_zero(node, 0) != EXTENT_MAGIC {
            return Err(Error::corrupt("ext extent header: bad magic"));
        }
        let n = usize::from(le16_or_zero(node, 2));
        let depth = le16_or_zero(node, 6);
        if depth > depth_left || 12 + n * 12 > node.len() {
            return Err(Error::corrupt(format!(
                "ext extent node: depth {depth} / {n} entries invalid"
            )));
        }
        for i in 0..n {
            let e = &node[12 + i * 12..24 + i * 12];
            let lblk = u64::from(le32_or_zero(e, 0));
            if lblk >= max {
                break;
            }
            if depth == 0 {
                let mut len = u64::from(le16_or_zero(e, 4));
                if len > 32768 {
                    len -= 32768; // uninitialized extent: reads as zeros, but keep it simple
                    continue;
                }
                let start = (u64::from(le16_or_zero(e, 6)) << 32) | u64::from(le32_or_zero(e, 8));
                out.push((lblk, start, len));
            } else {
                let leaf = (u64::from(le16_or_zero(e, 8)) << 32) | u64::from(le32_or_zero(e, 4));
                let b = self.rd(
                    leaf.checked_mul(self.block)
                        .ok_or_else(|| Error::corrupt("ext extent leaf absurd"))?,
                    usize::try_from(self.block).unwrap_or(4096),
                )?;
                self.extent_node(&b, depth - 1, max, out)?;
            }
            if out.len() > 1_000_000 {
                return Err(Error::limit("ext extent list too long"));
            }
        }
        Ok(())
    }

    /// Read up to `limit` bytes of an inode's data.
    pub fn read_inode(&self, ino: &Inode, limit: u64) -> Result<Vec<u8>> {
        if ino.size > limit {
            return Err(Error::limit(format!(
                "file of {} bytes exceeds the read limit {limit}",
                ino.size
            )));
        }
        let size = usize::try_from(ino.size).map_err(|_| Error::limit("file too large"))?;
        if ino.flags & FL_INLINE != 0
            || (ino.kind() == FileKind::Symlink && ino.flags & FL_EXTENTS == 0 && ino.size < 60)
        {
            let mut v = ino.iblock.clone();
            v.truncate(size);
            return Ok(v);
        }
        let mut data = vec![0u8; size];
        let blocks = ino.size.div_ceil(self.block);
        for (lb, pb, n) in self.runs(ino, blocks)? {
            let start = lb * self.block;
            if start >= ino.size {
                continue;
            }
            let want = (n * self.block).min(ino.size - start);
            let w = usize::try_from(want).unwrap_or(0);
            let src = self.rd(
                pb.checked_mul(self.block)
                    .ok_or_else(|| Error::corrupt("ext block absurd"))?,
                w,
            )?;
            let s = usize::try_from(start).unwrap_or(0);
            if let Some(dst) = data.get_mut(s..s + w) {
                dst.copy_from_slice(&src);
            }
        }
        Ok(data)
    }

    /// Directory entries of inode `ino` (bounded by `max`).
    pub fn dir_entries(&self, ino: &Inode, max: usize) -> Result<Vec<(String, u32)>> {
        let data = self.read_inode(ino, 64 << 20)?;
        let mut out = Vec::new();
        let mut p = 0usize;
        while p + 8 <= data.len() {
            let inum = le32_or_zero(&data, p);
            let rec = usize::from(le16_or_zero(&data, p + 4));
            let nl = usize::from(data[p + 6]);
            if rec < 8 || p + rec > data.len() {
                break;
            }
            if inum != 0 && 8 + nl <= rec {
                let name = String::from_utf8_lossy(&data[p + 8..p + 8 + nl]).to_string();
                if name != "." && name != ".." {
                    out.push((name, inum));
                    if out.len() >= max {
                        break;
                    }
                }
            }
            p += rec;
        }
        Ok(out)
    }

    fn lookup(&self, dir: &Inode, name: &str) -> Result<Option<u32>> {
        Ok(self
            .dir_entries(dir, 1 << 20)?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| i))
    }
}

impl GuestFs for Ext4<'_> {
    type Node = u32;
    fn root(&self) -> u32 {
        ROOT_INO
    }
    fn kind(&self, n: &u32) -> Result<FileKind> {
        Ok(self.inode(*n)?.kind())
    }
    fn child(&self, dir: &u32, name: &str) -> Result<Option<u32>> {
        let d = self.inode(*dir)?;
        if d.kind() != FileKind::Dir {
            return Ok(None);
        }
        self.lookup(&d, name)
    }
    fn read_link(&self, n: &u32) -> Result<String> {
        let i = self.inode(*n)?;
        Ok(String::from_utf8_lossy(&self.read_inode(&i, 4096)?).to_string())
    }
    fn read_node(&self, n: &u32, limit: u64) -> Result<Vec<u8>> {
        let i = self.inode(*n)?;
        self.read_inode(&i, limit)
    }
    fn list_node(&self, n: &u32, max: usize) -> Result<Vec<DirEntry>> {
        let i = self.inode(*n)?;
        Ok(self
            .dir_entries(&i, max)?
            .into_iter()
            .map(|(name, _)| DirEntry { name })
            .collect())
    }
    fn size(&self, n: &u32) -> Result<u64> {
        Ok(self.inode(*n)?.size)
    }
    fn children(&self, n: &u32, max: usize) -> Result<Vec<(String, u32)>> {
        let i = self.inode(*n)?;
        if i.kind() != FileKind::Dir {
            return Ok(Vec::new());
        }
        Ok(self
            .dir_entries(&i, max)?
            .into_iter()
            .filter(|(name, _)| name != "." && name != "..")
            .collect())
    }
}
