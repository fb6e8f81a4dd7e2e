//! vhdx images (placeholder until the format lands).

use crate::device::DiskImage;
use crate::error::{Error, Result};
use crate::storage::Storage;

use crate::OpenContext;
use std::sync::Arc;

/// Open `storage` as vhdx.
pub fn open(_storage: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Err(Error::unsupported("vhdx is not implemented yet"))
}
