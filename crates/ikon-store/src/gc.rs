//! Garbage collection that is safe against concurrent writers.
//!
//! A writer that may reference chunks not yet in a committed manifest (an import whose
//! manifest the catalog does not list yet, a dedup hit on a chunk nobody references) holds
//! a [`WriteSession`]: an object `sessions/<id>` holding its expiry, refreshed by a
//! heartbeat. The protocol, through the backend itself so it works across nodes:
//!
//! - a writer first registers its session, *then* lists `gc/`; if a live collection is
//!   announced there it withdraws its session and waits;
//! - the collector first announces itself as `gc/<its id>`, *then* lists `gc/` (another
//!   live collection: it withdraws and reports Busy), *then* waits until no live session
//!   remains.
//!
//! Every object has a key unique to its writer, so nothing depends on conditional PUTs
//! (which some S3 engines ignore). Whichever comes second sees the other, so the collector's mark phase (reading every live
//! manifest the caller lists, after all sessions ended and their references were
//! committed) never misses a chunk a writer relies on. Chunks newer than the collection's
//! start are also kept. A crashed writer's or collector's object expires on its own.

use crate::backend::TMP_PREFIX;
use crate::{blocking, ChunkHash, Error, ErrorKind, ManifestRef, Result, Store};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Session lifetime without a heartbeat, seconds.
pub const SESSION_TTL: i64 = 60;
/// Collector lock lifetime, seconds.
pub const GC_TTL: i64 = 900;
/// How long a writer waits for a running collection.
const WRITER_WAIT: Duration = Duration::from_secs(600);
/// How long the collector waits for writers to finish.
const GC_WAIT: Duration = Duration::from_secs(120);
/// Temporary files older than this are debris of a crash.
const TMP_AGE: i64 = 3600;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

fn random_id() -> String {
    let mut b = [0u8; 12];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    if ok.is_err() {
        b[..8].copy_from_slice(
            &SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_le_bytes()[..8],
        );
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn expiry(data: Option<Vec<u8>>) -> Option<i64> {
    data.and_then(|d| String::from_utf8(d).ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Live collections announced under `gc/` other than `mine`; expired announcements (a
/// crashed collector) are removed on the way.
fn live_collections(b: &crate::Backend, mine: Option<&str>) -> Result<usize> {
    let mut n = 0;
    for e in b.list("gc/")? {
        if Some(e.key.as_str()) == mine
            || e.key
                .rsplit('/')
                .next()
                .is_some_and(|x| x.starts_with(TMP_PREFIX))
        {
            continue;
        }
        match expiry(b.get(&e.key)?) {
            Some(u) if u > now() => n += 1,
            Some(_) => b.delete(&e.key)?,
            None => {}
        }
    }
    Ok(n)
}

/// What a collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Chunks referenced by live manifests.
    pub live_chunks: u64,
    /// Chunks deleted.
    pub deleted_chunks: u64,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// Manifests deleted (when asked).
    pub deleted_manifests: u64,
    /// Temporary files removed.
    pub removed_tmp: u64,
}

/// A registered writer; end it (or drop it) once its references are committed.
pub struct WriteSession {
    pub(crate) store: Store,
    key: String,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl WriteSession {
    /// Whether the heartbeat failed (the session may have expired: the writer must not
    /// commit references to chunks it did not write itself).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Ends the session.
    pub async fn end(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let beat = self.beat.take();
        let b = self.store.backend().clone();
        let key = self.key.clone();
        blocking(move || {
            if let Some(h) = beat {
                let _ = h.join();
            }
            b.delete(&key)
        })
        .await
    }
}

impl Drop for WriteSession {
    fn drop(&mut self) {
        // Never block here (the owner may be an async task): stop the heartbeat and delete
        // the session object on a blocking thread. If that fails, the session expires.
        if self.beat.take().is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let b = self.store.backend().clone();
            let key = self.key.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(move || b.delete(&key));
                }
                Err(_) => {
                    let _ = b.delete(&key);
                }
            }
        }
    }
}

impl Store {
    /// Registers a writer (waits while a collection runs).
    pub async fn begin_write(&self) -> Result<WriteSession> {
        let key = format!("sessions/{}", random_id());
        let b = self.backend().clone();
        let k = key.clone();
        blocking(move || {
            let started = std::time::Instant::now();
            loop {
                b.put(&k, (now() + SESSION_TTL).to_string().as_bytes(), true)?;
                match live_collections(&b, None)? {
                    n if n > 0 => {
                        b.delete(&k)?;
                        if started.elapsed() > WRITER_WAIT {
                            return Err(Error::new(
                                ErrorKind::Busy,
                                "garbage collection holds the store",
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    _ => return Ok(()),
                }
            }
        })
        .await?;
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let beat = {
            let (b, k, stop, lost) = (
                self.backend().clone(),
                key.clone(),
                stop.clone(),
                lost.clone(),
            );
            std::thread::spawn(move || {
                let every = Duration::from_secs(u64::try_from(SESSION_TTL / 3).unwrap_or(20));
                let mut last = std::time::Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= every {
                        if b.put(&k, (now() + SESSION_TTL).to_string().as_bytes(), true)
                            .is_err()
                        {
                            lost.store(true, Ordering::SeqCst);
                        }
                        last = std::time::Instant::now();
                    }
                }
            })
        };
        Ok(WriteSession {
            store: self.clone(),
            key,
            stop,
            lost,
            beat: Some(beat),
        })
    }

    /// Deletes every chunk no manifest in `live` references (and, with
    /// `delete_other_manifests`, every manifest not in `live`). `live` must be complete:
    /// every manifest any image, snapshot or disk still uses — including what writers that
    /// are running now will commit; a caller whose live set comes from a catalog should use
    /// [`Store::gc_with`], which reads it after those writers finished.
    pub async fn gc(&self, live: &[ManifestRef], delete_other_manifests: bool) -> Result<GcStats> {
        self.gc_with(|| async move { Ok(live.to_vec()) }, delete_other_manifests)
            .await
    }

    /// Like [`Store::gc`], reading the live set with `live` only once every writer session
    /// that was open when the collection started has ended (so references committed by
    /// those writers are in it) and no new one can start.
    pub async fn gc_with<F, Fut>(&self, live: F, delete_other_manifests: bool) -> Result<GcStats>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<ManifestRef>>>,
    {
        let b = self.backend().clone();
        let started = now();
        let started_ms = now_ms();
        // 1. Announce this collection; another live one: busy.
        let lock = format!("gc/{}", random_id());
        let lock_until = started + GC_TTL;
        let bb = b.clone();
        let key = lock.clone();
        blocking(move || {
            bb.put(&key, lock_until.to_string().as_bytes(), true)?;
            if live_collections(&bb, Some(&key))? > 0 {
                bb.delete(&key)?;
                return Err(Error::new(
                    ErrorKind::Busy,
                    "another garbage collection is running",
                ));
            }
            Ok(())
        })
        .await?;
        let result = self.collect(live, delete_other_manifests, started_ms).await;
        let bb = b.clone();
        let _ = blocking(move || bb.delete(&lock)).await;
        result
    }

    async fn collect<F, Fut>(
        &self,
        live: F,
        delete_other_manifests: bool,
        started_ms: i64,
    ) -> Result<GcStats>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<ManifestRef>>>,
    {
        let b = self.backend().clone();
        // 2. Wait for every live writer session to end.
        let bb = b.clone();
        blocking(move || {
            let t = std::time::Instant::now();
            loop {
                let mut busy = false;
                for e in bb.list("sessions/")? {
                    if e.key
                        .rsplit('/')
                        .next()
                        .is_some_and(|n| n.starts_with(TMP_PREFIX))
                    {
                        continue;
                    }
                    match expiry(bb.get(&e.key)?) {
                        Some(u) if u > now() => busy = true,
                        _ => bb.delete(&e.key)?,
                    }
                }
                if !busy {
                    return Ok(());
                }
                if t.elapsed() > GC_WAIT {
                    return Err(Error::new(
                        ErrorKind::Busy,
                        "writers did not finish; garbage collection postponed",
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .await?;
        // 3. Mark: the live set as of now (every writer has committed), and every live
        // manifest must be readable, or nothing is swept.
        let live = live().await?;
        let live = live.as_slice();
        let mut keep: HashSet<ChunkHash> = HashSet::new();
        for r in live {
            let m = self.get_manifest(r).await?;
            keep.extend(m.chunks.iter().flatten().copied());
        }
        let mut stats = GcStats {
            live_chunks: keep.len() as u64,
            ..GcStats::default()
        };
        // 4. Sweep.
        let live_keys: HashSet<String> = live
            .iter()
            .map(|r| format!("manifests/{}/{:020}", r.disk_id, r.version))
            .collect();
        let bb = b.clone();
        let stats = blocking(move || {
            for e in bb.list("chunks/")? {
                let name = e.key.rsplit('/').next().unwrap_or("");
                if name.starts_with(TMP_PREFIX) {
                    if e.modified_ms < now_ms() - TMP_AGE * 1000 {
                        bb.remove_tmp(&e.key)?;
                        stats.removed_tmp += 1;
                    }
                    continue;
                }
                let Ok(h) = name.parse::<ChunkHash>() else {
                    continue;
                };
                if !keep.contains(&h) && e.modified_ms < started_ms {
                    bb.delete(&e.key)?;
                    stats.deleted_chunks += 1;
                    stats.deleted_bytes += e.size;
                }
            }
            if delete_other_manifests {
                for e in bb.list("manifests/")? {
                    let name = e.key.rsplit('/').next().unwrap_or("");
                    if name.starts_with(TMP_PREFIX) {
                        continue;
                    }
                    if !live_keys.contains(&e.key) && e.modified_ms < started_ms {
                        bb.delete(&e.key)?;
                        stats.deleted_manifests += 1;
                    }
                }
            }
            Ok(stats)
        })
        .await?;
        Ok(stats)
    }
}
