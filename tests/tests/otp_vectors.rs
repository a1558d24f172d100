//! One-time codes against the published vectors (`tests/vectors/otp_rfc.json`, read at
//! test time): every RFC 4226 App. D and RFC 6238 App. B value, through the algorithm,
//! through an otpauth URI, and through the saved-token vault; plus the otpauth round trip
//! build → QR image → scan → parse.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use cie_core::flows::pairing::Protection;
use cie_core::otp::hotp::{hotp, totp};
use cie_core::otp::{Algorithm, KeyUri, OtpKind, OtpVault, Secret, TimeStep, otp_code_for_uri};
use common::MemoryStore;
use serde_json::Value;

fn vectors() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/otp_rfc.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["verified"], Value::Bool(true));
    v
}

fn alg(name: &str) -> Algorithm {
    Algorithm::from_uri_name(name).unwrap()
}

#[test]
fn rfc4226_appendix_d_every_count() {
    let v = vectors();
    let d = &v["rfc4226_appendix_d"];
    let secret = Secret::new(hex::decode(d["secret_hex"].as_str().unwrap()).unwrap());
    assert_eq!(
        secret.expose(),
        d["secret_ascii"].as_str().unwrap().as_bytes()
    );
    let values = d["values"].as_array().unwrap();
    assert_eq!(values.len(), 10);
    for row in values {
        let count = row["count"].as_u64().unwrap();
        // The truncation itself, from the published HMAC.
        let mac = hex::decode(row["hmac_sha1_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            u64::from(cie_core::otp::hotp::truncate(&mac).unwrap()),
            row["truncated_dec"].as_u64().unwrap(),
            "count {count}"
        );
        assert_eq!(
            hotp(&secret, count, 6, Algorithm::Sha1).unwrap().as_str(),
            row["hotp_6"].as_str().unwrap()
        );
        assert_eq!(
            hotp(&secret, count, 8, Algorithm::Sha1).unwrap().as_str(),
            row["hotp_8"].as_str().unwrap()
        );
    }
}

#[test]
fn rfc6238_appendix_b_every_time_and_algorithm() {
    let v = vectors();
    let b = &v["rfc6238_appendix_b"];
    let step = TimeStep::new(b["X_seconds"].as_u64().unwrap(), b["T0"].as_u64().unwrap()).unwrap();
    let values = b["values"].as_array().unwrap();
    assert_eq!(values.len(), 18, "6 times × 3 algorithms");
    let mut beyond_2_32 = 0;
    for row in values {
        let t = row["unix_time"].as_u64().unwrap();
        let name = row["algorithm"].as_str().unwrap();
        let seed = Secret::new(hex::decode(b["seeds_hex"][name].as_str().unwrap()).unwrap());
        assert_eq!(
            format!("{:016X}", step.counter(t).unwrap()),
            row["T_hex"].as_str().unwrap().to_uppercase(),
            "T at {t}"
        );
        assert_eq!(
            totp(&seed, t, step, 8, alg(name)).unwrap().as_str(),
            row["totp_8"].as_str().unwrap(),
            "{name} @ {t}"
        );
        assert_eq!(
            totp(&seed, t, step, 6, alg(name)).unwrap().as_str(),
            row["totp_6"].as_str().unwrap(),
            "{name} @ {t}"
        );
        beyond_2_32 += usize::from(t > u64::from(u32::MAX));
    }
    assert_eq!(beyond_2_32, 3, "the 20000000000 row, for each algorithm");
}

#[test]
fn rfc6238_through_otpauth_uris_with_padded_base32_seeds() {
    let v = vectors();
    let b = &v["rfc6238_appendix_b"];
    for row in b["values"].as_array().unwrap() {
        let t = row["unix_time"].as_u64().unwrap();
        let name = row["algorithm"].as_str().unwrap();
        let b32 = b["seeds_base32_derived"][name].as_str().unwrap();
        // Padding kept as the JSON has it, and lower-cased: both must be accepted.
        let uri = format!(
            "otpauth://totp/RFC%206238:{name}?secret={}&algorithm={name}&digits=8&period=30&issuer=RFC%206238",
            b32.to_lowercase()
        );
        let code = otp_code_for_uri(uri.clone(), t).unwrap();
        assert_eq!(code.code, row["totp_8"].as_str().unwrap(), "{uri} @ {t}");
        assert_eq!(code.period, 30);
        assert_eq!(code.seconds_remaining, 30 - t % 30);
    }
}

#[test]
fn vault_keeps_seeds_device_only_and_codes_match_vectors() {
    let store = Arc::new(MemoryStore::default());
    let vault = OtpVault::new(store.clone());
    let added = vault
        .add_uri("otpauth://totp/INPS:mario.rossi?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8&issuer=INPS".into())
        .unwrap();
    assert_eq!(added.token.id, "INPS:mario.rossi");
    assert!(added.warnings.is_empty());
    // RFC 6238 App. B, SHA-1, t = 1111111109 → 07081804.
    let code = vault.code("inps".into(), 1_111_111_109).unwrap();
    assert_eq!(code.code, "07081804");
    assert_eq!(code.seconds_remaining, 1);

    // Where things went: the seed under DeviceOnly, the index (no seed) public.
    let saved = store.0.lock().unwrap().clone();
    let (seed, prot) = &saved["otp/INPS:mario.rossi/secret"];
    assert_eq!(seed.as_slice(), b"12345678901234567890");
    assert_eq!(*prot, Protection::DeviceOnly);
    let (index, prot) = &saved["otp/index"];
    assert_eq!(*prot, Protection::Public);
    let index = String::from_utf8(index.clone()).unwrap();
    assert!(
        !index.contains("GEZD") && !index.contains("1234567890"),
        "{index}"
    );

    // Server clock 60 s ahead of the device: the code is the one of device time + 60.
    let diag = vault
        .set_server_time("Fri, 18 Mar 2005 01:59:29 GMT".into(), 1_111_111_109)
        .unwrap();
    assert_eq!(diag.offset_seconds, 60);
    assert_eq!(diag.status, cie_core::otp::DriftStatus::Wrong);
    let corrected = vault
        .code("INPS:mario.rossi".into(), 1_111_111_049)
        .unwrap();
    assert_eq!(corrected.code, "07081804");
    vault.set_clock_offset_seconds(None, 0);
    assert!(vault.clock_drift().is_none());

    // Duplicates refused, unknown names typed, removal forgets the seed.
    assert!(matches!(
        vault.add_uri(
            "otpauth://totp/INPS:mario.rossi?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()
        ),
        Err(cie_core::otp::OtpError::Duplicate { .. })
    ));
    assert!(matches!(
        vault.code("Aruba".into(), 0),
        Err(cie_core::otp::OtpError::NotFound { .. })
    ));
    vault.remove("INPS:mario.rossi".into()).unwrap();
    assert!(vault.list().unwrap().is_empty());
    assert!(
        store
            .0
            .lock()
            .unwrap()
            .get("otp/INPS:mario.rossi/secret")
            .is_none()
    );
}

#[test]
fn vault_hotp_counter_advances_and_is_saved_before_the_code_is_shown() {
    let store = Arc::new(MemoryStore::default());
    let vault = OtpVault::new(store.clone());
    vault
        .add_uri(
            "otpauth://hotp/Lab:bench?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=0".into(),
        )
        .unwrap();
    let expected = ["755224", "287082", "359152"];
    for (i, want) in expected.iter().enumerate() {
        // A fresh vault over the same store each time: the counter comes from storage.
        let v = OtpVault::new(store.clone());
        let c = v.code("Lab".into(), 0).unwrap();
        assert_eq!((c.code.as_str(), c.counter), (*want, i as u64));
    }
    assert_eq!(vault.list().unwrap()[0].kind, OtpKind::Hotp { counter: 3 });
}

#[test]
fn otpauth_round_trip_through_a_qr_image() {
    let base = KeyUri::parse("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    let token = KeyUri {
        issuer: Some("Agenzia delle Entrate: Fisconline".into()),
        account: "RSSMRA80A01H501U+test@example.it".into(),
        algorithm: Algorithm::Sha256,
        digits: 8,
        kind: OtpKind::Totp { period: 60, t0: 0 },
        ..base
    };
    let uri = token.to_uri();
    // Render with the `qrcode` crate (as a desktop page would), 4 px per module, quiet zone.
    let qr = qrcode::QrCode::new(uri.as_bytes()).unwrap();
    let width = qr.width();
    let scale = 4;
    let side = (width + 8) * scale;
    let mut luma = vec![255u8; side * side];
    for (i, c) in qr.to_colors().iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % width + 4, i / width + 4);
            for y in my * scale..(my + 1) * scale {
                for x in mx * scale..(mx + 1) * scale {
                    luma[y * side + x] = 0;
                }
            }
        }
    }
    let scanned = cie_core::qr::scan_luma(&cie_core::qr::LumaFrame {
        width: side as u32,
        height: side as u32,
        row_stride: side as u32,
        bytes: &luma,
    })
    .unwrap()
    .expect("the QR decodes");
    assert_eq!(scanned, uri);
    let back = KeyUri::parse(&scanned).unwrap();
    assert_eq!(back.issuer, token.issuer);
    assert_eq!(back.account, token.account);
    assert_eq!(back.algorithm, Algorithm::Sha256);
    assert_eq!(back.digits, 8);
    assert_eq!(back.kind, token.kind);
    assert_eq!(back.secret.expose(), token.secret.expose());
    // The scanned link gives the same code as the token it was built from.
    let t = 1_234_567_890;
    assert_eq!(
        otp_code_for_uri(scanned, t).unwrap().code,
        totp(
            &token.secret,
            t,
            TimeStep::new(60, 0).unwrap(),
            8,
            Algorithm::Sha256
        )
        .unwrap()
        .as_str()
    );
}
