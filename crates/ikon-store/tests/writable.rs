//! Copy-on-write disks over the chunk store: writes read back, the manifest they started
//! from never changes, a flush commits a new version through the hook, only changed chunks
//! are stored, too many dirty chunks commit on their own, a grown disk reads zeros past its
//! image, zeroing whole chunks stores nothing, reset discards changes, and a closed disk
//! refuses I/O.

use ikon_disk::{BlockDevice, ExtentKind, WritableDevice};
use ikon_store::{Manifest, ManifestRef, Store, WritableDisk, MAX_DIRTY_CHUNKS};
use std::sync::{Arc, Mutex};

const MIB: u64 = 1 << 20;
const MIBU: usize = 1 << 20;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            u8::try_from(i % 256)
                .unwrap_or(0)
                .wrapping_mul(31)
                .wrapping_add(seed)
                | 1
        })
        .collect()
}

async fn base(store: &Store) -> Manifest {
    // 3 MiB image: chunk 0 data, chunk 1 zeros, chunk 2 half a MiB of data (partial).
    let s = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
    let mut m = Manifest::empty(2 * MIB + MIB / 2, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let st = store.clone();
    let (a, c) = blocking(move || {
        (
            st.write_chunk(&pattern(1, MIBU))
                .unwrap_or_else(|e| panic!("{e}")),
            st.write_chunk(&pattern(3, MIBU / 2))
                .unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .await;
    m.chunks[0] = a.map(|x| x.0);
    m.chunks[2] = c.map(|x| x.0);
    store
        .put_manifest("img-base", &m)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.end().await.unwrap_or_else(|e| panic!("{e}"));
    m
}

fn open(
    store: &Store,
    m: &Manifest,
    size: u64,
) -> (Arc<WritableDisk>, Arc<Mutex<Vec<ManifestRef>>>) {
    let commits = Arc::new(Mutex::new(Vec::new()));
    let c = commits.clone();
    let d = WritableDisk::open(
        store.clone(),
        "disk-test0001",
        m,
        size,
        Box::new(move |r: &ManifestRef| {
            c.lock().map_err(|e| e.to_string())?.push(r.clone());
            Ok(())
        }),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (Arc::new(d), commits)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_on_write_disk() {
    let store = Store::open_object_store(Arc::new(object_store::memory::InMemory::new()), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let m = base(&store).await;
    let before = store.stats().await.unwrap_or_else(|e| panic!("{e}"));
    // Grown to 8 MiB: the partial last chunk reads zero padded, the rest zeros.
    let (disk, commits) = open(&store, &m, 8 * MIB);
    let d = disk.clone();
    blocking(move || {
        assert_eq!(d.len(), 8 * MIB);
        let mut b = vec![0xffu8; MIBU];
        d.read_exact_at(&mut b, 2 * MIB)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&b[..MIBU / 2], &pattern(3, MIBU / 2)[..]);
        assert!(b[MIBU / 2..].iter().all(|x| *x == 0));
        // A 4 KiB write inside chunk 0 and one straddling chunks 4/5.
        d.write_all_at(&[0xab; 4096], 8192)
            .unwrap_or_else(|e| panic!("{e}"));
        d.write_all_at(&[0xcd; 8192], 5 * MIB - 4096)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut b = vec![0u8; 3 * 4096];
        d.read_exact_at(&mut b, 4096)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&b[..4096], &pattern(1, MIBU)[4096..8192]);
        assert!(b[4096..8192].iter().all(|x| *x == 0xab));
        assert_eq!(&b[8192..], &pattern(1, MIBU)[12288..16384]);
        // Nothing is committed before a flush.
        assert!(
            d.read_exact_at(&mut [0u8; 1], 8 * MIB).is_err(),
            "read past end"
        );
        d.flush().unwrap_or_else(|e| panic!("{e}"));
    })
    .await;
    let refs = commits.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(refs.len(), 1, "one flush, one commit");
    assert_eq!(refs[0].disk_id, "disk-test0001");
    // The image's manifest is untouched; the new one differs in exactly the written chunks.
    let orig = store
        .get_manifest(&ManifestRef {
            disk_id: "img-base".into(),
            version: 1,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(orig, m);
    let new = store
        .get_manifest(&refs[0])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(new.disk_size, 8 * MIB);
    assert_ne!(new.chunks[0], m.chunks[0]);
    assert_eq!(new.chunks[2], m.chunks[2]);
    assert!(new.chunks[4].is_some() && new.chunks[5].is_some());
    assert!(new.chunks[3].is_none() && new.chunks[6].is_none());
    let after = store.stats().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        after.chunks - before.chunks,
        3,
        "only the three written chunks are new"
    );
    // Reading through a read-only view of the committed manifest gives the same bytes.
    let ro = store.open_disk(new.clone());
    let d = disk.clone();
    blocking(move || {
        let mut a = vec![0u8; 8 * MIBU];
        let mut b = vec![0u8; 8 * MIBU];
        d.read_exact_at(&mut a, 0).unwrap_or_else(|e| panic!("{e}"));
        ro.read_exact_at(&mut b, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(a == b, "writable and committed views differ");
        // A flush with nothing changed commits nothing.
        assert!(d.commit().unwrap_or_else(|e| panic!("{e}")).is_none());
        // Zeroing whole chunks stores nothing and maps as unallocated.
        d.write_zeroes(4 * MIB, 2 * MIB)
            .unwrap_or_else(|e| panic!("{e}"));
        let map = d.map(4 * MIB, 2 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            map.iter().all(|e| e.kind == ExtentKind::Unallocated),
            "{map:?}"
        );
    })
    .await;
    // Reset discards uncommitted changes and starts from the image again.
    let d = disk.clone();
    let m2 = m.clone();
    blocking(move || {
        d.write_all_at(&[9u8; 512], 0)
            .unwrap_or_else(|e| panic!("{e}"));
        d.reset(&m2, 8 * MIB, || Ok(()))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut b = vec![0u8; 512];
        d.read_exact_at(&mut b, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&b[..], &pattern(1, MIBU)[..512]);
        d.close();
        assert!(
            d.read_exact_at(&mut b, 0).is_err(),
            "a closed disk refuses I/O"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_dirty_chunks_commit_on_their_own() {
    let store = Store::open_object_store(Arc::new(object_store::memory::InMemory::new()), 1 << 16)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let m = Manifest::empty(16 * MIB, 1 << 16).unwrap_or_else(|e| panic!("{e}"));
    let (disk, commits) = open(&store, &m, 16 * MIB);
    let n = MAX_DIRTY_CHUNKS + 8;
    blocking(move || {
        for i in 0..n {
            let off = (i as u64) * 65536;
            disk.write_all_at(&pattern(u8::try_from(i % 251).unwrap_or(0), 100), off)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(disk.dirty_bytes() <= (MAX_DIRTY_CHUNKS as u64) * 65536);
    })
    .await;
    assert!(
        !commits.lock().map(|c| c.is_empty()).unwrap_or(true),
        "dirty chunks beyond the limit were committed"
    );
}
