//! VHD integration tests with the real qemu-img as the oracle: qemu-made images read by Ikon,
//! Ikon-made images checked by qemu-img, and a hostile-input set built in memory.

// Test code: panicking on failure is the point; casts are on small test sizes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod common;

use common::{
    ikon_data_ranges, open_mem, put_be32, put_be64, qemu_data_ranges, qemu_img, qemu_ok, qemu_size,
    read_all, TempDir,
};
use ikon_disk::convert::{convert, CopyOptions};
use ikon_disk::{CreateOptions, DiskImage, ErrorKind, Format, MemStorage, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Read_all piece size: odd, to cross block boundaries.
const STEP: usize = 3 * 1024 * 1024 + 4096 + 512;

/// Deterministic test disk: random regions, zero regions, text at unaligned offsets.
fn pattern(size: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; size];
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut pos = 0usize;
    let mut i = 0;
    while pos < size {
        let len = (1 << 20) + (rnd() % (3 << 20)) as usize;
        let end = (pos + len).min(size);
        if i % 3 == 0 {
            for b in &mut v[pos..end] {
                *b = rnd() as u8;
            }
        }
        pos = end;
        i += 1;
    }
    let text = b"Ikon VHD test text crossing sector and block boundaries";
    for off in [
        511usize,
        2 * 1024 * 1024 - 7,
        5 * 1024 * 1024 + 333,
        size - text.len(),
    ] {
        if off + text.len() <= size {
            v[off..off + text.len()].copy_from_slice(text);
        }
    }
    v
}

fn open_path(p: &Path, fmt: Option<Format>) -> Box<dyn DiskImage> {
    let opts = OpenOptions {
        format: fmt,
        ..Default::default()
    };
    ikon_disk::open(p, &opts).unwrap_or_else(|e| panic!("ikon open {}: {e}", p.display()))
}

/// Sizes: CHS-representable (8 MiB = 16320 s? no: exercises rounding) and odd ones.
const SIZES: [usize; 3] = [8 << 20, 10_000_384, (23 << 20) + 3 * 512];
const OPTS: [&str; 4] = [
    "subformat=dynamic",
    "subformat=fixed",
    "subformat=dynamic,force_size=on",
    "subformat=fixed,force_size=on",
];

#[test]
fn qemu_made_vhd_reads_like_qemu() {
    let t = TempDir::new("qemu-made");
    for (si, &size) in SIZES.iter().enumerate() {
        let src = t.path("src.raw");
        std::fs::write(&src, pattern(size, 7 + si as u64)).expect("write src");
        for o in OPTS {
            let vhd = t.path("q.vhd");
            let back = t.path("back.raw");
            let (s, v, b) = (
                src.to_str().unwrap_or(""),
                vhd.to_str().unwrap_or(""),
                back.to_str().unwrap_or(""),
            );
            qemu_ok(&["convert", "-f", "raw", "-O", "vpc", "-o", o, s, v]);
            qemu_ok(&["convert", "-f", "vpc", "-O", "raw", v, b]);
            let img = open_path(&vhd, None);
            assert_eq!(img.info().format, Format::Vhd);
            assert_eq!(
                img.len(),
                qemu_size(&vhd, "vpc"),
                "virtual size, size {size} opts {o}"
            );
            let want = std::fs::read(&back).expect("read back");
            let got = read_all(img.as_ref(), STEP);
            assert!(
                got == want,
                "content differs from qemu, size {size} opts {o}"
            );
            if o.contains("dynamic") {
                assert_eq!(
                    ikon_data_ranges(img.as_ref()),
                    qemu_data_ranges(&vhd, "vpc"),
                    "map data ranges, size {size} opts {o}"
                );
                assert_eq!(img.info().cluster_size, Some(2 << 20));
                assert!(img.check().expect("check").is_clean());
            }
            let sub = if o.contains("fixed") {
                "fixed"
            } else {
                "dynamic"
            };
            assert_eq!(img.info().subformat.as_deref(), Some(sub));
        }
    }
}

#[test]
fn ikon_written_vhd_checked_by_qemu() {
    let t = TempDir::new("ikon-made");
    for (si, &size) in SIZES.iter().enumerate() {
        let src = t.path("src.raw");
        let data = pattern(size, 99 + si as u64);
        std::fs::write(&src, &data).expect("write src");
        for o in OPTS {
            let vhd = t.path("i.vhd");
            let mut opts = CreateOptions::new(Format::Vhd, size as u64);
            opts.apply(o).expect("options");
            let source = open_path(&src, Some(Format::Raw));
            let w = ikon_disk::create(&vhd, &opts).expect("create");
            convert(source.as_ref(), w, CopyOptions::default(), &mut |_, _| {}).expect("convert");
            let (s, v) = (src.to_str().unwrap_or(""), vhd.to_str().unwrap_or(""));
            let cmp = qemu_img(&["compare", "-f", "raw", "-F", "vpc", s, v]);
            assert!(
                cmp.status.success(),
                "qemu-img compare failed for size {size} opts {o}: {}{}",
                String::from_utf8_lossy(&cmp.stdout),
                String::from_utf8_lossy(&cmp.stderr)
            );
            let img = open_path(&vhd, None);
            assert_eq!(
                img.len(),
                qemu_size(&vhd, "vpc"),
                "virtual size, size {size} opts {o}"
            );
            if o.contains("force_size") {
                assert_eq!(img.len(), size as u64);
            } else {
                assert!(img.len() >= size as u64);
            }
            let got = read_all(img.as_ref(), STEP);
            assert!(got[..size] == data[..], "read back, size {size} opts {o}");
            assert!(got[size..].iter().all(|&b| b == 0));
            if o.contains("dynamic") {
                assert_eq!(
                    ikon_data_ranges(img.as_ref()),
                    qemu_data_ranges(&vhd, "vpc"),
                    "map, size {size} opts {o}"
                );
                assert!(img.check().expect("check").is_clean());
            }
        }
    }
}

#[test]
fn fixed_vhd_in_place_write() {
    let t = TempDir::new("fixed-write");
    let vhd = t.path("f.vhd");
    let v = vhd.to_str().unwrap_or("");
    qemu_ok(&["create", "-f", "vpc", "-o", "subformat=fixed", v, "4M"]);
    let img = ikon_disk::open_writable(&vhd, &OpenOptions::default()).expect("open rw");
    img.write_all_at(b"hello vhd", 1000).expect("write");
    img.flush().expect("flush");
    drop(img);
    let back = t.path("b.raw");
    qemu_ok(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "raw",
        v,
        back.to_str().unwrap_or(""),
    ]);
    let raw = std::fs::read(&back).expect("read");
    assert_eq!(&raw[1000..1009], b"hello vhd");
}

// ---------------------------------------------------------------- hostile input

fn vhd_sum(b: &[u8], skip: usize) -> u32 {
    let mut s: u32 = 0;
    for (i, &x) in b.iter().enumerate() {
        if i < skip || i >= skip + 4 {
            s = s.wrapping_add(u32::from(x));
        }
    }
    !s
}

/// A small dynamic VHD made by Ikon in memory with one block of data.
fn small_dynamic() -> Vec<u8> {
    let mem = Arc::new(MemStorage::new(Vec::new()));
    let opts = CreateOptions::new(Format::Vhd, 8 << 20);
    let mut w = ikon_disk::create_storage(mem.clone(), &opts).expect("create");
    w.write_run(2 << 20, &vec![0xAB; 2 << 20]).expect("write");
    w.finish().expect("finish");
    mem.to_vec()
}

/// Rewrite both footer copies' and the dynamic header's checksums.
fn fix_sums(b: &mut [u8]) {
    let n = b.len();
    for o in [0, n - 512] {
        let s = vhd_sum(&b[o..o + 512], 64);
        put_be32(b, o + 64, s);
    }
    let s = vhd_sum(&b[512..1536], 36);
    put_be32(b, 512 + 36, s);
}

fn expect_err(name: &str, b: Vec<u8>, kind: ErrorKind) {
    let t = Instant::now();
    match open_mem(b, Some(Format::Vhd)) {
        Ok(img) => panic!("{name}: opened an image of {} bytes", img.len()),
        Err(e) => assert_eq!(e.kind(), kind, "{name}: {e}"),
    }
    assert!(t.elapsed().as_secs_f64() < 1.0, "{name} took too long");
}

#[test]
fn hostile_vhd() {
    let good = small_dynamic();
    {
        let img = open_mem(good.clone(), Some(Format::Vhd)).expect("good image opens");
        let mut b = vec![0u8; 4096];
        img.read_exact_at(&mut b, (2 << 20) + 100).expect("read");
        assert!(b.iter().all(|&x| x == 0xAB));
    }
    let n = good.len();
    let mut b = good.clone();
    b[100] ^= 1;
    b[n - 512 + 100] ^= 1;
    expect_err("bad footer checksum on both copies", b, ErrorKind::Corrupt);

    for (name, bs) in [
        ("block size 0", 0u32),
        ("block size not power of two", 3 << 20),
        ("block size 256", 256),
    ] {
        let mut b = good.clone();
        put_be32(&mut b, 512 + 32, bs);
        fix_sums(&mut b);
        expect_err(name, b, ErrorKind::Corrupt);
    }
    let mut b = good.clone();
    put_be32(&mut b, 512 + 32, 1 << 31);
    fix_sums(&mut b);
    expect_err("block size 2 GiB", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    put_be32(&mut b, 512 + 28, u32::MAX);
    fix_sums(&mut b);
    expect_err("max table entries huge", b, ErrorKind::LimitExceeded);

    let mut b = good.clone();
    put_be64(&mut b, 512 + 16, 1 << 40);
    fix_sums(&mut b);
    expect_err("BAT offset past EOF", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    put_be32(&mut b, 1536 + 4, 0x00FF_0000);
    expect_err("BAT entry past EOF", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    put_be32(&mut b, 1536 + 4, 1);
    expect_err("BAT entry pointing into the header", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    put_be64(&mut b, 16, 1 << 50);
    put_be64(&mut b, n - 512 + 16, 1 << 50);
    fix_sums(&mut b);
    expect_err("dynamic header past EOF", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    b[28..32].copy_from_slice(b"win ");
    put_be64(&mut b, 48, u64::MAX);
    b[n - 512 + 28..n - 512 + 32].copy_from_slice(b"win ");
    put_be64(&mut b, n - 512 + 48, u64::MAX);
    fix_sums(&mut b);
    expect_err("current size absurd", b, ErrorKind::Unsupported);

    expect_err("truncated", good[..300].to_vec(), ErrorKind::Corrupt);
    expect_err("empty", Vec::new(), ErrorKind::Corrupt);

    // Differencing disk whose parent locator points at /etc/hosts: refused by default.
    let mut b = good.clone();
    put_be32(&mut b, 60, 4);
    put_be32(&mut b, n - 512 + 60, 4);
    let name: Vec<u8> = "/etc/hosts"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let loc_at = b.len() - 512;
    b.splice(
        loc_at..loc_at,
        name.iter()
            .copied()
            .chain(std::iter::repeat_n(0, 512 - name.len())),
    );
    let loc = 512 + 576;
    b[loc..loc + 4].copy_from_slice(b"W2ku");
    put_be32(&mut b, loc + 4, 512);
    put_be32(&mut b, loc + 8, name.len() as u32);
    put_be64(&mut b, loc + 16, loc_at as u64);
    fix_sums(&mut b);
    expect_err("parent locator to /etc/hosts", b, ErrorKind::Unsafe);
}

#[test]
fn footer_variants() {
    // Dynamic disk with a damaged end footer: the copy at offset 0 is used (as qemu does).
    let mut b = small_dynamic();
    let n = b.len();
    b[n - 512 + 100] ^= 1;
    let img = open_mem(b, Some(Format::Vhd)).expect("dynamic with damaged end footer");
    assert_eq!(img.info().subformat.as_deref(), Some("dynamic"));

    // Fixed disk whose footer is 511 bytes long (old tools).
    let mem = Arc::new(MemStorage::new(Vec::new()));
    let mut opts = CreateOptions::new(Format::Vhd, 8192);
    opts.apply("subformat=fixed,force_size=on")
        .expect("options");
    let mut w = ikon_disk::create_storage(mem.clone(), &opts).expect("create");
    w.write_run(4096, &[0x5A; 4096]).expect("write");
    w.finish().expect("finish");
    let mut b = mem.to_vec();
    assert_eq!(b.len(), 8192 + 512);
    b.truncate(8192 + 511);
    let img = open_mem(b, Some(Format::Vhd)).expect("511-byte footer");
    assert_eq!(img.len(), 8192);
    let mut r = vec![0u8; 8192];
    img.read_exact_at(&mut r, 0).expect("read");
    assert!(r[..4096].iter().all(|&x| x == 0) && r[4096..].iter().all(|&x| x == 0x5A));
}

#[test]
fn differencing_vhd_with_allowed_parent() {
    let t = TempDir::new("diff");
    let size = 4usize << 20;
    let parent_data = pattern(size, 5);
    let mut opts = CreateOptions::new(Format::Vhd, size as u64);
    opts.apply("subformat=fixed,force_size=on")
        .expect("options");
    let mut w = ikon_disk::create(&t.path("parent.vhd"), &opts).expect("create parent");
    w.write_run(0, &parent_data).expect("write parent");
    w.finish().expect("finish parent");

    let mem = Arc::new(MemStorage::new(Vec::new()));
    let mut opts = CreateOptions::new(Format::Vhd, size as u64);
    opts.apply("force_size=on").expect("options");
    let mut w = ikon_disk::create_storage(mem.clone(), &opts).expect("create child");
    w.write_run(0, &vec![0xCD; 2 << 20]).expect("write child");
    w.finish().expect("finish child");
    let mut b = mem.to_vec();
    let n = b.len();
    put_be32(&mut b, 60, 4);
    put_be32(&mut b, n - 512 + 60, 4);
    // block 0: only sectors 0-3 present in the child
    let blk = u32::from_be_bytes(b[1536..1540].try_into().expect("bat")) as usize * 512;
    b[blk..blk + 512].fill(0);
    b[blk] = 0xF0;
    let name: Vec<u8> = "parent.vhd"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let loc_at = n - 512;
    b.splice(
        loc_at..loc_at,
        name.iter()
            .copied()
            .chain(std::iter::repeat_n(0, 512 - name.len())),
    );
    let loc = 512 + 576;
    b[loc..loc + 4].copy_from_slice(b"W2ru");
    put_be32(&mut b, loc + 4, 512);
    put_be32(&mut b, loc + 8, name.len() as u32);
    put_be64(&mut b, loc + 16, loc_at as u64);
    fix_sums(&mut b);
    let child = t.path("child.vhd");
    std::fs::write(&child, &b).expect("write child");

    let denied = ikon_disk::open(&child, &OpenOptions::default());
    assert_eq!(denied.err().map(|e| e.kind()), Some(ErrorKind::Unsafe));

    let opts = OpenOptions {
        policy: ikon_disk::ExternalPolicy::allow_dir(t.dir()).expect("policy"),
        ..Default::default()
    };
    let img = ikon_disk::open(&child, &opts).expect("open child with parent");
    assert_eq!(img.info().subformat.as_deref(), Some("differencing"));
    assert_eq!(img.info().external_files, vec!["parent.vhd".to_string()]);
    let got = read_all(img.as_ref(), STEP);
    let mut want = parent_data.clone();
    want[..2048].fill(0xCD);
    assert!(got == want, "differencing content");
}

#[test]
fn dynamic_vhd_in_place_write() {
    let t = TempDir::new("dyn-write");
    let vhd = t.path("d.vhd");
    let v = vhd.to_str().unwrap_or("");
    qemu_ok(&["create", "-f", "vpc", "-o", "force_size=on", v, "8M"]);
    let mut model = vec![0u8; 8 << 20];
    {
        let img = ikon_disk::open_writable(&vhd, &OpenOptions::default()).expect("open rw");
        let writes: [(usize, usize, u8); 4] = [
            (100, 5000, 0x11),
            ((2 << 20) - 10, 30, 0x22),
            ((6 << 20) + 5, 70_000, 0x33),
            (50, 100, 0x44),
        ];
        for (off, len, byte) in writes {
            let data = vec![byte; len];
            img.write_all_at(&data, off as u64).expect("write");
            model[off..off + len].copy_from_slice(&data);
        }
        img.write_zeroes(120, 1000).expect("write_zeroes");
        model[120..1120].fill(0);
        img.write_zeroes(4 << 20, 1 << 20)
            .expect("write_zeroes unallocated");
        img.flush().expect("flush");
    }
    let back = t.path("b.raw");
    qemu_ok(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "raw",
        v,
        back.to_str().unwrap_or(""),
    ]);
    assert!(
        std::fs::read(&back).expect("read") == model,
        "qemu sees Ikon's writes"
    );
    let img = open_path(&vhd, None);
    assert!(
        read_all(img.as_ref(), STEP) == model,
        "Ikon reads its writes back"
    );
    assert_eq!(
        ikon_data_ranges(img.as_ref()),
        qemu_data_ranges(&vhd, "vpc")
    );
    assert_eq!(
        ikon_data_ranges(img.as_ref()),
        vec![(0, 4 << 20), (6 << 20, 2 << 20)]
    );
    assert!(img.check().expect("check").is_clean());
}

/// Open, map and read a (possibly broken) image; any error is fine, a panic is not.
fn exercise(b: Vec<u8>) {
    if let Ok(img) = open_mem(b, Some(Format::Vhd)) {
        let _ = img.info();
        let _ = img.check();
        let len = img.len();
        if let Ok(m) = img.map(0, len) {
            let mut buf = vec![0u8; 8192];
            for e in m.iter().take(8) {
                let n = e.len.min(8192) as usize;
                let _ = img.read_exact_at(&mut buf[..n], e.offset);
            }
        }
    }
}

#[test]
fn mutated_vhd_never_panics() {
    let good = small_dynamic();
    let n = good.len();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let t = Instant::now();
    for _ in 0..300 {
        let mut b = good.clone();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let region = (x >> 60) % 3;
            let pos = match region {
                0 => (x % 2048) as usize,
                1 => 1536 + (x % 512) as usize,
                _ => n - 512 + (x % 512) as usize,
            };
            b[pos] = (x >> 32) as u8;
        }
        if x & 1 == 0 {
            fix_sums(&mut b);
        }
        exercise(b);
    }
    assert!(t.elapsed().as_secs() < 20, "mutation run too slow");
}

#[test]
fn create_sizes_match_qemu() {
    let t = TempDir::new("sizes");
    for size in [
        1_000_000u64,
        10_000_001,
        136_365_211_648,
        1 << 40,
        2_190_433_320_960,
    ] {
        for o in ["subformat=dynamic", "force_size=on"] {
            let q = t.path("q.vhd");
            let qs = q.to_str().unwrap_or("");
            qemu_ok(&["create", "-q", "-f", "vpc", "-o", o, qs, &size.to_string()]);
            let i = t.path("i.vhd");
            let mut opts = CreateOptions::new(Format::Vhd, size);
            opts.apply(o).expect("options");
            ikon_disk::create(&i, &opts)
                .expect("create")
                .finish()
                .expect("finish");
            assert_eq!(
                qemu_size(&i, "vpc"),
                qemu_size(&q, "vpc"),
                "size {size} opts {o}"
            );
            assert_eq!(open_path(&i, None).len(), qemu_size(&q, "vpc"));
        }
    }
    let opts = CreateOptions::new(Format::Vhd, 2_190_433_320_961);
    let err = ikon_disk::create(&t.path("big.vhd"), &opts).err();
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidInput));
}
