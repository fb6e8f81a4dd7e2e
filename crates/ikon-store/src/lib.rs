//! Content-addressed chunk store: a disk is a versioned manifest of fixed-size chunks named by
//! their BLAKE3 hash; all-zero chunks are never stored; chunks are write-once and shared by
//! every image, snapshot and instance disk that holds them (deduplication, instant clones).
//!
//! Layout (keys): `format/chunk-size-<n>` (chunk size), `chunks/ab/cd/<hash>`,
//! `manifests/<disk>/<version, 20 digits>`, `sessions/<id>` (live writers), `gc/<id>`
//! (running collections). Writers hold a session while they reference chunks not yet in a
//! committed manifest; the garbage collector announces itself, waits for sessions to end,
//! and only then marks and sweeps (see [`gc`]). Async methods run the backend on blocking
//! threads.
//!
//! No decision here relies on a conditional PUT (some S3 engines ignore `If-None-Match`):
//! chunks are named by their content, so a repeated upload is harmless; every control
//! object has a key unique to its writer (sessions, collections, chunk-size markers); and a
//! manifest's name is decided by its one writer (the service gives every stored disk a
//! fresh id recorded in the catalog), with existing manifests never replaced by other bytes.

mod backend;
mod disk;
mod error;
mod follow;
mod fsck;
pub mod gc;
mod import;
pub mod manifest;
pub mod remote;
mod transfer;
mod writable;

pub use backend::Backend;
pub use disk::ManifestDisk;
pub use error::{Error, ErrorKind, Result};
pub use follow::{file_manifest, Followed, Follower, Known};
pub use fsck::FsckReport;
pub use gc::{GcStats, WriteSession};
pub use import::{ImportStats, ProgressFn};
pub use manifest::{ChunkHash, Manifest};
pub use remote::{Bucket, Location, S3Options};
pub use transfer::TransferStats;
pub use writable::{CommitHook, WritableDisk, MAX_DIRTY_CHUNKS};

use std::path::Path;
use std::sync::Arc;

/// Times a chunk or manifest read from an object store is fetched again when what came
/// back is broken (damage in transit: a body cut short, a flipped bit on the wire, a proxy
/// that garbles it); object_store's own retries cover failed requests, not bad bodies.
pub const TRANSIT_REREADS: u32 = 2;

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
    /// Where the data lives, when known (canonical directory, or S3 endpoint, bucket and
    /// prefix): two handles on the same place are the same store.
    place: Option<String>,
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

/// Checks (recording it on first use) the store's chunk size. Each chunk size ever used
/// has its own marker object, so two first openers racing with different sizes need no
/// conditional PUT: whoever lists after both wrote sees two sizes and backs off (removing
/// its own marker), so at most one of them succeeds.
fn check_format(b: &Backend, chunk_size: u32) -> Result<()> {
    let refuse = |cs: u64| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("this store uses {cs}-byte chunks; it cannot be opened with {chunk_size}"),
        )
    };
    // Stores made by earlier versions recorded the size in `store.json`.
    if let Some(got) = b.get("store.json")? {
        let v: serde_json::Value =
            serde_json::from_slice(&got).map_err(|e| Error::corrupt(format!("store.json: {e}")))?;
        let cs = v["chunk_size"]
            .as_u64()
            .ok_or_else(|| Error::corrupt("store.json has no chunk_size"))?;
        if cs != u64::from(chunk_size) {
            return Err(refuse(cs));
        }
    }
    let others = |b: &Backend| -> Result<Vec<u64>> {
        Ok(b.list("format/")?
            .iter()
            .filter_map(|e| e.key.strip_prefix("format/chunk-size-")?.parse().ok())
            .filter(|cs| *cs != u64::from(chunk_size))
            .collect())
    };
    if let Some(cs) = others(b)?.first() {
        return Err(refuse(*cs));
    }
    let mine = format!("format/chunk-size-{chunk_size}");
    let body = format!("{{\"format\":1,\"chunk_size\":{chunk_size}}}");
    let created = b.put(&mine, body.as_bytes(), false)?;
    if let Some(cs) = others(b)?.first() {
        if created {
            b.delete(&mine)?;
        }
        return Err(refuse(*cs));
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) a store in a local directory.
    pub async fn open_local(dir: &Path, chunk_size: u32) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let place = std::fs::canonicalize(dir)
            .map(|p| format!("dir:{}", p.display()))
            .map_err(|e| Error::io(format!("resolving {}", dir.display()), e))?;
        Self::open_backend(Backend::Local(dir.to_path_buf()), chunk_size, Some(place)).await
    }

    /// Opens (creating if needed) a store in any object store.
    pub async fn open_object_store(
        os: Arc<dyn object_store::ObjectStore>,
        chunk_size: u32,
    ) -> Result<Store> {
        Self::open_object_store_at(os, chunk_size, None).await
    }

    /// Like [`Store::open_object_store`], naming the place (see [`Store::same_as`]).
    pub(crate) async fn open_object_store_at(
        os: Arc<dyn object_store::ObjectStore>,
        chunk_size: u32,
        place: Option<String>,
    ) -> Result<Store> {
        let rt = tokio::runtime::Handle::current();
        Self::open_backend(Backend::Object(os, rt), chunk_size, place).await
    }

    async fn open_backend(
        backend: Backend,
        chunk_size: u32,
        place: Option<String>,
    ) -> Result<Store> {
        manifest::check_chunk_size(chunk_size)?;
        let b = backend.clone();
        blocking(move || check_format(&b, chunk_size)).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                chunk_size,
                place,
            }),
        })
    }

    /// Whether `other` is this store: the same handle, or a handle on the same place (the
    /// same directory, or the same S3 endpoint, bucket and prefix). Garbage collection and
    /// copies rely on it: one place must never be treated as two stores.
    pub fn same_as(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || matches!((&self.inner.place, &other.inner.place), (Some(a), Some(b)) if a == b)
    }

    /// Chunk size in bytes.
    pub fn chunk_size(&self) -> u32 {
        self.inner.chunk_size
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// How many more times an object is fetched when what came back was broken in
    /// transit: from an object store, [`TRANSIT_REREADS`]; from a local directory, none (a
    /// damaged local file reads the same again).
    fn rereads(&self) -> u32 {
        match self.backend() {
            Backend::Object(..) => TRANSIT_REREADS,
            Backend::Local(_) => 0,
        }
    }

    /// Reads and verifies one chunk (blocking; for sync callers). From an object store, a
    /// chunk whose body broke off or whose bytes do not match its hash is fetched again (up
    /// to [`TRANSIT_REREADS`] times): damage in transit is not damage in the store.
    pub fn read_chunk(&self, h: &ChunkHash) -> Result<Vec<u8>> {
        let mut attempt = 0;
        loop {
            let last = attempt >= self.rereads();
            attempt += 1;
            let data = match self.backend().get(&h.key()) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("chunk {h} is missing from the store"),
                    ))
                }
                Err(e) if !last => {
                    tracing::warn!(chunk = %h, attempt, "reading a chunk failed ({e}); reading it again");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if ChunkHash::of(&data) == *h {
                if data.len() > self.chunk_size() as usize {
                    return Err(Error::corrupt(format!(
                        "chunk {h} is larger than the chunk size"
                    )));
                }
                return Ok(data);
            }
            if last {
                return Err(Error::corrupt(format!(
                    "chunk {h} is damaged: its content no longer matches its hash"
                )));
            }
            tracing::warn!(chunk = %h, attempt, "chunk did not match its hash; reading it again");
        }
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

    /// Writes `m` as the next version of `disk_id`. The caller must be the disk id's only
    /// writer (the service writes each disk id from one task); the version is the next free
    /// one and an existing manifest is never replaced (see [`Store::put_manifest_at`]).
    pub async fn put_manifest(&self, disk_id: &str, m: &Manifest) -> Result<ManifestRef> {
        check_disk_id(disk_id)?;
        for _ in 0..16 {
            let next = self
                .manifest_versions(disk_id)
                .await?
                .last()
                .copied()
                .unwrap_or(0)
                + 1;
            let r = ManifestRef {
                disk_id: disk_id.to_string(),
                version: next,
            };
            match self.put_manifest_at(&r, m).await {
                Ok(()) => return Ok(r),
                Err(e) if e.kind == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("could not write a new version of {disk_id}"),
        ))
    }

    /// Writes `m` as exactly `r` (a name decided by the caller, e.g. a copy of another
    /// store's manifest). Writing the same bytes again is harmless; a different manifest
    /// already there is a Conflict, never replaced.
    pub async fn put_manifest_at(&self, r: &ManifestRef, m: &Manifest) -> Result<()> {
        check_disk_id(&r.disk_id)?;
        if m.chunk_size != self.chunk_size() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "manifest chunk size differs from the store's",
            ));
        }
        let bytes = m.encode();
        let key = format!("manifests/{}/{:020}", r.disk_id, r.version);
        let b = self.backend().clone();
        let what = format!("manifest {} version {}", r.disk_id, r.version);
        blocking(move || {
            if let Some(existing) = b.get(&key)? {
                return if existing == bytes {
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorKind::Conflict,
                        format!("{what} already exists with other content"),
                    ))
                };
            }
            if b.put(&key, &bytes, false)? {
                return Ok(());
            }
            // Lost a race with another writer of the same name.
            match b.get(&key)? {
                Some(existing) if existing == bytes => Ok(()),
                _ => Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{what} was written by someone else"),
                )),
            }
        })
        .await
    }

    /// Whether a manifest exists in this store.
    pub async fn has_manifest(&self, r: &ManifestRef) -> Result<bool> {
        check_disk_id(&r.disk_id)?;
        let b = self.backend().clone();
        let key = format!("manifests/{}/{:020}", r.disk_id, r.version);
        blocking(move || b.exists(&key)).await
    }

    /// Reads a manifest.
    pub async fn get_manifest(&self, r: &ManifestRef) -> Result<Manifest> {
        check_disk_id(&r.disk_id)?;
        let key = format!("manifests/{}/{:020}", r.disk_id, r.version);
        let mut attempt = 0;
        let m = loop {
            let last = attempt >= self.rereads();
            attempt += 1;
            let b = self.backend().clone();
            let k = key.clone();
            let data = match blocking(move || b.get(&k)).await {
                Ok(Some(d)) => d,
                Ok(None) => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "manifest {} version {} does not exist",
                            r.disk_id, r.version
                        ),
                    ))
                }
                Err(e) if !last => {
                    tracing::warn!(manifest = %key, attempt, "reading a manifest failed ({e}); reading it again");
                    continue;
                }
                Err(e) => return Err(e),
            };
            // The manifest carries its own checksum: a garbled copy is fetched again.
            match Manifest::decode(&data) {
                Ok(m) => break m,
                Err(e) if !last => {
                    tracing::warn!(manifest = %key, attempt, "manifest did not decode ({}); reading it again", e.context);
                }
                Err(e) => {
                    return Err(Error::corrupt(format!(
                        "manifest {} v{}: {}",
                        r.disk_id, r.version, e.context
                    )))
                }
            }
        };
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
