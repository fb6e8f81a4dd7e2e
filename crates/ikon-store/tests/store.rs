//! Chunk store tests on every backend: a local directory, object_store's InMemory, and a
//! real S3 engine (Ceph RGW started by scripts/test.sh; `IKON_TEST_S3_*` must be set — a
//! missing engine fails the suite). Imports of qemu-img-made images read back identically
//! (qemu-img compare is the oracle), zero ranges store nothing, deduplication across
//! images, damage detection, crash debris, garbage collection racing a writer, copies
//! between stores that send only missing chunks, multipart file uploads, and correctness on
//! an engine that ignores conditional PUTs.

use ikon_disk::BlockDevice;
use ikon_store::{Bucket, ErrorKind, Location, ManifestRef, S3Options, Store};
use object_store::ObjectStoreExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const MIB: u64 = 1 << 20;
const MIBU: usize = 1 << 20;
const MIB32: u32 = 1 << 20;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ikon-store-{tag}-{}-{}",
        std::process::id(),
        rand_u64()
    ));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    u64::from_le_bytes(b)
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("qemu-img is required (the format oracle): {e}"));
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A raw file: `pattern` decides each MiB: None = zeros, Some(seed) = pseudo-random data.
fn make_raw(path: &Path, pattern: &[Option<u64>]) {
    let mut data = vec![0u8; pattern.len() * MIBU];
    for (i, p) in pattern.iter().enumerate() {
        if let Some(seed) = p {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for b in &mut data[i * MIBU..(i + 1) * MIBU] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x.to_le_bytes()[0];
            }
        }
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{e}"));
}

fn open(path: &Path) -> Arc<dyn BlockDevice> {
    let img =
        ikon_disk::open(path, &ikon_disk::OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let img: Arc<dyn ikon_disk::DiskImage> = Arc::from(img);
    img
}

fn dump(dev: &dyn BlockDevice, path: &Path) {
    let mut buf = vec![0u8; usize::try_from(dev.len()).unwrap_or(0)];
    dev.read_exact_at(&mut buf, 0)
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(path, buf).unwrap_or_else(|e| panic!("{e}"));
}

fn env_var(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: the store suite runs against a real S3 engine. Start one with \
             `eval \"$(bash scripts/start-s3.sh)\"` (scripts/test.sh does this)"
            )
        })
}

/// The S3 engine of the test run.
fn s3_options() -> S3Options {
    S3Options {
        endpoint: Some(env_var("IKON_TEST_S3_ENDPOINT")),
        region: Some(env_var("IKON_TEST_S3_REGION")),
        access_key_id: Some(env_var("IKON_TEST_S3_ACCESS_KEY_ID")),
        secret_access_key: Some(env_var("IKON_TEST_S3_SECRET_ACCESS_KEY")),
        allow_http: Some(true),
        max_retries: None,
        ..Default::default()
    }
}

/// A fresh prefix in the test bucket (location, raw bucket access for tampering).
fn s3_location(tag: &str) -> (Location, String) {
    let prefix = format!("store-{tag}-{}-{:x}", std::process::id(), rand_u64());
    (
        Location::S3 {
            bucket: env_var("IKON_TEST_S3_BUCKET"),
            prefix: prefix.clone(),
        },
        prefix,
    )
}

async fn s3_store(tag: &str) -> Store {
    s3_location(tag)
        .0
        .open(&s3_options(), MIB32)
        .await
        .unwrap_or_else(|e| panic!("opening the S3 store: {e}"))
}

async fn stores(tag: &str) -> Vec<(Store, Option<PathBuf>)> {
    let dir = tmpdir(tag).join("chunks");
    let local = Store::open_local(&dir, MIB32)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mem = Store::open_object_store(Arc::new(object_store::memory::InMemory::new()), MIB32)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s3 = s3_store(tag).await;
    vec![(local, Some(dir)), (mem, None), (s3, None)]
}

async fn import(
    store: &Store,
    dev: Arc<dyn BlockDevice>,
    disk: &str,
) -> (ManifestRef, ikon_store::Manifest, ikon_store::ImportStats) {
    let s = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
    let r = s
        .import_device(dev, disk, Arc::new(|_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.end().await.unwrap_or_else(|e| panic!("{e}"));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_read_back_identically_and_deduplicate() {
    let work = tmpdir("work");
    // 12 MiB: data, zeros, data, ... with a 3 MiB hole; then a qcow2 made by qemu-img.
    let pattern = [
        Some(1),
        Some(2),
        None,
        None,
        None,
        Some(3),
        Some(4),
        None,
        Some(5),
        Some(6),
        Some(7),
        None,
    ];
    let raw = work.join("a.raw");
    make_raw(&raw, &pattern);
    let qcow = work.join("a.qcow2");
    qemu_img(&[
        "convert",
        "-O",
        "qcow2",
        raw.to_str().unwrap_or(""),
        qcow.to_str().unwrap_or(""),
    ]);
    // A second image sharing all but two MiB.
    let mut pattern_b = pattern;
    pattern_b[0] = Some(100);
    pattern_b[3] = Some(101);
    let raw_b = work.join("b.raw");
    make_raw(&raw_b, &pattern_b);
    let vmdk_b = work.join("b.vmdk");
    qemu_img(&[
        "convert",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        raw_b.to_str().unwrap_or(""),
        vmdk_b.to_str().unwrap_or(""),
    ]);

    for (store, dir) in stores("dedup").await {
        let (r, m, st) = import(&store, open(&qcow), "disk-a").await;
        assert_eq!(r.version, 1);
        assert_eq!(m.chunks.iter().filter(|c| c.is_some()).count(), 7);
        assert_eq!(
            (st.new_chunks, st.dedup_chunks, st.new_bytes),
            (7, 0, 7 * MIB)
        );
        assert_eq!(
            store.stats().await.map(|s| s.bytes).ok(),
            Some(7 * MIB),
            "zero chunks are never stored"
        );
        // Read back through the manifest and let qemu-img compare with the source.
        let back = work.join("a.back.raw");
        let disk = store.open_disk(
            store
                .get_manifest(&r)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let d2 = tokio::task::spawn_blocking(move || {
            dump(&disk, &back);
            back
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        qemu_img(&[
            "compare",
            "-q",
            qcow.to_str().unwrap_or(""),
            d2.to_str().unwrap_or(""),
        ]);
        // The same image again: nothing new; a second version of the manifest.
        let (r2, _, st) = import(&store, open(&qcow), "disk-a").await;
        assert_eq!((r2.version, st.new_chunks, st.dedup_chunks), (2, 0, 7));
        // The second image: only its two different MiB are new.
        let (rb, _, st) = import(&store, open(&vmdk_b), "disk-b").await;
        assert_eq!((st.new_chunks, st.dedup_chunks), (2, 6));
        let disk = store.open_disk(
            store
                .get_manifest(&rb)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let back_b = work.join("b.back.raw");
        let bb = back_b.clone();
        tokio::task::spawn_blocking(move || {
            dump(&disk, &bb);
            // The mapping reports stored chunks as data and zero chunks as holes.
            let map = disk.map(0, disk.len()).unwrap_or_default();
            assert_eq!(
                map.iter()
                    .filter(|e| e.kind == ikon_disk::ExtentKind::Data)
                    .map(|e| e.len)
                    .sum::<u64>(),
                8 * MIB
            );
            assert!(disk.as_writable().is_none(), "stored disks are immutable");
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        qemu_img(&[
            "compare",
            "-q",
            raw_b.to_str().unwrap_or(""),
            back_b.to_str().unwrap_or(""),
        ]);
        assert_eq!(
            store.manifest_versions("disk-a").await.unwrap_or_default(),
            [1, 2]
        );
        if let Some(dir) = dir {
            // Reopening with another chunk size is refused.
            let e = Store::open_local(&dir, 4 * MIB32).await.err();
            assert_eq!(e.map(|e| e.kind), Some(ErrorKind::InvalidInput));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_is_detected_and_debris_is_cleaned() {
    let work = tmpdir("damage");
    let raw = work.join("d.raw");
    make_raw(&raw, &[Some(9), None, Some(10)]);
    let (store, dir) = stores("damage").await.swap_remove(0);
    let dir = dir.unwrap_or_default();
    let (r, m, _) = import(&store, open(&raw), "disk-d").await;
    let h = m.chunks[0].unwrap_or_else(|| panic!("chunk 0 stored"));
    // Flip one byte of the stored chunk: reading it is an error naming the chunk.
    let hs = h.to_string();
    let path = dir.join("chunks").join(&hs[0..2]).join(&hs[2..4]).join(&hs);
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    bytes[1000] ^= 1;
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let disk = store.open_disk(
        store
            .get_manifest(&r)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let err = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 4096];
        disk.read_exact_at(&mut buf, 0).err().map(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        err.is_some_and(|e| e.contains(&hs)),
        "damaged chunk must be reported"
    );
    // A garbage manifest is an error, never a panic.
    let mpath = dir
        .join("manifests")
        .join("disk-d")
        .join(format!("{:020}", 1));
    std::fs::write(&mpath, b"IKONMAN1 garbage").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.get_manifest(&r).await.err().map(|e| e.kind),
        Some(ErrorKind::Corrupt)
    );
    // Crash debris: an old temporary file is ignored by readers and removed by gc.
    let tmp = dir.join("chunks").join(&hs[0..2]).join(".tmp-deadbeef");
    std::fs::write(&tmp, b"partial").unwrap_or_else(|e| panic!("{e}"));
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_modified(old))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.stats().await.map(|s| s.chunks).ok(), Some(2));
    let st = store.gc(&[], false).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.removed_tmp, 1);
    assert!(!tmp.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_only_unreferenced_chunks_even_while_writers_run() {
    let work = tmpdir("gc");
    let raws: Vec<PathBuf> = (0..4u64)
        .map(|i| {
            let p = work.join(format!("{i}.raw"));
            // Every image shares chunk seeds 1 and 2 and has two of its own.
            make_raw(&p, &[Some(1), Some(2), Some(10 + i), None, Some(20 + i)]);
            p
        })
        .collect();
    for (store, _) in stores("gc").await {
        let (ra, _, _) = import(&store, open(&raws[0]), "disk-0").await;
        let (_rb, _, _) = import(&store, open(&raws[1]), "disk-1").await;
        assert_eq!(store.stats().await.map(|s| s.chunks).ok(), Some(6));
        // Chunks written before the collection started and referenced only by disk-1 go.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let st = store
            .gc(std::slice::from_ref(&ra), true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (st.live_chunks, st.deleted_chunks, st.deleted_manifests),
            (4, 2, 1)
        );
        assert_eq!(store.stats().await.map(|s| s.chunks).ok(), Some(4));

        // Race: a writer keeps re-importing images whose chunks the collector considers
        // garbage (they are referenced by nothing committed), while collections run with
        // only the committed manifests as the live set. Every committed manifest must stay
        // fully readable.
        let committed: Arc<std::sync::Mutex<Vec<ManifestRef>>> =
            Arc::new(std::sync::Mutex::new(vec![ra.clone()]));
        let writer = {
            let (store, committed, raws) = (store.clone(), committed.clone(), raws.clone());
            tokio::spawn(async move {
                for round in 0..40usize {
                    let s = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
                    let (r, _, _) = s
                        .import_device(
                            open(&raws[round % raws.len()]),
                            &format!("race-{round}"),
                            Arc::new(|_, _| {}),
                        )
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    // "Commit" to the catalog before ending the session, and "delete" the
                    // oldest other image, so later rounds re-import chunks that exist but
                    // that nothing committed references (dedup hits the collector would
                    // otherwise be free to delete).
                    {
                        let mut c = committed.lock().unwrap_or_else(|e| e.into_inner());
                        c.push(r);
                        if c.len() > 2 {
                            c.remove(1);
                        }
                    }
                    s.end().await.unwrap_or_else(|e| panic!("{e}"));
                }
            })
        };
        let collector = {
            let (store, committed) = (store.clone(), committed.clone());
            tokio::spawn(async move {
                for _ in 0..40 {
                    let live = committed.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    match store.gc(&live, false).await {
                        Ok(_) => {}
                        Err(e) if e.kind == ErrorKind::Busy => {}
                        Err(e) => panic!("gc: {e}"),
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            })
        };
        writer.await.unwrap_or_else(|e| panic!("{e}"));
        collector.await.unwrap_or_else(|e| panic!("{e}"));
        let live = committed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        store
            .gc(&live, false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for r in &live {
            let m = store
                .get_manifest(r)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for h in m.chunks.iter().flatten() {
                let st = store.clone();
                let h = *h;
                tokio::task::spawn_blocking(move || st.read_chunk(&h))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|e| panic!("committed manifest {r:?} lost a chunk: {e}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_waits_for_an_open_write_session() {
    let work = tmpdir("gcwait");
    let raw = work.join("w.raw");
    make_raw(&raw, &[Some(41), Some(42)]);
    for (store, _) in stores("gcwait").await {
        // The chunks exist but nothing references them (an image that was deleted).
        let (_, _, st) = import(&store, open(&raw), "old").await;
        assert_eq!(st.new_chunks, 2);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // A writer finds them (dedup hit) and has not committed its manifest yet.
        let session = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
        let (r, _, st) = session
            .import_device(open(&raw), "new", Arc::new(|_, _| {}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.dedup_chunks, 2);
        // A collection started now (with a live set that does not know the new manifest
        // yet) must wait for the session...
        let gc = {
            let store = store.clone();
            let live = r.clone();
            tokio::spawn(async move {
                let _ = live;
                store.gc(&[], false).await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            !gc.is_finished(),
            "gc must not mark while a writer session is open"
        );
        // ...and a writer arriving meanwhile waits for the collection.
        let late = {
            let store = store.clone();
            tokio::spawn(async move { store.begin_write().await.map(drop) })
        };
        // The writer commits (here: we hand the collector nothing, as a catalog would not
        // list it yet) and ends the session; only then does the collection proceed. It
        // sees no live manifest and deletes the chunks, which is right for an empty live
        // set; the real protocol is that the caller reads its live set after sessions end.
        session.end().await.unwrap_or_else(|e| panic!("{e}"));
        let st = gc
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.deleted_chunks, 2);
        late.await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_reopens_and_refuses_another_chunk_size_and_detects_damage() {
    let (loc, prefix) = s3_location("reopen");
    let opts = s3_options();
    let store = loc
        .open(&opts, MIB32)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let work = tmpdir("s3damage");
    let raw = work.join("d.raw");
    make_raw(&raw, &[Some(77), None, Some(78)]);
    let (r, m, _) = import(&store, open(&raw), "disk-s3").await;
    // Reopening finds the same data; another chunk size is refused.
    let again = loc
        .open(&opts, MIB32)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.get_manifest(&r).await.ok(), Some(m.clone()));
    let e = loc.open(&opts, 4 * MIB32).await.err();
    assert_eq!(e.map(|e| e.kind), Some(ErrorKind::InvalidInput));
    // Damage a chunk behind the store's back: reading it is an error naming the chunk.
    let h = m.chunks[0].unwrap_or_else(|| panic!("chunk 0 stored"));
    let raw_bucket = opts
        .bucket_store(&env_var("IKON_TEST_S3_BUCKET"))
        .unwrap_or_else(|e| panic!("{e}"));
    let key = object_store::path::Path::from(format!("{prefix}/{}", h.key()));
    let mut bytes = raw_bucket
        .get(&key)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .to_vec();
    bytes[4242] ^= 1;
    raw_bucket
        .put(&key, bytes.into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let disk = again.open_disk(m);
    let hs = h.to_string();
    let err = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 4096];
        disk.read_exact_at(&mut buf, 0).err().map(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        err.is_some_and(|e| e.contains(&hs)),
        "damaged chunk must be reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_between_stores_send_only_missing_chunks() {
    let work = tmpdir("copy");
    // Ten data MiB; the second image differs from the first in one MiB.
    let base: Vec<Option<u64>> = (0..12u64)
        .map(|i| if i % 6 == 5 { None } else { Some(300 + i) })
        .collect();
    let raw_a = work.join("a.raw");
    make_raw(&raw_a, &base);
    let mut other = base.clone();
    other[3] = Some(999);
    let raw_b = work.join("b.raw");
    make_raw(&raw_b, &other);
    let local = Store::open_local(&work.join("src"), MIB32)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s3 = s3_store("copy").await;
    let (ra, _, _) = import(&local, open(&raw_a), "disk-a").await;
    let (rb, _, _) = import(&local, open(&raw_b), "disk-b").await;
    let copy = |src: Store, dst: Store, r: ManifestRef| async move {
        let s = dst.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
        let out = s
            .copy_disk_from(&src, &r, Arc::new(|_, _| {}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.end().await.unwrap_or_else(|e| panic!("{e}"));
        out.1
    };
    // First copy: every chunk travels.
    let st = copy(local.clone(), s3.clone(), ra.clone()).await;
    assert_eq!(
        (
            st.chunks,
            st.present_chunks,
            st.copied_chunks,
            st.copied_bytes
        ),
        (10, 0, 10, 10 * MIB)
    );
    // The copy reads back identically from S3 (qemu-img compare against the source).
    let m = s3.get_manifest(&ra).await.unwrap_or_else(|e| panic!("{e}"));
    let back = work.join("a.back.raw");
    let (disk, b2) = (s3.open_disk(m), back.clone());
    tokio::task::spawn_blocking(move || dump(&disk, &b2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    qemu_img(&[
        "compare",
        "-q",
        raw_a.to_str().unwrap_or(""),
        back.to_str().unwrap_or(""),
    ]);
    // Again: nothing travels. The 1 %-different image: one chunk travels.
    let st = copy(local.clone(), s3.clone(), ra.clone()).await;
    assert_eq!((st.copied_chunks, st.copied_bytes), (0, 0));
    let st = copy(local.clone(), s3.clone(), rb.clone()).await;
    assert_eq!(
        (st.present_chunks, st.copied_chunks, st.copied_bytes),
        (9, 1, MIB)
    );
    // A store onto itself moves nothing, also through a second handle on the same place.
    let st = copy(local.clone(), local.clone(), rb.clone()).await;
    assert_eq!(st.copied_bytes, 0);
    let again = Store::open_local(&work.join("src"), MIB32)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(again.same_as(&local) && !again.same_as(&s3));
    let st = copy(local.clone(), again, rb).await;
    assert_eq!((st.present_chunks, st.copied_bytes), (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_to_s3_in_parts_and_download_identically() {
    let work = tmpdir("upload");
    let big = work.join("big.bin");
    // 37 MiB + 5 bytes: three 16 MiB parts, the last one short.
    let mut data = vec![0u8; 37 * MIBU + 5];
    let mut x = 0x1234_5678_9abc_def1u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x.to_le_bytes()[0];
    }
    std::fs::write(&big, &data).unwrap_or_else(|e| panic!("{e}"));
    let bucket = Bucket::s3(&s3_options(), &env_var("IKON_TEST_S3_BUCKET"))
        .unwrap_or_else(|e| panic!("{e}"));
    bucket.check().await.unwrap_or_else(|e| panic!("{e}"));
    let key = format!("upload-{:x}/big.bin", rand_u64());
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s2 = seen.clone();
    let n = bucket
        .upload_file(&key, &big, &move |d, _| {
            s2.store(d, std::sync::atomic::Ordering::SeqCst);
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, data.len() as u64);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), n);
    let listed = bucket
        .list(key.rsplit_once('/').map(|p| p.0).unwrap_or(""))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed, vec![(key.clone(), n)]);
    let back = work.join("back.bin");
    bucket
        .download_file(&key, &back)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(std::fs::read(&back).unwrap_or_default() == data);
    bucket.delete(&key).await.unwrap_or_else(|e| panic!("{e}"));
    // A bucket that does not exist is reported as such.
    let missing =
        Bucket::s3(&s3_options(), "ikon-no-such-bucket").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        missing.check().await.err().map(|e| e.kind),
        Some(ErrorKind::NotFound)
    );
}

/// An engine that ignores conditional PUTs (like Garage): every create overwrites.
#[derive(Debug, Default)]
struct IgnoresConditions(object_store::memory::InMemory);

impl std::fmt::Display for IgnoresConditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IgnoresConditions")
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for IgnoresConditions {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        mut opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        opts.mode = object_store::PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.0.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.0.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_that_ignore_conditional_puts_stay_correct() {
    let os: Arc<dyn object_store::ObjectStore> = Arc::new(IgnoresConditions::default());
    // Concurrent first openers with different chunk sizes: at most one succeeds, and the
    // store then refuses the other size for good.
    let opens: Vec<_> = (0..8u32)
        .map(|i| {
            let os = os.clone();
            tokio::spawn(async move {
                let cs = if i % 2 == 0 { MIB32 } else { 2 * MIB32 };
                (cs, Store::open_object_store(os, cs).await.is_ok())
            })
        })
        .collect();
    let mut ok_sizes = std::collections::HashSet::new();
    for h in opens {
        let (cs, ok) = h.await.unwrap_or_else(|e| panic!("{e}"));
        if ok {
            ok_sizes.insert(cs);
        }
    }
    assert!(
        ok_sizes.len() <= 1,
        "two chunk sizes accepted: {ok_sizes:?}"
    );
    let cs = ok_sizes.into_iter().next().unwrap_or(MIB32);
    let store = Store::open_object_store(os.clone(), cs)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let other = if cs == MIB32 { 2 * MIB32 } else { MIB32 };
    assert!(Store::open_object_store(os.clone(), other).await.is_err());
    // A manifest name is never given other content.
    let m1 = ikon_store::Manifest::empty(3 * u64::from(cs), cs).unwrap_or_else(|e| panic!("{e}"));
    let m2 = ikon_store::Manifest::empty(4 * u64::from(cs), cs).unwrap_or_else(|e| panic!("{e}"));
    let r = ManifestRef {
        disk_id: "disk-x".into(),
        version: 1,
    };
    store
        .put_manifest_at(&r, &m1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .put_manifest_at(&r, &m1)
        .await
        .unwrap_or_else(|e| panic!("same bytes again: {e}"));
    assert_eq!(
        store.put_manifest_at(&r, &m2).await.err().map(|e| e.kind),
        Some(ErrorKind::Conflict)
    );
    assert_eq!(store.get_manifest(&r).await.ok(), Some(m1));
    assert_eq!(
        store
            .put_manifest("disk-x", &m2)
            .await
            .ok()
            .map(|r| r.version),
        Some(2)
    );
    // Two collections at once: at most one runs (each announces itself under its own key).
    let a = {
        let s = store.clone();
        tokio::spawn(async move { s.gc(&[], true).await })
    };
    let b = {
        let s = store.clone();
        tokio::spawn(async move { s.gc(&[], true).await })
    };
    let ra = a.await.unwrap_or_else(|e| panic!("{e}"));
    let rb = b.await.unwrap_or_else(|e| panic!("{e}"));
    for r in [&ra, &rb] {
        if let Err(e) = r {
            assert_eq!(e.kind, ErrorKind::Busy, "{e}");
        }
    }
    // With a session open, a collection waits for it (and no writer enters while one runs).
    let session = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
    let gc = {
        let s = store.clone();
        tokio::spawn(async move { s.gc(&[], false).await })
    };
    session.end().await.unwrap_or_else(|e| panic!("{e}"));
    gc.await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .begin_write()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .end()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_reads_the_live_set_after_running_writers_commit() {
    let work = tmpdir("gclive");
    let raw = work.join("w.raw");
    make_raw(&raw, &[Some(51), Some(52)]);
    for (store, _) in stores("gclive").await {
        // Chunks nothing references (a deleted image), older than the collection.
        let (_, _, st) = import(&store, open(&raw), "gone").await;
        assert_eq!(st.new_chunks, 2);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // A writer reuses them and has not committed yet when the collection starts.
        let session = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
        let (r, _, st) = session
            .import_device(open(&raw), "kept", Arc::new(|_, _| {}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.dedup_chunks, 2);
        let catalog: Arc<std::sync::Mutex<Vec<ManifestRef>>> = Arc::default();
        let gc = {
            let (store, catalog) = (store.clone(), catalog.clone());
            tokio::spawn(async move {
                store
                    .gc_with(
                        || async move { Ok(catalog.lock().map(|c| c.clone()).unwrap_or_default()) },
                        true,
                    )
                    .await
            })
        };
        // The writer commits to the "catalog", then ends its session.
        catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r.clone());
        session.end().await.unwrap_or_else(|e| panic!("{e}"));
        let st = gc
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((st.live_chunks, st.deleted_chunks), (2, 0));
        assert_eq!(st.deleted_manifests, 1, "the deleted image's manifest goes");
        let m = store
            .get_manifest(&r)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for h in m.chunks.iter().flatten() {
            let (s, h) = (store.clone(), *h);
            tokio::task::spawn_blocking(move || s.read_chunk(&h))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("a committed chunk was collected: {e}"));
        }
    }
}
