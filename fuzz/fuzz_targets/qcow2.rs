//! Fuzz target: arbitrary bytes opened as qcow2 (format forced), then info, check, map and reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_disk::fuzzing::exercise(data, Some(ikon_disk::Format::Qcow2));
});
