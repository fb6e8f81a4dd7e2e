//! A manifest as a read-only block device: every chunk read is verified against its hash
//! (a mismatch or a missing chunk is an error naming the chunk, never wrong data), and the
//! mapping query reports stored chunks as data and zero chunks as unallocated.

use crate::manifest::{ChunkHash, Manifest};
use crate::Store;
use ikon_disk::device::push_extent;
use ikon_disk::{BlockDevice, Extent, ExtentKind};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Chunks kept in memory per open disk (sequential readers hit the same chunk repeatedly).
const CACHE_CHUNKS: usize = 4;

/// A read-only view of a manifest.
pub struct ManifestDisk {
    store: Store,
    manifest: Manifest,
    cache: Mutex<VecDeque<(ChunkHash, std::sync::Arc<Vec<u8>>)>>,
}

fn disk_err(e: crate::Error) -> ikon_disk::Error {
    match e.kind {
        crate::ErrorKind::Corrupt | crate::ErrorKind::NotFound => {
            ikon_disk::Error::corrupt(e.to_string())
        }
        _ => ikon_disk::Error::io(std::io::Error::other(e.to_string()), "chunk store"),
    }
}

impl ManifestDisk {
    pub(crate) fn new(store: Store, manifest: Manifest) -> ManifestDisk {
        ManifestDisk {
            store,
            manifest,
            cache: Mutex::new(VecDeque::new()),
        }
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn chunk(&self, h: &ChunkHash) -> ikon_disk::Result<std::sync::Arc<Vec<u8>>> {
        if let Ok(c) = self.cache.lock() {
            if let Some((_, d)) = c.iter().find(|(k, _)| k == h) {
                return Ok(d.clone());
            }
        }
        let data = std::sync::Arc::new(self.store.read_chunk(h).map_err(disk_err)?);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_CHUNKS {
                c.pop_front();
            }
            c.push_back((*h, data.clone()));
        }
        Ok(data)
    }
}

impl BlockDevice for ManifestDisk {
    fn len(&self) -> u64 {
        self.manifest.disk_size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> ikon_disk::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.manifest.disk_size)
            .ok_or_else(|| {
                ikon_disk::Error::invalid(format!(
                    "read of {} bytes at {offset} past the end",
                    buf.len()
                ))
            })?;
        let cs = u64::from(self.manifest.chunk_size);
        let mut pos = offset;
        while pos < end {
            let idx = usize::try_from(pos / cs).map_err(|_| ikon_disk::Error::invalid("offset"))?;
            let within = pos % cs;
            let n = (cs - within).min(end - pos);
            let b0 =
                usize::try_from(pos - offset).map_err(|_| ikon_disk::Error::invalid("offset"))?;
            let b1 = b0 + usize::try_from(n).map_err(|_| ikon_disk::Error::invalid("length"))?;
            let out = &mut buf[b0..b1];
            match self.manifest.chunks.get(idx).copied().flatten() {
                None => out.fill(0),
                Some(h) => {
                    let data = self.chunk(&h)?;
                    let w =
                        usize::try_from(within).map_err(|_| ikon_disk::Error::invalid("offset"))?;
                    // A chunk shorter than its slot is the partial last chunk of a smaller
                    // disk this one grew from: the rest reads as zeros.
                    let avail = data.len().saturating_sub(w).min(out.len());
                    let (head, tail) = out.split_at_mut(avail);
                    head.copy_from_slice(data.get(w..w + avail).unwrap_or_default());
                    tail.fill(0);
                }
            }
            pos += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, len: u64) -> ikon_disk::Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.manifest.disk_size);
        let cs = u64::from(self.manifest.chunk_size);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let idx = usize::try_from(pos / cs).map_err(|_| ikon_disk::Error::invalid("offset"))?;
            let chunk_end = ((pos / cs) + 1).saturating_mul(cs).min(end);
            let kind = if self.manifest.chunks.get(idx).copied().flatten().is_some() {
                ExtentKind::Data
            } else {
                ExtentKind::Unallocated
            };
            push_extent(&mut out, pos, chunk_end - pos, kind, false);
            pos = chunk_end;
        }
        Ok(out)
    }
}
