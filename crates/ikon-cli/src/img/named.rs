//! A source image that names its file in every error. Opening an image already names the
//! file; this adapter does the same for what goes wrong afterwards (a table read past the end
//! of a truncated file while mapping, converting or inspecting), so every message the toolbox
//! prints says which of the user's files it is about.

use ikon_disk::{BlockDevice, CheckReport, DiskImage, Error, Extent, ImageInfo, Result};
use std::path::Path;

/// `inner`, whose errors are prefixed with `name` (unless they already start with it).
pub struct Named {
    inner: Box<dyn DiskImage>,
    name: String,
}

impl Named {
    /// Wrap an opened image with the path the user gave for it.
    pub fn wrap(inner: Box<dyn DiskImage>, path: &Path) -> Box<dyn DiskImage> {
        Box::new(Named {
            inner,
            name: path.display().to_string(),
        })
    }

    fn name<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e: Error| {
            if e.context().starts_with(&self.name) {
                e
            } else {
                e.within(&self.name)
            }
        })
    }
}

impl BlockDevice for Named {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.name(self.inner.read_exact_at(buf, offset))
    }
    fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        self.name(self.inner.map(offset, len))
    }
}

impl DiskImage for Named {
    fn info(&self) -> ImageInfo {
        self.inner.info()
    }
    fn check(&self) -> Result<CheckReport> {
        self.name(self.inner.check())
    }
}
