//! Fuzz target `qcow2`: bytes opened as qcow2 (format forced), then info, check, map and reads.
//! The body is `ikon_fuzz::disk::qcow2` (fuzz/src/disk.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::disk::qcow2(data);
});
