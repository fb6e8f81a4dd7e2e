//! Fuzz target `partition`: bytes as a raw disk: partition tables, then each partition's filesystem signature.
//! The body is `ikon_fuzz::guest::partition` (fuzz/src/guest.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::guest::partition(data);
});
