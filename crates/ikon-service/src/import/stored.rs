//! An imported file once it is in the chunk store, read by the disk engine in place.

/// A file held in the chunk store, as the disk engine's storage (read-only).
pub(crate) struct StoredFile(pub(crate) ikon_store::ManifestDisk);

impl std::fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the imported file (in the chunk store)")
    }
}

impl ikon_disk::Storage for StoredFile {
    fn size(&self) -> ikon_disk::Result<u64> {
        Ok(ikon_disk::BlockDevice::len(&self.0))
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> ikon_disk::Result<()> {
        ikon_disk::BlockDevice::read_exact_at(&self.0, buf, offset)
    }
    fn write_all_at(&self, _: &[u8], _: u64) -> ikon_disk::Result<()> {
        Err(ikon_disk::Error::read_only(
            "the imported file is read-only",
        ))
    }
    fn set_size(&self, _: u64) -> ikon_disk::Result<()> {
        Err(ikon_disk::Error::read_only(
            "the imported file is read-only",
        ))
    }
    fn sync(&self) -> ikon_disk::Result<()> {
        Ok(())
    }
    fn name(&self) -> String {
        "the imported file".into()
    }
}
