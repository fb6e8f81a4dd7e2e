//! Fuzz target `tencent_params`: a GET query string or a JSON body decoded into Tencent parameters.
//! The body is `ikon_fuzz::api::tencent_params` (fuzz/src/api.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::api::tencent_params(data);
});
