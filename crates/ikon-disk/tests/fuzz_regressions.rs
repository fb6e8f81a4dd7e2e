//! Fuzz regressions of ikon-disk's image formats: every input under
//! `fuzz/regressions/<target>/` (crashes, hangs and OOMs the fuzzer found, kept once fixed)
//! and `fuzz/seeds/<target>/`, replayed through the very function the cargo-fuzz target calls
//! (`fuzz/src/disk.rs`, included below), each within a time limit. Any panic Ikon does not
//! contain by design fails the test, also one a `catch_unwind` would swallow (see
//! `fuzz/src/harness.rs`).

#[path = "../../../fuzz/src/harness.rs"]
mod harness;
#[path = "../../../fuzz/src/disk.rs"]
mod targets;

#[test]
fn fuzz_regressions_replay() {
    let n = harness::replay(env!("CARGO_MANIFEST_DIR"), targets::TARGETS);
    assert!(n > 0, "no fuzz inputs found under fuzz/");
}
