//! In-tree fuzzing: images written by qemu-img in every format are mutated deterministically
//! (header fields set to extremes, random bytes in the metadata area, truncation) and opened,
//! mapped, checked and read through the same function the cargo-fuzz targets call. A panic
//! fails the test; every input must be answered within a second.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use ikon_disk::fuzzing::exercise;
use std::process::Command;
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap()
    }
}

/// A small image written by qemu-img (fails loudly when qemu-img is missing).
fn seed(fmt: &str, opts: &[&str]) -> Vec<u8> {
    let tag: String = opts
        .concat()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let dir = std::env::temp_dir().join(format!("ikon-mut-{}-{fmt}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("in.raw");
    let mut data = vec![0u8; 4 << 20];
    let mut r = Rng(7);
    for i in (0..data.len()).step_by(3 * 65536 + 512) {
        let end = (i + 700).min(data.len());
        for b in &mut data[i..end] {
            *b = r.next() as u8;
        }
    }
    std::fs::write(&raw, &data).unwrap();
    let out = dir.join("out.img");
    let mut args = vec!["convert", "-f", "raw", "-O", fmt];
    args.extend_from_slice(opts);
    args.extend([raw.to_str().unwrap(), out.to_str().unwrap()]);
    let st = Command::new("qemu-img")
        .args(&args)
        .status()
        .expect("qemu-img is missing: run scripts/install-test-deps.sh");
    assert!(st.success(), "qemu-img {args:?} failed");
    let v = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    v
}

fn mutate(seed: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    match r.below(5) {
        0 => {
            let n = r.below(v.len());
            v.truncate(n);
        }
        1 => {
            // Overwrite an aligned 1/2/4/8-byte field in the first 4 KiB with an extreme.
            let width = [1usize, 2, 4, 8][r.below(4)];
            let at = r.below(4096.min(v.len()) / width) * width;
            let val: u64 = [0, u64::MAX, 1 << 31, 1 << 62, r.next(), 0x200][r.below(6)];
            let bytes = if r.below(2) == 0 {
                val.to_le_bytes()
            } else {
                val.to_be_bytes()
            };
            for (i, b) in bytes.iter().take(width).enumerate() {
                if let Some(x) = v.get_mut(at + i) {
                    *x = *b;
                }
            }
        }
        2 => {
            for _ in 0..1 + r.below(16) {
                let at = r.below(v.len());
                v[at] = r.next() as u8;
            }
        }
        3 => {
            // Footer/trailer area (VHD, VMDK stream and DMG keep metadata at the end).
            for _ in 0..1 + r.below(8) {
                let back = 1 + r.below(2048.min(v.len()));
                let at = v.len() - back;
                v[at] = r.next() as u8;
            }
        }
        _ => {
            // Copy one metadata region over another (tables pointing at each other).
            let n = 64.min(v.len() / 2);
            let a = r.below(4096.min(v.len() - n));
            let b = r.below(4096.min(v.len() - n));
            let chunk = v[a..a + n].to_vec();
            v[b..b + n].copy_from_slice(&chunk);
        }
    }
    v
}

fn run(fmt: &str, opts: &[&str], rounds: usize) {
    let s = seed(fmt, opts);
    assert!(
        exercise(&s, None),
        "{fmt} {opts:?}: the unmutated seed must open"
    );
    let mut r = Rng(0x1234_5678 ^ s.len() as u64);
    let mut slowest = Duration::ZERO;
    for i in 0..rounds {
        let m = mutate(&s, &mut r);
        let t = Instant::now();
        exercise(&m, None);
        let el = t.elapsed();
        slowest = slowest.max(el);
        assert!(
            el < Duration::from_secs(1),
            "{fmt} {opts:?}: mutation {i} took {el:?}"
        );
    }
    eprintln!("{fmt} {opts:?}: {rounds} mutations, slowest {slowest:?}");
}

#[test]
fn qcow2_mutations() {
    run("qcow2", &[], 400);
    run("qcow2", &["-c", "-o", "compat=0.10,cluster_size=4096"], 200);
    run(
        "qcow2",
        &["-c", "-o", "compression_type=zstd,extended_l2=on"],
        200,
    );
}

#[test]
fn vmdk_mutations() {
    run("vmdk", &["-o", "subformat=monolithicSparse"], 300);
    run("vmdk", &["-o", "subformat=streamOptimized"], 300);
}

#[test]
fn vhd_mutations() {
    run("vpc", &["-o", "subformat=dynamic"], 300);
    run("vpc", &["-o", "subformat=fixed"], 100);
}

#[test]
fn vhdx_mutations() {
    run("vhdx", &[], 300);
}

#[test]
fn parallels_mutations() {
    run("parallels", &[], 200);
}
