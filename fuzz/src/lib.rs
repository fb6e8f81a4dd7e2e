//! The bodies of Ikon's cargo-fuzz targets, one function per target, grouped by the crate
//! they exercise. `fuzz_targets/<name>.rs` calls [`start_input`], then
//! `ikon_fuzz::<crate>::<name>`; the regression tests of each crate
//! (`crates/<crate>/tests/fuzz_regressions.rs`) include the same files with `#[path]` and
//! replay `fuzz/regressions/<name>/` through the same functions, so `cargo test` checks every
//! crash ever found without cargo-fuzz.
//!
//! Memory: libFuzzer's `-malloc_limit_mb` needs a sanitizer's allocator hooks, and its
//! `-rss_limit_mb` also counts the corpus it keeps in memory (hundreds of MiB for the MiB-sized
//! disk inputs). So the Rust heap is capped here instead, by [`CappedAlloc`]: one allocation
//! of more than [`ALLOC_LIMIT`], or more than [`HEAP_LIMIT`] live at once, aborts the process
//! and libFuzzer saves the input as a `crash-*` finding. libFuzzer's own buffers are C++
//! allocations and do not count; scripts/fuzz.sh keeps a loose RSS limit for the machine's
//! sake.

pub mod api;
pub mod disk;
pub mod guest;
pub mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest single allocation an input may make (as libFuzzer's default `-malloc_limit_mb`
/// would with the 256 MiB RSS limit scripts/fuzz.sh used to set).
pub const ALLOC_LIMIT: usize = 256 << 20;
/// Most Rust heap an input may hold at once (the hygiene scan alone may read two hives of
/// up to 200 MiB each into buffers that are mostly never touched).
pub const HEAP_LIMIT: usize = 512 << 20;

/// The global allocator of the fuzz binaries: the system allocator, counting live bytes and
/// aborting past [`ALLOC_LIMIT`] / [`HEAP_LIMIT`].
pub struct CappedAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

fn over(what: &[u8]) -> ! {
    // No allocation here: we are inside the allocator.
    let mut e = std::io::stderr();
    let _ = e.write_all(b"==ikon-fuzz== ");
    let _ = e.write_all(what);
    let _ = e.write_all(b": the input exceeded the fuzz memory cap\n");
    std::process::abort();
}

fn grow(size: usize) {
    if size > ALLOC_LIMIT {
        over(b"a single allocation over ikon_fuzz::ALLOC_LIMIT");
    }
    if LIVE.fetch_add(size, Ordering::Relaxed) + size > HEAP_LIMIT {
        over(b"live Rust heap over ikon_fuzz::HEAP_LIMIT");
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counting
// around it touches no memory the caller owns.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded unchanged (same contract as ours).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grow(new_size - layout.size());
            if new_size > ALLOC_LIMIT {
                over(b"a single allocation over ikon_fuzz::ALLOC_LIMIT");
            }
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

/// Call first in every fuzz target, for every input: installs (once) the panic hook that
/// lets the panics Ikon contains by design unwind (see `harness::install_fuzz_hook`).
pub fn start_input() {
    harness::install_fuzz_hook();
}
