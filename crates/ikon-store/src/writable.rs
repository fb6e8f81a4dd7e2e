//! A writable disk over the chunk store (copy-on-write): it starts from a manifest it may
//! share with an image or snapshot, keeps changed chunks in memory, and on `flush` (or when
//! too many chunks are dirty) writes them as new chunks and commits a new manifest version
//! under its own id. The shared manifest and its chunks are never modified. A commit holds a
//! [`WriteSession`](crate::WriteSession) from the first chunk written until the caller's hook
//! has recorded the new manifest, so the garbage collector never sees the new chunks
//! unreferenced; no session is held between commits, so an open disk never stalls the
//! collector.
//!
//! Unflushed writes are lost if the process dies, as on any disk with a volatile cache
//! (NBD clients flush to make writes durable).

use crate::manifest::{chunk_count, ChunkHash, Manifest};
use crate::{ManifestRef, Store};
use ikon_disk::device::push_extent;
use ikon_disk::{BlockDevice, Extent, ExtentKind, WritableDevice};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Dirty chunks kept in memory before an automatic commit (64 MiB at 1 MiB chunks).
pub const MAX_DIRTY_CHUNKS: usize = 64;

/// Called after a new manifest version was written, before the commit is reported done:
/// the owner records the reference (e.g. in the catalog). An error fails the flush.
pub type CommitHook = Box<dyn Fn(&ManifestRef) -> Result<(), String> + Send + Sync>;

struct State {
    size: u64,
    chunks: Vec<Option<ChunkHash>>,
    dirty: HashMap<usize, Vec<u8>>,
    /// Changes not yet committed (dirty chunks or chunks zeroed in place).
    changed: bool,
    /// Set when the disk was deleted: every later request fails.
    closed: bool,
    cache: Vec<(ChunkHash, Arc<Vec<u8>>)>,
}

/// A writable, copy-on-write disk.
pub struct WritableDisk {
    store: Store,
    disk_id: String,
    rt: tokio::runtime::Handle,
    hook: CommitHook,
    state: Mutex<State>,
}

fn err(msg: impl Into<String>) -> ikon_disk::Error {
    ikon_disk::Error::io(std::io::Error::other(msg.into()), "chunk store")
}

fn store_err(e: crate::Error) -> ikon_disk::Error {
    match e.kind {
        crate::ErrorKind::Corrupt | crate::ErrorKind::NotFound => {
            ikon_disk::Error::corrupt(e.to_string())
        }
        _ => err(e.to_string()),
    }
}

fn idx(v: u64) -> ikon_disk::Result<usize> {
    usize::try_from(v).map_err(|_| ikon_disk::Error::invalid("offset out of range"))
}

fn chunks_for(base: &Manifest, size: u64, cs: u32) -> ikon_disk::Result<Vec<Option<ChunkHash>>> {
    let n = idx(chunk_count(size, cs))?;
    if base.chunk_size != cs {
        return Err(ikon_disk::Error::invalid(
            "manifest chunk size differs from the store's",
        ));
    }
    if base.disk_size > size {
        return Err(ikon_disk::Error::invalid(format!(
            "a disk of {size} bytes cannot hold a {}-byte image",
            base.disk_size
        )));
    }
    let mut chunks = base.chunks.clone();
    chunks.resize(n, None);
    Ok(chunks)
}

impl WritableDisk {
    /// Opens `disk_id` with content `base` (its size may grow to `size`; the rest reads as
    /// zeros). Must be called inside a tokio runtime; I/O methods must then be called from
    /// blocking threads.
    pub fn open(
        store: Store,
        disk_id: &str,
        base: &Manifest,
        size: u64,
        hook: CommitHook,
    ) -> ikon_disk::Result<WritableDisk> {
        crate::check_disk_id(disk_id).map_err(store_err)?;
        let chunks = chunks_for(base, size, store.chunk_size())?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| err("a writable disk needs a tokio runtime"))?;
        Ok(WritableDisk {
            store,
            disk_id: disk_id.to_string(),
            rt,
            hook,
            state: Mutex::new(State {
                size,
                chunks,
                dirty: HashMap::new(),
                changed: false,
                closed: false,
                cache: Vec::new(),
            }),
        })
    }

    /// The disk id (its manifests are stored under it).
    pub fn disk_id(&self) -> &str {
        &self.disk_id
    }

    fn lock(&self) -> ikon_disk::Result<MutexGuard<'_, State>> {
        let st = self
            .state
            .lock()
            .map_err(|_| err("disk state poisoned by an earlier failure"))?;
        if st.closed {
            return Err(err(format!("disk {} no longer exists", self.disk_id)));
        }
        Ok(st)
    }

    fn cs(&self) -> u64 {
        u64::from(self.store.chunk_size())
    }

    fn chunk_len(&self, st: &State, i: usize) -> u64 {
        let start = (i as u64) * self.cs();
        self.cs().min(st.size.saturating_sub(start))
    }

    /// The current content of chunk `i` (full slot length, zero padded).
    fn load(&self, st: &mut State, i: usize) -> ikon_disk::Result<Arc<Vec<u8>>> {
        let len = idx(self.chunk_len(st, i))?;
        if let Some(d) = st.dirty.get(&i) {
            return Ok(Arc::new(d.clone()));
        }
        let Some(h) = st.chunks.get(i).copied().flatten() else {
            return Ok(Arc::new(vec![0; len]));
        };
        if let Some((_, d)) = st.cache.iter().find(|(k, _)| *k == h) {
            return Ok(d.clone());
        }
        let mut data = self.store.read_chunk(&h).map_err(store_err)?;
        data.resize(len, 0);
        let data = Arc::new(data);
        if st.cache.len() >= 4 {
            st.cache.remove(0);
        }
        st.cache.push((h, data.clone()));
        Ok(data)
    }

    fn check(&self, st: &State, offset: u64, len: u64) -> ikon_disk::Result<u64> {
        offset
            .checked_add(len)
            .filter(|e| *e <= st.size)
            .ok_or_else(|| {
                ikon_disk::Error::invalid(format!("{len} bytes at {offset} lie past the end"))
            })
    }

    /// Applies `f(chunk_index, range_in_chunk, buffer_offset)` over `[offset, offset+len)`.
    fn for_chunks(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(usize, std::ops::Range<usize>, usize) -> ikon_disk::Result<()>,
    ) -> ikon_disk::Result<()> {
        let cs = self.cs();
        let end = offset + len;
        let mut pos = offset;
        while pos < end {
            let i = idx(pos / cs)?;
            let within = pos % cs;
            let n = (cs - within).min(end - pos);
            let w = idx(within)?;
            f(i, w..w + idx(n)?, idx(pos - offset)?)?;
            pos += n;
        }
        Ok(())
    }

    fn after_write(&self, st: MutexGuard<'_, State>) -> ikon_disk::Result<()> {
        if st.dirty.len() > MAX_DIRTY_CHUNKS {
            self.commit_locked(st)?;
        }
        Ok(())
    }

    /// Writes dirty chunks and a new manifest version, then calls the hook. Returns the new
    /// reference, or None when nothing changed since the last commit.
    pub fn commit(&self) -> ikon_disk::Result<Option<ManifestRef>> {
        let st = self.lock()?;
        self.commit_locked(st)
    }

    fn commit_locked(
        &self,
        mut st: MutexGuard<'_, State>,
    ) -> ikon_disk::Result<Option<ManifestRef>> {
        if !st.changed {
            return Ok(None);
        }
        let session = self
            .rt
            .block_on(self.store.begin_write())
            .map_err(store_err)?;
        let mut keys: Vec<usize> = st.dirty.keys().copied().collect();
        keys.sort_unstable();
        let mut chunks = st.chunks.clone();
        for i in keys {
            if let (Some(data), Some(slot)) = (st.dirty.get(&i), chunks.get_mut(i)) {
                *slot = self
                    .store
                    .write_chunk(data)
                    .map_err(store_err)?
                    .map(|(h, _)| h);
            }
        }
        let m = Manifest {
            disk_size: st.size,
            chunk_size: self.store.chunk_size(),
            chunks,
        };
        let r = self
            .rt
            .block_on(self.store.put_manifest(&self.disk_id, &m))
            .map_err(store_err)?;
        if session.lost() {
            return Err(err(
                "the store session expired during the commit; the write was not recorded",
            ));
        }
        (self.hook)(&r).map_err(err)?;
        let _ = self.rt.block_on(session.end());
        st.chunks = m.chunks;
        st.dirty.clear();
        st.changed = false;
        Ok(Some(r))
    }

    /// Discards every uncommitted change and starts over from `base` at `size` (re-install).
    /// `record` runs while no commit can interleave (it records the new reference, e.g. in
    /// the catalog); on its error nothing changes.
    pub fn reset(
        &self,
        base: &Manifest,
        size: u64,
        record: impl FnOnce() -> Result<(), String>,
    ) -> ikon_disk::Result<()> {
        let mut st = self.lock()?;
        let chunks = chunks_for(base, size, self.store.chunk_size())?;
        record().map_err(err)?;
        st.chunks = chunks;
        st.size = size;
        st.dirty.clear();
        st.cache.clear();
        st.changed = false;
        Ok(())
    }

    /// Marks the disk gone: uncommitted changes are dropped and every later call fails.
    pub fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.closed = true;
            st.dirty.clear();
            st.cache.clear();
        }
    }

    /// Bytes of dirty chunks held in memory.
    pub fn dirty_bytes(&self) -> u64 {
        self.state
            .lock()
            .map(|s| s.dirty.values().map(|d| d.len() as u64).sum())
            .unwrap_or(0)
    }
}

impl WritableDevice for WritableDisk {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> ikon_disk::Result<()> {
        let mut st = self.lock()?;
        self.check(&st, offset, buf.len() as u64)?;
        self.for_chunks(offset, buf.len() as u64, |i, r, b| {
            let len = idx(self.chunk_len(&st, i))?;
            let src = &buf[b..b + r.len()];
            let mut data = if r.start == 0 && r.len() == len {
                vec![0; len]
            } else {
                self.load(&mut st, i)?.as_ref().clone()
            };
            data.get_mut(r.clone())
                .ok_or_else(|| ikon_disk::Error::invalid("write past chunk"))?
                .copy_from_slice(src);
            st.dirty.insert(i, data);
            st.changed = true;
            Ok(())
        })?;
        self.after_write(st)
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> ikon_disk::Result<()> {
        let mut st = self.lock()?;
        self.check(&st, offset, len)?;
        self.for_chunks(offset, len, |i, r, _| {
            let clen = idx(self.chunk_len(&st, i))?;
            if r.start == 0 && r.len() == clen {
                st.dirty.remove(&i);
                if let Some(slot) = st.chunks.get_mut(i) {
                    *slot = None;
                }
            } else {
                let mut data = self.load(&mut st, i)?.as_ref().clone();
                if let Some(d) = data.get_mut(r.clone()) {
                    d.fill(0);
                }
                st.dirty.insert(i, data);
            }
            st.changed = true;
            Ok(())
        })?;
        self.after_write(st)
    }

    fn flush(&self) -> ikon_disk::Result<()> {
        self.commit().map(|_| ())
    }
}

impl BlockDevice for WritableDisk {
    fn len(&self) -> u64 {
        self.state.lock().map(|s| s.size).unwrap_or(0)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> ikon_disk::Result<()> {
        let mut st = self.lock()?;
        self.check(&st, offset, buf.len() as u64)?;
        self.for_chunks(offset, buf.len() as u64, |i, r, b| {
            let out = &mut buf[b..b + r.len()];
            let data = self.load(&mut st, i)?;
            let src = data
                .get(r.clone())
                .ok_or_else(|| ikon_disk::Error::corrupt("chunk shorter than its slot"))?;
            out.copy_from_slice(src);
            Ok(())
        })
    }

    fn as_writable(&self) -> Option<&dyn WritableDevice> {
        Some(self)
    }

    fn map(&self, offset: u64, len: u64) -> ikon_disk::Result<Vec<Extent>> {
        let st = self.lock()?;
        let end = offset.saturating_add(len).min(st.size);
        let cs = self.cs();
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let i = idx(pos / cs)?;
            let chunk_end = ((pos / cs) + 1).saturating_mul(cs).min(end);
            let data = st.dirty.contains_key(&i) || st.chunks.get(i).copied().flatten().is_some();
            let kind = if data {
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
