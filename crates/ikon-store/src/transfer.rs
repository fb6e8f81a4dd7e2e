//! Copying a disk from one store to another (cross-region copy): only the chunks the
//! destination lacks are read and sent; chunks it already holds (from any other disk) are
//! reused, because a chunk's name is its content. The manifest is written last, under the
//! same name, inside the destination's write session (so its garbage collector cannot
//! remove a chunk the copy found present before the manifest is committed).

use crate::gc::WriteSession;
use crate::import::ProgressFn;
use crate::manifest::{ChunkHash, Manifest};
use crate::{Error, ErrorKind, ManifestRef, Result, Store};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a copy between stores did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransferStats {
    /// Distinct non-zero chunks the disk references.
    pub chunks: u64,
    /// Of those, chunks the destination already held.
    pub present_chunks: u64,
    /// Chunks sent.
    pub copied_chunks: u64,
    /// Bytes sent (chunk payloads).
    pub copied_bytes: u64,
}

/// Threads copying chunks at once (object stores are latency-bound).
const COPY_THREADS: usize = 4;

impl WriteSession {
    /// Copies the disk `r` of `src` into this session's store under the same name (see the
    /// module docs). `progress(done, total)` counts chunks examined. Copying a store onto
    /// itself moves nothing.
    pub async fn copy_disk_from(
        &self,
        src: &Store,
        r: &ManifestRef,
        progress: ProgressFn,
    ) -> Result<(Manifest, TransferStats)> {
        let m = src.get_manifest(r).await?;
        let dst = self.store().clone();
        let distinct: Vec<ChunkHash> = {
            let mut seen = HashSet::new();
            m.chunks
                .iter()
                .flatten()
                .filter(|h| seen.insert(**h))
                .copied()
                .collect()
        };
        let chunks = distinct.len() as u64;
        if dst.same_as(src) {
            progress(chunks, chunks);
            return Ok((
                m,
                TransferStats {
                    chunks,
                    present_chunks: chunks,
                    ..TransferStats::default()
                },
            ));
        }
        if m.chunk_size != dst.chunk_size() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the destination store uses {}-byte chunks, the source {}",
                    dst.chunk_size(),
                    m.chunk_size
                ),
            ));
        }
        let src = src.clone();
        let stats = tokio::task::spawn_blocking(move || {
            copy_chunks(&src, &dst, &distinct, progress.as_ref())
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("copy worker failed: {e}")))??;
        if self.lost() {
            return Err(Error::new(
                ErrorKind::Busy,
                "the write session expired during the copy",
            ));
        }
        self.store().put_manifest_at(r, &m).await?;
        Ok((m, stats))
    }
}

fn copy_chunks(
    src: &Store,
    dst: &Store,
    hashes: &[ChunkHash],
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<TransferStats> {
    let total = hashes.len() as u64;
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let present = AtomicU64::new(0);
    let copied = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..COPY_THREADS {
            s.spawn(|| loop {
                if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let Some(h) = hashes.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let r = (|| -> Result<()> {
                    if dst.backend().exists(&h.key())? {
                        present.fetch_add(1, Ordering::SeqCst);
                        return Ok(());
                    }
                    // Read through the verifying path: a damaged source chunk is an error,
                    // never copied.
                    let data = src.read_chunk(h)?;
                    dst.backend().put(&h.key(), &data, false)?;
                    copied.fetch_add(1, Ordering::SeqCst);
                    bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
                    Ok(())
                })();
                if let Err(e) = r {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(d, total);
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(TransferStats {
        chunks: total,
        present_chunks: present.into_inner(),
        copied_chunks: copied.into_inner(),
        copied_bytes: bytes.into_inner(),
    })
}
