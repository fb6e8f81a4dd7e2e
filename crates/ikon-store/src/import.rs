//! Importing a block device: read its data ranges (the mapping query skips zero and
//! unallocated ranges without reading them), hash each chunk on every core, store the
//! missing ones, and write the manifest — inside a write session, so a concurrent garbage
//! collection cannot remove a chunk this import found already present.

use crate::follow::Known;
use crate::gc::WriteSession;
use crate::manifest::{chunk_count, ChunkHash, Manifest};
use crate::{Error, ErrorKind, ManifestRef, Result};
use ikon_disk::{BlockDevice, ExtentKind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportStats {
    /// Virtual size.
    pub logical_bytes: u64,
    /// Bytes of the chunks that hold data (read from the device).
    pub data_bytes: u64,
    /// Chunks newly stored.
    pub new_chunks: u64,
    /// Bytes newly stored.
    pub new_bytes: u64,
    /// Chunks already present (deduplicated).
    pub dedup_chunks: u64,
}

/// One stored chunk: (index, hash and whether it was new, length).
type Stored = (u64, Option<(ChunkHash, bool)>, u64);

/// Progress callback: (bytes done, bytes to do).
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

impl WriteSession {
    /// Imports `dev` as a new version of `disk_id`'s manifest (see the module docs).
    pub async fn import_device(
        &self,
        dev: Arc<dyn BlockDevice>,
        disk_id: &str,
        progress: ProgressFn,
    ) -> Result<(ManifestRef, Manifest, ImportStats)> {
        self.import_device_with(dev, disk_id, progress, Known::new())
            .await
    }

    /// [`WriteSession::import_device`], taking the chunks in `known` as already stored (a
    /// [`crate::Follower`]'s findings: valid only when `dev` is a raw image of the followed
    /// file). A known chunk is used only where its length is the manifest's chunk length.
    pub async fn import_device_with(
        &self,
        dev: Arc<dyn BlockDevice>,
        disk_id: &str,
        progress: ProgressFn,
        known: Known,
    ) -> Result<(ManifestRef, Manifest, ImportStats)> {
        let store = self.store.clone();
        let (manifest, stats) = tokio::task::spawn_blocking(move || {
            chunk_device(&store, dev.as_ref(), &progress, &known)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("import worker failed: {e}")))??;
        if self.lost() {
            return Err(Error::new(
                ErrorKind::Busy,
                "the write session expired during the import",
            ));
        }
        let r = self.store.put_manifest(disk_id, &manifest).await?;
        Ok((r, manifest, stats))
    }
}

fn chunk_device(
    store: &crate::Store,
    dev: &dyn BlockDevice,
    progress: &ProgressFn,
    known: &Known,
) -> Result<(Manifest, ImportStats)> {
    let cs = store.chunk_size();
    let size = dev.len();
    let mut manifest = Manifest::empty(size, cs)?;
    let cs64 = u64::from(cs);
    // Chunks touched by data extents.
    let map = dev
        .map(0, size)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("mapping the source: {e}")))?;
    let mut wanted: Vec<u64> = Vec::new();
    for e in map.iter().filter(|e| e.kind == ExtentKind::Data) {
        let first = e.offset / cs64;
        let last = (e.offset + e.len).div_ceil(cs64).min(chunk_count(size, cs));
        for i in first..last {
            if wanted.last() != Some(&i) {
                wanted.push(i);
            }
        }
    }
    let total: u64 = wanted
        .iter()
        .map(|i| manifest.chunk_len(usize::try_from(*i).unwrap_or(usize::MAX)))
        .sum();
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let results: Mutex<Vec<Stored>> = Mutex::new(Vec::with_capacity(wanted.len()));
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; cs as usize];
                loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&idx) = wanted.get(k) else { return };
                    let len = manifest.chunk_len(usize::try_from(idx).unwrap_or(usize::MAX));
                    let data = &mut buf[..usize::try_from(len).unwrap_or(0)];
                    let r = match known.get(&idx) {
                        Some((w, l)) if *l == len => Ok(*w),
                        _ => dev
                            .read_exact_at(data, idx * cs64)
                            .map_err(|e| {
                                Error::new(
                                    ErrorKind::InvalidInput,
                                    format!("reading the source at {}: {e}", idx * cs64),
                                )
                            })
                            .and_then(|()| store.write_chunk(data)),
                    };
                    match r {
                        Ok(w) => {
                            if let Ok(mut v) = results.lock() {
                                v.push((idx, w, len));
                            }
                            let d = done.fetch_add(len, Ordering::SeqCst) + len;
                            progress(d, total);
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut stats = ImportStats {
        logical_bytes: size,
        ..ImportStats::default()
    };
    for (idx, w, len) in results.into_inner().unwrap_or_default() {
        stats.data_bytes += len;
        if let Some((h, created)) = w {
            if created {
                stats.new_chunks += 1;
                stats.new_bytes += len;
            } else {
                stats.dedup_chunks += 1;
            }
            if let Some(slot) = manifest
                .chunks
                .get_mut(usize::try_from(idx).unwrap_or(usize::MAX))
            {
                *slot = Some(h);
            }
        }
    }
    progress(total, total);
    Ok((manifest, stats))
}
