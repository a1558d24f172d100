//! Desktop QR authorisation (docs/protocol.md §2) over HTTPS: the desktop browser (cookie
//! jar), the phone (another client) and the card (the virtual card's key).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cie_core::flows::wire::{CardStatement, DesktopQr, b64};
use common::*;
use serde_json::{Value, json};

async fn new_qr(h: &Harness, browser: &reqwest::Client) -> (String, DesktopQr) {
    let (status, body) = h
        .post(browser, "/api/v1/desktop/rendezvous", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    let qr = DesktopQr::parse(
        body["qr"].as_str().unwrap(),
        std::slice::from_ref(&h.origin),
    )
    .unwrap();
    assert_eq!(b64(&qr.rid), body["rid"].as_str().unwrap());
    (body["rid"].as_str().unwrap().to_owned(), qr)
}

async fn claim(h: &Harness, phone: &reqwest::Client, qr: &DesktopQr) -> (u16, Value) {
    let body = json!({
        "rid": b64(&qr.rid),
        "proof": b64(&qr.claim_proof()),
        "device_name": "Pixel 8",
    });
    h.post(phone, "/api/v1/rendezvous/claim", &body).await
}

/// Challenge + card signature + approve; the approve answer.
async fn approve(h: &Harness, phone: &reqwest::Client, rid: &str, claimed: &Value) -> (u16, Value) {
    let token = claimed["claim_token"].as_str().unwrap();
    let (status, ch) = h
        .post(
            phone,
            "/api/v1/card/challenge",
            &json!({"purpose": "desktop_approve", "rid": rid, "claim_token": token}),
        )
        .await;
    if status != 200 {
        return (status, ch);
    }
    let signature = card_sign(&CardStatement::DesktopApprove {
        origin: &h.origin,
        rid,
        context_hash: claimed["context_hash"].as_str().unwrap(),
        challenge: ch["challenge"].as_str().unwrap(),
    });
    let body = json!({
        "method": "cie",
        "claim_token": token,
        "challenge_id": ch["challenge_id"],
        "certificate": b64(AUTH_CERT),
        "signature": signature,
    });
    h.post(phone, &format!("/api/v1/rendezvous/{rid}/approve"), &body)
        .await
}

async fn status(h: &Harness, browser: &reqwest::Client, rid: &str) -> (u16, Value) {
    h.get(browser, &format!("/api/v1/desktop/rendezvous/{rid}"))
        .await
}

async fn send_code(h: &Harness, browser: &reqwest::Client, rid: &str, code: &str) -> (u16, Value) {
    h.post(
        browser,
        &format!("/api/v1/desktop/rendezvous/{rid}/code"),
        &json!({"code": code}),
    )
    .await
}

fn wrong(code: &str) -> String {
    format!("{:04}", (code.parse::<u32>().unwrap() + 1) % 10_000)
}

#[tokio::test]
async fn desktop_happy_path() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let browser = h.browser();
        let phone = h.other_client();
        let (rid, qr) = new_qr(&h, &browser).await;
        assert_eq!(status(&h, &browser, &rid).await.1["state"], "created");

        // A long poll started now wakes on the claim.
        let poll = {
            let url = h.url(&format!("/api/v1/desktop/rendezvous/{rid}?after=created"));
            let browser = browser.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let v: Value = browser.get(url).send().await.unwrap().json().await.unwrap();
                (v, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (s, claimed) = claim(&h, &phone, &qr).await;
        assert_eq!(s, 200, "{}: {claimed}", db.name);
        let (polled, waited) = poll.await.unwrap();
        assert_eq!(polled["state"], "claimed");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        let ctx = &claimed["context"];
        assert_eq!(ctx["service"], "Servizio di prova");
        assert_eq!(
            (ctx["browser"].as_str(), ctx["os"].as_str()),
            (Some("Chrome"), Some("Linux"))
        );
        assert_eq!(ctx["place"], "rete locale");
        assert_eq!(ctx["ip"], "127.0.0.1");

        let (s, approved) = approve(&h, &phone, &rid, &claimed).await;
        assert_eq!(s, 200, "{}: {approved}", db.name);
        let code = approved["code"].as_str().unwrap().to_owned();
        assert_eq!(code.len(), 4);
        let st = status(&h, &browser, &rid).await.1;
        assert_eq!(
            (st["state"].as_str(), st["tries_left"].as_u64()),
            (Some("approved"), Some(3))
        );

        let (s, done) = send_code(&h, &browser, &rid, &code).await;
        assert_eq!(s, 200, "{}: {done}", db.name);
        assert_eq!(done["identity"]["codice_fiscale"], TEST_CF);
        let (s, me) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(s, 200, "{me}");
        assert_eq!(me["identity"]["given_name"], "MARIA");
        assert_eq!(me["level"], 3);
        // The session is that browser's only.
        let (s, _) = h.get(&phone, "/api/v1/session").await;
        assert_eq!(s, 404);
        assert_eq!(status(&h, &browser, &rid).await.1["state"], "consumed");
        // The code is single use.
        let (s, err) = send_code(&h, &browser, &rid, &code).await;
        assert_eq!((s, code_of(&err)), (409, "wrong_state"), "{err}");
    }
}

fn code_of(v: &Value) -> &str {
    code(v)
}

#[tokio::test]
async fn second_claim_aborts() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let browser = h.browser();
        let (rid, qr) = new_qr(&h, &browser).await;
        let phone1 = h.other_client();
        let phone2 = h.other_client();
        let (s, claimed) = claim(&h, &phone1, &qr).await;
        assert_eq!(s, 200);
        let (s, err) = claim(&h, &phone2, &qr).await;
        assert_eq!(
            (s, code_of(&err)),
            (409, "already_claimed"),
            "{}: {err}",
            db.name
        );
        // The first phone is told too, and cannot approve.
        let (s, err) = approve(&h, &phone1, &rid, &claimed).await;
        assert_eq!((s, code_of(&err)), (409, "already_claimed"), "{err}");
        assert_eq!(status(&h, &browser, &rid).await.1["state"], "aborted");
    }
}

#[tokio::test]
async fn wrong_proof_is_refused_and_changes_nothing() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let browser = h.browser();
    let (rid, mut qr) = new_qr(&h, &browser).await;
    qr.secret[0] ^= 1;
    let (s, err) = claim(&h, &h.other_client(), &qr).await;
    assert_eq!((s, code_of(&err)), (403, "bad_signature"), "{err}");
    assert_eq!(status(&h, &browser, &rid).await.1["state"], "created");
}

#[tokio::test]
async fn another_browser_cannot_poll_or_send_the_code() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let browser = h.browser();
    let phone = h.other_client();
    let (rid, qr) = new_qr(&h, &browser).await;
    let (_, claimed) = claim(&h, &phone, &qr).await;
    let (_, approved) = approve(&h, &phone, &rid, &claimed).await;
    let code = approved["code"].as_str().unwrap();
    // No cookie at all.
    let attacker = h.other_client();
    let (s, err) = status(&h, &attacker, &rid).await;
    assert_eq!((s, code_of(&err)), (403, "not_this_browser"), "{err}");
    let (s, err) = send_code(&h, &attacker, &rid, code).await;
    assert_eq!((s, code_of(&err)), (403, "not_this_browser"), "{err}");
    // Its own binding cookie (from its own QR), not this one.
    new_qr(&h, &attacker).await;
    let (s, err) = send_code(&h, &attacker, &rid, code).await;
    assert_eq!((s, code_of(&err)), (403, "not_this_browser"), "{err}");
    // The right browser still can.
    let (s, _) = send_code(&h, &browser, &rid, code).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn three_wrong_codes_abort() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let browser = h.browser();
        let phone = h.other_client();
        let (rid, qr) = new_qr(&h, &browser).await;
        let (_, claimed) = claim(&h, &phone, &qr).await;
        let (_, approved) = approve(&h, &phone, &rid, &claimed).await;
        let code = approved["code"].as_str().unwrap().to_owned();
        for left in [2u64, 1, 0] {
            let (s, err) = send_code(&h, &browser, &rid, &wrong(&code)).await;
            assert_eq!(
                (s, code_of(&err)),
                (401, "wrong_code"),
                "{}: {err}",
                db.name
            );
            assert_eq!(err["tries_left"].as_u64(), Some(left));
        }
        assert_eq!(status(&h, &browser, &rid).await.1["state"], "aborted");
        // A fourth attempt, even the right code, is refused.
        let (s, err) = send_code(&h, &browser, &rid, &code).await;
        assert_eq!((s, code_of(&err)), (403, "too_many_attempts"), "{err}");
        let (s, _) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(s, 404);
    }
}

#[tokio::test]
async fn expired_qr_and_code() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let browser = h.browser();
    let phone = h.other_client();
    let (rid, qr) = new_qr(&h, &browser).await;
    h.clock.advance(121);
    let (s, err) = claim(&h, &phone, &qr).await;
    assert_eq!((s, code_of(&err)), (410, "expired"), "{err}");
    assert_eq!(status(&h, &browser, &rid).await.1["state"], "expired");

    // A code typed after its 120 s.
    let (rid, qr) = new_qr(&h, &browser).await;
    let (_, claimed) = claim(&h, &phone, &qr).await;
    let (_, approved) = approve(&h, &phone, &rid, &claimed).await;
    h.clock.advance(121);
    let (s, err) = send_code(&h, &browser, &rid, approved["code"].as_str().unwrap()).await;
    assert_eq!((s, code_of(&err)), (410, "expired"), "{err}");
}

#[tokio::test]
async fn a_new_qr_replaces_the_unclaimed_one() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let browser = h.browser();
    let (first, qr1) = new_qr(&h, &browser).await;
    let (second, _) = new_qr(&h, &browser).await;
    assert_eq!(status(&h, &browser, &first).await.1["state"], "aborted");
    assert_eq!(status(&h, &browser, &second).await.1["state"], "created");
    let (s, err) = claim(&h, &h.other_client(), &qr1).await;
    assert_eq!((s, code_of(&err)), (409, "wrong_state"), "{err}");
}

#[tokio::test]
async fn deny_ends_the_rendezvous() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let browser = h.browser();
    let phone = h.other_client();
    let (rid, qr) = new_qr(&h, &browser).await;
    let (_, claimed) = claim(&h, &phone, &qr).await;
    let resp = phone
        .post(h.url(&format!("/api/v1/rendezvous/{rid}/deny")))
        .json(&json!({"claim_token": claimed["claim_token"], "report": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(status(&h, &browser, &rid).await.1["state"], "denied");
    let (s, err) = approve(&h, &phone, &rid, &claimed).await;
    assert_eq!((s, code_of(&err)), (409, "wrong_state"), "{err}");
}

#[tokio::test]
async fn rendezvous_creation_is_rate_limited() {
    let db = sqlite();
    let h = Harness::start_with(&db, |c| c.rendezvous_per_minute = 2).await;
    let browser = h.browser();
    new_qr(&h, &browser).await;
    new_qr(&h, &browser).await;
    let (s, err) = h
        .post(&browser, "/api/v1/desktop/rendezvous", &json!({}))
        .await;
    assert_eq!((s, code_of(&err)), (429, "rate_limited"), "{err}");
    assert!(err["retry_after"].as_u64().unwrap() <= 60);
}

#[tokio::test]
async fn restart_mid_flow_loses_nothing() {
    for db in backends().await {
        let tls = pem_tls();
        let mut h = Harness::start_with(&db, |c| c.tls = tls.source()).await;
        let browser = h.browser();
        let phone = h.other_client();
        let (rid, qr) = new_qr(&h, &browser).await;
        let (_, claimed) = claim(&h, &phone, &qr).await;

        h.restart(&tls).await;
        let (s, approved) = approve(&h, &phone, &rid, &claimed).await;
        assert_eq!(s, 200, "{}: {approved}", db.name);

        h.restart(&tls).await;
        let (s, done) = send_code(&h, &browser, &rid, approved["code"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{}: {done}", db.name);
        let (s, me) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(
            (s, me["identity"]["codice_fiscale"].as_str()),
            (200, Some(TEST_CF))
        );
    }
}

#[tokio::test]
async fn two_instances_share_one_database() {
    for db in backends().await {
        let tls = pem_tls();
        let a = Harness::start_with(&db, |c| c.tls = tls.source()).await;
        let b = a.second_instance(&tls).await;
        let browser_a = a.browser();
        let browser_b = b.browser();
        let phone = b.other_client();
        let (rid, qr) = new_qr(&a, &browser_a).await;
        // The desktop waits on A; the phone claims on B: A's poll sees it by re-reading.
        let poll = {
            let url = a.url(&format!("/api/v1/desktop/rendezvous/{rid}?after=created"));
            let browser = browser_a.clone();
            tokio::spawn(async move {
                let v: Value = browser.get(url).send().await.unwrap().json().await.unwrap();
                v
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (s, claimed) = claim(&b, &phone, &qr).await;
        assert_eq!(s, 200, "{}: {claimed}", db.name);
        let polled = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(polled["state"], "claimed", "{}", db.name);
        // A second claim through A aborts what B granted.
        let (s, err) = claim(&a, &a.other_client(), &qr).await;
        assert_eq!((s, code_of(&err)), (409, "already_claimed"), "{err}");

        // A full flow split across the two.
        let (rid, qr) = new_qr(&b, &browser_b).await;
        let (_, claimed) = claim(&a, &a.other_client(), &qr).await;
        let (s, approved) = approve(&b, &phone, &rid, &claimed).await;
        assert_eq!(s, 200, "{}: {approved}", db.name);
        let (s, done) = send_code(&a, &browser_a, &rid, approved["code"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{}: {done}", db.name);
    }
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let c = h.other_client();
    let resp = c.get(h.url("/")).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = resp.text().await.unwrap();
    for id in [
        "id=\"qr\"",
        "id=\"qr-text\"",
        "id=\"code\"",
        "id=\"submit\"",
        "id=\"status\"",
        "id=\"who\"",
    ] {
        assert!(html.contains(id), "{id}");
    }
    assert!(!html.contains("<script>"), "no inline script");
    let js = c.get(h.url("/static/app.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.text()
            .await
            .unwrap()
            .contains("/api/v1/desktop/rendezvous")
    );
}
