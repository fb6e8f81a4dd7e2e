//! Fuzz target `alibaba_params`: query string and form body decoded into Alibaba parameters (Key.N.Sub).
//! The body is `ikon_fuzz::api::alibaba_params` (fuzz/src/api.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::api::alibaba_params(data);
});
