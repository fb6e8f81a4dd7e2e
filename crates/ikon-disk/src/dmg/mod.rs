//! dmg (placeholder).
use crate::device::DiskImage;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::OpenContext;
use std::sync::Arc;
/// Open.
pub fn open(_s: Arc<dyn Storage>, _ctx: &OpenContext) -> Result<Box<dyn DiskImage>> {
    Err(Error::unsupported("dmg"))
}
