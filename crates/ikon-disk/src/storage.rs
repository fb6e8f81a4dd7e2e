//! Where an image's bytes live: a positional read/write interface over a file or a memory
//! buffer. Formats are written against [`Storage`] so that the same parser runs on files, in
//! tests and in fuzz targets without touching the file system.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Bytes written to a new file between two requests to start writing it back.
const WRITEBACK_STEP: u64 = 32 << 20;

/// How a newly created file is written, in the terms of `qemu-img convert -t`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// The page-aligned middle of large writes bypasses the page cache (`O_DIRECT`, where
    /// the file system allows it); synced at the end. The default.
    #[default]
    None,
    /// Everything goes through the page cache, written back early in steps; synced at the
    /// end.
    Writeback,
    /// Through the page cache and never synced: fastest, and what `qemu-img convert` does by
    /// default, but a crash soon after can lose the output.
    Unsafe,
}

impl CacheMode {
    /// Parse `none`, `writeback` or `unsafe` (`directsync` and `writethrough` are refused).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(CacheMode::None),
            "writeback" => Ok(CacheMode::Writeback),
            "unsafe" => Ok(CacheMode::Unsafe),
            other => Err(Error::invalid(format!(
                "unknown cache mode {other:?}: expected none, writeback or unsafe"
            ))),
        }
    }
}

/// Positional byte storage under an image.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Current length in bytes.
    fn size(&self) -> Result<u64>;
    /// Read exactly `buf.len()` bytes at `offset`; reading past the end is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// Write all of `buf` at `offset`, growing the storage if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()>;
    /// Set the length (truncate or extend with zeros / a hole).
    fn set_size(&self, len: u64) -> Result<()>;
    /// Make written data durable.
    fn sync(&self) -> Result<()>;
    /// Ranges in `[offset, offset+len)` that are holes (read as zeros without being stored),
    /// as (start, len) pairs in order. The default reports none.
    fn holes(&self, _offset: u64, _len: u64) -> Result<Vec<(u64, u64)>> {
        Ok(Vec::new())
    }
    /// A human-readable name for messages (file path or "memory").
    fn name(&self) -> String;
    /// The directory relative references inside this storage resolve against, if any.
    fn base_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// Read `len` bytes at `offset` into a new vector, refusing lengths above `limit`.
pub fn read_vec(s: &dyn Storage, offset: u64, len: u64, limit: u64, what: &str) -> Result<Vec<u8>> {
    if len > limit {
        return Err(Error::limit(format!(
            "{what}: {len} bytes exceeds the limit of {limit}"
        )));
    }
    let n = crate::error::to_usize(len, what)?;
    let mut v = vec![0u8; n];
    s.read_exact_at(&mut v, offset)
        .map_err(|e| e.within(what))?;
    Ok(v)
}

/// A file on the local file system.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: PathBuf,
    /// For files being created: bytes written since writeback was last started, or None
    /// when the file is not written back early (see [`FileStorage::create`]).
    unflushed: Option<AtomicU64>,
    /// For files being created: a direct I/O descriptor for large writes.
    direct: Option<crate::direct::Direct>,
    /// False for files created with [`CacheMode::Unsafe`]: `sync` does nothing.
    durable: bool,
}

impl FileStorage {
    /// Open an existing file, read-only or read-write.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io(e, format!("cannot open {}", path.display())))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(e, format!("stat {}", path.display())))?;
        if meta.is_dir() {
            return Err(Error::invalid(format!("{} is a directory", path.display())));
        }
        Ok(FileStorage {
            file,
            path: path.to_path_buf(),
            unflushed: None,
            direct: None,
            durable: true,
        })
    }
    /// Create (or truncate) a file for writing.
    ///
    /// A new image is written once, front to back, and synced at the end. The page-aligned
    /// middle of large writes goes straight to the device (`O_DIRECT`, see `direct.rs`). What
    /// stays buffered would, left alone, sit in the page cache until the final sync (the
    /// kernel's dirty limits are GiBs away on a machine with plenty of memory), so every
    /// [`WRITEBACK_STEP`] buffered bytes the kernel is asked to start writing it back: the
    /// device works while the source is still being read, and the final sync only waits
    /// for the tail. This is [`CacheMode::None`]; see [`FileStorage::create_with`].
    pub fn create(path: &Path) -> Result<Self> {
        Self::create_with(path, CacheMode::None)
    }
    /// Create (or truncate) a file for writing, written the way `cache` says.
    pub fn create_with(path: &Path, cache: CacheMode) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io(e, format!("cannot create {}", path.display())))?;
        let direct = match cache {
            CacheMode::None => crate::direct::Direct::open(path, &file),
            CacheMode::Writeback | CacheMode::Unsafe => None,
        };
        Ok(FileStorage {
            file,
            path: path.to_path_buf(),
            unflushed: (cache != CacheMode::Unsafe).then(|| AtomicU64::new(0)),
            direct,
            durable: cache != CacheMode::Unsafe,
        })
    }
    /// The path this storage was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    fn seek_data_hole(&self, offset: u64, whence: libc::c_int) -> Result<Option<u64>> {
        use std::os::unix::io::AsRawFd;
        let Ok(off) = libc::off_t::try_from(offset) else {
            return Ok(None);
        };
        // SAFETY: lseek on a file descriptor we own; it only moves the file position, which
        // this type never relies on (all I/O is positional).
        let r = unsafe { libc::lseek(self.file.as_raw_fd(), off, whence) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENXIO) => Ok(None),
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
                    Err(Error::io(e, "SEEK_DATA unsupported"))
                }
                _ => Err(Error::io(e, format!("lseek {}", self.path.display()))),
            };
        }
        Ok(u64::try_from(r).ok())
    }
    /// Count `n` written bytes and start writeback of the file's dirty pages every
    /// [`WRITEBACK_STEP`] bytes (files from [`FileStorage::create`] only).
    fn note_written(&self, n: u64) {
        let Some(unflushed) = &self.unflushed else {
            return;
        };
        if unflushed.fetch_add(n, Ordering::Relaxed) + n < WRITEBACK_STEP {
            return;
        }
        unflushed.store(0, Ordering::Relaxed);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: sync_file_range on a file descriptor we own, with no pointers; offset
            // 0 and length 0 mean the whole file. SYNC_FILE_RANGE_WRITE only queues dirty
            // pages for writing and does not wait for them. It is a hint: a failure here is
            // reported again by the final fsync if it matters, so the result is ignored.
            unsafe {
                libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
    }
}

impl Storage for FileStorage {
    fn size(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| Error::io(e, format!("stat {}", self.path.display())))?
            .len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                return Error::corrupt(format!(
                    "{}: {} bytes at offset {offset} lie past the end of the file",
                    self.path.display(),
                    buf.len()
                ));
            } else {
                format!(
                    "read {} bytes at {offset} from {}",
                    buf.len(),
                    self.path.display()
                )
            };
            Error::io(e, what)
        })
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let buffered = |b: &[u8], at: u64| -> std::io::Result<()> {
            self.file.write_all_at(b, at)?;
            self.note_written(b.len() as u64);
            Ok(())
        };
        match &self.direct {
            Some(d) => d.write(buf, offset, &buffered),
            None => buffered(buf, offset),
        }
        .map_err(|e| {
            Error::io(
                e,
                format!(
                    "write {} bytes at {offset} to {}",
                    buf.len(),
                    self.path.display()
                ),
            )
        })
    }
    fn set_size(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io(e, format!("truncate {}", self.path.display())))
    }
    fn sync(&self) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        self.file
            .sync_all()
            .map_err(|e| Error::io(e, format!("fsync {}", self.path.display())))
    }
    fn holes(&self, offset: u64, len: u64) -> Result<Vec<(u64, u64)>> {
        let end = offset.saturating_add(len).min(self.size()?);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let hole = match self.seek_data_hole(pos, libc::SEEK_HOLE) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(_) => return Ok(Vec::new()),
            };
            if hole >= end {
                break;
            }
            let data = self
                .seek_data_hole(hole, libc::SEEK_DATA)
                .unwrap_or(None)
                .unwrap_or(end)
                .min(end);
            if data > hole {
                out.push((hole, data - hole));
            }
            pos = data.max(pos + 1);
        }
        Ok(out)
    }
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    fn base_dir(&self) -> Option<PathBuf> {
        let abs = std::fs::canonicalize(&self.path).ok()?;
        abs.parent().map(Path::to_path_buf)
    }
}

/// An in-memory storage (tests, fuzzing).
#[derive(Debug, Default)]
pub struct MemStorage {
    data: RwLock<Vec<u8>>,
}

impl MemStorage {
    /// Storage holding `data`.
    pub fn new(data: Vec<u8>) -> Self {
        MemStorage {
            data: RwLock::new(data),
        }
    }
    /// A copy of the current bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data.read().map(|d| d.clone()).unwrap_or_default()
    }
}

/// Frees the blocks of `[offset, offset + len)` of `file` (which must be open for writing),
/// keeping its size: the range then reads as zeros, and dirty pages there are dropped instead
/// of being written back. Fails where the filesystem cannot punch holes.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let off = libc::off_t::try_from(offset)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let n = libc::off_t::try_from(len)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: fallocate on a file descriptor owned by `file` for the call's duration, with
    // no pointers; the kernel checks the range and the mode.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            n,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn poisoned() -> Error {
    Error::new(crate::ErrorKind::Io, "memory storage lock poisoned")
}

impl Storage for MemStorage {
    fn size(&self) -> Result<u64> {
        Ok(self.data.read().map_err(|_| poisoned())?.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let d = self.data.read().map_err(|_| poisoned())?;
        let start = usize::try_from(offset).ok();
        let end = start.and_then(|s| s.checked_add(buf.len()));
        match (start, end) {
            (Some(s), Some(e)) if e <= d.len() => {
                buf.copy_from_slice(&d[s..e]);
                Ok(())
            }
            _ => Err(Error::corrupt(format!(
                "{} bytes at offset {offset} lie past the end ({})",
                buf.len(),
                d.len()
            ))),
        }
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let mut d = self.data.write().map_err(|_| poisoned())?;
        let s = crate::error::to_usize(offset, "write offset")?;
        let e = s
            .checked_add(buf.len())
            .ok_or_else(|| Error::invalid("write past address space"))?;
        if e > d.len() {
            d.resize(e, 0);
        }
        d[s..e].copy_from_slice(buf);
        Ok(())
    }
    fn set_size(&self, len: u64) -> Result<()> {
        let n = crate::error::to_usize(len, "memory storage size")?;
        self.data.write().map_err(|_| poisoned())?.resize(n, 0);
        Ok(())
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn name(&self) -> String {
        "memory".into()
    }
}
