//! What the fuzz targets and the regression replays share besides the target bodies: which
//! panics are contained by design, and the replay of `fuzz/regressions/<target>/`.
//!
//! Included by the fuzz crate (`ikon_fuzz::harness`) and, with `#[path]`, by the
//! `tests/fuzz_regressions.rs` of ikon-disk, ikon-guest and ikon-api, so `cargo test` replays
//! every saved crash through exactly the function the fuzz target calls. Only `std` here.

#![allow(dead_code)]

use std::cell::Cell;
use std::panic::PanicHookInfo;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::{Duration, Instant};

/// A fuzz target: its name (the cargo-fuzz binary, the directory under `fuzz/regressions`
/// and `fuzz/seeds`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Whether a panic is one Ikon contains on purpose: the third-party `ntfs` crate panics on
/// some corrupt volumes, so every NTFS read in ikon-guest runs under `catch_unwind` (and the
/// NTFS bodies here do the same). A panic is contained when it is raised in the `ntfs` crate
/// or in what `ntfs` called (`byteorder`, `core` …) before any Ikon code: the panic's
/// location, else the innermost frame of the backtrace that is either `ntfs` or Ikon's, says.
/// Any other panic, caught or not, is a finding.
pub fn contained_by_design(info: &PanicHookInfo<'_>) -> bool {
    if info.location().is_some_and(|l| is_ntfs_file(l.file())) {
        return true;
    }
    let trace = format!("{:?}", std::backtrace::Backtrace::force_capture());
    // Frames print as `{ fn: "name", file: "path", line: n }`, innermost first; those up to
    // the panic machinery are this hook's.
    let frames: Vec<(&str, &str)> = trace
        .split("{ fn: \"")
        .skip(1)
        .map(|f| {
            let name = f.split('"').next().unwrap_or("");
            let file = f
                .split("file: \"")
                .nth(1)
                .and_then(|p| p.split('"').next())
                .unwrap_or("");
            (name, file)
        })
        .collect();
    let Some(start) = frames.iter().position(|(n, _)| {
        n.contains("rust_begin_unwind")
            || n.contains("core::panicking::")
            || n.contains("std::panicking::begin_panic")
    }) else {
        return false;
    };
    for &(name, file) in &frames[start..] {
        if is_ntfs_file(file) || in_crate(name, "ntfs::") {
            return true;
        }
        let ikon = ["/crates/ikon-", "/fuzz/src/", "/fuzz/fuzz_targets/"];
        if ikon.iter().any(|p| file.contains(p)) || in_crate(name, "ikon_") {
            return false;
        }
    }
    false
}

fn is_ntfs_file(file: &str) -> bool {
    let f = file.replace('\\', "/");
    f.contains("/ntfs-0.") && !f.contains("/ikon-")
}

/// Whether a demangled function name belongs to the crate whose path starts with `prefix`.
fn in_crate(name: &str, prefix: &str) -> bool {
    name.trim_start_matches('<').starts_with(prefix)
}

/// For fuzz binaries: libFuzzer's panic hook aborts on every panic, also on one Ikon
/// catches; let the contained ones unwind to their `catch_unwind` (silently) and hand all
/// others to libFuzzer. Call at the start of every input; installs once.
pub fn install_fuzz_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let libfuzzer = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !contained_by_design(info) {
                libfuzzer(info);
            }
        }));
    });
}

/// Longest one input may take in a replay (test builds are far slower than fuzz builds;
/// libFuzzer itself allows one second).
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// `fuzz/` of the repository, from a crate's manifest directory (`crates/<name>`).
pub fn fuzz_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../../fuzz")
}

/// Names of the `[[bin]]` targets of `fuzz/Cargo.toml`.
pub fn declared_targets(fuzz: &Path) -> Vec<String> {
    let toml = std::fs::read_to_string(fuzz.join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("fuzz/Cargo.toml: {e}"));
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin {
            if let Some(v) = line.strip_prefix("name") {
                let v = v
                    .trim_start()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"');
                out.push(v.to_string());
            }
        }
    }
    out
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') || n.ends_with(".md"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Replays, for every target of `targets`, each file of `fuzz/regressions/<target>/` (the
/// crashes found and fixed) and of `fuzz/seeds/<target>/` through the target's body, each
/// on its own thread with [`REPLAY_TIMEOUT`]. Fails on any panic that is not
/// [`contained_by_design`] (even one a `catch_unwind` in Ikon swallowed, as the fuzzer
/// would), on a timeout, on a target missing from `fuzz/Cargo.toml`, and on a regression
/// directory no target of `fuzz/Cargo.toml` owns. Returns how many inputs ran.
pub fn replay(manifest_dir: &str, targets: &[Target]) -> usize {
    let fuzz = fuzz_dir(manifest_dir);
    let declared = declared_targets(&fuzz);
    for (name, _) in targets {
        assert!(
            declared.iter().any(|d| d == name),
            "target {name} is not a [[bin]] of fuzz/Cargo.toml"
        );
    }
    for d in std::fs::read_dir(fuzz.join("regressions"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = d.file_name().to_string_lossy().to_string();
        assert!(
            !d.path().is_dir() || declared.contains(&n),
            "fuzz/regressions/{n} belongs to no fuzz target"
        );
    }

    // Count the panics of the replay threads that are not contained by design: each is a
    // failure, also one a catch_unwind swallowed, as it is for the fuzzer. (Panics of other
    // tests of the same binary are theirs.)
    static UNEXPECTED: AtomicUsize = AtomicUsize::new(0);
    static HOOK: Once = Once::new();
    thread_local! {
        static REPLAYING: Cell<bool> = const { Cell::new(false) };
    }
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if REPLAYING.with(Cell::get) && contained_by_design(info) {
                return;
            }
            if REPLAYING.with(Cell::get) {
                UNEXPECTED.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });

    let mut failures = Vec::new();
    let mut ran = 0;
    for &(name, body) in targets {
        for kind in ["regressions", "seeds"] {
            for path in files(&fuzz.join(kind).join(name)) {
                let data = Arc::new(
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                );
                let before = UNEXPECTED.load(Ordering::SeqCst);
                let t = Instant::now();
                let (tx, rx) = mpsc::channel();
                let input = Arc::clone(&data);
                std::thread::Builder::new()
                    .name(format!("{name}:{}", path.display()))
                    .spawn(move || {
                        REPLAYING.with(|r| r.set(true));
                        let r = std::panic::catch_unwind(|| body(&input));
                        let _ = tx.send(r.is_ok());
                    })
                    .unwrap_or_else(|e| panic!("spawn: {e}"));
                let what = format!("{name} {kind}/{name}/{}", file_name(&path));
                match rx.recv_timeout(REPLAY_TIMEOUT) {
                    Ok(true) if UNEXPECTED.load(Ordering::SeqCst) == before => {}
                    Ok(_) => failures.push(format!("{what}: panicked")),
                    Err(_) => failures.push(format!(
                        "{what}: still running after {:?} (a hang)",
                        REPLAY_TIMEOUT
                    )),
                }
                eprintln!("replayed {what} in {:?}", t.elapsed());
                ran += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz regressions failed:\n{}",
        failures.join("\n")
    );
    ran
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}
