//! Replays every input kept under `fuzz/regressions/<target>/` (crashes the fuzzers found,
//! plus hand-made edge seeds) through the same entry points the fuzzers call.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        run(&data);
        count += 1;
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn tlv_regressions() {
    replay("tlv", cie_core::fuzzing::tlv);
}

#[test]
fn response_regressions() {
    replay("response", cie_core::fuzzing::response);
}

#[test]
fn card_session_regressions() {
    replay("card_session", cie_core::fuzzing::card_session);
}

#[test]
fn sm_unwrap_regressions() {
    replay("sm_unwrap", cie_core::fuzzing::sm_unwrap);
}

#[test]
fn ias_objects_regressions() {
    replay("ias_objects", cie_core::fuzzing::ias_objects);
}

#[test]
fn ias_session_regressions() {
    replay("ias_session", cie_core::fuzzing::ias_session);
}

#[test]
fn otp_uri_regressions() {
    replay("otp_uri", cie_core::fuzzing::otp_uri);
}

#[test]
fn card_access_regressions() {
    replay("card_access", cie_core::fuzzing::card_access);
}

#[test]
fn emrtd_session_regressions() {
    replay("emrtd_session", cie_core::fuzzing::emrtd_session);
}

#[test]
fn lds_files_regressions() {
    replay("lds_files", cie_core::fuzzing::lds_files);
}

#[test]
fn emrtd_auth_regressions() {
    replay("emrtd_auth", cie_core::fuzzing::emrtd_auth);
}

#[test]
fn deviation_list_regressions() {
    replay("deviation_list", cie_core::fuzzing::deviation_list);
}

#[test]
fn trust_files_regressions() {
    replay("trust_files", cie_core::fuzzing::trust_files);
}

#[test]
fn desktop_qr_regressions() {
    replay("desktop_qr", cie_core::fuzzing::desktop_qr);
}

#[test]
fn server_key_regressions() {
    replay("server_key", cie_core::fuzzing::server_key);
}

#[test]
fn qr_frame_regressions() {
    replay("qr_frame", cie_core::fuzzing::qr_frame);
}

#[test]
fn cns_files_regressions() {
    replay("cns_files", cie_core::fuzzing::cns_files);
}

/// scripts/fuzz.sh copies whatever a target finds into `fuzz/regressions/<target>/`: each
/// target of fuzz/Cargo.toml must have that folder and a replay here (or, for the server's
/// target, in server/tests/fuzz_regressions.rs), or a kept crash would never run again.
#[test]
fn every_fuzz_target_is_replayed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let replays = [
        include_str!("fuzz_regressions.rs"),
        include_str!("../../server/tests/fuzz_regressions.rs"),
    ]
    .concat();
    let mut targets = 0;
    let mut lines = manifest.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "[[bin]]" {
            continue;
        }
        let name = lines
            .next()
            .and_then(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("a [[bin]] of fuzz/Cargo.toml without `name` first"));
        targets += 1;
        assert!(
            root.join("fuzz/regressions").join(name).is_dir(),
            "fuzz target {name} has no fuzz/regressions/{name}/"
        );
        assert!(
            replays.contains(&format!("replay(\"{name}\""))
                || replays.contains(&format!("regressions/{name}\"")),
            "fuzz target {name} is not replayed by a fuzz_regressions test"
        );
    }
    // The 17 of this writing: the parse above must not silently find none.
    assert!(
        targets >= 17,
        "only {targets} fuzz targets found in fuzz/Cargo.toml"
    );
}
