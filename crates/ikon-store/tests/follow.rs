//! The follower (chunks stored while a file is still being written): an import that uses
//! its findings stores the same manifest as one that reads everything afterwards, and reads
//! only what the follower had not done; a file that is not raw, or that is rewritten from an
//! earlier point, yields nothing; chunks past what the writer said is written are not taken;
//! a punching follower empties the file's stored ranges and the file's manifest rebuilt from
//! its findings is the file's.

use ikon_store::{Follower, Known, Store, WriteSession};
use std::io::Write;
use std::sync::Arc;

const MIBU: usize = 1 << 20;

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

async fn store() -> Store {
    Store::open_object_store(Arc::new(object_store::memory::InMemory::new()), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ikon-follow-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&d);
    d
}

/// A fresh file `name` holding `initial`, a write session on `store`, and a follower of the
/// file (2 threads; punching when `punch`).
async fn following(
    store: &Store,
    name: &str,
    initial: &[u8],
    punch: bool,
) -> (std::path::PathBuf, WriteSession, Follower) {
    let path = tmp(name);
    std::fs::write(&path, initial).unwrap_or_else(|e| panic!("{e}"));
    let session = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
    let follower = session
        .follow(path.clone(), 2, punch)
        .unwrap_or_else(|e| panic!("{e}"));
    (path, session, follower)
}

/// Writes `content` to `path` a MiB at a time, telling `advance` after each.
fn write_following(path: &std::path::Path, content: &[u8], advance: impl Fn(u64)) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut done = 0u64;
    for part in content.chunks(MIBU) {
        f.write_all(part).unwrap_or_else(|e| panic!("{e}"));
        done += part.len() as u64;
        advance(done);
    }
}

/// Waits (at most 20 s) until `done` holds.
fn until(done: impl Fn() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

async fn follow_and_import(store: &Store, content: Vec<u8>, name: &str) -> (Known, bool) {
    let (path, session, follower) = following(store, name, b"", false).await;
    let (p, c) = (path.clone(), content.clone());
    let data_chunks = content
        .chunks(MIBU)
        .filter(|c| c.len() == MIBU && c.iter().any(|b| *b != 0))
        .count() as u64;
    let follower = tokio::task::spawn_blocking(move || {
        write_following(&p, &c, |n| follower.advance(n));
        // Let it catch up with the writer (bounded): the chunks it has not reached by
        // `finish` would simply be left to the import.
        until(|| follower.stored_bytes() >= data_chunks * MIBU as u64);
        follower
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let known = tokio::task::spawn_blocking(move || follower.finish().known)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The import with the follower's findings equals one without.
    let img: Arc<dyn ikon_disk::DiskImage> = Arc::from(
        ikon_disk::open(&path, &ikon_disk::OpenOptions::default())
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let dev: Arc<dyn ikon_disk::BlockDevice> = img;
    let (_, with, stats) = session
        .import_device_with(
            dev.clone(),
            "disk-with0001",
            Arc::new(|_, _| {}),
            known.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, without, _) = session
        .import_device(dev, "disk-without01", Arc::new(|_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let same = with.chunks == without.chunks && with.disk_size == without.disk_size;
    assert_eq!(stats.data_bytes, content.len() as u64);
    session.end().await.unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
    (known, same)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_findings_make_the_same_manifest() {
    let store = store().await;
    // 6.5 MiB: five data chunks, one zero chunk, and a partial last chunk the follower
    // leaves to the import.
    let mut content = data(1, 6 * MIBU + MIBU / 2);
    content[3 * MIBU..4 * MIBU].fill(0);
    let (known, same) = follow_and_import(&store, content, "raw").await;
    assert!(same);
    assert_eq!(known.len(), 6, "{:?}", known.keys().collect::<Vec<_>>());
    assert!(
        known.get(&3).is_some_and(|(h, _)| h.is_none()),
        "zero chunk"
    );
    assert!(!known.contains_key(&6), "partial chunk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_format_yields_nothing() {
    let store = store().await;
    let mut content = data(2, 4 * MIBU);
    content[..4].copy_from_slice(b"QFI\xfb");
    let (path, _session, f) = following(&store, "qcow", &content, false).await;
    f.advance(content.len() as u64);
    let known = tokio::task::spawn_blocking(move || {
        until(|| f.stopped());
        f.finish().known
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(known.is_empty());
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_file_yields_nothing_and_unwritten_chunks_are_not_taken() {
    let store = store().await;
    let content = data(3, 4 * MIBU);
    // Only two MiB said to be written: chunks 2 and 3 stay untouched.
    let (path, session, f) = following(&store, "rewrite", &content, false).await;
    f.advance(2 * MIBU as u64);
    let known = tokio::task::spawn_blocking(move || {
        until(|| f.stored_bytes() >= 2 * MIBU as u64);
        // Give a wrongly eager worker time to take chunk 2.
        std::thread::sleep(std::time::Duration::from_millis(100));
        f.finish().known
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(known.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
    // The writer restarts from the beginning: everything is dropped.
    let f = session
        .follow(path.clone(), 2, false)
        .unwrap_or_else(|e| panic!("{e}"));
    f.advance(3 * MIBU as u64);
    f.advance(MIBU as u64);
    let known = tokio::task::spawn_blocking(move || f.finish().known)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(known.is_empty());
    session.end().await.unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punching_empties_the_file_and_the_store_has_it_all() {
    let store = store().await;
    let content = data(4, 5 * MIBU + 1000);
    let (path, session, follower) = following(&store, "punch", b"", true).await;
    let (p, c) = (path.clone(), content.clone());
    let followed = tokio::task::spawn_blocking(move || {
        write_following(&p, &c, |n| follower.advance(n));
        until(|| follower.stored_bytes() >= 5 * MIBU as u64);
        follower.finish()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(followed.punched);
    let on_disk = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(on_disk.len(), content.len(), "punching keeps the size");
    // Chunks stored before chunk 0 proved the file raw stay in it; the others are gone.
    let emptied = followed
        .known
        .keys()
        .filter(|idx| {
            let r = usize::try_from(**idx).unwrap_or(0) * MIBU;
            on_disk[r..r + MIBU].iter().all(|b| *b == 0)
        })
        .count();
    assert!(emptied >= 1, "nothing was punched");
    let mut known = followed.known;
    let (st, p) = (store.clone(), path.clone());
    let m = tokio::task::spawn_blocking(move || ikon_store::file_manifest(&st, &p, &mut known))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let disk = store.open_disk(m);
    let back = tokio::task::spawn_blocking(move || {
        let mut b = vec![0u8; content.len()];
        ikon_disk::BlockDevice::read_exact_at(&disk, &mut b, 0).unwrap_or_else(|e| panic!("{e}"));
        b == content
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(back, "the store holds the whole file");
    // A file of another format is never punched.
    let mut q = data(5, 3 * MIBU);
    q[..4].copy_from_slice(b"QFI\xfb");
    std::fs::write(&path, &q).unwrap_or_else(|e| panic!("{e}"));
    let f = session
        .follow(path.clone(), 2, true)
        .unwrap_or_else(|e| panic!("{e}"));
    f.advance(q.len() as u64);
    let followed = tokio::task::spawn_blocking(move || {
        until(|| f.stopped());
        f.finish()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!followed.punched && followed.known.is_empty());
    assert_eq!(std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")), q);
    session.end().await.unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
}
