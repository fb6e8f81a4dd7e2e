//! The block-device traits: [`BlockDevice`] (size, positional reads and the mapping query),
//! which every format implements; [`WritableDevice`], the write capability only the formats
//! that write in place (raw, VHD) implement; and [`DiskImage`], which adds what a format knows
//! about itself. [`WritableImage`] is an opened image that can be written.

use crate::error::{Error, Result};
use crate::Format;

/// What a range of the guest-visible disk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtentKind {
    /// Stored data (may still happen to contain zeros).
    Data,
    /// Reads as zeros and is recorded as zero (zero cluster, hole in a raw file).
    Zero,
    /// Nothing is allocated for it in this image or any image below it; reads as zeros.
    Unallocated,
}

/// One range of the mapping query: `[offset, offset + len)` has `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Guest offset in bytes.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the range holds.
    pub kind: ExtentKind,
    /// Whether the data is stored compressed (qcow2 compressed clusters, VMDK stream grains).
    pub compressed: bool,
}

impl Extent {
    /// End offset (exclusive).
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A sync, positional, thread-safe virtual disk that can be read and mapped.
///
/// Writing is a separate capability, [`WritableDevice`]; a device that has it says so through
/// [`BlockDevice::as_writable`], which is how code holding only a `dyn BlockDevice` (an NBD
/// export) reaches it. The inherent `write_all_at`/`write_zeroes`/`flush` on
/// `dyn BlockDevice` do exactly that and fail with [`crate::ErrorKind::ReadOnly`] otherwise.
pub trait BlockDevice: Send + Sync {
    /// Virtual size in bytes.
    fn len(&self) -> u64;
    /// True when the disk has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` from guest offset `offset`; the range must lie within the disk.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// Describe `[offset, offset+len)` as consecutive extents, in order, covering the whole
    /// range with no gaps, adjacent extents of the same kind merged.
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>>;
    /// The write capability of this device, if it has one now (a writable format opened
    /// read-only has none). Implementors of [`WritableDevice`] return `Some(self)`.
    fn as_writable(&self) -> Option<&dyn WritableDevice> {
        None
    }
}

/// The write capability of a [`BlockDevice`].
pub trait WritableDevice: BlockDevice {
    /// Write `buf` at guest offset `offset`; the range must lie within the disk.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()>;
    /// Make `[offset, offset+len)` read as zeros.
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()>;
    /// Make completed writes durable.
    fn flush(&self) -> Result<()>;
}

/// Writes through a device known only as a [`BlockDevice`]: forwarded to its
/// [`BlockDevice::as_writable`] capability, refused with `ReadOnly` when it has none.
impl dyn BlockDevice + '_ {
    /// [`WritableDevice::write_all_at`], or a `ReadOnly` error.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.writable_or_refuse()?.write_all_at(buf, offset)
    }
    /// [`WritableDevice::write_zeroes`], or a `ReadOnly` error.
    pub fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        self.writable_or_refuse()?.write_zeroes(offset, len)
    }
    /// [`WritableDevice::flush`]; a read-only device has nothing to flush.
    pub fn flush(&self) -> Result<()> {
        match self.as_writable() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
    fn writable_or_refuse(&self) -> Result<&dyn WritableDevice> {
        self.as_writable()
            .ok_or_else(|| Error::read_only("this disk is read-only"))
    }
}

/// An opened image: a block device plus what its format knows about it.
pub trait DiskImage: BlockDevice {
    /// Format, subformat and header details.
    fn info(&self) -> ImageInfo;
    /// Consistency check of the format's metadata (reads the whole metadata, not the data).
    fn check(&self) -> Result<CheckReport> {
        Ok(CheckReport::default())
    }
    /// This image as a [`WritableImage`], or a `ReadOnly` error when its format does not
    /// write in place or it was opened read-only.
    fn into_writable(self: Box<Self>) -> Result<Box<dyn WritableImage>> {
        Err(Error::read_only(format!(
            "{} images are read-only in Ikon (convert to raw or vhd to write)",
            self.info().format
        )))
    }
}

/// An opened image that can be written in place (see [`crate::open_writable`]).
pub trait WritableImage: DiskImage + WritableDevice {}

impl<T: DiskImage + WritableDevice + ?Sized> WritableImage for T {}

/// What `info` reports about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Detected format.
    pub format: Format,
    /// Subformat where the format has several (e.g. `dynamic`, `streamOptimized`).
    pub subformat: Option<String>,
    /// Guest-visible size in bytes.
    pub virtual_size: u64,
    /// Allocation unit (cluster, grain, block) in bytes, if the format has one.
    pub cluster_size: Option<u64>,
    /// Format-specific facts as key/value pairs (compat level, compression type, creator…),
    /// in a stable order.
    pub details: Vec<(String, String)>,
    /// External files this image reads from (backing files, extents) that were allowed.
    pub external_files: Vec<String>,
}

impl ImageInfo {
    /// A minimal info with only format and size.
    pub fn new(format: Format, virtual_size: u64) -> Self {
        ImageInfo {
            format,
            subformat: None,
            virtual_size,
            cluster_size: None,
            details: Vec::new(),
            external_files: Vec::new(),
        }
    }
    /// Add a detail.
    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.push((key.to_string(), value.to_string()));
        self
    }
}

/// Result of a metadata consistency check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Problems that make data unreadable or wrong.
    pub corruptions: Vec<String>,
    /// Clusters/blocks allocated but not referenced (space lost, data safe).
    pub leaks: u64,
    /// Allocated clusters/blocks in use.
    pub allocated_clusters: u64,
    /// Total clusters/blocks the virtual size spans.
    pub total_clusters: u64,
    /// Clusters whose host offset is not right after the previous one's.
    pub fragmented_clusters: u64,
    /// Clusters stored compressed.
    pub compressed_clusters: u64,
}

impl CheckReport {
    /// True when no corruption was found (leaks alone do not make an image unclean).
    pub fn is_clean(&self) -> bool {
        self.corruptions.is_empty()
    }
}

/// Check that `[offset, offset+len)` lies within a disk of `size` bytes.
pub fn check_range(offset: u64, len: usize, size: u64) -> Result<()> {
    let end = offset.checked_add(len as u64);
    match end {
        Some(e) if e <= size => Ok(()),
        _ => Err(Error::invalid(format!(
            "access of {len} bytes at {offset} is beyond the disk size {size}"
        ))),
    }
}

/// Helper for building a mapping: appends an extent, merging with the previous one when
/// they touch and have the same kind and compression.
pub fn push_extent(
    out: &mut Vec<Extent>,
    offset: u64,
    len: u64,
    kind: ExtentKind,
    compressed: bool,
) {
    if len == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.end() == offset && last.kind == kind && last.compressed == compressed {
            last.len += len;
            return;
        }
    }
    out.push(Extent {
        offset,
        len,
        kind,
        compressed,
    });
}

/// Helper for images with a backing (parent) image: appends the mapping of `[pos, pos+n)` as
/// `backing` maps it, and whatever lies past the backing image's end as unallocated.
pub fn push_backing_extents<B: BlockDevice + ?Sized>(
    out: &mut Vec<Extent>,
    backing: &B,
    pos: u64,
    n: u64,
) -> Result<()> {
    let end = pos.saturating_add(n);
    let backing_end = end.min(backing.len());
    if backing_end > pos {
        for e in backing.map(pos, backing_end - pos)? {
            push_extent(out, e.offset, e.len, e.kind, e.compressed);
        }
    }
    let from = backing_end.max(pos);
    push_extent(out, from, end - from, ExtentKind::Unallocated, false);
    Ok(())
}

/// Fill `buf` with zeros (helper for reading unallocated ranges).
pub fn zero(buf: &mut [u8]) {
    buf.fill(0);
}

/// True when every byte of `buf` is zero (fast path on machine words).
pub fn is_zero(buf: &[u8]) -> bool {
    // SAFETY: u8 to u128 reinterpretation; align_to only yields properly aligned middles.
    let (head, mid, tail) = unsafe { buf.align_to::<u128>() };
    head.iter().all(|&b| b == 0) && mid.iter().all(|&w| w == 0) && tail.iter().all(|&b| b == 0)
}

/// A device that counts what is read through it (bytes and calls), for figures such as
/// "the scan read 3 MiB of a 50 GiB disk", and can refuse reads past a byte budget (so a
/// walk over hostile metadata costs a bounded amount of I/O whatever its shape).
pub struct CountingDevice<'a> {
    inner: &'a dyn BlockDevice,
    bytes: std::sync::atomic::AtomicU64,
    reads: std::sync::atomic::AtomicU64,
    limit: u64,
}

impl<'a> CountingDevice<'a> {
    /// Counts reads of `inner`.
    pub fn new(inner: &'a dyn BlockDevice) -> Self {
        CountingDevice {
            inner,
            bytes: 0.into(),
            reads: 0.into(),
            limit: u64::MAX,
        }
    }

    /// Counts reads of `inner` and refuses (with a `Limit` error) any read that would take
    /// the total past `limit` bytes.
    pub fn with_limit(inner: &'a dyn BlockDevice, limit: u64) -> Self {
        CountingDevice {
            limit,
            ..CountingDevice::new(inner)
        }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read calls so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl BlockDevice for CountingDevice<'_> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        self.reads.fetch_add(1, Relaxed);
        let n = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        let before = self.bytes.fetch_add(n, Relaxed);
        if before.saturating_add(n) > self.limit {
            return Err(Error::limit(format!(
                "read budget of {} bytes used up",
                self.limit
            )));
        }
        self.inner.read_exact_at(buf, offset)
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        self.inner.map(offset, len)
    }
}
