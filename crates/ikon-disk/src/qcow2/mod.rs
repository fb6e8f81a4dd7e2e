//! qcow2 images (placeholder until the format lands).

use crate::device::DiskImage;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::writer::{CreateOptions, ImageWriter};
use crate::OpenContext;
use std::sync::Arc;

/// Open `storage` as qcow2.
pub fn open(_storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Err(Error::unsupported("qcow2 is not implemented yet"))
}

/// Create a new qcow2 image.
pub fn create(
    _storage: Arc<dyn Storage>,
    _options: &CreateOptions,
) -> Result<Box<dyn ImageWriter>> {
    Err(Error::unsupported("writing qcow2 is not implemented yet"))
}
