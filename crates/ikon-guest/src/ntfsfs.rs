//! NTFS file reading through the `ntfs` crate (MIT/Apache): an adapter giving `Read + Seek`
//! over a partition of a `BlockDevice`, and a `GuestFs` implementation (case-insensitive
//! lookup via the $UpCase table; nodes are MFT record numbers).

use crate::vfs::{DirEntry, FileKind, GuestFs};
use ikon_disk::{BlockDevice, Error, Result};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsFileNamespace;
use ntfs::{Ntfs, NtfsReadSeek};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;

/// MFT record number of the root directory (NTFS well-known file 5, ".").
const ROOT_RECORD: u64 = 5;

/// `Read + Seek` over `[base, base+len)` of a block device.
pub struct PartReader<'a> {
    dev: &'a dyn BlockDevice,
    base: u64,
    len: u64,
    pos: u64,
}

impl<'a> PartReader<'a> {
    /// A reader over a byte range.
    pub fn new(dev: &'a dyn BlockDevice, base: u64, len: u64) -> Self {
        PartReader {
            dev,
            base,
            len,
            pos: 0,
        }
    }
}

impl Read for PartReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let n = usize::try_from((self.len - self.pos).min(buf.len() as u64)).unwrap_or(0);
        let off = self
            .base
            .checked_add(self.pos)
            .ok_or_else(|| std::io::Error::other("offset overflow"))?;
        self.dev
            .read_exact_at(&mut buf[..n], off)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PartReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::corrupt(format!("ntfs: {e}"))
}

/// An open NTFS volume.
pub struct NtfsFs<'a> {
    ntfs: Ntfs,
    r: Mutex<PartReader<'a>>,
}

impl<'a> NtfsFs<'a> {
    /// Open the NTFS volume at `[base, base+len)`.
    pub fn open(dev: &'a dyn BlockDevice, base: u64, len: u64) -> Result<Self> {
        let mut r = PartReader::new(dev, base, len);
        let mut ntfs = Ntfs::new(&mut r).map_err(err)?;
        ntfs.read_upcase_table(&mut r).map_err(err)?;
        Ok(NtfsFs {
            ntfs,
            r: Mutex::new(r),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Ntfs, &mut PartReader<'a>) -> Result<T>) -> Result<T> {
        let mut g = self
            .r
            .lock()
            .map_err(|_| Error::corrupt("ntfs reader lock poisoned"))?;
        f(&self.ntfs, &mut g)
    }
}

impl GuestFs for NtfsFs<'_> {
    type Node = u64;
    fn root(&self) -> u64 {
        ROOT_RECORD
    }
    fn kind(&self, n: &u64) -> Result<FileKind> {
        self.with(|ntfs, r| {
            let f = ntfs.file(r, *n).map_err(err)?;
            Ok(if f.is_directory() {
                FileKind::Dir
            } else {
                FileKind::File
            })
        })
    }
    fn child(&self, dir: &u64, name: &str) -> Result<Option<u64>> {
        self.with(|ntfs, r| {
            let f = ntfs.file(r, *dir).map_err(err)?;
            if !f.is_directory() {
                return Ok(None);
            }
            let idx = f.directory_index(r).map_err(err)?;
            let mut finder = idx.finder();
            match NtfsFileNameIndex::find(&mut finder, ntfs, r, name) {
                Some(Ok(e)) => Ok(Some(e.file_reference().file_record_number())),
                Some(Err(e)) => Err(err(e)),
                None => Ok(None),
            }
        })
    }
    fn read_link(&self, _n: &u64) -> Result<String> {
        Err(Error::unsupported("ntfs reparse points are not followed"))
    }
    fn read_node(&self, n: &u64, limit: u64) -> Result<Vec<u8>> {
        self.with(|ntfs, r| {
            let f = ntfs.file(r, *n).map_err(err)?;
            let item = f
                .data(r, "")
                .ok_or_else(|| err("file has no data stream"))?
                .map_err(err)?;
            let attr = item.to_attribute().map_err(err)?;
            let len = attr.value_length();
            if len > limit {
                return Err(Error::limit(format!(
                    "ntfs file of {len} bytes exceeds the read limit {limit}"
                )));
            }
            let mut v = attr.value(r).map_err(err)?;
            let mut buf =
                vec![0u8; usize::try_from(len).map_err(|_| Error::limit("file too large"))?];
            let mut done = 0;
            while done < buf.len() {
                let k = v.read(r, &mut buf[done..]).map_err(err)?;
                if k == 0 {
                    break;
                }
                done += k;
            }
            buf.truncate(done);
            Ok(buf)
        })
    }
    fn list_node(&self, n: &u64, max: usize) -> Result<Vec<DirEntry>> {
        Ok(self
            .children(n, max)?
            .into_iter()
            .map(|(name, _)| DirEntry { name })
            .collect())
    }
    fn children(&self, n: &u64, max: usize) -> Result<Vec<(String, u64)>> {
        self.with(|ntfs, r| {
            let f = ntfs.file(r, *n).map_err(err)?;
            if !f.is_directory() {
                return Ok(Vec::new());
            }
            let idx = f.directory_index(r).map_err(err)?;
            let mut it = idx.entries();
            let mut out = Vec::new();
            while let Some(e) = it.next(r) {
                let e = e.map_err(err)?;
                let Some(k) = e.key() else { continue };
                let k = k.map_err(err)?;
                if k.namespace() == NtfsFileNamespace::Dos {
                    continue;
                }
                let name = k.name().to_string_lossy();
                if name == "." {
                    continue;
                }
                out.push((name, e.file_reference().file_record_number()));
                if out.len() >= max {
                    break;
                }
            }
            Ok(out)
        })
    }
    fn size(&self, n: &u64) -> Result<u64> {
        self.with(|ntfs, r| {
            let f = ntfs.file(r, *n).map_err(err)?;
            match f.data(r, "") {
                None => Ok(0),
                Some(item) => Ok(item
                    .map_err(err)?
                    .to_attribute()
                    .map_err(err)?
                    .value_length()),
            }
        })
    }
}
