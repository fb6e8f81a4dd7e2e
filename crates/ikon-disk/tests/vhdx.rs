//! VHDX integration tests with the real qemu-img as the oracle (qemu-made images read by
//! Ikon byte for byte) and a hostile-input set derived from a qemu-made image in memory.

// Test code: panicking on failure is the point; casts are on small test sizes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod common;

use common::{open_mem, qemu_data_ranges, qemu_ok, qemu_size, read_all, TempDir};
use ikon_disk::bytes::{le32_or_zero, le64_or_zero};
use ikon_disk::{ErrorKind, ExtentKind, Format, OpenOptions};
use std::time::Instant;

/// Read_all piece size: odd, to cross block boundaries.
const STEP: usize = 5 * 1024 * 1024 + 512;

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
        let len = (1 << 20) + (rnd() % (5 << 20)) as usize;
        let end = (pos + len).min(size);
        if i % 3 == 0 {
            for b in &mut v[pos..end] {
                *b = rnd() as u8;
            }
        }
        pos = end;
        i += 1;
    }
    let text = b"Ikon VHDX test text at unaligned offsets";
    for off in [
        777usize,
        (8 << 20) - 5,
        (13 << 20) + 4097,
        size - text.len(),
    ] {
        if off + text.len() <= size {
            v[off..off + text.len()].copy_from_slice(text);
        }
    }
    v
}

const SIZES: [usize; 3] = [8 << 20, 10_000_384, (27 << 20) + 1536];
const OPTS: [&str; 7] = [
    "subformat=dynamic",
    "subformat=fixed",
    "block_size=1M",
    "block_size=8M",
    "block_size=32M,log_size=2M",
    "subformat=fixed,block_size=8M",
    "subformat=fixed,block_state_zero=off",
];

#[test]
fn qemu_made_vhdx_reads_like_qemu() {
    let t = TempDir::new("qemu-made");
    for (si, &size) in SIZES.iter().enumerate() {
        let src = t.path("src.raw");
        let data = pattern(size, 3 + si as u64);
        std::fs::write(&src, &data).expect("write src");
        for o in OPTS {
            let img_p = t.path("q.vhdx");
            let back = t.path("back.raw");
            let (s, v, b) = (
                src.to_str().unwrap_or(""),
                img_p.to_str().unwrap_or(""),
                back.to_str().unwrap_or(""),
            );
            qemu_ok(&["convert", "-f", "raw", "-O", "vhdx", "-o", o, s, v]);
            qemu_ok(&["convert", "-f", "vhdx", "-O", "raw", v, b]);
            let img = ikon_disk::open(&img_p, &OpenOptions::default())
                .unwrap_or_else(|e| panic!("open vhdx size {size} opts {o}: {e}"));
            assert_eq!(img.info().format, Format::Vhdx);
            assert_eq!(
                img.len(),
                qemu_size(&img_p, "vhdx"),
                "virtual size, size {size} opts {o}"
            );
            let want = std::fs::read(&back).expect("read back");
            let got = read_all(img.as_ref(), STEP);
            assert!(
                got == want,
                "content differs from qemu, size {size} opts {o}"
            );
            // qemu reports every VHDX range as data; Ikon's data must lie within it and every
            // non-zero byte must be inside an Ikon data extent.
            let q = qemu_data_ranges(&img_p, "vhdx");
            for e in img.map(0, img.len()).expect("map") {
                let (s, l) = (e.offset, e.len);
                if e.kind == ExtentKind::Data {
                    assert!(
                        q.iter().any(|&(qs, ql)| qs <= s && s + l <= qs + ql),
                        "Ikon data {s}+{l} outside qemu data, opts {o}"
                    );
                } else {
                    let r = &got[s as usize..(s + l) as usize];
                    assert!(r.iter().all(|&x| x == 0), "non-data range {s}+{l} has data");
                }
            }
            let bs = o
                .split(',')
                .find_map(|kv| kv.strip_prefix("block_size="))
                .map(|v| v.trim_end_matches('M').parse::<u64>().unwrap_or(0) << 20);
            if let Some(bs) = bs {
                assert_eq!(img.info().cluster_size, Some(bs), "opts {o}");
            }
            assert!(img.check().expect("check").is_clean());
        }
    }
}

// ---------------------------------------------------------------- hostile input

fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Recompute the CRC of the structure of `len` bytes at `at`.
fn fix_crc(b: &mut [u8], at: usize, len: usize) {
    b[at + 4..at + 8].fill(0);
    let c = crc32c(&b[at..at + len]);
    b[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
}

const H1: usize = 64 << 10;
const H2: usize = 128 << 10;
const R1: usize = 192 << 10;
const R2: usize = 256 << 10;

/// (region table entry offset, file offset) of the region whose GUID starts with `g0`.
fn region(b: &[u8], g0: [u8; 4]) -> (usize, usize) {
    let n = le32_or_zero(b, R1 + 8) as usize;
    (0..n)
        .map(|i| R1 + 16 + 32 * i)
        .find(|&e| b[e..e + 4] == g0)
        .map(|e| (e - R1, le64_or_zero(b, e + 16) as usize))
        .expect("region present")
}
const BAT_G: [u8; 4] = [0x66, 0x77, 0xC2, 0x2D];
const META_G: [u8; 4] = [0x06, 0xA2, 0x7C, 0x8B];

/// File offset of the metadata item whose GUID starts with `g0`.
fn meta_item(b: &[u8], g0: [u8; 4]) -> usize {
    let (_, m) = region(b, META_G);
    let n = usize::from(u16::from_le_bytes([b[m + 10], b[m + 11]]));
    (0..n)
        .map(|i| m + 32 + 32 * i)
        .find(|&e| b[e..e + 4] == g0)
        .map(|e| m + le32_or_zero(b, e + 16) as usize)
        .expect("metadata item present")
}
const FILE_PARAMS_G: [u8; 4] = [0x37, 0x67, 0xA1, 0xCA];
const DISK_SIZE_G: [u8; 4] = [0x24, 0x42, 0xA5, 0x2F];

fn expect_err(name: &str, b: Vec<u8>, kind: ErrorKind) -> String {
    let t = Instant::now();
    let msg = match open_mem(b, Some(Format::Vhdx)) {
        Ok(img) => panic!("{name}: opened an image of {} bytes", img.len()),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{name}: {e}");
            e.to_string()
        }
    };
    assert!(t.elapsed().as_secs_f64() < 1.0, "{name} took too long");
    msg
}

/// Apply `f` to both region table copies and fix their CRCs.
fn both_regions(b: &mut [u8], f: impl Fn(&mut [u8], usize)) {
    for r in [R1, R2] {
        f(b, r);
        fix_crc(b, r, 64 << 10);
    }
}

#[test]
fn hostile_vhdx() {
    let t = TempDir::new("hostile");
    let src = t.path("src.raw");
    std::fs::write(&src, pattern(4 << 20, 11)).expect("write");
    let p = t.path("h.vhdx");
    let (s, v) = (src.to_str().unwrap_or(""), p.to_str().unwrap_or(""));
    qemu_ok(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "block_size=1M",
        s,
        v,
    ]);
    let good = std::fs::read(&p).expect("read");
    assert!(
        open_mem(good.clone(), Some(Format::Vhdx)).is_ok(),
        "unmodified image opens"
    );

    let mut b = good.clone();
    b[H1 + 100] ^= 1;
    b[H2 + 100] ^= 1;
    expect_err("bad CRC on both headers", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    for h in [H1, H2] {
        b[h + 48] = 1;
        fix_crc(&mut b, h, 4096);
    }
    let msg = expect_err("non-zero log GUID", b, ErrorKind::Unsupported);
    assert!(msg.contains("dirty log"), "{msg}");

    let mut b = good.clone();
    b[R1 + 40] ^= 1;
    b[R2 + 40] ^= 1;
    expect_err("bad CRC on both region tables", b, ErrorKind::Corrupt);

    for (name, bs) in [
        ("block size 0", 0u32),
        ("block size 3 MiB", 3 << 20),
        ("block size 2 GiB", 1 << 31),
    ] {
        let mut b = good.clone();
        let fp = meta_item(&b, FILE_PARAMS_G);
        b[fp..fp + 4].copy_from_slice(&bs.to_le_bytes());
        expect_err(name, b, ErrorKind::Corrupt);
    }

    let mut b = good.clone();
    let ds = meta_item(&b, DISK_SIZE_G);
    b[ds..ds + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    expect_err("virtual size 2^60", b, ErrorKind::Corrupt);

    let (bat_e, bat_off) = region(&good, BAT_G);
    let (meta_e, _) = region(&good, META_G);
    let mut b = good.clone();
    both_regions(&mut b, |b, r| {
        let o = le64_or_zero(b, r + bat_e + 16);
        b[r + meta_e + 16..r + meta_e + 24].copy_from_slice(&o.to_le_bytes());
    });
    expect_err("overlapping regions", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    both_regions(&mut b, |b, r| {
        b[r + bat_e + 16..r + bat_e + 24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    });
    expect_err("region past EOF", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    both_regions(&mut b, |b, r| {
        b[r + 8..r + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    expect_err("region count huge", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    let e: u64 = (1u64 << 40) | 6;
    b[bat_off..bat_off + 8].copy_from_slice(&e.to_le_bytes());
    expect_err("BAT entry past EOF", b, ErrorKind::Corrupt);

    let mut b = good.clone();
    b[bat_off..bat_off + 8].copy_from_slice(&6u64.to_le_bytes());
    expect_err("BAT entry in header area", b, ErrorKind::Corrupt);

    // Differencing: HasParent with a parent locator pointing at /etc/hosts -> Unsafe.
    let mut b = good.clone();
    let fp = meta_item(&b, FILE_PARAMS_G);
    b[fp + 4] |= 2;
    expect_err("HasParent without locator", b.clone(), ErrorKind::Corrupt);
    let (_, m) = region(&b, META_G);
    let n = usize::from(u16::from_le_bytes([b[m + 10], b[m + 11]]));
    let item_off = 256 << 10; // inside the 1 MiB metadata region, unused by qemu
    assert!(b[m + item_off..m + item_off + 4096].iter().all(|&x| x == 0));
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let (key, value) = (utf16("absolute_win32_path"), utf16("/etc/hosts"));
    let mut item = vec![0u8; 20];
    item[18..20].copy_from_slice(&1u16.to_le_bytes());
    let ko = 32u32;
    let vo = ko + key.len() as u32;
    item.extend_from_slice(&ko.to_le_bytes());
    item.extend_from_slice(&vo.to_le_bytes());
    item.extend_from_slice(&(key.len() as u16).to_le_bytes());
    item.extend_from_slice(&(value.len() as u16).to_le_bytes());
    item.extend_from_slice(&key);
    item.extend_from_slice(&value);
    b[m + item_off..m + item_off + item.len()].copy_from_slice(&item);
    let e = m + 32 + 32 * n;
    b[e..e + 16].copy_from_slice(&[
        0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB,
        0x0C,
    ]);
    b[e + 16..e + 20].copy_from_slice(&(item_off as u32).to_le_bytes());
    b[e + 20..e + 24].copy_from_slice(&(item.len() as u32).to_le_bytes());
    b[e + 24..e + 28].copy_from_slice(&6u32.to_le_bytes());
    b[m + 10..m + 12].copy_from_slice(&((n + 1) as u16).to_le_bytes());
    expect_err("parent locator to /etc/hosts", b, ErrorKind::Unsafe);

    expect_err("truncated", good[..300 << 10].to_vec(), ErrorKind::Corrupt);
    expect_err("truncated tiny", good[..100].to_vec(), ErrorKind::Corrupt);
}

#[test]
fn mutated_vhdx_never_panics() {
    let t = TempDir::new("mutate");
    let src = t.path("src.raw");
    std::fs::write(&src, pattern(3 << 20, 21)).expect("write");
    let p = t.path("m.vhdx");
    let (s, v) = (src.to_str().unwrap_or(""), p.to_str().unwrap_or(""));
    qemu_ok(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "block_size=1M",
        s,
        v,
    ]);
    let good = std::fs::read(&p).expect("read");
    let (_, bat_off) = region(&good, BAT_G);
    let (_, meta_off) = region(&good, META_G);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let start = Instant::now();
    for _ in 0..200 {
        let mut b = good.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = match (x >> 60) % 4 {
                0 => H1 + (x % 128) as usize,
                1 => R1 + (x % 128) as usize,
                2 => meta_off + (x % 512) as usize,
                _ => bat_off + (x % 64) as usize,
            };
            b[pos] = (x >> 32) as u8;
        }
        if x & 1 == 0 {
            for h in [H1, H2] {
                fix_crc(&mut b, h, 4096);
            }
            for r in [R1, R2] {
                fix_crc(&mut b, r, 64 << 10);
            }
        }
        if let Ok(img) = open_mem(b, Some(Format::Vhdx)) {
            let _ = img.info();
            let _ = img.check();
            if let Ok(m) = img.map(0, img.len()) {
                let mut buf = vec![0u8; 8192];
                for e in m.iter().take(8) {
                    let n = e.len.min(8192) as usize;
                    let _ = img.read_exact_at(&mut buf[..n], e.offset);
                }
            }
        }
    }
    assert!(start.elapsed().as_secs() < 30, "mutation run too slow");
}

/// Add a Parent Locator item with one `key` = `value` pair and set HasParent.
fn make_differencing(b: &mut [u8], key: &str, value: &str) {
    let fp = meta_item(b, FILE_PARAMS_G);
    b[fp + 4] |= 2;
    let (_, m) = region(b, META_G);
    let n = usize::from(u16::from_le_bytes([b[m + 10], b[m + 11]]));
    let item_off = 256 << 10; // inside the 1 MiB metadata region, unused by qemu
    assert!(b[m + item_off..m + item_off + 4096].iter().all(|&x| x == 0));
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let (key, value) = (utf16(key), utf16(value));
    let mut item = vec![0u8; 20];
    item[18..20].copy_from_slice(&1u16.to_le_bytes());
    let ko = 32u32;
    let vo = ko + key.len() as u32;
    item.extend_from_slice(&ko.to_le_bytes());
    item.extend_from_slice(&vo.to_le_bytes());
    item.extend_from_slice(&(key.len() as u16).to_le_bytes());
    item.extend_from_slice(&(value.len() as u16).to_le_bytes());
    item.extend_from_slice(&key);
    item.extend_from_slice(&value);
    b[m + item_off..m + item_off + item.len()].copy_from_slice(&item);
    let e = m + 32 + 32 * n;
    b[e..e + 16].copy_from_slice(&[
        0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB,
        0x0C,
    ]);
    b[e + 16..e + 20].copy_from_slice(&(item_off as u32).to_le_bytes());
    b[e + 20..e + 24].copy_from_slice(&(item.len() as u32).to_le_bytes());
    b[e + 24..e + 28].copy_from_slice(&6u32.to_le_bytes());
    b[m + 10..m + 12].copy_from_slice(&((n + 1) as u16).to_le_bytes());
}

#[test]
fn differencing_vhdx_with_allowed_parent() {
    let t = TempDir::new("diff");
    let mib = 1usize << 20;
    // parent: a 4 MiB pattern disk with 1 MiB blocks
    let parent_data = pattern(4 * mib, 31);
    let praw = t.path("p.raw");
    std::fs::write(&praw, &parent_data).expect("write");
    let parent = t.path("parent.vhdx");
    let (pr, pv) = (praw.to_str().unwrap_or(""), parent.to_str().unwrap_or(""));
    qemu_ok(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "block_size=1M",
        pr,
        pv,
    ]);
    // child: blocks 0-2 hold data, block 3 is empty
    let mut child_data = vec![0u8; 4 * mib];
    child_data[..3 * mib].fill(0xCD);
    let craw = t.path("c.raw");
    std::fs::write(&craw, &child_data).expect("write");
    let child = t.path("child.vhdx");
    let (cr, cv) = (craw.to_str().unwrap_or(""), child.to_str().unwrap_or(""));
    qemu_ok(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "block_size=1M",
        cr,
        cv,
    ]);
    let mut b = std::fs::read(&child).expect("read child");
    make_differencing(&mut b, "relative_path", ".\\parent.vhdx");
    // Block 1 becomes PARTIALLY_PRESENT (its first 3 sectors in the child); block 2's
    // 1 MiB of file space becomes the chunk's sector bitmap; block 2 and 3 come from the
    // parent. Chunk ratio = 2^23 * 512 / 1 MiB = 4096, so the bitmap entry is number 4096.
    let (_, bat) = region(&b, BAT_G);
    let ent = |b: &[u8], i: usize| le64_or_zero(b, bat + 8 * i);
    let b1 = ent(&b, 1) & !7;
    let b2 = ent(&b, 2) & !7;
    assert_eq!(ent(&b, 1) & 7, 6, "qemu wrote block 1 as present");
    b[bat + 8..bat + 16].copy_from_slice(&(b1 | 7).to_le_bytes());
    b[bat + 16..bat + 24].copy_from_slice(&0u64.to_le_bytes());
    b[bat + 24..bat + 32].copy_from_slice(&0u64.to_le_bytes()); // qemu marked it ZERO
    b[bat + 8 * 4096..bat + 8 * 4096 + 8].copy_from_slice(&(b2 | 6).to_le_bytes());
    let sb = b2 as usize;
    b[sb..sb + mib].fill(0);
    b[sb + 2048 / 8] = 0b0000_0111; // sectors 2048, 2049, 2050
    std::fs::write(&child, &b).expect("write child");

    let denied = ikon_disk::open(&child, &OpenOptions::default());
    assert_eq!(denied.err().map(|e| e.kind()), Some(ErrorKind::Unsafe));

    let opts = OpenOptions {
        policy: ikon_disk::ExternalPolicy::allow_dir(t.dir()).expect("policy"),
        ..Default::default()
    };
    let img = ikon_disk::open(&child, &opts).expect("open differencing vhdx");
    assert_eq!(img.info().subformat.as_deref(), Some("differencing"));
    assert_eq!(img.info().external_files, vec!["parent.vhdx".to_string()]);
    let mut want = parent_data.clone();
    want[..mib].fill(0xCD);
    want[mib..mib + 3 * 512].fill(0xCD);
    let got = read_all(img.as_ref(), STEP);
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        got == want,
        "differencing content differs first at {first_diff:?}"
    );
    // unaligned small read across the present/absent boundary
    let mut small = vec![0u8; 700];
    img.read_exact_at(&mut small, (mib + 3 * 512 - 300) as u64)
        .expect("read");
    assert!(small[..] == want[mib + 3 * 512 - 300..mib + 3 * 512 + 400]);
    let kinds: Vec<_> = img
        .map(0, img.len())
        .expect("map")
        .iter()
        .map(|e| (e.offset, e.len, e.kind))
        .collect();
    assert_eq!(kinds.first().map(|k| k.2), Some(ExtentKind::Data));
    let covered: u64 = kinds.iter().map(|k| k.1).sum();
    assert_eq!(covered, img.len());
}
