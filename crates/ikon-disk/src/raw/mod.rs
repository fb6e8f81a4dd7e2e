//! Raw images: the file is the disk. Holes in the file map as zero extents (via
//! `SEEK_HOLE`/`SEEK_DATA`), and the writer leaves all-zero runs as holes. Like qemu, the
//! virtual size is the file size rounded up to whole 512-byte sectors; the padding reads as
//! zeros.

use crate::device::{
    check_range, push_extent, BlockDevice, DiskImage, Extent, ExtentKind, ImageInfo,
    WritableDevice, WritableImage,
};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::writer::{CreateOptions, ImageWriter};
use crate::{Format, OpenContext};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An opened raw image.
#[derive(Debug)]
pub struct RawImage {
    storage: Arc<dyn Storage>,
    size: u64,
    file_size: AtomicU64,
    writable: bool,
}

/// Open `storage` as a raw image.
pub fn open(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    let file_size = storage.size()?;
    let size = file_size.div_ceil(512).saturating_mul(512);
    Ok(Box::new(RawImage {
        storage,
        size,
        file_size: AtomicU64::new(file_size),
        writable: ctx.options.writable,
    }))
}

impl BlockDevice for RawImage {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let avail = usize::try_from(
            self.file_size
                .load(Ordering::Acquire)
                .saturating_sub(offset),
        )
        .unwrap_or(usize::MAX)
        .min(buf.len());
        let (head, tail) = buf.split_at_mut(avail);
        tail.fill(0);
        self.storage.read_exact_at(head, offset)
    }
    fn as_writable(&self) -> Option<&dyn WritableDevice> {
        self.writable.then_some(self as &dyn WritableDevice)
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let full_end = offset.saturating_add(len).min(self.size);
        let end = full_end.min(self.file_size.load(Ordering::Acquire));
        let mut out = Vec::new();
        let mut pos = offset.min(end);
        for (h, hl) in self.storage.holes(offset, end.saturating_sub(offset))? {
            let h_end = (h + hl).min(end);
            if h > pos {
                push_extent(&mut out, pos, h - pos, ExtentKind::Data, false);
            }
            push_extent(
                &mut out,
                h.max(pos),
                h_end.saturating_sub(h.max(pos)),
                ExtentKind::Zero,
                false,
            );
            pos = pos.max(h_end);
        }
        if end > pos {
            push_extent(&mut out, pos, end - pos, ExtentKind::Data, false);
        }
        // The sector padding past the end of the file.
        let pad_from = offset.max(end);
        push_extent(
            &mut out,
            pad_from,
            full_end.saturating_sub(pad_from),
            ExtentKind::Zero,
            false,
        );
        Ok(out)
    }
}

impl WritableDevice for RawImage {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if !self.writable {
            return Err(Error::read_only("raw image opened read-only"));
        }
        check_range(offset, buf.len(), self.size)?;
        self.storage.write_all_at(buf, offset)?;
        self.file_size
            .fetch_max(offset + buf.len() as u64, Ordering::AcqRel);
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        let zeros = vec![0u8; 1 << 20];
        let mut pos = offset;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::invalid("write_zeroes range overflows"))?;
        while pos < end {
            let n = usize::try_from((end - pos).min(zeros.len() as u64)).unwrap_or(zeros.len());
            self.write_all_at(&zeros[..n], pos)?;
            pos += n as u64;
        }
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        self.storage.sync()
    }
}

impl DiskImage for RawImage {
    fn into_writable(self: Box<Self>) -> Result<Box<dyn WritableImage>> {
        if self.writable {
            Ok(self)
        } else {
            Err(Error::read_only("raw image opened read-only"))
        }
    }
    fn info(&self) -> ImageInfo {
        ImageInfo::new(Format::Raw, self.size)
    }
}

/// Writer for a new raw image: data runs are written in place, everything else stays a hole.
#[derive(Debug)]
pub struct RawWriter {
    storage: Arc<dyn Storage>,
}

/// Create a raw image of `options.size` bytes (a sparse file).
pub fn create(storage: Arc<dyn Storage>, options: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
    if options.compress {
        return Err(Error::invalid("raw images cannot be compressed"));
    }
    storage.set_size(options.size)?;
    Ok(Box::new(RawWriter { storage }))
}

impl ImageWriter for RawWriter {
    fn granularity(&self) -> u64 {
        4096
    }
    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.storage.write_all_at(data, offset)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.storage.sync()
    }
}
