//! The three login flows end to end through the phone app's own API (`CompanionClient`,
//! the UniFFI surface) against this server over real TLS with a pinned key, on SQLite and
//! PostgreSQL, with the virtual CIE doing the card's part over APDUs (card-sim shares no
//! protocol code with the core). Attacks the app itself must stop are here too; the
//! server-side refusals over raw HTTP are in `desktop.rs`, `card_login.rs`, `devices.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use card_sim::{Fault, FaultyTransport, VirtualCard};
use cie_core::ffi::{CardError, CompanionClient, FlowError};
use cie_core::flows::device_key::DeviceSigner;
use cie_core::flows::pairing::{Protection, SecretStore, StoreError};
use cie_core::flows::wire::{ApprovalCreated, Decision, DesktopQr, ErrorCode, RendezvousState};
use cie_core::transport::CardTransport;
use common::{Harness, TEST_CF, backends, pem_tls};
use p256::ecdsa::signature::Signer;

const PIN: &str = "12345678";

#[derive(Default)]
struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);

impl SecretStore for MemoryStore {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().unwrap().get(&name).cloned())
    }
    fn save(&self, name: String, value: Vec<u8>, _: Protection) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(name, value);
        Ok(())
    }
    fn remove(&self, name: String) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(&name);
        Ok(())
    }
}

/// A device key that signs DER, as the platform keystores do.
struct SoftKey(p256::ecdsa::SigningKey);

impl SoftKey {
    fn new(seed: u8) -> Arc<Self> {
        Arc::new(Self(
            p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
        ))
    }
}

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
        let sig: p256::ecdsa::Signature = self.0.sign(&message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

fn card() -> Arc<dyn CardTransport> {
    Arc::new(VirtualCard::cie())
}

fn app(h: &Harness) -> Arc<CompanionClient> {
    CompanionClient::new(
        vec![h.origin.as_string()],
        vec![h.server().spki_pin().to_string()],
        Some(Arc::new(MemoryStore::default())),
    )
    .unwrap()
}

/// The desktop page's first step: a rendezvous and its QR text (the browser's cookie jar
/// is the harness's).
async fn show_qr(h: &Harness) -> (String, String) {
    let (status, body) = h
        .post(&h.browser(), "/api/v1/desktop/rendezvous", &())
        .await;
    assert_eq!(status, 200, "{body}");
    (
        body["rid"].as_str().unwrap().to_string(),
        body["qr"].as_str().unwrap().to_string(),
    )
}

async fn type_code(h: &Harness, rid: &str, code: &str) -> (u16, serde_json::Value) {
    h.post(
        &h.browser(),
        &format!("/api/v1/desktop/rendezvous/{rid}/code"),
        &serde_json::json!({ "code": code }),
    )
    .await
}

async fn state(h: &Harness, rid: &str) -> RendezvousState {
    let (_, body) = h
        .get(&h.browser(), &format!("/api/v1/desktop/rendezvous/{rid}"))
        .await;
    serde_json::from_value(body["state"].clone()).unwrap()
}

/// "Entra con l'app" on the desktop page for the test holder.
async fn ask_app_approval(h: &Harness) -> ApprovalCreated {
    let (status, body) = h
        .post(
            &h.browser(),
            "/api/v1/approvals",
            &serde_json::json!({ "codice_fiscale": TEST_CF }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

fn server_code(e: &FlowError) -> Option<ErrorCode> {
    match e {
        FlowError::Server { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_flows_through_the_app_api() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let app = app(&h);
        let origin = h.origin.as_string();

        // 1. Phone-tap login: the full PIN, which also pairs the card.
        let login = app.start_card_login(origin.clone()).await.unwrap();
        let done = login
            .tap(card(), Some(PIN.into()), None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.name));
        assert_eq!(done.identity.codice_fiscale, TEST_CF);
        assert_eq!(done.level, 3);
        assert!(done.paired_now);
        // The app's session token is a real session on the server.
        let resp = h
            .other_client()
            .get(h.url("/api/v1/session"))
            .bearer_auth(&done.session_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        // 2. Desktop QR: claim, context, last 4 PIN digits + tap, code typed on the desktop.
        let (rid, qr) = show_qr(&h).await;
        let session = app
            .claim_desktop_qr(qr, "test phone".into(), None)
            .await
            .unwrap();
        let ctx = session.context().unwrap();
        assert_eq!(ctx.service, "Servizio di prova");
        assert_eq!(ctx.browser, "Chrome");
        assert_eq!(state(&h, &rid).await, RendezvousState::Claimed);
        let code = session
            .approve_with_card(card(), Some("5678".into()), None)
            .await
            .unwrap();
        assert_eq!(code.code.len(), 4);
        let (status, body) = type_code(&h, &rid, &code.code).await;
        assert_eq!(status, 200, "{body}");
        let (_, me) = h.get(&h.browser(), "/api/v1/session").await;
        assert_eq!(me["identity"]["codice_fiscale"], TEST_CF);
        assert_eq!(me["level"], 3);

        // 3. Device enrolment with a card tap, then a desktop QR approved with the device
        //    key alone (level 2).
        let key = SoftKey::new(7);
        let enrol = app
            .start_device_enrollment(origin.clone(), key.clone(), "test phone".into())
            .await
            .unwrap();
        let device = enrol.tap(card(), Some("5678".into()), None).await.unwrap();
        assert_eq!(device.identity.codice_fiscale, TEST_CF);
        let (rid, qr) = show_qr(&h).await;
        let session = app
            .claim_desktop_qr(qr, "test phone".into(), Some(device.device_id.clone()))
            .await
            .unwrap();
        let code = session
            .approve_with_device(device.device_id.clone(), key.clone())
            .await
            .unwrap();
        let (status, _) = type_code(&h, &rid, &code.code).await;
        assert_eq!(status, 200);
        let (_, me) = h.get(&h.browser(), "/api/v1/session").await;
        assert_eq!(me["level"], 2, "{}", db.name);

        // App approval with number matching: the desktop asks by codice fiscale and shows
        // two digits; the phone lists its pending requests (signed), picks the number.
        let asked = ask_app_approval(&h).await;
        let pending = app
            .pending_approvals(origin.clone(), device.device_id.clone(), key.clone())
            .await
            .unwrap();
        let p = pending
            .iter()
            .find(|p| p.request_id == asked.request_id)
            .unwrap()
            .clone();
        assert_eq!(p.choices.len(), 3);
        assert!(p.choices.contains(&asked.number));
        assert_eq!(p.context.level, 2);
        app.decide_approval(
            p,
            device.device_id.clone(),
            key.clone(),
            Decision::Approve,
            Some(asked.number),
        )
        .await
        .unwrap();
        let (status, body) = h
            .get(
                &h.browser(),
                &format!("/api/v1/approvals/{}?after=pending", asked.request_id),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, me) = h.get(&h.browser(), "/api/v1/session").await;
        assert_eq!(me["level"], 2, "{}", db.name);

        // Picking a wrong number (a push-bombing guess) kills the request: no second try.
        let asked = ask_app_approval(&h).await;
        let p = app
            .pending_approvals(origin.clone(), device.device_id.clone(), key.clone())
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.request_id == asked.request_id)
            .unwrap();
        let wrong = *p.choices.iter().find(|&&c| c != asked.number).unwrap();
        let err = app
            .decide_approval(
                p.clone(),
                device.device_id.clone(),
                key.clone(),
                Decision::Approve,
                Some(wrong),
            )
            .await
            .unwrap_err();
        assert_eq!(server_code(&err), Some(ErrorCode::WrongNumber), "{err:?}");
        let err = app
            .decide_approval(
                p,
                device.device_id.clone(),
                key.clone(),
                Decision::Approve,
                Some(asked.number),
            )
            .await
            .unwrap_err();
        assert!(server_code(&err).is_some(), "{err:?}");
        let (_, body) = h
            .get(
                &h.browser(),
                &format!("/api/v1/approvals/{}", asked.request_id),
            )
            .await;
        assert_eq!(body["state"], "aborted");

        // A key that was never enrolled cannot approve, even with a valid device id.
        let (rid, qr) = show_qr(&h).await;
        let session = app
            .claim_desktop_qr(qr, "test phone".into(), None)
            .await
            .unwrap();
        let err = session
            .approve_with_device(device.device_id.clone(), SoftKey::new(9))
            .await
            .unwrap_err();
        assert_eq!(server_code(&err), Some(ErrorCode::BadSignature), "{err:?}");
        assert_eq!(state(&h, &rid).await, RendezvousState::Claimed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_refuses_foreign_qrs_and_servers_before_sending_anything() {
    let db = common::sqlite();
    let h = Harness::start(&db).await;
    let (rid, qr) = show_qr(&h).await;

    // A look-alike site's QR (same rid and secret, other host): refused by the app.
    let parsed = DesktopQr::parse(&qr, std::slice::from_ref(&h.origin)).unwrap();
    let evil = DesktopQr {
        origin: cie_core::flows::wire::Origin::parse("https://login.example.evil").unwrap(),
        ..parsed
    };
    let app = app(&h);
    let err = app
        .claim_desktop_qr(evil.to_uri(), "p".into(), None)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, FlowError::UntrustedSite { ref origin } if origin == "https://login.example.evil"),
        "{err:?}"
    );
    // Not a login code at all.
    let err = app
        .claim_desktop_qr(
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
            "p".into(),
            None,
        )
        .await
        .err()
        .unwrap();
    assert!(matches!(err, FlowError::NotALoginCode), "{err:?}");

    // The right origin but another key (a server we do not know): the TLS handshake
    // fails on the pin, and the rendezvous is untouched.
    let impostor = CompanionClient::new(
        vec![h.origin.as_string()],
        vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()],
        None,
    )
    .unwrap();
    let err = impostor
        .claim_desktop_qr(qr, "p".into(), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, FlowError::UntrustedServer { .. }), "{err:?}");
    assert_eq!(state(&h, &rid).await, RendezvousState::Created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_phone_claiming_the_same_qr_cancels_it_for_both() {
    let db = common::sqlite();
    let h = Harness::start(&db).await;
    let (rid, qr) = show_qr(&h).await;
    let first = app(&h)
        .claim_desktop_qr(qr.clone(), "mine".into(), None)
        .await
        .unwrap();
    let err = app(&h)
        .claim_desktop_qr(qr, "someone else's".into(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        server_code(&err),
        Some(ErrorCode::AlreadyClaimed),
        "{err:?}"
    );
    assert_eq!(state(&h, &rid).await, RendezvousState::Aborted);
    // The first phone cannot go on either: nothing is approved, the desktop starts over.
    let err = first
        .approve_with_card(card(), Some(PIN.into()), None)
        .await
        .unwrap_err();
    assert!(server_code(&err).is_some(), "{err:?}");
    assert_eq!(state(&h, &rid).await, RendezvousState::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_says_tries_left_and_the_same_approval_goes_on_with_the_right_one() {
    let db = common::sqlite();
    let h = Harness::start(&db).await;
    let (rid, qr) = show_qr(&h).await;
    let session = app(&h)
        .claim_desktop_qr(qr, "p".into(), None)
        .await
        .unwrap();
    let card = card();
    let err = session
        .approve_with_card(card.clone(), Some("00000000".into()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FlowError::Card {
                error: CardError::WrongPin { remaining: 2 }
            }
        ),
        "{err:?}"
    );
    assert_eq!(state(&h, &rid).await, RendezvousState::Claimed);
    let code = session
        .approve_with_card(card, Some(PIN.into()), None)
        .await
        .unwrap();
    let (status, _) = type_code(&h, &rid, &code.code).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_tag_resumes_on_the_next_tap_with_the_same_challenge() {
    let db = common::sqlite();
    let h = Harness::start(&db).await;
    let app = app(&h);
    let login = app.start_card_login(h.origin.as_string()).await.unwrap();
    // The tag is lost at the 6th APDU (inside the secure channel set-up).
    let flaky: Arc<dyn CardTransport> =
        Arc::new(FaultyTransport::new(card()).fail_at(6, Fault::TagLost));
    let err = login.tap(flaky, Some(PIN.into()), None).await.unwrap_err();
    assert!(
        matches!(
            err,
            FlowError::Card {
                error: CardError::TagLost
            }
        ),
        "{err:?}"
    );
    let done = login.tap(card(), None, None).await.unwrap();
    assert_eq!(done.identity.codice_fiscale, TEST_CF);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarts_mid_flow_and_the_flow_completes() {
    for db in backends().await {
        let tls = pem_tls();
        let mut h = Harness::start_with(&db, |c| c.tls = tls.source()).await;
        let app = app(&h);
        let (rid, qr) = show_qr(&h).await;
        let session = app.claim_desktop_qr(qr, "p".into(), None).await.unwrap();
        restart_on_same_port(&mut h, &tls).await;
        // Same origin and key, new process state: the app goes on where it was.
        let code = session
            .approve_with_card(card(), Some(PIN.into()), None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.name));
        restart_on_same_port(&mut h, &tls).await;
        let (status, body) = type_code(&h, &rid, &code.code).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
    }
}

/// Stop the server and start a fresh process state on the same address, database, TLS key
/// and clock: what the app sees when the server restarts behind its name.
async fn restart_on_same_port(h: &mut Harness, tls: &common::PemTls) {
    let addr = h.server().local_addr();
    h.server.take().unwrap().shutdown().await;
    let mut config = companion_server::Config::new(h.db_url.clone());
    config.card_cas = vec![common::TEST_CA.to_vec()];
    config.clock = Arc::new(h.clock.clone());
    config.service_name = "Servizio di prova".into();
    config.tls = tls.source();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = companion_server::serve(config, listener).await.unwrap();
    assert_eq!(server.origin(), &h.origin);
    h.server = Some(server);
}
