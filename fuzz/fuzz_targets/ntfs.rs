//! Fuzz target `ntfs`: bytes as an NTFS volume: walk, Windows detection, Windows scan checks.
//! The body is `ikon_fuzz::guest::ntfs` (fuzz/src/guest.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::guest::ntfs(data);
});
