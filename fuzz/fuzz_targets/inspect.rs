//! Fuzz target `inspect`: bytes as a raw disk through `ikon_guest::inspect` and the import rules.
//! The body is `ikon_fuzz::guest::inspect` (fuzz/src/guest.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::guest::inspect(data);
});
