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

use crate::gc::WriteSession;
use crate::manifest::ChunkHash;
use crate::{Error, ErrorKind, Result, Store};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
}

/// A running follower; see the module docs.
pub struct Follower {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl WriteSession {
    /// Starts following `path` (which must exist) with `threads` workers.
    pub fn follow(&self, path: PathBuf, threads: usize) -> Result<Follower> {
        let file = std::fs::File::open(&path)
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
        });
        let mut handles = Vec::new();
        for _ in 0..threads.max(1) {
            let (shared, file, store) = (shared.clone(), file.clone(), self.store.clone());
            handles.push(std::thread::spawn(move || worker(&shared, &file, &store)));
        }
        Ok(Follower {
            shared,
            threads: handles,
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

    /// Bytes of chunk data stored so far.
    pub fn stored_bytes(&self) -> u64 {
        self.shared.stored.load(Ordering::Relaxed)
    }

    /// Stops the workers (each finishes the chunk in hand) and returns what they stored;
    /// empty when the file turned out not to be raw. Blocks until they stop.
    pub fn finish(mut self) -> Known {
        self.stop();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        if self.shared.foreign.load(Ordering::SeqCst) {
            return Known::new();
        }
        self.shared
            .known
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default()
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

/// Claims chunk indexes in order and stores each once the file holds all of it.
fn worker(shared: &Shared, file: &std::fs::File, store: &Store) {
    let cs = u64::from(store.chunk_size());
    let mut buf = vec![0u8; store.chunk_size() as usize];
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
        let r = read_when_there(shared, file, &mut buf, idx * cs);
        let r = r.and_then(|()| {
            if idx == 0 {
                let head = &buf[..buf.len().min(DETECT_HEAD)];
                if !matches!(
                    ikon_disk::detect::detect_bytes(head, None),
                    Ok(ikon_disk::Format::Raw)
                ) {
                    return Err(Error::new(ErrorKind::InvalidInput, "not a raw image"));
                }
            }
            store.write_chunk(&buf)
        });
        match r {
            Ok(w) => {
                if let Ok(mut k) = shared.known.lock() {
                    k.insert(idx, (w, cs));
                }
                shared.stored.fetch_add(cs, Ordering::Relaxed);
            }
            Err(e) => {
                let r_err = Some(e.kind);
                // Not raw, or a read or store failure: the import's own pass does the rest
                // (and reports any error that persists).
                if idx == 0 && !matches!(&r_err, Some(k) if *k == ErrorKind::Io) {
                    shared.foreign.store(true, Ordering::SeqCst);
                }
                if let Ok(mut s) = shared.state.lock() {
                    s.stop = true;
                }
                shared.more.notify_all();
                return;
            }
        }
    }
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
