//! Storing a file's chunks while the file is still being written (an import's download), so
//! that hashing and storing overlap the transfer instead of following it.
//!
//! The follower treats the file as a raw disk (chunk `i` is the file's bytes
//! `[i * chunk_size, (i + 1) * chunk_size)`); the importer uses what it found only if the file
//! then opens as a raw image, where guest offsets are file offsets (see
//! [`crate::WriteSession::import_device_with`]). It gives up as soon as the file's first bytes
//! carry another format's signature (qcow2, VMDK, VHDX, dynamic VHD: their guest data is not
//! laid out that way). Chunks it stored for a file that is later refused are referenced by no
//! manifest: the write session keeps them until it ends, and the next collection removes them.
//!
//! With `punch`, once the file's start has shown it is raw, every stored chunk's range is
//! punched out of the file: its dirty pages are dropped rather than written back, so a large
//! download does not cost its size in disk writes twice. The file then no longer holds those
//! bytes; the importer reads them from the store (see [`Followed`]).

use crate::gc::WriteSession;
use crate::manifest::ChunkHash;
use crate::{Error, ErrorKind, Result, Store};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Bytes at the start of a file that format detection looks at
/// ([`ikon_disk::detect::detect_bytes`] reads up to 64 KiB).
const DETECT_HEAD: usize = 64 * 1024;

/// Chunks already stored, by chunk index: the hash (`None` = all zeros) and whether it was
/// new, and the chunk's length.
pub type Known = BTreeMap<u64, (Option<(ChunkHash, bool)>, u64)>;

struct State {
    /// Bytes of the file known to be written.
    ready: u64,
    /// Next chunk index to claim.
    next: u64,
    /// No more chunks are wanted (finished, or not a raw file).
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    more: Condvar,
    known: Mutex<Known>,
    /// Nothing found is usable: the file is not a raw image, or it was rewritten.
    foreign: AtomicBool,
    /// Bytes stored so far.
    stored: AtomicU64,
    /// Chunk 0 showed a raw file (punching may start).
    raw: AtomicBool,
    /// Punch stored chunks out of the file.
    punch: bool,
    /// Some range was punched.
    punched: AtomicBool,
}

/// What a follower did.
#[derive(Debug, Default)]
pub struct Followed {
    /// The chunks it stored (empty when nothing it found is usable).
    pub known: Known,
    /// Whether it punched stored chunks out of the file: the file is then usable only
    /// together with `known` (which holds every punched chunk), and must not be resumed.
    pub punched: bool,
}

/// Threads writing hashed chunks to the store: each mostly waits for its chunk's fsync,
/// and concurrent fsyncs share journal commits, so there are more of them than cores.
const WRITERS: usize = 4;
/// Hashed chunks waiting for a writer (memory: this many chunk buffers, plus one per
/// thread).
const QUEUE: usize = 4;

/// A hashed chunk on its way to a writer: index, hash, bytes.
type Hashed = (u64, ChunkHash, Vec<u8>);

/// A running follower; see the module docs.
pub struct Follower {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    writers: Vec<JoinHandle<()>>,
}

impl WriteSession {
    /// Starts following `path` (which must exist) with `threads` workers, punching stored
    /// chunks out of it if `punch` (see the module docs).
    pub fn follow(&self, path: PathBuf, threads: usize, punch: bool) -> Result<Follower> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(punch)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let file = Arc::new(file);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: 0,
                next: 0,
                stop: false,
            }),
            more: Condvar::new(),
            known: Mutex::new(Known::new()),
            foreign: AtomicBool::new(false),
            stored: AtomicU64::new(0),
            raw: AtomicBool::new(false),
            punch,
            punched: AtomicBool::new(false),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel::<Hashed>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for _ in 0..threads.max(1) {
            let (shared, file, store, tx) =
                (shared.clone(), file.clone(), self.store.clone(), tx.clone());
            handles.push(std::thread::spawn(move || {
                worker(&shared, &file, store.chunk_size(), &tx);
            }));
        }
        drop(tx);
        let mut writers = Vec::new();
        for _ in 0..WRITERS {
            let (shared, file, store, rx) =
                (shared.clone(), file.clone(), self.store.clone(), rx.clone());
            writers.push(std::thread::spawn(move || {
                writer(&shared, &file, &store, &rx)
            }));
        }
        Ok(Follower {
            shared,
            threads: handles,
            writers,
        })
    }
}

impl Follower {
    /// Says that the file's first `bytes` are written. A smaller value than before means
    /// the file is being rewritten from an earlier point (a download that restarted): what
    /// was stored may no longer match it, so all of it is dropped and following stops.
    pub fn advance(&self, bytes: u64) {
        if let Ok(mut s) = self.shared.state.lock() {
            if bytes < s.ready {
                self.shared.foreign.store(true, Ordering::SeqCst);
                s.stop = true;
            } else {
                s.ready = bytes;
            }
            self.shared.more.notify_all();
        }
    }

    /// Whether it stopped claiming chunks by itself (the file is not raw, was rewritten, or
    /// a read or store failed).
    pub fn stopped(&self) -> bool {
        self.shared.state.lock().map(|s| s.stop).unwrap_or(true)
    }

    /// Bytes of chunk data stored so far.
    pub fn stored_bytes(&self) -> u64 {
        self.shared.stored.load(Ordering::Relaxed)
    }

    /// Stops the workers (each finishes the chunk in hand) and returns what they did; no
    /// chunks when the file turned out not to be raw. Blocks until they stop.
    pub fn finish(mut self) -> Followed {
        self.stop();
        // Hashers first: once they are gone the queue closes and the writers drain it.
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        for h in self.writers.drain(..) {
            let _ = h.join();
        }
        let punched = self.shared.punched.load(Ordering::SeqCst);
        if self.shared.foreign.load(Ordering::SeqCst) {
            // What was stored no longer counts; if ranges were punched, the caller must
            // start the file over (`punched` tells it to).
            return Followed {
                known: Known::new(),
                punched,
            };
        }
        let known = self
            .shared
            .known
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default();
        Followed { known, punched }
    }

    fn stop(&self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.stop = true;
        }
        self.shared.more.notify_all();
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // Dropped without `finish` (the import failed): let the workers end on their own.
        self.stop();
    }
}

/// Claims chunk indexes in order, reads each once the file holds all of it, and hashes it
/// for a writer (all-zero chunks are recorded at once: nothing to store).
fn worker(shared: &Shared, file: &std::fs::File, chunk_size: u32, tx: &SyncSender<Hashed>) {
    let cs = u64::from(chunk_size);
    let len = usize::try_from(chunk_size).unwrap_or(0);
    loop {
        let idx = {
            let Ok(mut s) = shared.state.lock() else {
                return;
            };
            if s.stop {
                return;
            }
            let idx = s.next;
            s.next += 1;
            // Wait until the whole chunk is in the file.
            let need = idx.saturating_add(1).saturating_mul(cs);
            while !s.stop && s.ready < need {
                let Ok(g) = shared.more.wait(s) else { return };
                s = g;
            }
            if s.stop {
                return;
            }
            idx
        };
        let mut buf = vec![0u8; len];
        let r = read_when_there(shared, file, &mut buf, idx * cs).and_then(|()| {
            if idx == 0 {
                let head = &buf[..buf.len().min(DETECT_HEAD)];
                if !matches!(
                    ikon_disk::detect::detect_bytes(head, None),
                    Ok(ikon_disk::Format::Raw)
                ) {
                    return Err(Error::new(ErrorKind::InvalidInput, "not a raw image"));
                }
                shared.raw.store(true, Ordering::SeqCst);
            }
            Ok(())
        });
        if let Err(e) = r {
            // Not raw, or a read failure: the import's own pass does the rest (and reports
            // any error that persists).
            if idx == 0 && e.kind != ErrorKind::Io {
                shared.foreign.store(true, Ordering::SeqCst);
            }
            halt(shared);
            return;
        }
        if buf.iter().all(|b| *b == 0) {
            if let Ok(mut k) = shared.known.lock() {
                k.insert(idx, (None, cs));
            }
            punch(shared, file, idx * cs, cs);
            continue;
        }
        let h = ChunkHash::of(&buf);
        if tx.send((idx, h, buf)).is_err() {
            return;
        }
    }
}

/// Stores hashed chunks, records them and (when punching) frees their range of the file.
fn writer(shared: &Shared, file: &std::fs::File, store: &Store, rx: &Mutex<Receiver<Hashed>>) {
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok((idx, h, buf)) = next else { return };
        let len = buf.len() as u64;
        match store.backend().put(&h.key(), &buf, false) {
            Ok(created) => {
                if let Ok(mut k) = shared.known.lock() {
                    k.insert(idx, (Some((h, created)), len));
                }
                shared.stored.fetch_add(len, Ordering::Relaxed);
                punch(shared, file, idx * len, len);
            }
            Err(_) => halt(shared),
        }
    }
}

/// Frees a recorded chunk's range of the file when punching: only once the file is known
/// raw (a qcow2's clusters must stay for the importer), and only while nothing said the file
/// is being rewritten.
fn punch(shared: &Shared, file: &std::fs::File, offset: u64, len: u64) {
    if shared.punch
        && shared.raw.load(Ordering::SeqCst)
        && !shared.foreign.load(Ordering::SeqCst)
        && ikon_disk::storage::punch_hole(file, offset, len).is_ok()
    {
        shared.punched.store(true, Ordering::SeqCst);
    }
}

/// Stops claiming chunks (what is queued is still stored).
fn halt(shared: &Shared) {
    if let Ok(mut s) = shared.state.lock() {
        s.stop = true;
    }
    shared.more.notify_all();
}

/// Reads `buf` at `offset`. The writer's word may run slightly ahead of the file (its own
/// buffers), so a short read waits a moment (or for the writer to say more) and tries again.
fn read_when_there(
    shared: &Shared,
    file: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
) -> Result<()> {
    let poisoned = || Error::new(ErrorKind::Io, "follower state poisoned");
    loop {
        match file.read_exact_at(buf, offset) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                let s = shared.state.lock().map_err(|_| poisoned())?;
                if s.stop {
                    return Err(Error::new(ErrorKind::Io, "stopped"));
                }
                let (s, _) = shared
                    .more
                    .wait_timeout(s, std::time::Duration::from_millis(20))
                    .map_err(|_| poisoned())?;
                if s.stop {
                    return Err(Error::new(ErrorKind::Io, "stopped"));
                }
            }
            Err(e) => return Err(Error::new(ErrorKind::Io, format!("reading the spool: {e}"))),
        }
    }
}

/// The manifest of the whole followed file at `path` (as a raw disk of the file's length),
/// taking the chunks in `known` and reading and storing the others (the tail, and any the
/// follower did not reach) from the file; those are added to `known`. Blocking.
pub fn file_manifest(
    store: &Store,
    path: &std::path::Path,
    known: &mut Known,
) -> Result<crate::Manifest> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(format!("stat {}", path.display()), e))?
        .len();
    let cs = store.chunk_size();
    let mut m = crate::Manifest::empty(size, cs)?;
    let mut buf = vec![0u8; cs as usize];
    for i in 0..m.chunks.len() {
        let idx = i as u64;
        let len = m.chunk_len(i);
        let w = match known.get(&idx) {
            Some((w, l)) if *l == len => *w,
            _ => {
                let data = &mut buf[..usize::try_from(len).unwrap_or(0)];
                file.read_exact_at(data, idx * u64::from(cs))
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                let w = store.write_chunk(data)?;
                known.insert(idx, (w, len));
                w
            }
        };
        m.chunks[i] = w.map(|(h, _)| h);
    }
    Ok(m)
}
