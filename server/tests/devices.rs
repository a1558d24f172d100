//! Device enrolment (card-signed) and device approval of a desktop rendezvous (ES256 over
//! an `ApprovalTranscript`).
#![allow(clippy::unwrap_used)]

mod common;

use cie_core::flows::wire::{
    ApprovalTranscript, CardStatement, Decision, DesktopQr, TranscriptKind, b64,
};
use common::*;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

/// A claimed rendezvous: (rid, claim answer).
async fn claimed(h: &Harness, browser: &reqwest::Client) -> (String, Value) {
    claimed_asking(h, browser, &json!({})).await
}

/// A claimed rendezvous whose creation posted `asked` (the level a service asks).
async fn claimed_asking(h: &Harness, browser: &reqwest::Client, asked: &Value) -> (String, Value) {
    let (s, created) = h.post(browser, "/api/v1/desktop/rendezvous", asked).await;
    assert_eq!(s, 200, "{created}");
    let qr = DesktopQr::parse(
        created["qr"].as_str().unwrap(),
        std::slice::from_ref(&h.origin),
    )
    .unwrap();
    let body =
        json!({"rid": b64(&qr.rid), "proof": b64(&qr.claim_proof()), "device_name": "Pixel 8"});
    let (s, c) = h
        .post(&h.other_client(), "/api/v1/rendezvous/claim", &body)
        .await;
    assert_eq!(s, 200, "{c}");
    (created["rid"].as_str().unwrap().to_owned(), c)
}

fn transcript(
    h: &Harness,
    rid: &str,
    claim: &Value,
    device_id: &str,
    jti: u8,
) -> ApprovalTranscript {
    ApprovalTranscript {
        v: 1,
        iss: h.origin.clone(),
        kind: TranscriptKind::Desktop,
        id: rid.into(),
        service: claim["context"]["service"].as_str().unwrap().into(),
        level: claim["context"]["level"].as_u64().unwrap() as u8,
        context_hash: claim["context_hash"].as_str().unwrap().into(),
        decision: Decision::Approve,
        number: None,
        device_id: device_id.into(),
        iat: cie_core_now(h),
        jti: b64(&[jti; 16]),
    }
}

/// The browser types the code the phone shows; the login it completes.
async fn type_code(h: &Harness, browser: &reqwest::Client, rid: &str, approved: &Value) -> Value {
    let (s, done) = h
        .post(
            browser,
            &format!("/api/v1/desktop/rendezvous/{rid}/code"),
            &json!({"code": approved["code"]}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    done
}

fn cie_core_now(h: &Harness) -> u64 {
    use companion_server::Clock;
    h.clock.now()
}

async fn approve(
    h: &Harness,
    rid: &str,
    claim: &Value,
    t: &ApprovalTranscript,
    key: &SigningKey,
) -> (u16, Value) {
    let bytes = t.to_bytes();
    let sig: Signature = key.sign(&bytes);
    let body = json!({
        "method": "device",
        "claim_token": claim["claim_token"],
        "transcript": b64(&bytes),
        "signature": b64(&sig.to_bytes()),
    });
    h.post(
        &h.other_client(),
        &format!("/api/v1/rendezvous/{rid}/approve"),
        &body,
    )
    .await
}

#[tokio::test]
async fn enrolled_device_approves_a_desktop_login_at_level_2() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, public) = device_key(0x11);
        let (s, enrolled) = enroll(&h, &public).await;
        assert_eq!(s, 200, "{}: {enrolled}", db.name);
        assert_eq!(enrolled["identity"]["codice_fiscale"], TEST_CF);
        let device_id = enrolled["device_id"].as_str().unwrap();

        let browser = h.browser();
        let (rid, claim) = claimed(&h, &browser).await;
        let t = transcript(&h, &rid, &claim, device_id, 1);
        let (s, approved) = approve(&h, &rid, &claim, &t, &key).await;
        assert_eq!(s, 200, "{}: {approved}", db.name);
        let done = type_code(&h, &browser, &rid, &approved).await;
        assert_eq!(done["level"], 2);
        assert_eq!(done["identity"]["given_name"], "MARIA");

        // The same transcript id on another rendezvous is a replay.
        let (rid2, claim2) = claimed(&h, &h.other_client()).await;
        let t2 = transcript(&h, &rid2, &claim2, device_id, 1);
        let (s, err) = approve(&h, &rid2, &claim2, &t2, &key).await;
        assert_eq!((s, code(&err)), (409, "replayed"), "{}: {err}", db.name);
    }
}

#[tokio::test]
async fn a_service_asking_level_3_takes_the_card_not_the_phone_key() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, public) = device_key(0x21);
        let (s, enrolled) = enroll(&h, &public).await;
        assert_eq!(s, 200, "{}: {enrolled}", db.name);
        let device_id = enrolled["device_id"].as_str().unwrap();

        // The page of a service that asked SpidL3 posts the level: the phone sees it.
        let browser = h.browser();
        let (rid, claim) = claimed_asking(&h, &browser, &json!({"level": 3})).await;
        assert_eq!(claim["context"]["level"], 3, "{claim}");
        // The phone's key is refused, typed, in both languages — and nothing is spent:
        let t = transcript(&h, &rid, &claim, device_id, 7);
        let (s, err) = approve(&h, &rid, &claim, &t, &key).await;
        assert_eq!(
            (s, code(&err)),
            (403, "card_required"),
            "{}: {err}",
            db.name
        );
        assert!(
            err["message_it"]
                .as_str()
                .unwrap()
                .contains("richiede la CIE"),
            "{err}"
        );
        // ... the same phone approves with the card, and the computer logs in at level 3.
        let token = claim["claim_token"].as_str().unwrap();
        let (s, ch) = h
            .post(
                &h.other_client(),
                "/api/v1/card/challenge",
                &json!({"purpose": "desktop_approve", "rid": rid, "claim_token": token}),
            )
            .await;
        assert_eq!(s, 200, "{ch}");
        let signature = card_sign(&CardStatement::DesktopApprove {
            origin: &h.origin,
            rid: &rid,
            context_hash: claim["context_hash"].as_str().unwrap(),
            challenge: ch["challenge"].as_str().unwrap(),
        });
        let body = json!({"method": "cie", "claim_token": token, "challenge_id": ch["challenge_id"],
            "certificate": b64(AUTH_CERT), "signature": signature});
        let (s, approved) = h
            .post(
                &h.other_client(),
                &format!("/api/v1/rendezvous/{rid}/approve"),
                &body,
            )
            .await;
        assert_eq!(s, 200, "{}: {approved}", db.name);
        let done = type_code(&h, &browser, &rid, &approved).await;
        assert_eq!(done["level"], 3);

        // Level 1 or 2 asked, or none (`{}`, `null`): the phone's key approves.
        let asks = [
            json!({"level": 1}),
            json!({"level": 2}),
            json!({}),
            Value::Null,
        ];
        for (jti, asked) in (10u8..).zip(asks) {
            let (rid, claim) = claimed_asking(&h, &h.browser(), &asked).await;
            let want = asked["level"].as_u64().unwrap_or(2);
            assert_eq!(claim["context"]["level"], want, "{asked}: {claim}");
            let t = transcript(&h, &rid, &claim, device_id, jti);
            let (s, ok) = approve(&h, &rid, &claim, &t, &key).await;
            assert_eq!(s, 200, "{asked}: {ok}");
        }
        // A level that does not exist, or not a number: refused, no rendezvous made.
        for bad in [
            json!({"level": 0}),
            json!({"level": 4}),
            json!({"level": "3"}),
            json!([3]),
        ] {
            let (s, err) = h
                .post(&h.browser(), "/api/v1/desktop/rendezvous", &bad)
                .await;
            assert_eq!((s, code(&err)), (400, "bad_request"), "{bad}: {err}");
        }
    }
}

#[tokio::test]
async fn device_approvals_are_checked_field_by_field() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let (key, public) = device_key(0x22);
    let (_, enrolled) = enroll(&h, &public).await;
    let device_id = enrolled["device_id"].as_str().unwrap();
    let browser = h.browser();
    let (rid, claim) = claimed(&h, &browser).await;

    // Another key.
    let (other, _) = device_key(0x33);
    let t = transcript(&h, &rid, &claim, device_id, 2);
    let (s, err) = approve(&h, &rid, &claim, &t, &other).await;
    assert_eq!((s, code(&err)), (403, "bad_signature"), "{err}");
    // A device nobody enrolled.
    let t = transcript(&h, &rid, &claim, "AAAAAAAAAAAAAAAAAAAAAA", 3);
    let (s, err) = approve(&h, &rid, &claim, &t, &key).await;
    assert_eq!((s, code(&err)), (403, "wrong_device"), "{err}");
    // Another context than the one shown.
    let mut t = transcript(&h, &rid, &claim, device_id, 4);
    t.context_hash = b64(&[0; 32]);
    let (s, err) = approve(&h, &rid, &claim, &t, &key).await;
    assert_eq!((s, code(&err)), (403, "context_mismatch"), "{err}");
    // Signed too long ago.
    let mut t = transcript(&h, &rid, &claim, device_id, 5);
    t.iat -= 61;
    let (s, err) = approve(&h, &rid, &claim, &t, &key).await;
    assert_eq!((s, code(&err)), (410, "expired"), "{err}");
    // Nothing above changed the state; the honest transcript still works.
    let t = transcript(&h, &rid, &claim, device_id, 6);
    let (s, ok) = approve(&h, &rid, &claim, &t, &key).await;
    assert_eq!(s, 200, "{ok}");
}

#[tokio::test]
async fn enrolment_needs_the_card_signature_over_the_key() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let (_, public) = device_key(0x44);
    let (_, other_public) = device_key(0x55);
    let phone = h.other_client();
    let (_, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &json!({"purpose": "device_enroll"}),
        )
        .await;
    // The card signed one key, the request carries another.
    let signature = card_sign(&CardStatement::DeviceEnroll {
        origin: &h.origin,
        challenge: ch["challenge"].as_str().unwrap(),
        device_key: &public,
    });
    let body = json!({
        "challenge_id": ch["challenge_id"],
        "certificate": b64(AUTH_CERT),
        "signature": signature,
        "device_key": other_public,
        "device_name": "x",
    });
    let (s, err) = h.post(&phone, "/api/v1/devices", &body).await;
    assert_eq!((s, code(&err)), (403, "bad_signature"), "{err}");
    // Not a point on the curve.
    let mut bad = body.clone();
    bad["device_key"] = json!(b64(&[4u8; 65]));
    let (s, err) = h.post(&phone, "/api/v1/devices", &bad).await;
    assert_eq!((s, code(&err)), (400, "bad_request"), "{err}");
}
