//! Replays the inputs kept under `fuzz/regressions/oidc_request/` (seeds, and any crash the
//! fuzzer ever finds) through the entry point the `oidc_request` target calls.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[test]
fn oidc_request_regressions() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/oidc_request");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        companion_server::oidc::fuzzing::request(&data);
        count += 1;
    }
    assert!(count >= 3, "no regression inputs in {}", dir.display());
}
