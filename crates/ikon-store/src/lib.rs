//! Content-addressed chunk store: a disk is a versioned manifest of fixed-size chunks named by
//! their BLAKE3 hash; all-zero chunks are never stored; chunks are write-once and shared by
//! every image, snapshot and instance disk that holds them (deduplication, instant clones).
//!
//! Layout (keys): `store.json` (chunk size), `chunks/ab/cd/<hash>`,
//! `manifests/<disk>/<version, 20 digits>`, `sessions/<id>` (live writers), `gc/lock`.
//! Writers hold a session while they reference chunks not yet in a committed manifest; the
//! garbage collector takes the lock, waits for sessions to end, and only then marks and
//! sweeps (see [`gc`]). Async methods run the backend on blocking threads.

mod backend;
mod disk;
mod error;
pub mod gc;
mod import;
pub mod manifest;
mod writable;

pub use backend::Backend;
pub use disk::ManifestDisk;
pub use error::{Error, ErrorKind, Result};
pub use gc::{GcStats, WriteSession};
pub use import::ImportStats;
pub use manifest::{ChunkHash, Manifest};
pub use writable::{CommitHook, WritableDisk, MAX_DIRTY_CHUNKS};

use std::path::Path;
use std::sync::Arc;

/// A manifest's name and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestRef {
    /// Disk id.
    pub disk_id: String,
    /// Version (1, 2, ...).
    pub version: u64,
}

/// Figures about the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Chunks held.
    pub chunks: u64,
    /// Bytes of chunks held.
    pub bytes: u64,
}

/// The chunk store (cheap to clone).
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    chunk_size: u32,
}

/// Runs a backend closure on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("store worker failed: {e}")))?
}

pub(crate) fn check_disk_id(id: &str) -> Result<()> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid disk id {id:?}"),
        ))
    }
}

impl Store {
    /// Opens (creating if needed) a store in a local directory.
    pub async fn open_local(dir: &Path, chunk_size: u32) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Self::open_backend(Backend::Local(dir.to_path_buf()), chunk_size).await
    }

    /// Opens (creating if needed) a store in any object store.
    pub async fn open_object_store(
        os: Arc<dyn object_store::ObjectStore>,
        chunk_size: u32,
    ) -> Result<Store> {
        let rt = tokio::runtime::Handle::current();
        Self::open_backend(Backend::Object(os, rt), chunk_size).await
    }

    async fn open_backend(backend: Backend, chunk_size: u32) -> Result<Store> {
        manifest::check_chunk_size(chunk_size)?;
        let b = backend.clone();
        let cs = blocking(move || {
            let want = format!("{{\"format\":1,\"chunk_size\":{chunk_size}}}");
            b.put("store.json", want.as_bytes(), false)?;
            let got = b
                .get("store.json")?
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "store.json vanished"))?;
            let v: serde_json::Value = serde_json::from_slice(&got)
                .map_err(|e| Error::corrupt(format!("store.json: {e}")))?;
            let cs = v["chunk_size"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| Error::corrupt("store.json has no chunk_size"))?;
            Ok(cs)
        })
        .await?;
        if cs != chunk_size {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("this store uses {cs}-byte chunks; it cannot be opened with {chunk_size}"),
            ));
        }
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                chunk_size,
            }),
        })
    }

    /// Chunk size in bytes.
    pub fn chunk_size(&self) -> u32 {
        self.inner.chunk_size
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Reads and verifies one chunk (blocking; for sync callers).
    pub fn read_chunk(&self, h: &ChunkHash) -> Result<Vec<u8>> {
        let data = self.backend().get(&h.key())?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("chunk {h} is missing from the store"),
            )
        })?;
        if ChunkHash::of(&data) != *h {
            return Err(Error::corrupt(format!(
                "chunk {h} is damaged: its content no longer matches its hash"
            )));
        }
        if data.len() > self.chunk_size() as usize {
            return Err(Error::corrupt(format!(
                "chunk {h} is larger than the chunk size"
            )));
        }
        Ok(data)
    }

    /// Stores a chunk unless present (blocking). Returns (hash, newly written); None for an
    /// all-zero chunk, which is never stored.
    pub fn write_chunk(&self, data: &[u8]) -> Result<Option<(ChunkHash, bool)>> {
        if data.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let h = ChunkHash::of(data);
        let created = self.backend().put(&h.key(), data, false)?;
        Ok(Some((h, created)))
    }

    /// Versions of a disk's manifests, ascending.
    pub async fn manifest_versions(&self, disk_id: &str) -> Result<Vec<u64>> {
        check_disk_id(disk_id)?;
        let b = self.backend().clone();
        let prefix = format!("manifests/{disk_id}/");
        let entries = blocking(move || b.list(&prefix)).await?;
        let mut v: Vec<u64> = entries
            .iter()
            .filter_map(|e| e.key.rsplit('/').next().and_then(|n| n.parse().ok()))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// Writes `m` as the next version of `disk_id` (write-once; a lost race retries).
    pub async fn put_manifest(&self, disk_id: &str, m: &Manifest) -> Result<ManifestRef> {
        check_disk_id(disk_id)?;
        if m.chunk_size != self.chunk_size() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "manifest chunk size differs from the store's",
            ));
        }
        let bytes = m.encode();
        for _ in 0..16 {
            let next = self
                .manifest_versions(disk_id)
                .await?
                .last()
                .copied()
                .unwrap_or(0)
                + 1;
            let key = format!("manifests/{disk_id}/{next:020}");
            let b = self.backend().clone();
            let data = bytes.clone();
            if blocking(move || b.put(&key, &data, false)).await? {
                return Ok(ManifestRef {
                    disk_id: disk_id.to_string(),
                    version: next,
                });
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("could not write a new version of {disk_id}"),
        ))
    }

    /// Reads a manifest.
    pub async fn get_manifest(&self, r: &ManifestRef) -> Result<Manifest> {
        check_disk_id(&r.disk_id)?;
        let b = self.backend().clone();
        let key = format!("manifests/{}/{:020}", r.disk_id, r.version);
        let data = blocking(move || b.get(&key)).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "manifest {} version {} does not exist",
                    r.disk_id, r.version
                ),
            )
        })?;
        let m = Manifest::decode(&data).map_err(|e| {
            Error::corrupt(format!(
                "manifest {} v{}: {}",
                r.disk_id, r.version, e.context
            ))
        })?;
        if m.chunk_size != self.chunk_size() {
            return Err(Error::corrupt(format!(
                "manifest {} uses another chunk size",
                r.disk_id
            )));
        }
        Ok(m)
    }

    /// A read-only block device over a manifest (use from blocking threads).
    pub fn open_disk(&self, m: Manifest) -> ManifestDisk {
        ManifestDisk::new(self.clone(), m)
    }

    /// Chunks and bytes held.
    pub async fn stats(&self) -> Result<StoreStats> {
        let b = self.backend().clone();
        let entries = blocking(move || b.list("chunks/")).await?;
        let mut s = StoreStats::default();
        for e in entries.iter().filter(|e| {
            !e.key
                .rsplit('/')
                .next()
                .unwrap_or("")
                .starts_with(backend::TMP_PREFIX)
        }) {
            s.chunks += 1;
            s.bytes += e.size;
        }
        Ok(s)
    }
}
