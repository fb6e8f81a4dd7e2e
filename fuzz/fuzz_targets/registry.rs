//! Fuzz target `registry`: bytes as a registry hive: keys, values and lookups by path.
//! The body is `ikon_fuzz::guest::registry` (fuzz/src/guest.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::guest::registry(data);
});
