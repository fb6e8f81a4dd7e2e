//! Fuzz target `alibaba_auth`: an ACS3-HMAC-SHA256 header and V1 query/form parameters, parsed and verified.
//! The body is `ikon_fuzz::api::alibaba_auth` (fuzz/src/api.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::api::alibaba_auth(data);
});
