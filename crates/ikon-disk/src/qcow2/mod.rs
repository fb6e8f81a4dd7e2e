//! qcow2 images (QEMU docs/interop/qcow2.txt), versions 2 and 3: reading everything qemu-img
//! writes (compressed clusters in zlib or zstd, zero clusters, 512 B – 2 MiB clusters,
//! extended L2 subclusters, internal snapshots, backing chains and external data files when
//! allowed), writing new images for convert, and a refcount consistency check.

mod check;
pub mod header;
mod io;
mod writer;

use crate::device::{check_range, BlockDevice, CheckReport, DiskImage, Extent, ImageInfo};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::writer::{CreateOptions, ImageWriter};
use crate::{Format, OpenContext};
use header::{CompressionType, Header};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most bytes of L2 tables kept in memory per open image.
pub const L2_CACHE_BYTES: u64 = 32 << 20;

/// An opened qcow2 image (read-only).
pub struct Qcow2Image {
    storage: Arc<dyn Storage>,
    file_size: u64,
    header: Header,
    l1: Vec<u64>,
    l2_cache: Mutex<HashMap<u64, Arc<Vec<u64>>>>,
    backing: Option<Box<dyn DiskImage>>,
    data_file: Option<(Arc<dyn Storage>, u64)>,
}

impl std::fmt::Debug for Qcow2Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2Image")
            .field("storage", &self.storage)
            .field("header", &self.header)
            .finish()
    }
}

/// Open `storage` as a qcow2 image.
pub fn open(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    let file_size = storage.size()?;
    let first = file_size.min(1 << header::MAX_CLUSTER_BITS);
    let buf = crate::storage::read_vec(storage.as_ref(), 0, first, first, "qcow2 header")?;
    let header = Header::parse(&buf, file_size)?;
    let l1_bytes = u64::from(header.l1_size) * 8;
    let l1: Vec<u64> = if header.l1_size == 0 {
        Vec::new()
    } else {
        crate::bytes::be64_table(&crate::storage::read_vec(
            storage.as_ref(),
            header.l1_table_offset,
            l1_bytes,
            header::MAX_L1_BYTES,
            "qcow2 L1 table",
        )?)
    };
    let data_file = match &header.data_file {
        Some(name) => {
            let s = ctx.open_file(name, "qcow2 external data file", false)?;
            let n = s.size()?;
            Some((s, n))
        }
        None => None,
    };
    let backing = match &header.backing_file {
        Some(name) => {
            let fmt = match header.backing_format.as_deref() {
                Some(f) => Some(Format::parse(f)?),
                None => None,
            };
            Some(ctx.open_image(name, "qcow2 backing file", fmt)?)
        }
        None => None,
    };
    if ctx.options.writable {
        return Err(Error::read_only(
            "in-place writes to qcow2 images are not supported yet; convert instead",
        ));
    }
    Ok(Box::new(Qcow2Image {
        storage,
        file_size,
        header,
        l1,
        l2_cache: Mutex::new(HashMap::new()),
        backing,
        data_file,
    }))
}

/// Create a new qcow2 image.
pub fn create(storage: Arc<dyn Storage>, options: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
    writer::Qcow2Writer::create(storage, options)
}

impl BlockDevice for Qcow2Image {
    fn len(&self) -> u64 {
        self.header.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.header.size)?;
        self.read_at(buf, offset)
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        self.map_range(offset, len)
    }
}

impl DiskImage for Qcow2Image {
    fn info(&self) -> ImageInfo {
        let h = &self.header;
        let mut i = ImageInfo::new(Format::Qcow2, h.size)
            .detail("compat", if h.version >= 3 { "1.1" } else { "0.10" })
            .detail(
                "compression type",
                match h.compression {
                    CompressionType::Zlib => "zlib",
                    CompressionType::Zstd => "zstd",
                },
            )
            .detail("extended l2", h.extended_l2())
            .detail("refcount bits", 1u32 << h.refcount_order.min(6))
            .detail("snapshots", h.nb_snapshots)
            .detail("dirty", h.incompatible & header::INCOMPAT_DIRTY != 0)
            .detail("corrupt", h.incompatible & header::INCOMPAT_CORRUPT != 0);
        i.cluster_size = Some(h.cluster_size());
        if let Some(b) = &h.backing_file {
            i = i.detail("backing file", b);
            i.external_files.push(b.clone());
        }
        if let Some(f) = &h.backing_format {
            i = i.detail("backing file format", f);
        }
        if let Some(d) = &h.data_file {
            i = i.detail("data file", d).detail(
                "data file raw",
                h.autoclear & header::AUTOCLEAR_DATA_FILE_RAW != 0,
            );
            i.external_files.push(d.clone());
        }
        i
    }
    fn check(&self) -> Result<CheckReport> {
        check::check(self)
    }
}
