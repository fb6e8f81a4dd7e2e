//! Fuzz target `ext4`: bytes as an ext2/3/4 filesystem: walk, Linux detection, Linux scan checks.
//! The body is `ikon_fuzz::guest::ext4` (fuzz/src/guest.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::guest::ext4(data);
});
