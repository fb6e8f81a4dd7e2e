//! Fuzz target `detect`: arbitrary bytes through content detection and whatever format it picks.
//! The body is `ikon_fuzz::disk::detect` (fuzz/src/disk.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::disk::detect(data);
});
