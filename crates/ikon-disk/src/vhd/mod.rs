//! vhd images (placeholder until the format lands).

use crate::device::DiskImage;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::writer::{CreateOptions, ImageWriter};
use crate::OpenContext;
use std::sync::Arc;

/// Open `storage` as vhd.
pub fn open(_storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Err(Error::unsupported("vhd is not implemented yet"))
}

/// Create a new vhd image.
pub fn create(
    _storage: Arc<dyn Storage>,
    _options: &CreateOptions,
) -> Result<Box<dyn ImageWriter>> {
    Err(Error::unsupported("writing vhd is not implemented yet"))
}
