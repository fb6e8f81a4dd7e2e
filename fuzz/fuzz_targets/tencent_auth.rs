//! Fuzz target `tencent_auth`: a TC3-HMAC-SHA256 Authorization header (+ timestamp, host, query, body), parsed and verified.
//! The body is `ikon_fuzz::api::tencent_auth` (fuzz/src/api.rs), replayed by `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ikon_fuzz::start_input();
    ikon_fuzz::api::tencent_auth(data);
});
