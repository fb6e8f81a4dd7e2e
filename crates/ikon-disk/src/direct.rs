//! Direct I/O for the bulk of a new image's data.
//!
//! A converted image is written once and not read back, so copying its data through the
//! page cache only costs: a copy into freshly allocated cache pages, then all of it written
//! out by the final fsync. A second descriptor opened with `O_DIRECT` lets the page-aligned
//! middle of every large write go straight to the device (as `qemu-img convert -t none`
//! does); the unaligned head and tail of a write, and small metadata writes, stay buffered
//! on the ordinary descriptor. Direct I/O is only an optimisation: when the file system
//! refuses it (tmpfs, some FUSE mounts), the file falls back to buffered writes for good.
//!
//! Mixing the two descriptors is coherent because a page is never written through both at
//! once: the kernel writes back and drops cached pages in a direct write's range before it
//! starts, and a later buffered write to such a page reads it from the device.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Alignment of direct I/O offsets, lengths and buffers (covers 512- and 4096-byte sectors).
const ALIGN: usize = 4096;
/// Writes shorter than this stay buffered (metadata; not worth a synchronous device write).
const MIN_DIRECT: usize = 256 << 10;
/// Size of the aligned bounce buffer used when the caller's memory is not aligned.
const BOUNCE: usize = 4 << 20;

/// The `O_DIRECT` descriptor of a file being created.
#[derive(Debug)]
pub(crate) struct Direct {
    file: File,
    /// Set once a direct write failed; everything is buffered from then on.
    off: AtomicBool,
    /// Page-aligned staging memory for callers whose buffers are not aligned (allocated on
    /// first use, at most [`BOUNCE`] bytes plus alignment slack).
    bounce: Mutex<Vec<u8>>,
}

impl Direct {
    /// Open `path`, just created as `created`, for direct writes, or None where that is
    /// unavailable (or the path no longer names the same file).
    pub(crate) fn open(path: &Path, created: &File) -> Option<Direct> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
            let file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok()?;
            let (a, b) = (file.metadata().ok()?, created.metadata().ok()?);
            if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
                return None;
            }
            Some(Direct {
                file,
                off: AtomicBool::new(false),
                bounce: Mutex::new(Vec::new()),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (path, created);
            None
        }
    }

    /// Write `buf` at `offset`, the aligned middle directly and the rest through `buffered`.
    pub(crate) fn write(
        &self,
        buf: &[u8],
        offset: u64,
        buffered: &dyn Fn(&[u8], u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let head = usize::try_from((ALIGN as u64 - offset % ALIGN as u64) % ALIGN as u64)
            .unwrap_or(0)
            .min(buf.len());
        let body = (buf.len() - head) / ALIGN * ALIGN;
        if body < MIN_DIRECT || self.off.load(Ordering::Relaxed) {
            return buffered(buf, offset);
        }
        buffered(&buf[..head], offset)?;
        let mid = &buf[head..head + body];
        let at = offset + head as u64;
        if self.write_aligned(mid, at).is_err() {
            // Whatever part of the direct write landed is simply written again.
            self.off.store(true, Ordering::Relaxed);
            buffered(mid, at)?;
        }
        buffered(&buf[head + body..], at + body as u64)
    }

    /// Write `mid` (a multiple of [`ALIGN`] long) at `at` (aligned) with the direct
    /// descriptor, from `mid` itself when it is aligned in memory, else via the bounce buffer.
    fn write_aligned(&self, mid: &[u8], at: u64) -> std::io::Result<()> {
        if (mid.as_ptr() as usize).is_multiple_of(ALIGN) {
            return self.file.write_all_at(mid, at);
        }
        let mut bounce = self
            .bounce
            .lock()
            .map_err(|_| std::io::Error::other("direct I/O bounce buffer lock poisoned"))?;
        if bounce.is_empty() {
            bounce.resize(BOUNCE + ALIGN, 0);
        }
        let pad = (ALIGN - bounce.as_ptr() as usize % ALIGN) % ALIGN;
        let stage = &mut bounce[pad..pad + BOUNCE];
        let mut done = 0usize;
        while done < mid.len() {
            let n = (mid.len() - done).min(BOUNCE);
            stage[..n].copy_from_slice(&mid[done..done + n]);
            self.file.write_all_at(&stage[..n], at + done as u64)?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{FileStorage, Storage};

    /// Writes of every shape (unaligned offsets, unaligned memory, below and above the
    /// direct threshold, overwriting earlier buffered and direct bytes) read back exactly.
    #[test]
    fn mixed_direct_and_buffered_writes_read_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("ikon-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("out.img");
        let s = FileStorage::create(&path)?;
        let mut model = vec![0u8; 8 << 20];
        let data: Vec<u8> = (0..5u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        // Where `data` is page aligned in memory, for the copy-free path.
        let aligned = (4096 - data.as_ptr() as usize % 4096) % 4096;
        let writes: [(u64, usize, usize); 7] = [
            (0, 0, 4096),                   // small, buffered
            (4 << 20, aligned, 1 << 20),    // aligned offset and memory
            (512, 0, (1 << 20) + 100),      // unaligned head and tail
            (8192, 17, 2 << 20),            // aligned offset, unaligned memory
            (1 << 20, 4096, 300 << 10),     // overwrites direct bytes
            (3 << 20, 3, (4 << 20) + 9000), // larger than the bounce buffer
            ((2 << 20) + 1, 5, 600 << 10),  // overwrites across both
        ];
        for (off, from, len) in writes {
            let chunk = &data[from..from + len];
            s.write_all_at(chunk, off)?;
            let o = usize::try_from(off)?;
            model[o..o + len].copy_from_slice(chunk);
        }
        let end = model.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        s.sync()?;
        let got = std::fs::read(&path)?;
        assert_eq!(got.len(), end.max(got.len().min(model.len())));
        assert!(
            got == model[..got.len()],
            "file content differs from the model"
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
