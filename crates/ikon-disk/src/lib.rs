//! `ikon-disk`: virtual disk image formats behind one block-device trait.
//!
//! Formats are detected from content ([`detect`]), opened as a [`DiskImage`] (a
//! [`BlockDevice`] plus format facts; [`open_writable`] gives a [`WritableImage`] for the
//! formats that write in place), created through an [`ImageWriter`], and copied between
//! each other by [`convert`]. Everything is synchronous and positional; parsers bound the
//! memory and time they spend on hostile input and never follow a reference outside the
//! image unless an [`ExternalPolicy`] allows it.

pub mod bochs;
pub mod bytes;
pub mod cloop;
pub mod compressible;
pub mod convert;
pub mod deflate;
pub mod detect;
pub mod device;
mod direct;
pub mod dmg;
pub mod error;
pub mod external;
pub mod fuzzing;
pub mod parallels;
pub mod pool;
pub mod qcow2;
pub mod raw;
pub mod storage;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;
pub mod writer;

pub use device::{
    BlockDevice, CheckReport, CountingDevice, DiskImage, Extent, ExtentKind, ImageInfo,
    WritableDevice, WritableImage,
};
pub use error::{Error, ErrorKind, Result};
pub use external::ExternalPolicy;
pub use storage::{CacheMode, FileStorage, MemStorage, Storage};
pub use writer::{CreateOptions, ImageWriter};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The image formats Ikon reads (and, except VHDX, writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Raw bytes.
    Raw,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// Microsoft Virtual PC / Hyper-V VHD (qemu calls it `vpc`).
    Vhd,
    /// VMware VMDK.
    Vmdk,
    /// Hyper-V VHDX (read only).
    Vhdx,
    /// Bochs growing (redolog) image (read only).
    Bochs,
    /// Parallels expanding image (read only).
    Parallels,
    /// Linux compressed loop (cloop) image (read only).
    Cloop,
    /// Apple disk image (UDIF / DMG, read only).
    Dmg,
}

impl Format {
    /// Every format, in a stable order.
    pub const ALL: [Format; 9] = [
        Format::Raw,
        Format::Qcow2,
        Format::Vhd,
        Format::Vmdk,
        Format::Vhdx,
        Format::Bochs,
        Format::Parallels,
        Format::Cloop,
        Format::Dmg,
    ];

    /// Ikon's name for the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Vmdk => "vmdk",
            Format::Vhdx => "vhdx",
            Format::Bochs => "bochs",
            Format::Parallels => "parallels",
            Format::Cloop => "cloop",
            Format::Dmg => "dmg",
        }
    }
    /// The name qemu-img uses for the format.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Format::Vhd => "vpc",
            other => other.name(),
        }
    }
    /// Parse a format name (Ikon's or qemu's).
    pub fn parse(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "raw" | "img" => Ok(Format::Raw),
            "qcow2" => Ok(Format::Qcow2),
            "vhd" | "vpc" => Ok(Format::Vhd),
            "vmdk" => Ok(Format::Vmdk),
            "vhdx" => Ok(Format::Vhdx),
            "bochs" => Ok(Format::Bochs),
            "parallels" => Ok(Format::Parallels),
            "cloop" => Ok(Format::Cloop),
            "dmg" => Ok(Format::Dmg),
            other => Err(Error::invalid(format!(
                "unknown format {other:?} (raw, qcow2, vhd, vmdk, vhdx, bochs, parallels, cloop, dmg)"
            ))),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to open an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Open for writing (formats that support in-place writes).
    pub writable: bool,
    /// Where external references may point (default: nowhere).
    pub policy: ExternalPolicy,
    /// Skip detection and open as this format (the caller's explicit choice).
    pub format: Option<Format>,
}

/// Limit on backing-file chain length, against loops and absurd chains.
pub const MAX_CHAIN_DEPTH: u32 = 16;

/// What a format's `open` gets besides the storage: the caller's options and where relative
/// references resolve.
#[derive(Debug, Clone)]
pub struct OpenContext {
    /// The caller's options.
    pub options: OpenOptions,
    /// Directory of the image file (relative references resolve against it).
    pub base_dir: Option<PathBuf>,
    /// How deep in a backing chain this open is.
    pub depth: u32,
}

impl OpenContext {
    /// A context for a top-level image with `options`.
    pub fn new(options: OpenOptions, base_dir: Option<PathBuf>) -> Self {
        OpenContext {
            options,
            base_dir,
            depth: 0,
        }
    }

    /// Resolve and open an external file (VMDK extent, raw data file) under the policy.
    pub fn open_file(
        &self,
        reference: &str,
        what: &str,
        writable: bool,
    ) -> Result<Arc<dyn Storage>> {
        let path = self
            .options
            .policy
            .resolve(self.base_dir.as_deref(), reference, what)?;
        Ok(Arc::new(FileStorage::open(&path, writable)?))
    }

    /// Resolve and open an external image (backing file, parent disk) under the policy,
    /// read-only, detecting its format unless `format` is given.
    pub fn open_image(
        &self,
        reference: &str,
        what: &str,
        format: Option<Format>,
    ) -> Result<Box<dyn DiskImage>> {
        if self.depth + 1 >= MAX_CHAIN_DEPTH {
            return Err(Error::limit(format!(
                "{what} chain is deeper than {MAX_CHAIN_DEPTH} images"
            )));
        }
        let path = self
            .options
            .policy
            .resolve(self.base_dir.as_deref(), reference, what)?;
        let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(&path, false)?);
        let mut options = self.options.clone();
        options.writable = false;
        options.format = format;
        let ctx = OpenContext {
            options,
            base_dir: path.parent().map(Path::to_path_buf),
            depth: self.depth + 1,
        };
        open_storage(storage, &ctx).map_err(|e| e.within(format!("{what} {}", path.display())))
    }
}

/// Open the image file at `path`.
pub fn open(path: &Path, options: &OpenOptions) -> Result<Box<dyn DiskImage>> {
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(path, options.writable)?);
    let base = storage.base_dir();
    let ctx = OpenContext::new(options.clone(), base);
    open_storage(storage, &ctx).map_err(|e| e.within(path.display()))
}

/// Open the image file at `path` for in-place writes (raw and VHD; `options.writable` is
/// implied). Other formats, and images that cannot be written (a differencing VHD), fail with
/// a `ReadOnly` error.
pub fn open_writable(path: &Path, options: &OpenOptions) -> Result<Box<dyn WritableImage>> {
    let mut options = options.clone();
    options.writable = true;
    open(path, &options)?
        .into_writable()
        .map_err(|e| e.within(path.display()))
}

/// Open an image held in `storage`.
pub fn open_storage(storage: Arc<dyn Storage>, ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    let format = match ctx.options.format {
        Some(f) => f,
        None => detect::detect(storage.as_ref())?,
    };
    match format {
        Format::Raw => raw::open(storage, ctx),
        Format::Qcow2 => qcow2::open(storage, ctx),
        Format::Vhd => vhd::open(storage, ctx),
        Format::Vmdk => vmdk::open(storage, ctx),
        Format::Vhdx => vhdx::open(storage, ctx),
        Format::Bochs => bochs::open(storage, ctx),
        Format::Parallels => parallels::open(storage, ctx),
        Format::Cloop => cloop::open(storage, ctx),
        Format::Dmg => dmg::open(storage, ctx),
    }
}

/// Create a new image file at `path` and return its writer.
pub fn create(path: &Path, options: &CreateOptions) -> Result<Box<dyn ImageWriter>> {
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::create_with(path, options.cache)?);
    create_storage(storage, options).map_err(|e| e.within(path.display()))
}

/// Create a new image in `storage` (which should be empty) and return its writer.
pub fn create_storage(
    storage: Arc<dyn Storage>,
    options: &CreateOptions,
) -> Result<Box<dyn ImageWriter>> {
    match options.format {
        Format::Raw => raw::create(storage, options),
        Format::Qcow2 => qcow2::create(storage, options),
        Format::Vhd => vhd::create(storage, options),
        Format::Vmdk => vmdk::create(storage, options),
        Format::Vhdx => Err(Error::unsupported(
            "writing VHDX is not supported; VHDX is read-only in Ikon",
        )),
        f @ (Format::Bochs | Format::Parallels | Format::Cloop | Format::Dmg) => {
            Err(Error::unsupported(format!("writing {f} is not supported")))
        }
    }
}
