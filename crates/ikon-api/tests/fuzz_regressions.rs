//! Fuzz regressions of ikon-api's signature parsers and parameter
//! decoders: every input under
//! `fuzz/regressions/<target>/` (crashes, hangs and OOMs the fuzzer found, kept once fixed)
//! and `fuzz/seeds/<target>/`, replayed through the very function the cargo-fuzz target calls
//! (`fuzz/src/api.rs`, included below), each within a time limit. Any panic Ikon does not
//! contain by design fails the test, also one a `catch_unwind` would swallow (see
//! `fuzz/src/harness.rs`).

#[path = "../../../fuzz/src/harness.rs"]
mod harness;
#[path = "../../../fuzz/src/api.rs"]
mod targets;

#[test]
fn fuzz_regressions_replay() {
    let n = harness::replay(env!("CARGO_MANIFEST_DIR"), targets::TARGETS);
    assert!(n > 0, "no fuzz inputs found under fuzz/");
}

/// `fuzz/regressions/tencent_params/`: a GET query's names rebuild bounded JSON. Before the
/// fix, 64 KiB of `a.a.a…` nested 32 000 levels (dropping it overflowed a worker's stack
/// and aborted the server) and `a.999.999…` padded 16 000 lists to 1000 entries (about
/// 500 MB); the replay above only proves they no longer crash, this proves they are refused.
#[test]
fn tencent_query_rebuild_is_bounded() {
    use ikon_api::tencent::params::from_query;
    let deep = format!("a{}=x", ".a".repeat(32_000));
    let code = from_query(&deep).err().map(|e| e.code);
    assert_eq!(code.as_deref(), Some("InvalidParameter"));
    let wide = format!("a{}=x", ".999".repeat(11));
    let code = from_query(&wide).err().map(|e| e.code);
    assert_eq!(code.as_deref(), Some("InvalidParameterValue.LimitExceeded"));
    // What the SDK sends stays accepted: 4 levels, hundreds of list entries.
    let mut q = String::from("Filters.0.Name=image-id");
    for i in 0..999 {
        q.push_str(&format!(
            "&Filters.0.Values.{i}=img-{i}&ImageIds.{i}=img-{i}"
        ));
    }
    let v = from_query(&q).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(v["ImageIds"].as_array().map(Vec::len), Some(999));
    assert_eq!(v["Filters"][0]["Values"][998], "img-998");
}
