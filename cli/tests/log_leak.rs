//! No secret in the logs: a full `cie-companion demo` (the CLI and its embedded server in
//! one process) with every log line on (RUST_LOG=trace, the APDU trace included) written to
//! a file apart from the screen text, then searched for the secrets of the run in every
//! encoding a log line could carry them in (docs/operations.md "Logs").
#![allow(clippy::unwrap_used)]

use std::process::Command;

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD};

/// The virtual card's authentication key (PKCS#8 DER).
const CARD_KEY: &[u8] = include_bytes!("../../card-sim/testdata/auth_key.pk8.der");
/// The virtual card's holder.
const CARD_CF: &str = "TSTTST80A01H501X";
/// The PIN residents abroad choose in the demo (cli/src/demo.rs).
const ABROAD_NEW_PIN: &str = "K7W9X2QZ";

/// `bytes` as a log line could show them.
fn encodings(bytes: &[u8]) -> Vec<String> {
    let mut out = vec![
        hex::encode(bytes),
        hex::encode_upper(bytes),
        BASE64.encode(bytes),
        BASE64_NOPAD.encode(bytes),
        BASE64URL.encode(bytes),
        BASE64URL_NOPAD.encode(bytes),
        // Rust's `{:?}` of a byte slice.
        format!("{bytes:?}"),
    ];
    if let Ok(text) = std::str::from_utf8(bytes) {
        out.push(text.to_owned());
    }
    out
}

/// Log lines without the parts that are numbers of their own (timestamps, latencies), so a
/// four-digit code cannot match a clock reading by chance.
fn without_numbers_of_their_own(log: &str) -> String {
    log.lines()
        .map(|l| {
            // The timestamp runs to the first space.
            let l = l.split_once(' ').map_or(l, |(_, rest)| rest);
            l.split(' ')
                .filter(|w| !w.starts_with("latency_ms="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `needle` occurs in `hay` as a whole token (not inside a longer run of
/// alphanumerics).
fn has_token(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// JSON lines without the values that are numbers of their own (timestamp, latency).
fn json_without_numbers_of_their_own(log: &str) -> String {
    log.lines()
        .map(|l| {
            let mut v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            if let Some(o) = v.as_object_mut() {
                o.remove("timestamp");
                if let Some(f) = o.get_mut("fields").and_then(|f| f.as_object_mut()) {
                    f.remove("latency_ms");
                }
            }
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_full_demo_logs_no_secret() {
    demo_logs_no_secret("text");
}

#[test]
fn a_full_demo_logs_no_secret_in_json() {
    demo_logs_no_secret("json");
}

/// Marks of a non-trivial log in each format: a request span, the card login's route, the
/// PIN + OTP login's route, a VERIFY in the APDU trace (plain or under secure messaging).
fn marks(format: &str) -> [&'static str; 5] {
    if format == "json" {
        [
            "\"name\":\"request\"",
            "\"route\":\"/api/v1/card/login\"",
            "\"route\":\"/api/v1/abroad/login/otp\"",
            "\"command\":\"0020",
            "\"command\":\"0C20",
        ]
    } else {
        [
            "request{id=",
            "route=/api/v1/card/login",
            "route=/api/v1/abroad/login/otp",
            "command=0020",
            "command=0C20",
        ]
    }
}

fn demo_logs_no_secret(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("demo.log");
    let db_path = dir.path().join("store.sqlite");
    let out = Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .args(["--log-format", format, "demo", "--log-file"])
        .arg(&log_path)
        .arg("--database")
        .arg(format!("sqlite:{}", db_path.display()))
        .env("RUST_LOG", "trace")
        .env_remove("CIE_COMPANION_PIN")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{screen}\n{stderr}");
    let log = std::fs::read_to_string(&log_path).unwrap();

    // A log that could hide nothing proves nothing: requests with ids, the APDU trace with
    // a redacted VERIFY, the demo's own screen lines kept out.
    let lines = log.lines().count();
    assert!(lines > 200, "only {lines} log lines:\n{log}");
    let [request, card_login, otp_login, verify, sm_verify] = marks(format);
    let requests = log.lines().filter(|l| l.contains(request)).count();
    assert!(requests > 20, "{requests} request lines:\n{log}");
    assert!(
        log.contains("answered") && log.contains(card_login),
        "{log}"
    );
    assert!(log.contains(otp_login), "no PIN + OTP login");
    assert!(log.contains("apdu >"), "no APDU trace");
    assert!(
        log.lines()
            .any(|l| l.contains(verify) || l.contains(sm_verify)),
        "no VERIFY in the APDU trace"
    );
    assert!(!log.contains("[telefono]") && !log.contains("[computer]"));
    assert!(
        stderr.trim().is_empty(),
        "logs or errors on stderr:\n{stderr}"
    );

    // What the run showed that must stay on the screen.
    let shown_codes: Vec<&str> = screen
        .lines()
        .filter_map(|l| {
            l.split_once("code to type on the computer: ")
                .map(|(_, c)| c.trim())
        })
        .collect();
    assert_eq!(shown_codes.len(), 2, "{screen}");
    let abroad_cf = screen
        .lines()
        .find_map(|l| {
            l.split_once("16-character PIN issued for ")
                .map(|(_, c)| c.trim())
        })
        .unwrap();
    assert_eq!(abroad_cf.len(), 16);
    let otp_codes: Vec<&str> = screen
        .lines()
        .filter_map(|l| {
            l.split_once("[autenticatore] codice / code: ")
                .map(|(_, c)| c.trim())
        })
        .collect();
    assert_eq!(otp_codes.len(), 2, "{screen}");
    let otp_seed_b32 = screen
        .lines()
        .find_map(|l| l.split_once("chiave / key: ").map(|(_, c)| c.trim()))
        .unwrap();
    let otp_seed = data_encoding::BASE32_NOPAD
        .decode(otp_seed_b32.trim_end_matches('=').as_bytes())
        .unwrap();
    assert!(otp_seed.len() >= 20, "{otp_seed_b32}");
    // The one-time enrolment code, shown under its QR.
    let enrol_code = screen
        .lines()
        .skip_while(|l| !l.contains("one-time enrolment code"))
        .find_map(|l| {
            let t = l.strip_prefix("[computer]   ")?.trim();
            (t.len() >= 8
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .then_some(t)
        })
        .unwrap();

    let mut secrets: Vec<(&str, Vec<String>)> = vec![
        ("CIE PIN", encodings(card_sim::ias::pki::TEST_PIN)),
        ("CIE PUK", encodings(card_sim::ias::pki::TEST_PUK)),
        ("CAN", encodings(card_sim::emrtd::TEST_CAN.as_bytes())),
        ("abroad PIN", encodings(ABROAD_NEW_PIN.as_bytes())),
        (
            "card holder's codice fiscale",
            encodings(CARD_CF.as_bytes()),
        ),
        ("abroad codice fiscale", encodings(abroad_cf.as_bytes())),
        ("card private key", encodings(CARD_KEY)),
        (
            "OTP seed (base32)",
            vec![otp_seed_b32.to_owned(), otp_seed_b32.to_lowercase()],
        ),
        ("OTP seed", encodings(&otp_seed)),
        ("enrolment code", encodings(enrol_code.as_bytes())),
        // Any 32 bytes of the key's private part (past the version and modulus).
        ("card private key bytes", encodings(&CARD_KEY[300..332])),
    ];
    // The PIN's last four digits (the paired-card approvals).
    secrets.push((
        "PIN last 4 digits (as bytes)",
        encodings(b"5678")[..2].to_vec(),
    ));
    let plain = if format == "json" {
        json_without_numbers_of_their_own(&log)
    } else {
        without_numbers_of_their_own(&log)
    };
    for (what, forms) in &secrets {
        for form in forms {
            assert!(
                !has_token(&plain, form) && !log.contains(&format!("\"{form}\"")),
                "{what} in the log as {form}"
            );
        }
    }
    // The server's store after the run (threat model S1, G16): the database and its WAL
    // hold hashes, Argon2id and sealed seeds, never these values in clear. The codici
    // fiscali are left out: the store keeps them readable on purpose (docs/data.md).
    let mut store = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db_path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(bytes) = std::fs::read(&name) {
            store.extend_from_slice(&bytes);
        }
    }
    assert!(store.len() > 10_000, "no database at {}", db_path.display());
    let store = String::from_utf8_lossy(&store);
    // The run's own store: it keeps the abroad account's codice fiscale readable.
    assert!(store.contains(abroad_cf), "not the run's store");
    for (what, forms) in secrets
        .iter()
        .filter(|(w, _)| !w.contains("codice fiscale"))
    {
        for form in forms.iter().filter(|f| f.len() >= 6) {
            assert!(!has_token(&store, form), "{what} in the store as {form}");
        }
    }
    for code in shown_codes.iter().chain(&otp_codes) {
        assert!(!has_token(&store, code), "code {code} in the store");
        assert!(!has_token(&plain, code), "code {code} in the log");
        for form in &encodings(code.as_bytes())[..2] {
            assert!(
                !log.contains(form.as_str()),
                "code {code} in the log as {form}"
            );
        }
    }
}
