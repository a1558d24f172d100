//! Observability (docs/operations.md): request ids echoed, the metrics listener apart from
//! the public one, and the counters and histogram moving by exactly what a few flows did.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use cie_core::flows::wire::{ApprovalTranscript, CardStatement, Decision, TranscriptKind, b64};
use common::*;
use companion_server::Clock;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;
use sqlx::Connection;

/// One sample of the exposition: name and sorted labels.
type Key = (String, Vec<(String, String)>);

/// Parse the Prometheus text format strictly enough to catch a broken exposition: every
/// sample's family has `# HELP` and `# TYPE` first, labels are `k="v"`, values are numbers.
fn parse(text: &str) -> HashMap<Key, f64> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(["counter", "histogram", "gauge"].contains(&t), "{line}");
                typed.insert(name.to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut labels: Vec<(String, String)> = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                labels.sort();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), Vec::new()),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.contains(*f))
            .unwrap_or(&name)
            .to_owned();
        assert!(typed.contains(&family), "no # TYPE before {line}");
        samples.insert((name, labels), value);
    }
    samples
}

fn get(samples: &HashMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    samples.get(&(name.to_owned(), l)).copied().unwrap_or(0.0)
}

async fn scrape(h: &Harness) -> HashMap<Key, f64> {
    let addr = h.server().metrics_addr().unwrap();
    let resp = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse(&resp.text().await.unwrap())
}

async fn card_login(h: &Harness, good: bool) -> u16 {
    let sign = |challenge: &str| {
        card_sign(&CardStatement::Login {
            origin: &h.origin,
            challenge: if good { challenge } else { "AAAA" },
        })
    };
    card_login_with(h, AUTH_CERT, sign).await.0
}

/// A desktop QR login approved with the card `secs` after the QR was made; one wrong code
/// typed first.
async fn desktop_qr(h: &Harness, secs: u64) {
    let browser = h.browser();
    let (rid, code) = desktop_qr_approved(h, &browser, || h.clock.advance(secs)).await;
    let wrong = format!("{:04}", (code.parse::<u32>().unwrap() + 1) % 10_000);
    let path = format!("/api/v1/desktop/rendezvous/{rid}/code");
    let (s, _) = h.post(&browser, &path, &json!({"code": wrong})).await;
    assert_ne!(s, 200);
    let (s, done) = h.post(&browser, &path, &json!({"code": code})).await;
    assert_eq!(s, 200, "{done}");
}

/// A push approval for the test card's holder, approved by the enrolled device `secs`
/// after it was created; the desktop's poll then logs in.
async fn push_approval(h: &Harness, key: &SigningKey, device_id: &str, secs: u64) {
    let browser = h.browser();
    let (s, created) = h
        .post(
            &browser,
            "/api/v1/approvals",
            &json!({"codice_fiscale": TEST_CF}),
        )
        .await;
    assert_eq!(s, 200, "{created}");
    let id = created["request_id"].as_str().unwrap().to_owned();
    h.clock.advance(secs);
    let nonce = b64(&[7u8; 16]);
    let iat = h.clock.now();
    let statement = cie_core::flows::wire::pending_statement(&h.origin, device_id, iat, &nonce);
    let sig: Signature = key.sign(&statement);
    let body = json!({"device_id": device_id, "iat": iat, "nonce": nonce, "signature": b64(&sig.to_bytes())});
    let (s, list) = h
        .post(&h.other_client(), "/api/v1/approvals/pending", &body)
        .await;
    assert_eq!(s, 200, "{list}");
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["request_id"] == id.as_str())
        .unwrap()
        .clone();
    let t = ApprovalTranscript {
        v: 1,
        iss: h.origin.clone(),
        kind: TranscriptKind::Approval,
        id: id.clone(),
        service: item["context"]["service"].as_str().unwrap().into(),
        level: u8::try_from(item["context"]["level"].as_u64().unwrap()).unwrap(),
        context_hash: item["context_hash"].as_str().unwrap().into(),
        decision: Decision::Approve,
        number: Some(u8::try_from(created["number"].as_u64().unwrap()).unwrap()),
        device_id: device_id.into(),
        iat,
        jti: b64(&[9u8; 16]),
    };
    let bytes = t.to_bytes();
    let sig: Signature = key.sign(&bytes);
    let (s, v) = h
        .post(
            &h.other_client(),
            &format!("/api/v1/approvals/{id}/decision"),
            &json!({"transcript": b64(&bytes), "signature": b64(&sig.to_bytes())}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = h.get(&browser, &format!("/api/v1/approvals/{id}")).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("consumed")), "{v}");
}

#[tokio::test]
async fn flows_move_the_counters_by_exactly_what_they_did() {
    let db = sqlite();
    let h = Harness::start_with(&db, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        c.rendezvous_per_minute = 3;
    })
    .await;

    // The public listener does not serve the metrics.
    let (s, _) = h.get(&h.other_client(), "/metrics").await;
    assert_eq!(s, 404);

    // Before any login: every flow's `ok` at zero, both histograms empty.
    let before = scrape(&h).await;
    for flow in [
        "card",
        "desktop_qr",
        "app_approval",
        "otp",
        "abroad_pin",
        "abroad_pin_otp",
        "oidc_authorization",
        "mtls",
    ] {
        let key = (
            "companion_logins_total".to_owned(),
            vec![
                ("flow".to_owned(), flow.to_owned()),
                ("outcome".to_owned(), "ok".to_owned()),
            ],
        );
        assert_eq!(before.get(&key), Some(&0.0), "{flow}");
    }
    for kind in ["desktop_qr", "push"] {
        let key = (
            "companion_approval_latency_seconds_count".to_owned(),
            vec![("kind".to_owned(), kind.to_owned())],
        );
        assert_eq!(before.get(&key), Some(&0.0), "{kind}");
    }

    assert_eq!(card_login(&h, true).await, 200);
    assert_eq!(card_login(&h, true).await, 200);
    assert_ne!(card_login(&h, false).await, 200);
    desktop_qr(&h, 7).await;
    let (key, public) = device_key(3);
    let (s, e) = enroll(&h, &public).await;
    assert_eq!(s, 200, "{e}");
    let device_id = e["device_id"].as_str().unwrap().to_owned();
    push_approval(&h, &key, &device_id, 12).await;
    // Residents abroad: a wrong PIN, and a PIN + OTP step without the PIN first.
    let (s, _) = h
        .post(
            &h.other_client(),
            "/api/v1/abroad/login",
            &json!({"codice_fiscale": "RSSMRA80A01H501U", "pin": "ABCD2345"}),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = h
        .post(
            &h.other_client(),
            "/api/v1/abroad/login/otp",
            &json!({"code": "123456"}),
        )
        .await;
    assert!(s >= 400, "{s}");
    // At the start of a minute, three QRs fill the minute's three; the fourth is refused.
    h.clock.advance(60 - h.clock.now() % 60);
    let browser = h.browser();
    for _ in 0..3 {
        let (s, _) = h
            .post(&browser, "/api/v1/desktop/rendezvous", &json!({}))
            .await;
        assert_eq!(s, 200);
    }
    let (s, _) = h
        .post(&browser, "/api/v1/desktop/rendezvous", &json!({}))
        .await;
    assert_eq!(s, 429);

    let m = scrape(&h).await;
    let logins = |flow: &str, outcome: &str| {
        get(
            &m,
            "companion_logins_total",
            &[("flow", flow), ("outcome", outcome)],
        )
    };
    assert_eq!(logins("card", "ok"), 2.0);
    assert_eq!(logins("card", "bad_signature"), 1.0);
    assert_eq!(logins("desktop_qr", "ok"), 1.0);
    assert_eq!(logins("desktop_qr", "wrong_code"), 1.0);
    assert_eq!(logins("app_approval", "ok"), 1.0);
    assert_eq!(logins("abroad_pin", "wrong_code"), 1.0);
    let refused_otp: f64 = m
        .iter()
        .filter(|((n, l), _)| {
            n == "companion_logins_total"
                && l.contains(&("flow".into(), "abroad_pin_otp".into()))
                && !l.contains(&("outcome".into(), "ok".into()))
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused_otp, 1.0);
    let lat = |suffix: &str, labels: &[(&str, &str)]| {
        get(
            &m,
            &format!("companion_approval_latency_seconds_{suffix}"),
            labels,
        )
    };
    assert_eq!(lat("count", &[("kind", "desktop_qr")]), 1.0);
    assert_eq!(lat("sum", &[("kind", "desktop_qr")]), 7.0);
    assert_eq!(lat("bucket", &[("kind", "desktop_qr"), ("le", "5")]), 0.0);
    assert_eq!(lat("bucket", &[("kind", "desktop_qr"), ("le", "10")]), 1.0);
    assert_eq!(lat("count", &[("kind", "push")]), 1.0);
    assert_eq!(lat("sum", &[("kind", "push")]), 12.0);
    assert_eq!(lat("bucket", &[("kind", "push"), ("le", "10")]), 0.0);
    assert_eq!(lat("bucket", &[("kind", "push"), ("le", "15")]), 1.0);
    assert_eq!(lat("bucket", &[("kind", "push"), ("le", "+Inf")]), 1.0);
    assert_eq!(
        get(
            &m,
            "companion_rate_limited_total",
            &[("limiter", "rendezvous_per_address")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            "companion_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/card/login"),
                ("status", "200")
            ]
        ),
        2.0
    );
    // Route templates only: no rendezvous id or token in any label.
    assert!(
        m.keys()
            .flat_map(|(_, l)| l.iter())
            .filter(|(k, _)| k == "route")
            .all(|(_, v)| v.split('/').all(|segment| segment.len() < 20)),
        "{:?}",
        m.keys()
    );
    let store_errors: f64 = m
        .iter()
        .filter(|((n, _), _)| n == "companion_store_errors_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(store_errors, 0.0);

    // A statement that fails: the table it writes is gone.
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&h.db_url).await.unwrap();
    sqlx::query("DROP TABLE challenges")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let (s, _) = h
        .post(
            &h.other_client(),
            "/api/v1/card/challenge",
            &json!({"purpose": "login"}),
        )
        .await;
    assert_eq!(s, 500);
    let m = scrape(&h).await;
    assert_eq!(
        get(
            &m,
            "companion_store_errors_total",
            &[("operation", "insert_challenges")]
        ),
        1.0,
        "{:?}",
        m.keys()
            .filter(|(n, _)| n.contains("store"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let client = h.other_client();
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = client
        .get(h.url("/api/v1/session"))
        .header("x-request-id", "3f2a9c1e-0b7d-4c55-9a61-2f7e8d9c0b1a")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r), "3f2a9c1e-0b7d-4c55-9a61-2f7e8d9c0b1a");
    // Not an id we log as it is: replaced.
    for bad in ["a b", &"x".repeat(65), "id\"=1"] {
        let r = client
            .get(h.url("/api/v1/session"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = id_of(&r);
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16, "{id}");
    }
    let (a, b) = (
        client.get(h.url("/nope")).send().await.unwrap(),
        client.get(h.url("/nope")).send().await.unwrap(),
    );
    assert_ne!(id_of(&a), id_of(&b));
    // No metrics listener unless configured.
    assert_eq!(h.server().metrics_addr(), None);
}
