//! Fuzz target `scan`: bytes as a raw disk: `inspect`, then the hygiene scan `ikon_guest::scan::scan`.
//! The body is `ikon_fuzz::guest::scan` (fuzz/src/guest.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::guest::scan(data);
});
