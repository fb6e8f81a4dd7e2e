//! Helpers shared by the CLI-level tests: temp dirs, the `ikon` binary, qemu-img as the
//! oracle (a missing qemu-img fails the test with instructions, it never skips), and a
//! deterministic pattern disk.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let base = std::env::var_os("IKON_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!("ikon-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("IKON_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Run a program and return its output; a missing program fails the test loudly.
pub fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {prog} ({e}): the oracle is missing; run scripts/install-test-deps.sh")
    })
}

/// Run a program that must succeed; returns stdout.
pub fn run_ok(prog: &str, args: &[&str]) -> String {
    let o = run(prog, args);
    assert!(
        o.status.success(),
        "{prog} {args:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// qemu-img, which must succeed.
pub fn qemu_img(args: &[&str]) -> String {
    run_ok("qemu-img", args)
}

/// The ikon binary under test.
pub fn ikon_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ikon")
}

/// Run ikon, returning the raw output.
pub fn ikon(args: &[&str]) -> Output {
    Command::new(ikon_bin())
        .args(args)
        .output()
        .expect("run ikon")
}

/// Run ikon, which must succeed; returns stdout.
pub fn ikon_ok(args: &[&str]) -> String {
    run_ok(ikon_bin(), args)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Virtual size as qemu-img sees it.
pub fn qemu_size(path: &Path, fmt: &str) -> u64 {
    let j: Value =
        serde_json::from_str(&qemu_img(&["info", "-f", fmt, "--output=json", p(path)])).unwrap();
    j["virtual-size"].as_u64().unwrap()
}

/// Virtual size and format as Ikon sees them.
pub fn ikon_info(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["img", "info", "--output", "json"];
    args.extend_from_slice(extra);
    args.push(p(path));
    serde_json::from_str(&ikon_ok(&args)).unwrap()
}

/// Merge sorted (start, len) ranges into maximal runs.
pub fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, l) in v {
        if l == 0 {
            continue;
        }
        if let Some(last) = out.last_mut() {
            if last.0 + last.1 >= s {
                last.1 = last.1.max(s + l - last.0);
                continue;
            }
        }
        out.push((s, l));
    }
    out
}

/// Ranges qemu-img map reports as data.
pub fn qemu_data_ranges(path: &Path, fmt: &str) -> Vec<(u64, u64)> {
    let j: Value =
        serde_json::from_str(&qemu_img(&["map", "-f", fmt, "--output=json", p(path)])).unwrap();
    merge(
        j.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"].as_bool().unwrap())
            .map(|e| (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
            .collect(),
    )
}

/// Ranges ikon map reports as data.
pub fn ikon_data_ranges(path: &Path, extra: &[&str]) -> Vec<(u64, u64)> {
    let mut args = vec!["img", "map", "--output", "json"];
    args.extend_from_slice(extra);
    args.push(p(path));
    let j: Value = serde_json::from_str(&ikon_ok(&args)).unwrap();
    merge(
        j.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"].as_bool().unwrap())
            .map(|e| (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
            .collect(),
    )
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// The pattern disk's size: 20 MiB + 3 sectors (not a multiple of any cluster size).
pub const PATTERN_SIZE: u64 = 20 * 1024 * 1024 + 1536;

/// Write a deterministic raw disk of `size` bytes: random data, long zero runs (left as
/// holes), zeros written explicitly, repeated text, runs at unaligned offsets, and data in
/// the last sectors.
pub fn pattern_disk(path: &Path, size: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut rng = Rng::new(size);
    let mut put = |off: u64, len: usize, kind: u8| {
        if off >= size {
            return;
        }
        let len = len.min((size - off) as usize);
        let mut b = vec![0u8; len];
        match kind {
            0 => rng.fill(&mut b),
            1 => {}
            _ => {
                let t = b"Ikon pattern disk: the quick brown fox jumps over the lazy dog. ";
                for (i, x) in b.iter_mut().enumerate() {
                    *x = t[i % t.len()];
                }
            }
        }
        f.write_all_at(&b, off).unwrap();
    };
    const M: u64 = 1 << 20;
    put(0, M as usize, 0);
    put(M + 4096, 2 * M as usize, 1);
    put(3 * M + 100, 5000, 2);
    put(5 * M, 3 * M as usize + 777, 0);
    put(12 * M - 7, 65536 + 20, 0);
    put(14 * M + 512, 512, 2);
    put(15 * M + 65536 * 3, 2 * M as usize, 2);
    put(size.saturating_sub(1024), 1024, 0);
}

/// Run ikon with stdout/stderr discarded and return (exit code, peak RSS in KiB) of that one
/// process, measured with wait4.
#[allow(clippy::zombie_processes)]
pub fn ikon_rss(args: &[&str]) -> (Option<i32>, i64) {
    use std::process::Stdio;
    let child = Command::new(ikon_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it and the status for our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    (code, ru.ru_maxrss)
}
