//! Integration tests for the read-only foreign formats (Parallels, Bochs, cloop, DMG): a
//! Parallels image made by the real qemu-img read like qemu reads it, synthetic Bochs, cloop

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
    assert_read_only, ikon_data_ranges, open_mem, put_be32, put_be64, put_le32, put_le64,
    qemu_data_ranges, qemu_ok, read_all, TempDir,
};
use ikon_disk::{ErrorKind, ExtentKind, Format, MemStorage, OpenContext, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// Read_all piece size.
const STEP: usize = 300 * 1024 + 512;

/// Deterministic disk: pseudo-random regions separated by zero regions.
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
    while pos < size {
        let len = (rnd() % (700 * 1024)) as usize + 1;
        let end = (pos + len).min(size);
        if rnd() % 3 != 0 {
            for b in &mut v[pos..end] {
                *b = rnd() as u8;
            }
        }
        pos = end + (rnd() % (1500 * 1024)) as usize;
    }
    v
}

fn expect_err(name: &str, b: Vec<u8>, kind: ErrorKind) {
    expect_err_as(name, b, kind, None);
}

fn expect_err_as(name: &str, b: Vec<u8>, kind: ErrorKind, format: Option<Format>) {
    let t = Instant::now();
    let options = OpenOptions {
        format,
        ..OpenOptions::default()
    };
    let ctx = OpenContext::new(options, None);
    let r = ikon_disk::open_storage(Arc::new(MemStorage::new(b)), &ctx).and_then(|img| {
        let mut buf = vec![0u8; usize::try_from(img.len().min(1 << 20)).unwrap()];
        img.read_exact_at(&mut buf, 0).map(|()| img)
    });
    match r {
        Ok(_) => panic!("{name}: hostile image was accepted"),
        Err(e) => assert_eq!(e.kind(), kind, "{name}: wrong error kind: {e}"),
    }
    assert!(
        t.elapsed().as_secs_f64() < 1.0,
        "{name}: took {:?}",
        t.elapsed()
    );
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------- Parallels

#[test]
fn parallels_made_by_qemu_reads_like_qemu() {
    let tmp = TempDir::new("parallels");
    let raw = tmp.path("src.raw");
    let data = pattern(8 << 20, 7);
    std::fs::write(&raw, &data).unwrap();
    for cluster in ["1M", "64K"] {
        let img = tmp.path(&format!("p-{cluster}.parallels"));
        let back = tmp.path("back.raw");
        let (r, i, b) = (
            raw.to_str().unwrap(),
            img.to_str().unwrap(),
            back.to_str().unwrap(),
        );
        qemu_ok(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "parallels",
            "-o",
            &format!("cluster_size={cluster}"),
            r,
            i,
        ]);
        qemu_ok(&["convert", "-f", "parallels", "-O", "raw", i, b]);
        let expected = std::fs::read(&back).unwrap();
        let qsize: serde_json::Value =
            serde_json::from_str(&qemu_ok(&["info", "--output=json", "-f", "parallels", i]))
                .unwrap();
        let opened = ikon_disk::open(&img, &OpenOptions::default()).expect("open parallels");
        assert_eq!(opened.info().format, Format::Parallels);
        assert_eq!(
            Some(opened.len()),
            qsize["virtual-size"].as_u64(),
            "{cluster}: virtual size"
        );
        assert!(
            read_all(opened.as_ref(), STEP) == expected,
            "{cluster}: content differs from qemu-img"
        );
        assert_eq!(
            ikon_data_ranges(opened.as_ref()),
            qemu_data_ranges(&img, "parallels"),
            "{cluster}: data map differs from qemu-img map"
        );
        assert_read_only(opened);
    }
}

/// A v1 ("WithoutFreeSpace", BAT in sectors) image: 4 clusters of 8 sectors, 2 allocated.
fn parallels_v1() -> (Vec<u8>, Vec<u8>) {
    let cluster = 4096usize;
    let mut b = vec![0u8; 4096];
    b[..16].copy_from_slice(b"WithoutFreeSpace");
    put_le32(&mut b, 16, 2);
    put_le32(&mut b, 20, 16);
    put_le32(&mut b, 24, 1);
    put_le32(&mut b, 28, 8);
    put_le32(&mut b, 32, 4);
    put_le64(&mut b, 36, 32);
    put_le32(&mut b, 48, 8);
    // cluster 1 at sector 8 (0x1000), cluster 3 at sector 16 (0x2000)
    put_le32(&mut b, 64 + 4, 8);
    put_le32(&mut b, 64 + 12, 16);
    let d1: Vec<u8> = (0..cluster).map(|i| (i % 251) as u8 + 1).collect();
    let d3: Vec<u8> = (0..cluster).map(|i| (i % 13) as u8 + 7).collect();
    b.extend_from_slice(&d1);
    b.extend_from_slice(&d3);
    let mut expected = vec![0u8; 4 * cluster];
    expected[cluster..2 * cluster].copy_from_slice(&d1);
    expected[3 * cluster..].copy_from_slice(&d3);
    (b, expected)
}

#[test]
fn parallels_v1_synthetic() {
    let (b, expected) = parallels_v1();
    let img = open_mem(b, None).expect("open v1");
    assert_eq!(img.info().format, Format::Parallels);
    assert_eq!(img.info().subformat.as_deref(), Some("v1"));
    assert!(read_all(img.as_ref(), STEP) == expected);
    assert_eq!(
        ikon_data_ranges(img.as_ref()),
        vec![(4096, 4096), (12288, 4096)]
    );
}

#[test]
fn hostile_parallels() {
    let (good, _) = parallels_v1();
    expect_err("truncated header", good[..40].to_vec(), ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 28, 0);
    expect_err("zero cluster size", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 32, u32::MAX);
    expect_err("absurd BAT size", b, ErrorKind::LimitExceeded);
    let mut b = good.clone();
    put_le32(&mut b, 32, 1_000_000);
    expect_err("BAT past EOF", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 64 + 4, 1_000_000);
    expect_err("cluster past EOF", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 32, 200);
    put_le32(&mut b, 64, 1);
    expect_err("cluster over the BAT", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 16, 3);
    expect_err("unknown version", b, ErrorKind::Unsupported);
    let mut b = good;
    b[..16].copy_from_slice(b"WithouFreSpacExt");
    put_le32(&mut b, 28, u32::MAX);
    expect_err("huge cluster", b, ErrorKind::LimitExceeded);
}

// ---------------------------------------------------------------- Bochs

/// A v2 growing image: 8 extents of 4 KiB, extent 2 stored with sectors 0, 3 and 7 present.
fn bochs_image(version: u32) -> (Vec<u8>, Vec<u8>) {
    let mut b = vec![0u8; 512];
    b[..22].copy_from_slice(b"Bochs Virtual HD Image");
    b[32..39].copy_from_slice(b"Redolog");
    b[48..55].copy_from_slice(b"Growing");
    put_le32(&mut b, 64, version);
    put_le32(&mut b, 68, 512);
    put_le32(&mut b, 72, 8);
    put_le32(&mut b, 76, 1);
    put_le32(&mut b, 80, 4096);
    let disk_at = if version == 0x10000 { 84 } else { 88 };
    put_le64(&mut b, disk_at, 8 * 4096);
    let mut cat = vec![0xffu8; 32];
    put_le32(&mut cat, 8, 0);
    b.extend_from_slice(&cat);
    let mut bitmap = vec![0u8; 512];
    bitmap[0] = 0b1000_1001;
    b.extend_from_slice(&bitmap);
    let data: Vec<u8> = (0..4096).map(|i| (i % 241) as u8 + 3).collect();
    b.extend_from_slice(&data);
    let mut expected = vec![0u8; 8 * 4096];
    for s in [0usize, 3, 7] {
        let at = 2 * 4096 + s * 512;
        expected[at..at + 512].copy_from_slice(&data[s * 512..s * 512 + 512]);
    }
    (b, expected)
}

#[test]
fn bochs_synthetic() {
    for version in [0x20000, 0x10000] {
        let (b, expected) = bochs_image(version);
        let img = open_mem(b, None).expect("open bochs");
        assert_eq!(img.info().format, Format::Bochs);
        assert_eq!(img.len(), 8 * 4096);
        assert!(
            read_all(img.as_ref(), STEP) == expected,
            "version {version:x}"
        );
        let mut one = [0u8; 100];
        img.read_exact_at(&mut one, 2 * 4096 + 3 * 512 + 50)
            .unwrap();
        assert_eq!(&one[..], &expected[2 * 4096 + 3 * 512 + 50..][..100]);
        assert_eq!(ikon_data_ranges(img.as_ref()), vec![(8192, 4096)]);
        assert_read_only(img);
    }
}

#[test]
fn hostile_bochs() {
    let (good, _) = bochs_image(0x20000);
    expect_err("truncated", good[..300].to_vec(), ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 72, u32::MAX);
    expect_err("absurd catalog", b, ErrorKind::LimitExceeded);
    let mut b = good.clone();
    put_le32(&mut b, 72, 1 << 20);
    put_le64(&mut b, 88, 1 << 32);
    expect_err("catalog past EOF", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 72, 2);
    expect_err("catalog too small", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 80, 3000);
    expect_err("extent not a power of two", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_le32(&mut b, 512 + 8, 0xffff_fff0);
    expect_err("extent past EOF", b, ErrorKind::Corrupt);
    let mut b = good;
    put_le32(&mut b, 64, 0x30000);
    expect_err("unknown version", b, ErrorKind::Unsupported);
}

// ---------------------------------------------------------------- cloop

fn cloop_image() -> (Vec<u8>, Vec<u8>) {
    let bs = 4096usize;
    let expected: Vec<u8> = (0..3 * bs)
        .map(|i| if i < bs { 0 } else { (i * 7 % 253) as u8 })
        .collect();
    let mut b = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\nexit $?\n".to_vec();
    b.resize(128, 0);
    b.extend_from_slice(&(bs as u32).to_be_bytes());
    b.extend_from_slice(&3u32.to_be_bytes());
    let blocks: Vec<Vec<u8>> = expected.chunks(bs).map(zlib).collect();
    let mut off = 136 + 4 * 8;
    for blk in blocks.iter().map(Vec::len).chain(std::iter::once(0)) {
        b.extend_from_slice(&(off as u64).to_be_bytes());
        off += blk;
    }
    for blk in &blocks {
        b.extend_from_slice(blk);
    }
    (b, expected)
}

#[test]
fn cloop_synthetic() {
    let (b, expected) = cloop_image();
    let img = open_mem(b, None).expect("open cloop");
    assert_eq!(img.info().format, Format::Cloop);
    assert_eq!(img.len(), 3 * 4096);
    assert!(read_all(img.as_ref(), STEP) == expected);
    let mut piece = [0u8; 5000];
    img.read_exact_at(&mut piece, 4000).unwrap();
    assert_eq!(&piece[..], &expected[4000..9000]);
    assert_read_only(img);
}

#[test]
fn hostile_cloop() {
    let (good, _) = cloop_image();
    expect_err("truncated", good[..100].to_vec(), ErrorKind::Corrupt);
    let mut b = good.clone();
    put_be32(&mut b, 132, u32::MAX);
    expect_err("absurd block count", b, ErrorKind::LimitExceeded);
    let mut b = good.clone();
    put_be32(&mut b, 132, 100_000);
    expect_err("offsets past EOF", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_be32(&mut b, 128, 1000);
    expect_err("block size not a multiple of 512", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_be32(&mut b, 128, 0x8000_0000);
    expect_err("huge block size", b, ErrorKind::LimitExceeded);
    let mut b = good.clone();
    put_be64(&mut b, 136 + 8, 10);
    expect_err("offsets going backwards", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_be64(&mut b, 136 + 24, 1 << 40);
    expect_err("block past EOF", b, ErrorKind::Corrupt);
    let mut b = good.clone();
    put_be32(&mut b, 128, 8192);
    expect_err("block inflates short", b, ErrorKind::Corrupt);
    let mut b = good;
    let first = 136 + 32 + 2;
    b[first] ^= 0xff;
    b[first + 1] ^= 0xff;
    expect_err("garbage zlib", b, ErrorKind::Corrupt);
}

// ---------------------------------------------------------------- DMG

const KOLY_SECTORS: usize = 0x1ec;

/// Chunk entry (type, sector, count, offset within the blob, length).
fn dmg_chunk(t: u32, sector: u64, count: u64, off: u64, len: u64) -> Vec<u8> {
    let mut e = vec![0u8; 40];
    put_be32(&mut e, 0, t);
    put_be64(&mut e, 8, sector);
    put_be64(&mut e, 16, count);
    put_be64(&mut e, 24, off);
    put_be64(&mut e, 32, len);
    e
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (n, c) in data.chunks(3).enumerate() {
        if n > 0 && n % 18 == 0 {
            s.push_str("\n\t\t\t");
        }
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A 16-sector DMG: 2 zero sectors, 3 raw, 4 zlib, 1 ignored, then a gap, then 4 zlib at
/// sector 12 in a second table; `rsrc` puts the tables in a resource fork instead of XML.
fn dmg_image(rsrc: bool) -> (Vec<u8>, Vec<u8>) {
    let mut expected = vec![0u8; 16 * 512];
    for (i, b) in expected.iter_mut().enumerate().skip(2 * 512).take(7 * 512) {
        *b = (i % 239) as u8 + 1;
    }
    for (i, b) in expected.iter_mut().enumerate().skip(12 * 512) {
        *b = (i % 17) as u8;
    }
    let mut file = vec![0u8; 1024]; // some leading bytes before the data fork
    let fork = file.len() as u64;
    let raw = expected[2 * 512..5 * 512].to_vec();
    let z1 = zlib(&expected[5 * 512..9 * 512]);
    let z2 = zlib(&expected[12 * 512..16 * 512]);
    let blob = file.len();
    file.extend_from_slice(&raw);
    file.extend_from_slice(&z1);
    let blob2 = file.len();
    file.extend_from_slice(&z2);
    let mk = |first: u64, data_off: u64, chunks: &[Vec<u8>]| {
        let mut m = vec![0u8; 204];
        m[..4].copy_from_slice(b"mish");
        put_be32(&mut m, 4, 1);
        put_be64(&mut m, 8, first);
        put_be64(&mut m, 24, data_off);
        put_be32(&mut m, 200, chunks.len() as u32);
        for c in chunks {
            m.extend_from_slice(c);
        }
        m
    };
    let rel = (blob as u64) - fork;
    let t1 = mk(
        0,
        rel,
        &[
            dmg_chunk(0, 0, 2, 0, 0),
            dmg_chunk(1, 2, 3, 0, raw.len() as u64),
            dmg_chunk(0x7fff_fffe, 5, 0, 0, 0),
            dmg_chunk(0x8000_0005, 5, 4, raw.len() as u64, z1.len() as u64),
            dmg_chunk(2, 9, 1, 0, 0),
            dmg_chunk(0xffff_ffff, 10, 0, 0, 0),
        ],
    );
    let t2 = mk(
        12,
        (blob2 as u64) - fork,
        &[
            dmg_chunk(0x8000_0005, 0, 4, 0, z2.len() as u64),
            dmg_chunk(0xffff_ffff, 4, 0, 0, 0),
        ],
    );
    let (meta_off, meta_len) = (file.len() as u64, {
        if rsrc {
            let mut res = Vec::new();
            for t in [&t1, &t2] {
                res.extend_from_slice(&(t.len() as u32).to_be_bytes());
                res.extend_from_slice(t);
            }
            let mut f = vec![0u8; 256];
            put_be32(&mut f, 0, 256);
            put_be32(&mut f, 8, res.len() as u32);
            f.extend_from_slice(&res);
            f.extend_from_slice(&[0u8; 30]); // resource map, ignored
            file.extend_from_slice(&f);
            f.len() as u64
        } else {
            let xml = format!(
                "<?xml version=\"1.0\"?>\n<plist version=\"1.0\"><dict><key>resource-fork</key><dict><key>blkx</key><array>\n<dict><key>Data</key>\n<data>\n\t\t\t{}\n\t\t\t</data></dict>\n<dict><key>Data</key><data>{}</data></dict>\n<dict><key>Data</key><data>{}</data></dict></array></dict></dict></plist>\n",
                b64(&t1),
                b64(b"not a mish table"),
                b64(&t2)
            );
            file.extend_from_slice(xml.as_bytes());
            xml.len() as u64
        }
    });
    let mut k = vec![0u8; 512];
    k[..4].copy_from_slice(b"koly");
    put_be32(&mut k, 4, 4);
    put_be32(&mut k, 8, 512);
    put_be64(&mut k, 0x18, fork);
    put_be64(&mut k, 0x20, meta_off - fork);
    if rsrc {
        put_be64(&mut k, 0x28, meta_off);
        put_be64(&mut k, 0x30, meta_len);
    } else {
        put_be64(&mut k, 0xd8, meta_off);
        put_be64(&mut k, 0xe0, meta_len);
    }
    put_be64(&mut k, KOLY_SECTORS, 16);
    file.extend_from_slice(&k);
    (file, expected)
}

#[test]
fn dmg_synthetic() {
    for rsrc in [false, true] {
        let (b, expected) = dmg_image(rsrc);
        let img = open_mem(b, None).expect("open dmg");
        assert_eq!(img.info().format, Format::Dmg);
        assert_eq!(img.len(), 16 * 512);
        assert!(read_all(img.as_ref(), STEP) == expected, "rsrc={rsrc}");
        let mut piece = [0u8; 3000];
        img.read_exact_at(&mut piece, 1000).unwrap();
        assert_eq!(&piece[..], &expected[1000..4000]);
        let map = img.map(0, img.len()).unwrap();
        let kinds: Vec<(u64, u64, ExtentKind)> =
            map.iter().map(|e| (e.offset, e.len, e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (0, 1024, ExtentKind::Zero),
                (1024, 1536, ExtentKind::Data),
                (2560, 2048, ExtentKind::Data),
                (4608, 512, ExtentKind::Zero),
                (5120, 1024, ExtentKind::Unallocated),
                (6144, 2048, ExtentKind::Data),
            ]
        );
        assert_read_only(img);
    }
}

#[test]
fn hostile_dmg() {
    let (good, _) = dmg_image(false);
    let n = good.len();
    let k = n - 512;
    let set64 = |off: usize, v: u64| {
        let mut b = good.clone();
        put_be64(&mut b, k + off, v);
        b
    };
    expect_err("xml past trailer", set64(0xe0, 1 << 40), ErrorKind::Corrupt);
    expect_err(
        "data fork past trailer",
        set64(0x18, 1 << 50),
        ErrorKind::Corrupt,
    );
    expect_err("no metadata", set64(0xe0, 0), ErrorKind::Corrupt);
    expect_err(
        "huge sector count",
        set64(KOLY_SECTORS, u64::MAX),
        ErrorKind::Corrupt,
    );
    // unclosed <data>
    let mut b = good.clone();
    let pos = b.windows(7).rposition(|w| w == b"</data>").unwrap();
    b[pos..pos + 7].copy_from_slice(b"</dada>");
    expect_err("unclosed data", b, ErrorKind::Corrupt);
    // invalid base64
    let mut b = good.clone();
    let pos = b.windows(6).position(|w| w == b"<data>").unwrap();
    b[pos + 10] = b'*';
    expect_err("bad base64", b, ErrorKind::Corrupt);
    // chunk past EOF: move the data fork so the blobs point past the trailer
    expect_err(
        "chunk past trailer",
        set64(0x18, (k - 10) as u64),
        ErrorKind::Corrupt,
    );
    expect_err_as(
        "truncated",
        good[..300].to_vec(),
        ErrorKind::Corrupt,
        Some(Format::Dmg),
    );
    expect_err_as(
        "no trailer",
        good[..n - 1].to_vec(),
        ErrorKind::Corrupt,
        Some(Format::Dmg),
    );
}
