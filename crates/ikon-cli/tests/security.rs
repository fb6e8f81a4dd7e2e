//! Known-unsafe and edge-case images (OpenStack's os-test-images cases rebuilt by
//! scripts/make-security-images.sh, plus VM-image specific ones): every image Ikon must refuse
//! is refused with a clear error and exit code 2, every usable one opens with qemu-img's
//! virtual size; external references are honoured only inside an explicitly allowed
//! directory. Hostile headers are answered within a second and 256 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::time::{Duration, Instant};

fn build(dir: &TempDir) -> Vec<(String, String, String)> {
    let script = workspace_root().join("scripts/make-security-images.sh");
    run_ok("bash", &[script.to_str().unwrap(), dir.0.to_str().unwrap()]);
    let tsv = std::fs::read_to_string(dir.path("expected.tsv")).unwrap();
    tsv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn security_images_verdicts() {
    let dir = TempDir::new("security");
    let cases = build(&dir);
    assert!(cases.len() >= 20);
    for (file, fmt, verdict) in &cases {
        let p = dir.path(file);
        let o = ikon(&["img", "info", "--output", "json", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        match verdict.as_str() {
            "ok" => {
                assert_eq!(o.status.code(), Some(0), "{file}: must open: {err}");
                let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(
                    j["virtual-size"].as_u64().unwrap(),
                    qemu_size(&p, fmt),
                    "{file}: size"
                );
            }
            "unsafe" => {
                assert_eq!(o.status.code(), Some(2), "{file}: must be refused");
                assert!(err.contains("unsafe image refused"), "{file}: {err}");
            }
            "unsupported" => {
                assert_eq!(o.status.code(), Some(2), "{file}: must be refused");
                assert!(err.contains("unsupported"), "{file}: {err}");
            }
            other => panic!("unknown verdict {other}"),
        }
        eprintln!("{file}: {verdict}: {}", err.trim());
    }
}

#[test]
fn external_references_confined_to_allowed_dir() {
    let dir = TempDir::new("security-allow");
    build(&dir);
    let allow = dir.0.to_str().unwrap();
    // Inside the allowed directory: opened, content equal to qemu-img's.
    for f in ["vmdk-monolithicFlat.vmdk", "vmdk-2gbsparse.vmdk"] {
        let p = dir.path(f);
        let ps = p.to_str().unwrap();
        ikon_ok(&["img", "info", "--allow-external", allow, ps]);
        let out = dir.path(&format!("{f}.raw"));
        ikon_ok(&[
            "img",
            "convert",
            "--allow-external",
            allow,
            "-O",
            "raw",
            ps,
            out.to_str().unwrap(),
        ]);
        qemu_img(&[
            "compare",
            "-f",
            "vmdk",
            "-F",
            "raw",
            ps,
            out.to_str().unwrap(),
        ]);
    }
    // Pointing outside it (absolute path, ../, json:, protocols): still refused.
    for f in [
        "vmdk-monolithicFlat-leak.vmdk",
        "vmdk-monolithicFlat-dotdot.vmdk",
        "vmdk-sparse-with-url-backing.vmdk",
        "qcow-with-backing.qcow2",
        "qcow-with-json-backing.qcow2",
        "qcow-with-nbd-backing.qcow2",
    ] {
        let o = ikon(&[
            "img",
            "info",
            "--allow-external",
            allow,
            dir.path(f).to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{f}: must stay refused with a dir allowed"
        );
        assert!(err.contains("unsafe image refused"), "{f}: {err}");
    }
    // A symlink inside the allowed directory that leads out of it is refused too.
    let link_dir = TempDir::new("security-symlink");
    std::os::unix::fs::symlink("/etc/hosts", link_dir.path("base.raw")).unwrap();
    let child = link_dir.path("child.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "raw",
        "-b",
        "base.raw",
        "-u",
        child.to_str().unwrap(),
        "1M",
    ]);
    let o = ikon(&[
        "img",
        "info",
        "--allow-external",
        link_dir.0.to_str().unwrap(),
        child.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "symlink escape must be refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside the allowed directory"));
}

/// Patch `bytes` at `off` in `file` (big- or little-endian as the format wants).
fn patch(file: &std::path::Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

fn children_max_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss
}

#[test]
fn hostile_headers_bounded_time_and_memory() {
    let dir = TempDir::new("hostile");
    let mk = |name: &str, fmt: &str, opts: &[&str]| {
        let p = dir.path(name);
        let mut a = vec!["create", "-q", "-f", fmt];
        a.extend_from_slice(opts);
        a.extend([p.to_str().unwrap(), "64M"]);
        qemu_img(&a);
        p
    };
    let mut cases = Vec::new();
    // qcow2 (big-endian header): l1_size absurd, cluster_bits out of range, L1 past EOF,
    // refcount table past EOF, L1 overlapping the header, size 2^62.
    for (n, off, v) in [
        ("q-l1size", 36u64, 0x7fff_ffffu32.to_be_bytes().to_vec()),
        ("q-cbits-high", 20, 40u32.to_be_bytes().to_vec()),
        ("q-cbits-low", 20, 3u32.to_be_bytes().to_vec()),
        ("q-l1-past-eof", 40, (1u64 << 50).to_be_bytes().to_vec()),
        (
            "q-reftable-past-eof",
            48,
            (1u64 << 50).to_be_bytes().to_vec(),
        ),
        ("q-l1-on-header", 40, 0u64.to_be_bytes().to_vec()),
        ("q-size-huge", 24, (1u64 << 62).to_be_bytes().to_vec()),
        (
            "q-refclusters-huge",
            56,
            0xffff_ffffu32.to_be_bytes().to_vec(),
        ),
        (
            "q-snapshots-huge",
            60,
            0xffff_ffffu32.to_be_bytes().to_vec(),
        ),
    ] {
        let p = mk(&format!("{n}.qcow2"), "qcow2", &[]);
        patch(&p, off, &v);
        cases.push(p);
    }
    // VMDK sparse (little-endian header): capacity 2^60 sectors, GD offset past EOF,
    // grain size 0, numGTEsPerGT absurd.
    for (n, off, v) in [
        ("v-capacity", 12u64, (1u64 << 60).to_le_bytes().to_vec()),
        ("v-gd-past-eof", 56, (1u64 << 40).to_le_bytes().to_vec()),
        ("v-grain-zero", 20, 0u64.to_le_bytes().to_vec()),
        ("v-gtes", 44, 0xffff_ffffu32.to_le_bytes().to_vec()),
    ] {
        let p = mk(&format!("{n}.vmdk"), "vmdk", &[]);
        patch(&p, off, &v);
        cases.push(p);
    }
    // VHD dynamic: dynamic header at 512 — max table entries huge, table offset past EOF,
    // block size absurd (checksums left stale: must be refused either way).
    for (n, off, v) in [
        (
            "h-entries",
            512 + 28u64,
            0xffff_ffffu32.to_be_bytes().to_vec(),
        ),
        (
            "h-bat-past-eof",
            512 + 16,
            (1u64 << 50).to_be_bytes().to_vec(),
        ),
        (
            "h-blocksize",
            512 + 32,
            0x8000_0000u32.to_be_bytes().to_vec(),
        ),
    ] {
        let p = mk(&format!("{n}.vhd"), "vpc", &[]);
        patch(&p, off, &v);
        cases.push(p);
    }
    // VHDX: smash a header and the region table.
    for (n, off) in [
        ("x-header", 64 * 1024u64 + 8),
        ("x-region", 192 * 1024 + 16),
    ] {
        let p = mk(&format!("{n}.vhdx"), "vhdx", &[]);
        patch(&p, off, &[0xff; 64]);
        cases.push(p);
    }
    let before = children_max_rss_kib();
    for p in &cases {
        let ps = p.to_str().unwrap();
        for cmd in [
            &["img", "info", ps][..],
            &["img", "check", ps][..],
            &["img", "map", "--output", "json", ps][..],
        ] {
            let t = Instant::now();
            let o = ikon(cmd);
            let el = t.elapsed();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("panicked"), "{cmd:?}: panic: {err}");
            assert!(el < Duration::from_secs(1), "{cmd:?}: took {el:?}");
            assert!(
                matches!(o.status.code(), Some(0..=3)),
                "{cmd:?}: exit {:?}",
                o.status
            );
        }
        let o = ikon(&["img", "info", ps]);
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        // Two-copy formats (VHDX headers and region tables) may survive one smashed copy;
        // every other patched header must be refused.
        if !name.starts_with("x-") {
            assert_eq!(
                o.status.code(),
                Some(2),
                "{name}: a hostile header must be refused"
            );
        }
        eprintln!(
            "{}: {}",
            p.file_name().unwrap().to_string_lossy(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let rss = children_max_rss_kib().max(before);
    assert!(rss < 256 * 1024, "peak memory of a child was {rss} KiB");
}
