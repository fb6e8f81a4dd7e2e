//! VMDK images (VMware "Virtual Disk Format 1.1"): single-file hosted sparse images
//! (monolithicSparse, streamOptimized) and descriptor files whose extents live in other files
//! (monolithicFlat, twoGbMaxExtentSparse/Flat, vmfs), the latter only when the caller allows
//! the directory they are in. Written as monolithicSparse or streamOptimized.

mod descriptor;
mod sparse;
mod writer;

use crate::bytes::le32_or_zero;
use crate::device::{
    check_range, push_extent, BlockDevice, CheckReport, DiskImage, Extent, ExtentKind, ImageInfo,
};
use crate::error::{CheckedOr, Error, Result};
use crate::storage::{read_vec, Storage};
use crate::writer::{CreateOptions, ImageWriter};
use crate::{Format, OpenContext};
use descriptor::{Descriptor, ExtentType};
use sparse::{SparseExtent, MAGIC, SECTOR};
use std::sync::Arc;

/// What backs one extent.
enum Backing {
    Sparse(SparseExtent),
    Flat(Arc<dyn Storage>, u64),
    Zero,
}

/// One extent placed in the guest disk.
struct Piece {
    start: u64,
    len: u64,
    backing: Backing,
}

/// An opened VMDK (read-only).
struct VmdkImage {
    pieces: Vec<Piece>,
    size: u64,
    subformat: String,
    descriptor: Descriptor,
    files: Vec<String>,
    grain: Option<u64>,
    version: Option<u32>,
}

/// Refuse an embedded descriptor whose extent lines point anywhere but at a plain file name
/// (a path or URL there is an attempt to make readers open host files).
fn check_embedded(desc: &Descriptor) -> Result<()> {
    if desc.extents.len() > 1 {
        return Err(Error::unsafe_ref(
            "vmdk sparse file's embedded descriptor lists several extents",
        ));
    }
    for e in &desc.extents {
        let f = &e.file;
        if f.contains('/') || f.contains('\\') || f.contains("://") || f.starts_with("json:") {
            return Err(Error::unsafe_ref(format!(
                "vmdk embedded descriptor names extent file {f:?}, not the image itself"
            )));
        }
    }
    Ok(())
}

/// Open `storage` as VMDK.
pub fn open(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    if ctx.options.writable {
        return Err(Error::read_only(
            "in-place writes to VMDK images are not supported; convert instead",
        ));
    }
    let file_size = storage.size()?;
    let head = read_vec(
        storage.as_ref(),
        0,
        file_size.min(SECTOR),
        SECTOR,
        "vmdk header",
    )?;
    if le32_or_zero(&head, 0) == MAGIC {
        let ext = SparseExtent::open(Arc::clone(&storage))?;
        let (doff, dlen) = ext.header.descriptor;
        let mut desc = Descriptor::default();
        if doff != 0 && dlen != 0 {
            let pos = doff.mul_or(SECTOR, "vmdk descriptor offset")?;
            let len = dlen
                .mul_or(SECTOR, "vmdk descriptor size")?
                .min(descriptor::MAX_DESCRIPTOR);
            let avail = file_size.saturating_sub(pos).min(len);
            let text = read_vec(
                storage.as_ref(),
                pos,
                avail,
                descriptor::MAX_DESCRIPTOR,
                "vmdk embedded descriptor",
            )?;
            desc = descriptor::parse(&String::from_utf8_lossy(&text))?;
            check_embedded(&desc)?;
        }
        if let Some(p) = &desc.parent {
            return Err(Error::unsafe_ref(format!(
                "vmdk delta disk refers to parent {p:?}; refused (open the descriptor file with an allowed directory)"
            )));
        }
        let subformat = if !desc.create_type.is_empty() {
            desc.create_type.clone()
        } else if ext.header.flags & sparse::FLAG_MARKERS != 0 {
            "streamOptimized".into()
        } else {
            "monolithicSparse".into()
        };
        let size = ext.size;
        let (grain, version) = (Some(ext.grain), Some(ext.header.version));
        return Ok(Box::new(VmdkImage {
            pieces: vec![Piece {
                start: 0,
                len: size,
                backing: Backing::Sparse(ext),
            }],
            size,
            subformat,
            descriptor: desc,
            files: Vec::new(),
            grain,
            version,
        }));
    }
    open_descriptor(storage.as_ref(), file_size, ctx)
}

fn open_descriptor(
    storage: &dyn Storage,
    file_size: u64,
    ctx: &OpenContext,
) -> Result<Box<dyn DiskImage>> {
    if file_size > descriptor::MAX_DESCRIPTOR {
        return Err(Error::limit(format!(
            "vmdk descriptor of {file_size} bytes exceeds 1 MiB"
        )));
    }
    let text = read_vec(
        storage,
        0,
        file_size,
        descriptor::MAX_DESCRIPTOR,
        "vmdk descriptor",
    )?;
    let desc = descriptor::parse(&String::from_utf8_lossy(&text))?;
    if desc.extents.is_empty() {
        return Err(Error::corrupt("vmdk descriptor lists no extents"));
    }
    if let Some(p) = &desc.parent {
        // Delta disks: the parent must be allowed like any other external file.
        let _ = ctx.open_image(p, "vmdk parent disk", None)?;
        return Err(descriptor::delta(&format!("VMware (parent {p:?})")));
    }
    let mut pieces = Vec::with_capacity(desc.extents.len());
    let mut files = Vec::new();
    let mut pos = 0u64;
    let mut grain = None;
    let mut version = None;
    for e in &desc.extents {
        let len = e.sectors.mul_or(SECTOR, "vmdk extent size")?;
        let backing = match e.kind {
            ExtentType::Zero => Backing::Zero,
            ExtentType::Flat => {
                let s = ctx.open_file(&e.file, "VMDK extent file", false)?;
                files.push(e.file.clone());
                let off = e.offset.mul_or(SECTOR, "vmdk flat extent offset")?;
                Backing::Flat(s, off)
            }
            ExtentType::Sparse => {
                let s = ctx.open_file(&e.file, "VMDK extent file", false)?;
                files.push(e.file.clone());
                let x = SparseExtent::open(s)
                    .map_err(|err| err.within(format!("vmdk extent {}", e.file)))?;
                if x.size < len {
                    return Err(Error::corrupt(format!(
                        "vmdk extent {} holds {} bytes, descriptor says {len}",
                        e.file, x.size
                    )));
                }
                grain.get_or_insert(x.grain);
                version.get_or_insert(x.header.version);
                Backing::Sparse(x)
            }
        };
        pieces.push(Piece {
            start: pos,
            len,
            backing,
        });
        pos = pos.add_or(len, "vmdk capacity")?;
    }
    Ok(Box::new(VmdkImage {
        pieces,
        size: pos,
        subformat: desc.create_type.clone(),
        descriptor: desc,
        files,
        grain,
        version,
    }))
}

/// Create a new VMDK image.
pub fn create(storage: Arc<dyn Storage>, options: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
    writer::create(storage, options)
}

impl VmdkImage {
    /// Index of the piece holding guest offset `off`.
    fn piece_at(&self, off: u64) -> usize {
        self.pieces.partition_point(|p| p.start + p.len <= off)
    }
}

impl BlockDevice for VmdkImage {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        let mut i = self.piece_at(offset);
        while done < buf.len() {
            let p = self
                .pieces
                .get(i)
                .ok_or_else(|| Error::corrupt("vmdk read past the last extent"))?;
            let off = offset + done as u64;
            let within = off - p.start;
            let n = usize::try_from((p.len - within).min((buf.len() - done) as u64)).unwrap_or(0);
            let out = &mut buf[done..done + n];
            match &p.backing {
                Backing::Zero => out.fill(0),
                Backing::Flat(s, base) => {
                    let at = base.add_or(within, "vmdk flat extent")?;
                    let fsize = s.size()?;
                    let avail = usize::try_from(fsize.saturating_sub(at))
                        .unwrap_or(usize::MAX)
                        .min(out.len());
                    let (head, tail) = out.split_at_mut(avail);
                    s.read_exact_at(head, at)?;
                    tail.fill(0);
                }
                Backing::Sparse(x) => x.read(out, within)?,
            }
            done += n;
            i += 1;
        }
        Ok(())
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        let mut off = offset;
        let mut i = self.piece_at(offset);
        while off < end {
            let Some(p) = self.pieces.get(i) else { break };
            let within = off - p.start;
            let n = (p.len - within).min(end - off);
            match &p.backing {
                Backing::Zero => push_extent(&mut out, off, n, ExtentKind::Zero, false),
                Backing::Flat(s, base) => {
                    let mut pos = off;
                    for (h, hl) in s.holes(base + within, n)? {
                        let g = p.start + (h - base);
                        push_extent(
                            &mut out,
                            pos,
                            g.saturating_sub(pos),
                            ExtentKind::Data,
                            false,
                        );
                        push_extent(&mut out, g, hl, ExtentKind::Zero, false);
                        pos = g + hl;
                    }
                    push_extent(&mut out, pos, off + n - pos, ExtentKind::Data, false);
                }
                Backing::Sparse(x) => x.map(p.start, within, n, &mut out),
            }
            off += n;
            i += 1;
        }
        Ok(out)
    }
}

impl DiskImage for VmdkImage {
    fn info(&self) -> ImageInfo {
        let mut i = ImageInfo::new(Format::Vmdk, self.size).detail("extents", self.pieces.len());
        if let Some(v) = self.version {
            i = i.detail("version", v);
        }
        if let Some(a) = &self.descriptor.adapter {
            i = i.detail("adapter type", a);
        }
        if let Some(h) = &self.descriptor.hw_version {
            i = i.detail("hardware version", h);
        }
        let compressed = self.pieces.iter().any(|p| matches!(&p.backing, Backing::Sparse(x) if x.header.flags & sparse::FLAG_COMPRESSED != 0));
        i = i.detail("compressed", compressed);
        i.subformat = Some(self.subformat.clone());
        i.cluster_size = self.grain;
        i.external_files = self.files.clone();
        i
    }
    fn check(&self) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        for p in &self.pieces {
            if let Backing::Sparse(x) = &p.backing {
                x.check(&mut r);
            }
        }
        Ok(r)
    }
}
