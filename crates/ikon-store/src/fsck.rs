//! A consistency check of one store against the manifests its users still need: every live
//! manifest readable, every chunk it names present and matching its hash, and the chunks
//! nothing names (orphans: left by an interrupted write, or waiting for a garbage
//! collection). It reads every referenced chunk in full, and changes nothing.

use crate::backend::TMP_PREFIX;
use crate::{blocking, ChunkHash, ErrorKind, ManifestRef, Result, Store};
use std::collections::HashSet;

/// What [`Store::fsck`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Live manifests read.
    pub manifests: u64,
    /// Live manifests that are missing.
    pub missing_manifests: Vec<ManifestRef>,
    /// Live manifests that cannot be decoded.
    pub corrupt_manifests: Vec<ManifestRef>,
    /// Distinct chunks the live manifests name (all-zero chunks are never stored).
    pub chunks: u64,
    /// Named chunks the store does not hold.
    pub missing_chunks: Vec<ChunkHash>,
    /// Named chunks whose content no longer matches their hash.
    pub corrupt_chunks: Vec<ChunkHash>,
    /// Stored chunks no live manifest names.
    pub orphan_chunks: u64,
    /// Bytes those orphans take.
    pub orphan_bytes: u64,
}

impl FsckReport {
    /// Nothing missing, damaged or orphaned.
    pub fn is_clean(&self) -> bool {
        self.missing_manifests.is_empty()
            && self.corrupt_manifests.is_empty()
            && self.missing_chunks.is_empty()
            && self.corrupt_chunks.is_empty()
            && self.orphan_chunks == 0
    }

    /// Adds `other`'s findings (another store's).
    pub fn add(&mut self, other: FsckReport) {
        self.manifests += other.manifests;
        self.missing_manifests.extend(other.missing_manifests);
        self.corrupt_manifests.extend(other.corrupt_manifests);
        self.chunks += other.chunks;
        self.missing_chunks.extend(other.missing_chunks);
        self.corrupt_chunks.extend(other.corrupt_chunks);
        self.orphan_chunks += other.orphan_chunks;
        self.orphan_bytes += other.orphan_bytes;
    }
}

impl Store {
    /// Checks this store against `live`, the manifests still in use that it should hold.
    /// Orphans include the chunks of writes in progress: check a quiet store, or after a
    /// garbage collection.
    pub async fn fsck(&self, live: &[ManifestRef]) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let mut named: HashSet<ChunkHash> = HashSet::new();
        for r in live {
            match self.get_manifest(r).await {
                Ok(m) => {
                    report.manifests += 1;
                    named.extend(m.chunks.iter().flatten().copied());
                }
                Err(e) if e.kind == ErrorKind::NotFound => report.missing_manifests.push(r.clone()),
                Err(e) if e.kind == ErrorKind::Corrupt => report.corrupt_manifests.push(r.clone()),
                Err(e) => return Err(e),
            }
        }
        report.chunks = named.len() as u64;
        let store = self.clone();
        blocking(move || {
            let mut sorted: Vec<ChunkHash> = named.iter().copied().collect();
            sorted.sort_unstable();
            for h in sorted {
                match store.read_chunk(&h) {
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => report.missing_chunks.push(h),
                    Err(e) if e.kind == ErrorKind::Corrupt => report.corrupt_chunks.push(h),
                    Err(e) => return Err(e),
                }
            }
            for e in store.backend().list("chunks/")? {
                let name = e.key.rsplit('/').next().unwrap_or("");
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                if let Ok(h) = name.parse::<ChunkHash>() {
                    if !named.contains(&h) {
                        report.orphan_chunks += 1;
                        report.orphan_bytes += e.size;
                    }
                }
            }
            Ok(report)
        })
        .await
    }
}
