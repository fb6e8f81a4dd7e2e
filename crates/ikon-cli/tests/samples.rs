//! Real images written by other programs (QEMU's iotests sample images: Virtual PC,
//! Hyper-V and Disk2VHD VHDs, Hyper-V/Disk2VHD/QEMU VHDX, VMware streamOptimized VMDK,
//! bochs, parallels, cloop, dmg, and fuzzer-made broken files). Every one qemu-img opens,
//! Ikon opens with the same virtual size and identical content; the broken ones and the
//! VHDX with a dirty log are refused with a clear error. The images are fetched at test
//! time by scripts/fetch-sample-images.sh (the test command does it); a missing set fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

fn samples_dir() -> PathBuf {
    let dir = std::env::var_os("IKON_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/samples/qemu"));
    assert!(
        dir.join("virtualpc-dynamic.vhd").exists(),
        "sample images missing in {}: run scripts/fetch-sample-images.sh .cache/samples",
        dir.display()
    );
    dir
}

/// Files qemu-img refuses, and what Ikon must say about them.
const REFUSED: &[(&str, &str)] = &[
    ("afl5.img", "corrupt image"),
    ("afl9.vmdk", ""),
    ("iotest-dirtylog-10G-4M.vhdx", "log"),
];

#[test]
fn every_sample_qemu_opens_ikon_opens_identically() {
    let dir = samples_dir();
    let tmp = TempDir::new("samples");
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let p = path.to_str().unwrap();
        let q = run("qemu-img", &["info", "--output=json", p]);
        if !q.status.success() {
            let (_, must_say) = REFUSED.iter().find(|(n, _)| *n == name).unwrap_or_else(|| {
                panic!("{name}: qemu-img refuses it but the test does not know why")
            });
            let o = ikon(&["img", "info", p]);
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert_eq!(
                o.status.code(),
                Some(2),
                "{name}: must be refused, got {o:?}"
            );
            assert!(
                err.contains(must_say),
                "{name}: refusal should mention {must_say:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {err}");
            eprintln!("{name}: refused: {}", err.trim());
            checked += 1;
            continue;
        }
        let j: Value = serde_json::from_slice(&q.stdout).unwrap();
        let qfmt = j["format"].as_str().unwrap().to_string();
        let qsize = j["virtual-size"].as_u64().unwrap();
        let info = ikon_info(&path, &[]);
        assert_eq!(
            info["virtual-size"].as_u64().unwrap(),
            qsize,
            "{name}: virtual size differs from qemu-img"
        );
        // Convert with Ikon to qcow2 (sparse, so the 127 GiB Hyper-V disk stays small) and let
        // qemu-img compare it with the original as qemu reads it.
        let out = tmp.path(&format!("{name}.qcow2"));
        ikon_ok(&[
            "img",
            "convert",
            "-q",
            "-O",
            "qcow2",
            p,
            out.to_str().unwrap(),
        ]);
        let cmp = run(
            "qemu-img",
            &[
                "compare",
                "-f",
                &qfmt,
                "-F",
                "qcow2",
                p,
                out.to_str().unwrap(),
            ],
        );
        assert!(
            cmp.status.success(),
            "{name} ({qfmt}): content differs from qemu-img's reading: {}",
            String::from_utf8_lossy(&cmp.stdout)
        );
        let _ = std::fs::remove_file(&out);
        eprintln!("{name}: {qfmt}, {qsize} bytes, identical");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} sample files were checked");
}

#[test]
fn sample_maps_agree_with_qemu() {
    let dir = samples_dir();
    for (name, fmt) in [
        ("virtualpc-dynamic.vhd", "vpc"),
        ("d2v-zerofilled.vhd", "vpc"),
        ("iotest-dynamic-1G.vhdx", "vhdx"),
        ("test-disk2vhd.vhdx", "vhdx"),
        ("iotest-version3.vmdk", "vmdk"),
    ] {
        let p = dir.join(name);
        let (mine, qemus) = (ikon_data_ranges(&p, &[]), qemu_data_ranges(&p, fmt));
        if fmt == "vhdx" {
            // qemu's VHDX driver reports everything as data; Ikon's data must lie inside it.
            let inside = mine
                .iter()
                .all(|&(s, l)| qemus.iter().any(|&(qs, ql)| qs <= s && s + l <= qs + ql));
            assert!(
                inside,
                "{name}: Ikon data {mine:?} outside qemu's {qemus:?}"
            );
        } else {
            assert_eq!(mine, qemus, "{name}: data map differs from qemu-img map");
        }
    }
}
