//! Fuzz target: arbitrary bytes through content detection and whatever format it picks
//! (covers every parser, including the read-only foreign formats).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_disk::fuzzing::exercise(data, None);
});
