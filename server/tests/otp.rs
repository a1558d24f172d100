//! OTP fallback (docs/protocol.md §3) over HTTPS on SQLite and PostgreSQL: the enrolled
//! phone asks for a TOTP token (device-signed), the desktop logs in with codice fiscale and
//! code; replays, throttling, unknown codici fiscali, enrolment refusals, racing logins;
//! and once through the app's own API (`CompanionClient::enroll_otp` into an `OtpVault`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cie_core::ffi::{CompanionClient, FlowError};
use cie_core::flows::device_key::DeviceSigner;
use cie_core::flows::pairing::{Protection, SecretStore, StoreError};
use cie_core::flows::wire::{ErrorCode, b64, otp_enroll_statement};
use cie_core::otp::hotp::totp;
use cie_core::otp::{Algorithm, KeyUri, OtpKind, OtpVault, TimeStep};
use common::*;
use companion_server::Clock;
use companion_server::api::OtpKey;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sqlx::Connection;

const OTHER_CF: &str = "RSSMRA80A01H501U";
const UNKNOWN_CF: &str = "BNCGNN90B02F205Z";

async fn start(db: &TestDb) -> Harness {
    Harness::start_with(db, |c| c.otp_key = OtpKey::from_bytes(&[0x42; 32])).await
}

fn rand16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

async fn enroll_at(
    h: &Harness,
    device_id: &str,
    key: &SigningKey,
    iat: u64,
    nonce: &str,
) -> (u16, Value) {
    let statement = otp_enroll_statement(&h.origin, device_id, iat, nonce);
    let sig: Signature = key.sign(&statement);
    let body = json!({
        "device_id": device_id,
        "iat": iat,
        "nonce": nonce,
        "signature": b64(&sig.to_bytes()),
    });
    h.post(&h.other_client(), "/api/v1/otp/enroll", &body).await
}

/// Enrol a token now with a fresh nonce: its parsed URI.
async fn enroll(h: &Harness, device_id: &str, key: &SigningKey) -> KeyUri {
    let (s, v) = enroll_at(h, device_id, key, h.clock.now(), &b64(&rand16())).await;
    assert_eq!(s, 200, "{v}");
    KeyUri::parse(v["uri"].as_str().unwrap()).unwrap()
}

fn code_of(uri: &KeyUri, at: u64) -> String {
    totp(&uri.secret, at, TimeStep::default(), 6, Algorithm::Sha1)
        .unwrap()
        .to_string()
}

async fn login(h: &Harness, browser: &reqwest::Client, cf: &str, code: &str) -> (u16, Value) {
    h.post(
        browser,
        "/api/v1/otp/login",
        &json!({"codice_fiscale": cf, "code": code}),
    )
    .await
}

/// A code that is not the right one now (nor in the ±1 window).
fn wrong_code(uri: &KeyUri, at: u64) -> String {
    let window: Vec<String> = [at - 30, at, at + 30]
        .iter()
        .map(|t| code_of(uri, *t))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", 100_000 + n * 7))
        .find(|c| !window.contains(c))
        .unwrap()
}

/// Another person with an account but no token.
async fn other_identity(h: &Harness) {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&h.db_url).await.unwrap();
    sqlx::query(
        "INSERT INTO identities (id, codice_fiscale, given_name, surname, created)
         VALUES ('other-identity', $1, 'MARIO', 'ROSSI', 0)",
    )
    .bind(OTHER_CF)
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
}

async fn audit(h: &Harness) -> Vec<(String, String, String, String)> {
    h.server().store().audit_log().await.unwrap()
}

#[tokio::test]
async fn enrol_log_in_and_the_same_code_is_refused() {
    for db in backends().await {
        let h = start(&db).await;
        let (key, device_id) = enrolled(&h, 0x21).await;
        let uri = enroll(&h, &device_id, &key).await;
        // What every authenticator accepts, named for the service, no codice fiscale.
        assert_eq!(uri.issuer.as_deref(), Some("Servizio di prova"));
        assert!(!uri.account.contains(TEST_CF), "{}", uri.account);
        assert!(!uri.account.is_empty());
        assert_eq!(uri.algorithm, Algorithm::Sha1);
        assert_eq!(uri.digits, 6);
        assert_eq!(uri.kind, OtpKind::Totp { period: 30, t0: 0 });
        assert_eq!(uri.secret.bits(), 160);
        assert!(uri.warnings.is_empty());

        let browser = h.browser();
        let first = code_of(&uri, h.clock.now());
        let (s, v) = login(&h, &browser, &TEST_CF.to_lowercase(), &first).await;
        assert_eq!(s, 200, "{}: {v}", db.name);
        assert_eq!(v["identity"]["codice_fiscale"], TEST_CF);
        assert_eq!(v["level"], 2);
        let (s, me) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(s, 200, "{me}");
        assert_eq!(me["level"], 2);
        assert_eq!(me["identity"]["codice_fiscale"], TEST_CF);

        // The same code again, even from another browser: a replay, and no session.
        let other = h.other_client();
        let (s, v) = login(&h, &other, TEST_CF, &first).await;
        assert_eq!((s, code(&v)), (409, "replayed"), "{v}");
        assert!(v["message_it"].as_str().unwrap().contains("prossimo"));
        let (s, _) = h.get(&other, "/api/v1/session").await;
        assert_eq!(s, 404);

        // The next step's code works.
        h.clock.advance(30);
        let (s, v) = login(&h, &other, TEST_CF, &code_of(&uri, h.clock.now())).await;
        assert_eq!(s, 200, "{v}");

        // Enrolling again replaces the token: the old seed's codes stop working.
        let newer = enroll(&h, &device_id, &key).await;
        assert_ne!(newer.secret.expose(), uri.secret.expose());
        h.clock.advance(30);
        let now = h.clock.now();
        let (s, v) = login(&h, &other, TEST_CF, &code_of(&uri, now)).await;
        assert_eq!((s, code(&v)), (401, "wrong_code"), "{v}");
        let (s, v) = login(&h, &other, TEST_CF, &code_of(&newer, now)).await;
        assert_eq!(s, 200, "{v}");

        let log = audit(&h).await;
        let kinds: Vec<(&str, &str)> = log
            .iter()
            .filter(|e| e.0.starts_with("otp_"))
            .map(|e| (e.0.as_str(), e.2.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("otp_enroll", "created"),
                ("otp_login", "ok (drift 0)"),
                ("otp_login", "replayed"),
                ("otp_login", "ok (drift 0)"),
                ("otp_enroll", "replaced"),
                ("otp_login", "wrong_code"),
                ("otp_login", "ok (drift 0)"),
            ],
            "{}",
            db.name
        );
        // No seed, code or codice fiscale in the audit trail.
        let dump = format!("{log:?}");
        assert!(!dump.contains(TEST_CF) && !dump.contains(&first));
        // The seed is sealed at rest.
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&h.db_url).await.unwrap();
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed_seed FROM otp_tokens")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert!(!sealed.windows(20).any(|w| w == newer.secret.expose()));
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn wrong_codes_throttle_and_unknown_codici_fiscali_look_the_same() {
    for db in backends().await {
        let h = start(&db).await;
        let (key, device_id) = enrolled(&h, 0x22).await;
        let uri = enroll(&h, &device_id, &key).await;
        other_identity(&h).await;
        let browser = h.browser();
        let now = h.clock.now();
        let wrong = wrong_code(&uri, now);

        // The first wrong answer for an account with a token, one without, and no account.
        let (s1, with_token) = login(&h, &browser, TEST_CF, &wrong).await;
        let (s2, without_token) = login(&h, &browser, OTHER_CF, &wrong).await;
        let (s3, unknown) = login(&h, &browser, UNKNOWN_CF, &wrong).await;
        assert_eq!((s1, s2, s3), (401, 401, 401));
        assert_eq!(with_token, without_token, "{}", db.name);
        assert_eq!(with_token, unknown);
        assert_eq!(code(&with_token), "wrong_code");
        assert_eq!(with_token["tries_left"], 4);
        assert!(
            with_token["message_it"]
                .as_str()
                .unwrap()
                .contains("6 cifre")
        );

        // Four more wrong codes: the fifth starts a 30 s wait, then even the right code
        // is refused unseen.
        for left in (0..4).rev() {
            let (s, v) = login(&h, &browser, TEST_CF, &wrong).await;
            assert_eq!((s, v["tries_left"].as_u64()), (401, Some(left)), "{v}");
            if left == 0 {
                assert_eq!(v["retry_after"], 30, "{v}");
            }
        }
        h.clock.advance(10);
        let (s, v) = login(&h, &browser, TEST_CF, &code_of(&uri, h.clock.now())).await;
        assert_eq!((s, code(&v)), (429, "rate_limited"), "{v}");
        assert_eq!(v["retry_after"], 20);
        // Unknown codici fiscali are throttled alike.
        for _ in 0..4 {
            login(&h, &browser, UNKNOWN_CF, &wrong).await;
        }
        let (s, v) = login(&h, &browser, UNKNOWN_CF, &wrong).await;
        assert_eq!((s, code(&v)), (429, "rate_limited"), "{v}");
        // The audit names the codice fiscale by a prefix of its keyed lookup value (derived
        // from the OTP key), never in clear nor by its plain SHA-256.
        let store = h.server().store();
        let audit = format!("{:?}", store.audit_log().await.unwrap());
        let keyed = companion_server::store::otp_audit_subject(&store.cf_key(UNKNOWN_CF));
        let plain = companion_server::store::legacy_key(UNKNOWN_CF);
        assert!(audit.contains(&keyed), "{audit}");
        assert!(!audit.contains(UNKNOWN_CF) && !audit.contains(&plain[..12]));
        let from_key_file = OtpKey::from_bytes(&[0x42; 32]).unwrap().cf_lookup_key();
        assert_eq!(store.cf_key(UNKNOWN_CF), from_key_file.lookup(UNKNOWN_CF));

        // After the wait the right code works and clears the failures.
        h.clock.advance(21);
        let (s, v) = login(&h, &browser, TEST_CF, &code_of(&uri, h.clock.now())).await;
        assert_eq!(s, 200, "{v}");

        // Malformed input says so, whoever it is for.
        let (s, v) = login(&h, &browser, TEST_CF, "12345").await;
        assert_eq!((s, code(&v)), (400, "bad_request"));
        let (s, v) = login(&h, &browser, "TSTTST80A01", "123456").await;
        assert_eq!((s, code(&v)), (400, "bad_request"));
    }
}

#[tokio::test]
async fn enrolment_refusals() {
    for db in backends().await {
        let h = start(&db).await;
        let (key, device_id) = enrolled(&h, 0x23).await;
        let now = h.clock.now();

        let (s, v) = enroll_at(&h, &device_id, &key, now - 61, &b64(&rand16())).await;
        assert_eq!((s, code(&v)), (410, "expired"), "{v}");
        let (s, v) = enroll_at(&h, &device_id, &key, now + 61, &b64(&rand16())).await;
        assert_eq!((s, code(&v)), (410, "expired"), "{v}");

        let nonce = b64(&rand16());
        let (s, v) = enroll_at(&h, &device_id, &key, now, &nonce).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = enroll_at(&h, &device_id, &key, now, &nonce).await;
        assert_eq!((s, code(&v)), (409, "replayed"), "{v}");

        let unknown = b64(&rand16());
        let (s, v) = enroll_at(&h, &unknown, &key, now, &b64(&rand16())).await;
        assert_eq!((s, code(&v)), (403, "wrong_device"), "{v}");

        let impostor = SigningKey::from_slice(&[0x99; 32]).unwrap();
        let (s, v) = enroll_at(&h, &device_id, &impostor, now, &b64(&rand16())).await;
        assert_eq!((s, code(&v)), (403, "bad_signature"), "{v}");

        // A pending-list signature is not an enrolment signature.
        let nonce = b64(&rand16());
        let sig: Signature = key.sign(&cie_core::flows::wire::pending_statement(
            &h.origin, &device_id, now, &nonce,
        ));
        let body = json!({"device_id": device_id, "iat": now, "nonce": nonce,
            "signature": b64(&sig.to_bytes())});
        let (s, v) = h.post(&h.other_client(), "/api/v1/otp/enroll", &body).await;
        assert_eq!((s, code(&v)), (403, "bad_signature"), "{v}");

        for bad in [
            json!({"device_id": "x"}),
            json!({"device_id": device_id, "iat": now,
            "nonce": "short", "signature": "AA"}),
        ] {
            let (s, v) = h.post(&h.other_client(), "/api/v1/otp/enroll", &bad).await;
            assert_eq!((s, code(&v)), (400, "bad_request"), "{v}");
        }
        let refused: Vec<String> = audit(&h)
            .await
            .into_iter()
            .filter(|e| e.0 == "otp_enroll")
            .map(|e| e.2)
            .collect();
        assert_eq!(
            refused,
            [
                "expired",
                "expired",
                "created",
                "replayed",
                "wrong_device",
                "bad_signature",
                "bad_signature",
                "bad_request",
            ],
            "{}",
            db.name
        );
    }
    // Without an OTP key the fallback is off.
    let db = sqlite();
    let h = Harness::start(&db).await;
    let (key, device_id) = enrolled(&h, 0x24).await;
    let (s, v) = enroll_at(&h, &device_id, &key, h.clock.now(), &b64(&rand16())).await;
    assert_eq!((s, code(&v)), (404, "not_found"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_logins_and_guesses() {
    for db in backends().await {
        let h = Arc::new(start(&db).await);
        let (key, device_id) = enrolled(&h, 0x25).await;
        let uri = enroll(&h, &device_id, &key).await;

        // Four browsers type the same valid code at once: one session.
        let valid = code_of(&uri, h.clock.now());
        let tries = (0..4).map(|_| {
            let h = h.clone();
            let valid = valid.clone();
            tokio::spawn(async move {
                let b = h.other_client();
                login(&h, &b, TEST_CF, &valid).await
            })
        });
        let results: Vec<(u16, Value)> = futures_join(tries).await;
        let won = results.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(won, 1, "{}: {results:?}", db.name);
        assert!(
            results
                .iter()
                .all(|(s, v)| *s == 200 || code(v) == "replayed"),
            "{results:?}"
        );

        // (The losers' replays count as failures; a good login clears them.)
        h.clock.advance(30);
        let (s, v) = login(
            &h,
            &h.other_client(),
            TEST_CF,
            &code_of(&uri, h.clock.now()),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        // Five wrong guesses at once each spend their own failure.
        let wrong = wrong_code(&uri, h.clock.now());
        let guesses = (0..5).map(|_| {
            let h = h.clone();
            let wrong = wrong.clone();
            tokio::spawn(async move {
                let b = h.other_client();
                login(&h, &b, TEST_CF, &wrong).await
            })
        });
        let answers = futures_join(guesses).await;
        let mut left: Vec<u64> = answers
            .iter()
            .map(|(_, v)| {
                v["tries_left"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{answers:?}"))
            })
            .collect();
        left.sort_unstable();
        assert_eq!(left, [0, 1, 2, 3, 4], "{}", db.name);
        let (s, v) = login(
            &h,
            &h.other_client(),
            TEST_CF,
            &code_of(&uri, h.clock.now()),
        )
        .await;
        assert_eq!((s, code(&v)), (429, "rate_limited"), "{v}");
    }
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    let handles: Vec<_> = handles.collect();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------
// Through the app API

#[derive(Default)]
struct MemoryStore(Mutex<HashMap<String, (Vec<u8>, Protection)>>);

impl SecretStore for MemoryStore {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().unwrap().get(&name).map(|(v, _)| v.clone()))
    }
    fn save(&self, name: String, value: Vec<u8>, p: Protection) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(name, (value, p));
        Ok(())
    }
    fn remove(&self, name: String) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(&name);
        Ok(())
    }
}

/// A device key that signs DER, as the platform keystores do.
struct SoftKey(SigningKey);

#[async_trait::async_trait]
impl DeviceSigner for SoftKey {
    fn public_key(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .0
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec())
    }
    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let sig: Signature = self.0.sign(&message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_enrols_a_token_and_its_vault_code_logs_the_desktop_in() {
    for db in backends().await {
        let h = start(&db).await;
        let (key, device_id) = enrolled(&h, 0x26).await;
        let app = CompanionClient::new(
            vec![h.origin.as_string()],
            vec![h.server().spki_pin().to_string()],
            None,
        )
        .unwrap();
        let store = Arc::new(MemoryStore::default());
        let vault = OtpVault::new(store.clone());
        let signer = Arc::new(SoftKey(key));
        let origin = h.origin.as_string();

        let info = app
            .enroll_otp(
                origin.clone(),
                device_id.clone(),
                signer.clone(),
                vault.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.name));
        assert_eq!(info.issuer.as_deref(), Some("Servizio di prova"));
        assert_eq!((info.digits, info.period, info.replaced), (6, 30, false));
        assert_eq!(vault.list().unwrap().len(), 1);
        // The seed is in the keystore, device-only; the index holds no secret.
        let saved = store.0.lock().unwrap().clone();
        assert!(
            saved
                .values()
                .any(|(v, p)| v.len() == 20 && *p == Protection::DeviceOnly)
        );

        // The phone's code (offline: from the vault) logs the desktop in.
        let code = vault
            .code(info.token_id.clone(), cie_core::net::device_now())
            .unwrap();
        let (s, v) = login(&h, &h.browser(), TEST_CF, &code.code).await;
        assert_eq!(s, 200, "{}: {v}", db.name);
        assert_eq!(v["level"], 2);

        // Enrolling again replaces the vault's token too.
        let again = app
            .enroll_otp(
                origin.clone(),
                device_id.clone(),
                signer.clone(),
                vault.clone(),
            )
            .await
            .unwrap();
        assert!(again.replaced);
        assert_eq!(vault.list().unwrap().len(), 1);

        // Refusals come through as FlowError::Server with the server's code.
        let e = app
            .enroll_otp(
                origin.clone(),
                b64(&rand16()),
                signer.clone(),
                vault.clone(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                FlowError::Server {
                    code: ErrorCode::WrongDevice,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!e.message_it().is_empty());
        // A server not on the app's list is never contacted.
        let e = app
            .enroll_otp(
                "https://evil.example".into(),
                device_id.clone(),
                signer.clone(),
                vault.clone(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, FlowError::UntrustedSite { .. }), "{e:?}");
    }
}
