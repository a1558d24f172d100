//! App approval with number matching (docs/protocol.md §3) over HTTPS: the desktop asks
//! for a codice fiscale, the enrolled phone lists (device-signed) and decides (signed
//! transcript), the desktop's long poll gets a level-2 session.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use cie_core::flows::wire::{ApprovalTranscript, Decision, TranscriptKind, b64};
use common::*;
use companion_server::Clock;
use companion_server::store::{ApprovalStore, AuditEntry, Limited, NewApproval, SqlStore};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sqlx::Connection;

const OTHER_CF: &str = "RSSMRA80A01H501U";
const UNKNOWN_CF: &str = "BNCGNN90B02F205Z";

/// Another person with an account but no device (the test card has one holder only).
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

fn now(h: &Harness) -> u64 {
    h.clock.now()
}

async fn create(h: &Harness, browser: &reqwest::Client, cf: &str) -> (u16, Value) {
    h.post(browser, "/api/v1/approvals", &json!({"codice_fiscale": cf}))
        .await
}

/// Create a request and return its answer (asserting success).
async fn request(h: &Harness, browser: &reqwest::Client, cf: &str) -> Value {
    let (s, v) = create(h, browser, cf).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn pending_at(
    h: &Harness,
    device_id: &str,
    key: &SigningKey,
    iat: u64,
    nonce: &str,
) -> (u16, Value) {
    let statement = cie_core::flows::wire::pending_statement(&h.origin, device_id, iat, nonce);
    let sig: Signature = key.sign(&statement);
    let body = json!({
        "device_id": device_id,
        "iat": iat,
        "nonce": nonce,
        "signature": b64(&sig.to_bytes()),
    });
    h.post(&h.other_client(), "/api/v1/approvals/pending", &body)
        .await
}

/// The pending list with a fresh nonce (asserting success).
async fn pending(h: &Harness, device_id: &str, key: &SigningKey) -> Vec<Value> {
    let nonce = b64(&rand16());
    let (s, v) = pending_at(h, device_id, key, now(h), &nonce).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn rand16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

/// The transcript the app would sign for `item` of the pending list.
fn transcript(
    h: &Harness,
    item: &Value,
    device_id: &str,
    decision: Decision,
    number: Option<u8>,
) -> ApprovalTranscript {
    ApprovalTranscript {
        v: 1,
        iss: h.origin.clone(),
        kind: TranscriptKind::Approval,
        id: item["request_id"].as_str().unwrap().into(),
        service: item["context"]["service"].as_str().unwrap().into(),
        level: item["context"]["level"].as_u64().unwrap() as u8,
        context_hash: item["context_hash"].as_str().unwrap().into(),
        decision,
        number,
        device_id: device_id.into(),
        iat: now(h),
        jti: b64(&rand16()),
    }
}

fn decision_body(t: &ApprovalTranscript, key: &SigningKey) -> Value {
    let bytes = t.to_bytes();
    let sig: Signature = key.sign(&bytes);
    json!({"transcript": b64(&bytes), "signature": b64(&sig.to_bytes())})
}

async fn decide_raw(h: &Harness, id: &str, body: &Value) -> (u16, Value) {
    h.post(
        &h.other_client(),
        &format!("/api/v1/approvals/{id}/decision"),
        body,
    )
    .await
}

async fn decide(h: &Harness, t: &ApprovalTranscript, key: &SigningKey) -> (u16, Value) {
    decide_raw(h, &t.id, &decision_body(t, key)).await
}

async fn status(h: &Harness, browser: &reqwest::Client, id: &str) -> (u16, Value) {
    h.get(browser, &format!("/api/v1/approvals/{id}")).await
}

fn item_for<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|p| p["request_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list:?}"))
}

fn number_of(created: &Value) -> u8 {
    created["number"].as_u64().unwrap() as u8
}

fn a_wrong_choice(item: &Value, number: u8) -> u8 {
    item["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as u8)
        .find(|c| *c != number)
        .unwrap()
}

#[tokio::test]
async fn app_approval_happy_path() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, device_id) = enrolled(&h, 0x11).await;
        let browser = h.browser();
        let created = request(&h, &browser, TEST_CF).await;
        let id = created["request_id"].as_str().unwrap().to_owned();
        let number = number_of(&created);
        assert!((10..=99).contains(&number), "{created}");
        assert_eq!(created["expires_at"], now(&h) + 60);

        // The desktop waits.
        let poll = {
            let browser = browser.clone();
            let url = h.url(&format!("/api/v1/approvals/{id}?after=pending"));
            tokio::spawn(async move {
                let resp = browser.get(url).send().await.unwrap();
                let cookie = resp
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .any(|c| c.to_str().unwrap().starts_with("cc_session="));
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.unwrap(),
                    cookie,
                )
            })
        };

        let list = pending(&h, &device_id, &key).await;
        assert_eq!(list.len(), 1, "{}: {list:?}", db.name);
        let item = &list[0];
        assert_eq!(item["request_id"], id.as_str());
        let choices: Vec<u8> = item["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(choices.len(), 3);
        assert!(choices.contains(&number));
        assert!(choices[0] != choices[1] && choices[1] != choices[2] && choices[0] != choices[2]);
        assert_eq!(item["context"]["level"], 2);
        assert_eq!(item["context"]["service"], "Servizio di prova");
        assert_eq!(item["context"]["browser"], "Chrome");
        let ctx: cie_core::flows::wire::LoginContext =
            serde_json::from_value(item["context"].clone()).unwrap();
        assert_eq!(ctx.hash(), item["context_hash"].as_str().unwrap());

        let t = transcript(&h, item, &device_id, Decision::Approve, Some(number));
        let (s, v) = decide(&h, &t, &key).await;
        assert_eq!((s, &v), (200, &json!({"state": "approved"})), "{}", db.name);

        let (s, v, cookie) = poll.await.unwrap();
        assert_eq!((s, &v), (200, &json!({"state": "consumed"})), "{}", db.name);
        assert!(cookie, "the approving read sets cc_session");
        let (s, me) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(s, 200, "{me}");
        assert_eq!(me["level"], 2);
        assert_eq!(me["identity"]["codice_fiscale"], TEST_CF);
        // Consumed once; nothing left for the phone.
        assert_eq!(status(&h, &browser, &id).await.1["state"], "consumed");
        assert!(pending(&h, &device_id, &key).await.is_empty());

        let audit = h.server().store().audit_log().await.unwrap();
        for kind in [
            "approval_create",
            "approval_pending",
            "approval_decision",
            "approval_consume",
        ] {
            assert!(
                audit.iter().any(|(k, _, _, _)| k == kind),
                "{kind} missing in {audit:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_number_aborts_the_request() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, device_id) = enrolled(&h, 0x12).await;
        let browser = h.browser();
        let created = request(&h, &browser, TEST_CF).await;
        let id = created["request_id"].as_str().unwrap();
        let number = number_of(&created);
        let list = pending(&h, &device_id, &key).await;
        let item = item_for(&list, id);

        let wrong = a_wrong_choice(item, number);
        let t = transcript(&h, item, &device_id, Decision::Approve, Some(wrong));
        let (s, e) = decide(&h, &t, &key).await;
        assert_eq!((s, code(&e)), (403, "wrong_number"), "{}: {e}", db.name);
        assert_eq!(status(&h, &browser, id).await.1["state"], "aborted");
        // No second guess, not even the right one.
        let t = transcript(&h, item, &device_id, Decision::Approve, Some(number));
        let (s, e) = decide(&h, &t, &key).await;
        assert_eq!((s, code(&e)), (409, "wrong_state"), "{}: {e}", db.name);
        assert!(pending(&h, &device_id, &key).await.is_empty());
        let (s, _) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(s, 404);

        // Approving without a number is a wrong number too.
        let created = request(&h, &browser, TEST_CF).await;
        let list = pending(&h, &device_id, &key).await;
        let item = item_for(&list, created["request_id"].as_str().unwrap());
        let t = transcript(&h, item, &device_id, Decision::Approve, None);
        let (s, e) = decide(&h, &t, &key).await;
        assert_eq!((s, code(&e)), (403, "wrong_number"), "{e}");
    }
}

#[tokio::test]
async fn deny_and_replayed_decisions() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, device_id) = enrolled(&h, 0x13).await;
        let browser = h.browser();
        let created = request(&h, &browser, TEST_CF).await;
        let id = created["request_id"].as_str().unwrap();
        let list = pending(&h, &device_id, &key).await;
        let item = item_for(&list, id);
        // Deny needs no number.
        let t = transcript(&h, item, &device_id, Decision::Deny, None);
        let body = decision_body(&t, &key);
        let (s, v) = decide_raw(&h, id, &body).await;
        assert_eq!((s, &v), (200, &json!({"state": "denied"})), "{}", db.name);
        assert_eq!(status(&h, &browser, id).await.1["state"], "denied");
        // The same bytes again.
        let (s, e) = decide_raw(&h, id, &body).await;
        assert_eq!((s, code(&e)), (409, "replayed"), "{}: {e}", db.name);

        // The same jti on a fresh request is a replay, and changes nothing.
        let created = request(&h, &browser, TEST_CF).await;
        let id2 = created["request_id"].as_str().unwrap();
        let list = pending(&h, &device_id, &key).await;
        let item = item_for(&list, id2);
        let mut t2 = transcript(
            &h,
            item,
            &device_id,
            Decision::Approve,
            Some(number_of(&created)),
        );
        t2.jti = t.jti.clone();
        let (s, e) = decide(&h, &t2, &key).await;
        assert_eq!((s, code(&e)), (409, "replayed"), "{}: {e}", db.name);
        assert_eq!(status(&h, &browser, id2).await.1["state"], "pending");
        let t2 = transcript(
            &h,
            item,
            &device_id,
            Decision::Approve,
            Some(number_of(&created)),
        );
        let (s, v) = decide(&h, &t2, &key).await;
        assert_eq!(s, 200, "{v}");
    }
}

#[tokio::test]
async fn decisions_are_checked_field_by_field() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    other_identity(&h).await;
    let (key, device_id) = enrolled(&h, 0x14).await;
    let browser = h.browser();
    let created = request(&h, &browser, TEST_CF).await;
    let id = created["request_id"].as_str().unwrap();
    let number = number_of(&created);
    let list = pending(&h, &device_id, &key).await;
    let item = item_for(&list, id);
    let honest = || transcript(&h, item, &device_id, Decision::Approve, Some(number));

    // Signed by another key than the device's.
    let (other, _) = device_key(0x77);
    let (s, e) = decide(&h, &honest(), &other).await;
    assert_eq!((s, code(&e)), (403, "bad_signature"), "{e}");
    // A device nobody enrolled.
    let mut t = honest();
    t.device_id = "AAAAAAAAAAAAAAAAAAAAAA".into();
    let (s, e) = decide(&h, &t, &key).await;
    assert_eq!((s, code(&e)), (403, "wrong_device"), "{e}");
    // Another context than the one shown.
    let mut t = honest();
    t.context_hash = b64(&[0; 32]);
    let (s, e) = decide(&h, &t, &key).await;
    assert_eq!((s, code(&e)), (403, "context_mismatch"), "{e}");
    // Another level, another service.
    let mut t = honest();
    t.level = 3;
    assert_eq!(code(&decide(&h, &t, &key).await.1), "context_mismatch");
    let mut t = honest();
    t.service = "Altro".into();
    assert_eq!(code(&decide(&h, &t, &key).await.1), "context_mismatch");
    // A desktop transcript is not an approval; another origin; another version.
    let mut t = honest();
    t.kind = TranscriptKind::Desktop;
    let (s, e) = decide(&h, &t, &key).await;
    assert_eq!((s, code(&e)), (400, "bad_request"), "{e}");
    let mut t = honest();
    t.iss = cie_core::flows::wire::Origin::parse("https://evil.example").unwrap();
    assert_eq!(code(&decide(&h, &t, &key).await.1), "bad_request");
    let mut t = honest();
    t.v = 2;
    assert_eq!(code(&decide(&h, &t, &key).await.1), "bad_request");
    // Posted to another request's path.
    let created2 = request(&h, &h.other_client(), TEST_CF).await;
    let (s, e) = decide_raw(
        &h,
        created2["request_id"].as_str().unwrap(),
        &decision_body(&honest(), &key),
    )
    .await;
    assert_eq!((s, code(&e)), (400, "bad_request"), "{e}");
    // Signed too long ago, or in the future.
    let mut t = honest();
    t.iat -= 61;
    let (s, e) = decide(&h, &t, &key).await;
    assert_eq!((s, code(&e)), (410, "expired"), "{e}");
    let mut t = honest();
    t.iat += 61;
    assert_eq!(code(&decide(&h, &t, &key).await.1), "expired");
    // A malformed jti; a transcript with an extra field; bytes that are not JSON.
    let mut t = honest();
    t.jti = "x".into();
    assert_eq!(code(&decide(&h, &t, &key).await.1), "bad_request");
    let extra = String::from_utf8(honest().to_bytes())
        .unwrap()
        .replace('}', r#","x":1}"#);
    let sig: Signature = key.sign(extra.as_bytes());
    let body = json!({"transcript": b64(extra.as_bytes()), "signature": b64(&sig.to_bytes())});
    assert_eq!(code(&decide_raw(&h, id, &body).await.1), "bad_request");
    let body = json!({"transcript": "!!", "signature": "AA"});
    assert_eq!(code(&decide_raw(&h, id, &body).await.1), "bad_request");
    // Unknown request ids.
    let (s, _) = decide_raw(&h, "nope", &decision_body(&honest(), &key)).await;
    assert_eq!(s, 404);

    // Another person's request (an account without a device) and a request for a codice
    // fiscale with no account: this device may decide neither, and lists neither.
    for cf in [OTHER_CF, UNKNOWN_CF] {
        let theirs = request(&h, &h.other_client(), cf).await;
        let theirs_id = theirs["request_id"].as_str().unwrap();
        let list = pending(&h, &device_id, &key).await;
        assert!(list.iter().all(|p| p["request_id"] != theirs_id), "{cf}");
        let mut t = honest();
        t.id = theirs_id.into();
        let (s, e) = decide(&h, &t, &key).await;
        // The context hash differs too; the owner check comes after the field checks, so
        // use the other request's served context to reach it.
        assert!(s == 403, "{cf}: {e}");
    }
    // Same, with the other request's exact fields (a stolen listing): wrong_device.
    let theirs = request(&h, &h.other_client(), OTHER_CF).await;
    let theirs_id = theirs["request_id"].as_str().unwrap();
    let (hash, service) = served_context(&h, theirs_id).await;
    let mut t = honest();
    t.id = theirs_id.into();
    t.context_hash = hash;
    t.service = service;
    let (s, e) = decide(&h, &t, &key).await;
    assert_eq!((s, code(&e)), (403, "wrong_device"), "{e}");

    // Nothing above changed the state: the honest decision still works.
    let (s, v) = decide(&h, &honest(), &key).await;
    assert_eq!(s, 200, "{v}");
}

/// The context hash and service the server stored for a request (what a phone listing it
/// would have seen).
async fn served_context(h: &Harness, id: &str) -> (String, String) {
    let rec = companion_server::store::ApprovalStore::approval(&*h.server().store(), id, now(h))
        .await
        .unwrap()
        .unwrap();
    let ctx: cie_core::flows::wire::LoginContext = serde_json::from_str(&rec.context_json).unwrap();
    (rec.context_hash, ctx.service)
}

#[tokio::test]
async fn requests_expire_after_a_minute() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, device_id) = enrolled(&h, 0x15).await;
        let browser = h.browser();
        let created = request(&h, &browser, TEST_CF).await;
        let id = created["request_id"].as_str().unwrap();
        let list = pending(&h, &device_id, &key).await;
        let item = item_for(&list, id).clone();
        h.clock.advance(61);
        assert!(
            pending(&h, &device_id, &key).await.is_empty(),
            "{}",
            db.name
        );
        let t = transcript(
            &h,
            &item,
            &device_id,
            Decision::Approve,
            Some(number_of(&created)),
        );
        let (s, e) = decide(&h, &t, &key).await;
        assert_eq!((s, code(&e)), (410, "expired"), "{}: {e}", db.name);
        assert_eq!(status(&h, &browser, id).await.1["state"], "expired");
    }
}

#[tokio::test]
async fn the_pending_list_needs_a_fresh_device_signature() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let (key, device_id) = enrolled(&h, 0x16).await;
    request(&h, &h.browser(), TEST_CF).await;
    let nonce = b64(&rand16());
    // Stale or future iat.
    let (s, e) = pending_at(&h, &device_id, &key, now(&h) - 61, &nonce).await;
    assert_eq!((s, code(&e)), (410, "expired"), "{e}");
    let (s, e) = pending_at(&h, &device_id, &key, now(&h) + 61, &nonce).await;
    assert_eq!((s, code(&e)), (410, "expired"), "{e}");
    // Another key; a device nobody enrolled; a malformed nonce.
    let (other, _) = device_key(0x78);
    let (s, e) = pending_at(&h, &device_id, &other, now(&h), &nonce).await;
    assert_eq!((s, code(&e)), (403, "bad_signature"), "{e}");
    let (s, e) = pending_at(&h, "AAAAAAAAAAAAAAAAAAAAAA", &key, now(&h), &nonce).await;
    assert_eq!((s, code(&e)), (403, "wrong_device"), "{e}");
    let (s, e) = pending_at(&h, &device_id, &key, now(&h), "short").await;
    assert_eq!((s, code(&e)), (400, "bad_request"), "{e}");
    // The refusals above did not spend the nonce; the first good use does.
    let (s, list) = pending_at(&h, &device_id, &key, now(&h), &nonce).await;
    assert_eq!(s, 200, "{list}");
    assert!(list.is_array(), "a bare JSON array: {list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, e) = pending_at(&h, &device_id, &key, now(&h), &nonce).await;
    assert_eq!((s, code(&e)), (409, "replayed"), "{e}");
}

#[tokio::test]
async fn only_the_asking_browser_sees_the_status_and_gets_the_session() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let (key, device_id) = enrolled(&h, 0x17).await;
    let browser = h.browser();
    let created = request(&h, &browser, TEST_CF).await;
    let id = created["request_id"].as_str().unwrap();
    let thief = h.other_client();
    let (s, e) = status(&h, &thief, id).await;
    assert_eq!((s, code(&e)), (403, "not_this_browser"), "{e}");
    let list = pending(&h, &device_id, &key).await;
    let item = item_for(&list, id);
    let t = transcript(
        &h,
        item,
        &device_id,
        Decision::Approve,
        Some(number_of(&created)),
    );
    assert_eq!(decide(&h, &t, &key).await.0, 200);
    // Approved: still not for the other browser, and it did not consume it.
    let (s, e) = status(&h, &thief, id).await;
    assert_eq!((s, code(&e)), (403, "not_this_browser"), "{e}");
    assert_eq!(h.get(&thief, "/api/v1/session").await.0, 404);
    let (s, v) = status(&h, &browser, id).await;
    assert_eq!((s, &v), (200, &json!({"state": "consumed"})));
    assert_eq!(h.get(&browser, "/api/v1/session").await.1["level"], 2);
    // A bad `after`.
    let (s, e) = h
        .get(&browser, &format!("/api/v1/approvals/{id}?after=nonsense"))
        .await;
    assert_eq!((s, code(&e)), (400, "bad_request"), "{e}");
}

#[tokio::test]
async fn unknown_codice_fiscale_gets_the_same_reply() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    other_identity(&h).await;
    enrolled(&h, 0x18).await;
    let mut shapes = Vec::new();
    // Enrolled device, account without device, no account; and lower case.
    for cf in [TEST_CF, OTHER_CF, UNKNOWN_CF, &UNKNOWN_CF.to_lowercase()] {
        let browser = h.other_client();
        let resp = browser
            .post(h.url("/api/v1/approvals"))
            .json(&json!({"codice_fiscale": cf}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{cf}");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cookie.starts_with("cc_abind="), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let v: Value = resp.json().await.unwrap();
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert!((10..=99).contains(&v["number"].as_u64().unwrap()));
        assert_eq!(v["expires_at"], now(&h) + 60);
        assert_eq!(
            v["request_id"].as_str().unwrap().len(),
            22,
            "same id length"
        );
        shapes.push(keys);
        let (s, st) = status(&h, &browser, v["request_id"].as_str().unwrap()).await;
        assert_eq!((s, &st), (200, &json!({"state": "pending"})), "{cf}");
    }
    assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:?}");
    // Not a codice fiscale at all: a format error, which says nothing about accounts.
    let (s, e) = create(&h, &h.browser(), "12345").await;
    assert_eq!((s, code(&e)), (400, "bad_request"), "{e}");
}

#[tokio::test]
async fn requests_are_rate_limited() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    // Start of a minute, so the five fit in one bucket.
    h.clock.set((now(&h) / 60 + 1) * 60);
    let browser = h.browser();
    for _ in 0..5 {
        request(&h, &browser, UNKNOWN_CF).await;
    }
    let (s, e) = create(&h, &browser, UNKNOWN_CF).await;
    assert_eq!((s, code(&e)), (429, "rate_limited"), "{e}");
    assert_eq!(e["retry_after"], 60);
    h.clock.advance(60);
    request(&h, &browser, UNKNOWN_CF).await;
}

/// Per codice fiscale and per address, separately (the store, where addresses can vary).
#[tokio::test]
async fn rate_limits_per_identity_and_per_address() {
    // A minute boundary (1_800_000_000 is one), so every insert lands in one bucket.
    const NOW: u64 = 1_800_000_000;
    let new = |n: u8, cf: &str, client: &str| NewApproval {
        id: format!("id-{cf}-{client}-{n}"),
        codice_fiscale: cf.into(),
        bind_hash: [n; 32],
        context_json: "{}".into(),
        context_hash: "h".into(),
        number: 42,
        choices: [42, 17, 88],
        created: NOW,
        expires: NOW + 60,
        client: client.into(),
    };
    for db in backends().await {
        let store = Arc::new(SqlStore::connect(&db.url).await.unwrap());
        let audit = AuditEntry::new("approval_create", "x", "ok", "t");
        // One codice fiscale from six addresses: the sixth is refused.
        for n in 0..5u8 {
            let a = new(n, TEST_CF, &format!("10.0.0.{n}"));
            assert_eq!(
                store.create_approval(&a, 5, &audit).await.unwrap(),
                Limited::Done
            );
        }
        let a = new(5, TEST_CF, "10.0.0.5");
        assert_eq!(
            store.create_approval(&a, 5, &audit).await.unwrap(),
            Limited::RetryAfter(60),
            "{}",
            db.name
        );
        // Six codici fiscali from one address: the sixth is refused.
        let cfs = [
            "AAAAAA00A00A000A",
            "BBBBBB00A00A000B",
            "CCCCCC00A00A000C",
            "DDDDDD00A00A000D",
            "EEEEEE00A00A000E",
            "FFFFFF00A00A000F",
        ];
        for (n, cf) in cfs.iter().enumerate() {
            let a = new(10 + n as u8, cf, "192.168.1.1");
            let want = if n < 5 {
                Limited::Done
            } else {
                Limited::RetryAfter(60)
            };
            assert_eq!(
                store.create_approval(&a, 5, &audit).await.unwrap(),
                want,
                "{n}"
            );
        }
        let log = store.audit_log().await.unwrap();
        assert!(
            log.iter()
                .any(|(_, _, o, _)| o == "rate_limited (identity)")
        );
        assert!(log.iter().any(|(_, _, o, _)| o == "rate_limited (address)"));
        store.close().await;
    }
}

#[tokio::test]
async fn racing_decisions_have_one_winner() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (key, device_id) = enrolled(&h, 0x19).await;
        for round in 0..4 {
            let browser = h.other_client();
            let created = request(&h, &browser, TEST_CF).await;
            let id = created["request_id"].as_str().unwrap();
            let number = number_of(&created);
            let list = pending(&h, &device_id, &key).await;
            let item = item_for(&list, id);
            let a = transcript(&h, item, &device_id, Decision::Approve, Some(number));
            let b = if round % 2 == 0 {
                transcript(&h, item, &device_id, Decision::Deny, None)
            } else {
                transcript(&h, item, &device_id, Decision::Approve, Some(number))
            };
            let (ra, rb) = tokio::join!(decide(&h, &a, &key), decide(&h, &b, &key));
            let wins = [&ra, &rb].iter().filter(|r| r.0 == 200).count();
            assert_eq!(wins, 1, "{}: {ra:?} {rb:?}", db.name);
            let loser = if ra.0 == 200 { &rb } else { &ra };
            assert_eq!((loser.0, code(&loser.1)), (409, "wrong_state"), "{loser:?}");
            let winner = if ra.0 == 200 { &ra } else { &rb };
            let (_, st) = status(&h, &browser, id).await;
            let want = if winner.1["state"] == "approved" {
                "consumed"
            } else {
                "denied"
            };
            assert_eq!(st["state"], want, "{}", db.name);
        }
    }
}

#[tokio::test]
async fn the_page_offers_the_app_login() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let page = h.browser().get(h.url("/")).send().await.unwrap();
    let html = page.text().await.unwrap();
    for id in [
        "id=\"cf\"",
        "id=\"app-login\"",
        "id=\"number\"",
        "id=\"status\"",
        "id=\"who\"",
    ] {
        assert!(html.contains(id), "{id}");
    }
    assert!(html.contains("Entra con l'app"));
    assert!(!html.contains("<script>"), "no inline script");
    let js = h
        .browser()
        .get(h.url("/static/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(js.contains("/api/v1/approvals"));
}
