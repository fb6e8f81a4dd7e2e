//! Format matrix with qemu-img as the oracle: for every source format and subformat qemu-img
//! writes, Ikon reads it with identical content, the same virtual size and the same data map;
//! and for every output Ikon writes, `qemu-img compare` finds the content identical and
//! `qemu-img check` finds the output clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::path::Path;

/// Sources written by qemu-img: (name, qemu format, qemu convert options).
const SOURCES: &[(&str, &str, &[&str])] = &[
    ("qcow2-v3", "qcow2", &["-o", "compat=1.1"]),
    ("qcow2-v2", "qcow2", &["-o", "compat=0.10"]),
    ("qcow2-c512", "qcow2", &["-o", "cluster_size=512"]),
    ("qcow2-c4k", "qcow2", &["-o", "cluster_size=4096"]),
    ("qcow2-c2m", "qcow2", &["-o", "cluster_size=2M"]),
    (
        "qcow2-zlib",
        "qcow2",
        &["-c", "-o", "compression_type=zlib"],
    ),
    (
        "qcow2-zstd",
        "qcow2",
        &["-c", "-o", "compression_type=zstd"],
    ),
    (
        "qcow2-extl2",
        "qcow2",
        &["-o", "extended_l2=on,cluster_size=128k"],
    ),
    (
        "qcow2-extl2-zstd",
        "qcow2",
        &["-c", "-o", "extended_l2=on,compression_type=zstd"],
    ),
    (
        "vpc-dynamic",
        "vpc",
        &["-o", "subformat=dynamic,force_size=on"],
    ),
    ("vpc-fixed", "vpc", &["-o", "subformat=fixed,force_size=on"]),
    ("vpc-dynamic-chs", "vpc", &["-o", "subformat=dynamic"]),
    ("vmdk-sparse", "vmdk", &["-o", "subformat=monolithicSparse"]),
    ("vmdk-stream", "vmdk", &["-o", "subformat=streamOptimized"]),
    ("vmdk-flat", "vmdk", &["-o", "subformat=monolithicFlat"]),
    (
        "vmdk-2gsparse",
        "vmdk",
        &["-o", "subformat=twoGbMaxExtentSparse"],
    ),
    (
        "vmdk-2gflat",
        "vmdk",
        &["-o", "subformat=twoGbMaxExtentFlat"],
    ),
    ("vhdx-dynamic", "vhdx", &[]),
    ("vhdx-fixed", "vhdx", &["-o", "subformat=fixed"]),
    ("vhdx-bs1m", "vhdx", &["-o", "block_size=1M"]),
];

/// Outputs Ikon writes: (name, qemu format for the oracle, ikon convert options).
const OUTPUTS: &[(&str, &str, &[&str])] = &[
    ("raw", "raw", &["-O", "raw"]),
    ("qcow2", "qcow2", &["-O", "qcow2"]),
    ("qcow2-v2", "qcow2", &["-O", "qcow2", "-o", "compat=0.10"]),
    ("qcow2-zlib", "qcow2", &["-O", "qcow2", "-c"]),
    (
        "qcow2-zstd",
        "qcow2",
        &["-O", "qcow2", "-c", "-o", "compression_type=zstd"],
    ),
    (
        "qcow2-extl2",
        "qcow2",
        &["-O", "qcow2", "-o", "extended_l2=on"],
    ),
    ("vhd-dynamic", "vpc", &["-O", "vhd", "-o", "force_size=on"]),
    (
        "vhd-fixed",
        "vpc",
        &["-O", "vhd", "-o", "subformat=fixed,force_size=on"],
    ),
    ("vhd-chs", "vpc", &["-O", "vhd"]),
    ("vmdk-sparse", "vmdk", &["-O", "vmdk"]),
    (
        "vmdk-stream",
        "vmdk",
        &["-O", "vmdk", "-o", "subformat=streamOptimized"],
    ),
];

/// True when every range of `inner` lies inside some range of `outer` (both merged).
fn covered(inner: &[(u64, u64)], outer: &[(u64, u64)]) -> bool {
    inner
        .iter()
        .all(|&(s, l)| outer.iter().any(|&(os, ol)| os <= s && s + l <= os + ol))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check_source(name: &str) {
    let (_, qfmt, qopts) = SOURCES.iter().find(|x| x.0 == name).unwrap();
    let dir = TempDir::new(&format!("matrix-{name}"));
    let raw = dir.path("pattern.raw");
    pattern_disk(&raw, PATTERN_SIZE);
    let src = dir.path(&format!("src.{qfmt}"));
    let mut args = vec!["convert", "-f", "raw", "-O", qfmt];
    args.extend_from_slice(qopts);
    args.extend([s(&raw), s(&src)]);
    qemu_img(&args);
    let allow = ["--allow-external", s(&dir.0)];
    let multi_file = name.starts_with("vmdk-flat") || name.starts_with("vmdk-2g");

    // Multi-file images are refused unless their directory is allowed.
    if multi_file {
        let o = ikon(&["img", "info", s(&src)]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{name}: external extents must be refused by default"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("unsafe"),
            "{name}: refusal must say why: {err}"
        );
    }
    let extra: &[&str] = if multi_file { &allow } else { &[] };

    // Read side: size, content and map agree with qemu-img.
    let info = ikon_info(&src, extra);
    let qsize = qemu_size(&src, qfmt);
    assert_eq!(
        info["virtual-size"].as_u64().unwrap(),
        qsize,
        "{name}: virtual size differs from qemu-img"
    );
    let qraw = dir.path("qemu.raw");
    qemu_img(&["convert", "-f", qfmt, "-O", "raw", s(&src), s(&qraw)]);
    let iraw = dir.path("ikon.raw");
    let mut c = vec!["img", "convert", "-O", "raw"];
    c.extend_from_slice(extra);
    c.extend([s(&src), s(&iraw)]);
    ikon_ok(&c);
    assert!(
        std::fs::read(&qraw).unwrap() == std::fs::read(&iraw).unwrap(),
        "{name}: Ikon's content differs from qemu-img's"
    );
    let (mine, qemus) = (ikon_data_ranges(&src, extra), qemu_data_ranges(&src, qfmt));
    if name.starts_with("vhdx") || name == "vpc-fixed" || name.ends_with("flat") {
        // qemu reports container allocation here (its VHDX driver has no block status; fixed
        // VHDs and flat VMDK extents are "all data", holes included); Ikon reports guest data. Every range Ikon calls
        // data must be data for qemu too, and everything else reads as zeros (checked above).
        assert!(
            covered(&mine, &qemus),
            "{name}: Ikon data {mine:?} outside qemu's {qemus:?}"
        );
    } else {
        assert_eq!(
            mine, qemus,
            "{name}: map data ranges differ from qemu-img map"
        );
    }

    // Write side: every output format, checked by qemu-img.
    for (oname, ofmt, oopts) in OUTPUTS {
        let out = dir.path(&format!("out-{oname}"));
        let mut c = vec!["img", "convert"];
        c.extend_from_slice(oopts);
        c.extend_from_slice(extra);
        c.extend([s(&src), s(&out)]);
        ikon_ok(&c);
        let cmp = run(
            "qemu-img",
            &["compare", "-f", "raw", "-F", ofmt, s(&raw), s(&out)],
        );
        assert!(
            cmp.status.success(),
            "{name} -> {oname}: qemu-img compare: {}{}",
            String::from_utf8_lossy(&cmp.stdout),
            String::from_utf8_lossy(&cmp.stderr)
        );
        if *ofmt == "qcow2" || *ofmt == "vmdk" {
            let chk = run("qemu-img", &["check", "-f", ofmt, s(&out)]);
            assert!(
                chk.status.success(),
                "{name} -> {oname}: qemu-img check: {}{}",
                String::from_utf8_lossy(&chk.stdout),
                String::from_utf8_lossy(&chk.stderr)
            );
        }
        let osize = qemu_size(&out, ofmt);
        if *oname == "vhd-chs" {
            assert!(
                osize >= PATTERN_SIZE,
                "{name} -> {oname}: CHS size {osize} smaller than the disk"
            );
        } else {
            assert_eq!(
                osize, qsize,
                "{name} -> {oname}: output virtual size differs"
            );
        }
        // Ikon reads back its own output (and agrees with itself through compare).
        let same = ikon(&["img", "compare", "-q", s(&raw), s(&out)]);
        assert_eq!(
            same.status.code(),
            Some(0),
            "{name} -> {oname}: ikon compare says different"
        );
        let _ = std::fs::remove_file(&out);
    }
}

macro_rules! matrix_tests {
    ($($t:ident => $n:expr),* $(,)?) => { $( #[test] fn $t() { check_source($n); } )* };
}

matrix_tests! {
    qcow2_v3 => "qcow2-v3", qcow2_v2 => "qcow2-v2", qcow2_c512 => "qcow2-c512", qcow2_c4k => "qcow2-c4k",
    qcow2_c2m => "qcow2-c2m", qcow2_zlib => "qcow2-zlib", qcow2_zstd => "qcow2-zstd",
    qcow2_extl2 => "qcow2-extl2", qcow2_extl2_zstd => "qcow2-extl2-zstd",
    vpc_dynamic => "vpc-dynamic", vpc_fixed => "vpc-fixed", vpc_dynamic_chs => "vpc-dynamic-chs",
    vmdk_sparse => "vmdk-sparse", vmdk_stream => "vmdk-stream", vmdk_flat => "vmdk-flat",
    vmdk_2gsparse => "vmdk-2gsparse", vmdk_2gflat => "vmdk-2gflat",
    vhdx_dynamic => "vhdx-dynamic", vhdx_fixed => "vhdx-fixed", vhdx_bs1m => "vhdx-bs1m",
}

#[test]
fn raw_source_map_and_outputs() {
    let dir = TempDir::new("matrix-raw");
    let raw = dir.path("pattern.raw");
    pattern_disk(&raw, PATTERN_SIZE);
    assert_eq!(ikon_data_ranges(&raw, &[]), qemu_data_ranges(&raw, "raw"));
    assert_eq!(
        ikon_info(&raw, &[])["virtual-size"].as_u64().unwrap(),
        PATTERN_SIZE
    );
}

#[test]
fn create_empty_images_are_valid() {
    let dir = TempDir::new("create");
    for (fmt, qfmt, opts) in [
        ("raw", "raw", ""),
        ("qcow2", "qcow2", ""),
        ("qcow2", "qcow2", "compat=0.10"),
        ("vhd", "vpc", "force_size=on"),
        ("vhd", "vpc", "subformat=fixed,force_size=on"),
        ("vmdk", "vmdk", ""),
        ("vmdk", "vmdk", "subformat=streamOptimized"),
    ] {
        let f = dir.path(&format!("empty-{fmt}-{}", opts.replace([',', '='], "_")));
        let mut args = vec!["img", "create", "-f", fmt];
        if !opts.is_empty() {
            args.extend(["-o", opts]);
        }
        args.extend([s(&f), "10G"]);
        ikon_ok(&args);
        assert_eq!(qemu_size(&f, qfmt), 10 << 30, "{fmt} {opts}: size");
        if qfmt == "qcow2" || qfmt == "vmdk" {
            qemu_img(&["check", "-f", qfmt, s(&f)]);
        }
        let cmp = run(
            "qemu-img",
            &["compare", "-f", qfmt, "-F", "raw", s(&f), "/dev/null"],
        );
        assert!(
            cmp.status.success(),
            "{fmt} {opts}: an empty image must read as zeros"
        );
    }
}

/// Every cache mode (`-t`, as qemu-img's) writes the same guest content; an unknown mode is
/// a usage error that creates nothing.
#[test]
fn convert_cache_modes() {
    let dir = TempDir::new("convert-cache");
    let raw = dir.path("pattern.raw");
    pattern_disk(&raw, PATTERN_SIZE);
    for mode in ["none", "writeback", "unsafe"] {
        for (fmt, qfmt) in [("qcow2", "qcow2"), ("vhd", "vpc"), ("raw", "raw")] {
            let out = dir.path(&format!("out-{mode}.{fmt}"));
            ikon_ok(&["img", "convert", "-t", mode, "-O", fmt, s(&raw), s(&out)]);
            qemu_img(&["compare", "-f", "raw", "-F", qfmt, s(&raw), s(&out)]);
            if qfmt == "qcow2" {
                qemu_img(&["check", "-f", qfmt, s(&out)]);
            }
        }
    }
    let out = dir.path("bad-mode.qcow2");
    let o = ikon(&[
        "img",
        "convert",
        "-t",
        "directsync",
        "-O",
        "qcow2",
        s(&raw),
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cache mode"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists());
}

#[test]
fn convert_failure_leaves_no_output() {
    let dir = TempDir::new("convert-fail");
    let bad = dir.path("bad.qcow2");
    let mut v = b"QFI\xfb\0\0\0\x03".to_vec();
    v.resize(4096, 0xff);
    std::fs::write(&bad, v).unwrap();
    let out = dir.path("out.raw");
    let o = ikon(&["img", "convert", "-O", "raw", s(&bad), s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !out.exists(),
        "a failed conversion must not leave an output file"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary files may remain: {leftovers:?}"
    );
}

/// A 1 TiB virtual disk with data at its start, middle and end converts to every output
/// format in bounded memory and time (only metadata and the written data are touched).
#[test]
fn huge_sparse_disk_bounded_memory() {
    let dir = TempDir::new("huge");
    let src = dir.path("huge.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&src), "1T"]);
    for off in ["0", "512G", "1099511562240"] {
        run_ok(
            "qemu-io",
            &[
                "-f",
                "qcow2",
                "-c",
                &format!("write -P 0x5a {off} 64k"),
                s(&src),
            ],
        );
    }
    for (oname, ofmt, oopts) in OUTPUTS {
        let out = dir.path(&format!("huge-{oname}"));
        let mut c = vec!["img", "convert", "-q"];
        c.extend_from_slice(oopts);
        c.extend([s(&src), s(&out)]);
        let t = std::time::Instant::now();
        let (code, rss) = ikon_rss(&c);
        let el = t.elapsed();
        assert_eq!(code, Some(0), "{oname}: convert failed");
        assert!(rss < 256 * 1024, "{oname}: peak memory {rss} KiB");
        eprintln!("1 TiB -> {oname}: {el:?}, peak {} MiB", rss / 1024);
        let cmp = run(
            "qemu-img",
            &["compare", "-f", "qcow2", "-F", ofmt, s(&src), s(&out)],
        );
        assert!(
            cmp.status.success(),
            "{oname}: {}",
            String::from_utf8_lossy(&cmp.stdout)
        );
        let _ = std::fs::remove_file(&out);
    }
}

#[test]
fn progress_is_shown_on_request_even_without_a_terminal() {
    // The test's stderr is a pipe, not a terminal: only -p shows progress.
    let dir = TempDir::new("progress");
    let src = dir.path("src.raw");
    pattern_disk(&src, PATTERN_SIZE);
    let out = dir.path("out.qcow2");
    let o = ikon(&["img", "convert", "-p", "-O", "qcow2", s(&src), s(&out)]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("MiB/"), "no progress with -p: {err:?}");
    let o = ikon(&[
        "img",
        "convert",
        "-O",
        "qcow2",
        s(&src),
        s(&dir.path("quiet.qcow2")),
    ]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "progress without -p: {:?}", o.stderr);
}

#[test]
fn convert_errors_name_the_destination_not_the_temporary_file() {
    let dir = TempDir::new("errname");
    let src = dir.path("src.raw");
    pattern_disk(&src, PATTERN_SIZE);
    let dest = dir.path("out.qcow2");
    let o = ikon(&[
        "img",
        "convert",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=3072",
        s(&src),
        s(&dest),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(s(&dest)), "{err}");
    assert!(!err.contains(".ikon-"), "{err}");
    assert!(!dest.exists(), "a failed conversion leaves no file");
}

#[test]
fn errors_found_after_opening_name_the_source() {
    let dir = TempDir::new("srcname");
    let raw = dir.path("src.raw");
    pattern_disk(&raw, PATTERN_SIZE);
    let full = dir.path("full.qcow2");
    qemu_img(&["convert", "-f", "raw", "-O", "qcow2", s(&raw), s(&full)]);
    // Keep the header and the L1 table, cut the L2 tables and data: opening succeeds, the
    // first map or read fails.
    let cut = dir.path("cut.qcow2");
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(&cut, &bytes[..3 * 65536 + 4096]).unwrap();
    let dest = dir.path("out.raw");
    for args in [
        vec!["img", "info", s(&cut)],
        vec!["img", "map", s(&cut)],
        vec!["img", "compare", s(&cut), s(&raw)],
        vec!["img", "convert", "-O", "raw", s(&cut), s(&dest)],
    ] {
        let o = ikon(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{}: qcow2", s(&cut))),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains(s(&dest)),
            "{args:?} blames the destination: {err}"
        );
    }
}

#[test]
fn progress_counts_the_data_not_the_virtual_size() {
    // 1 MiB of data at the start of a 1 GiB sparse disk: the bar's total is the data.
    let dir = TempDir::new("progress-data");
    let src = dir.path("sparse.raw");
    let mut data = vec![0u8; 1 << 20];
    Rng::new(7).fill(&mut data);
    std::fs::write(&src, &data).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&src)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = dir.path("out.qcow2");
    let o = ikon(&["img", "convert", "-p", "-O", "qcow2", s(&src), s(&out)]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/1.00 MiB"),
        "the bar's total is not the data: {err:?}"
    );
    assert!(
        !err.contains("/1.00 GiB"),
        "the bar counts the virtual size: {err:?}"
    );
}
