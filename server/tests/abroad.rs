//! Residents abroad (issue 11): PIN issue → both halves from the outboxes → first login →
//! forced change → login with the new PIN; wrong PINs until the lock, with the stated
//! delays (manual clock); reset voids the old PIN and the lock; an unknown codice fiscale
//! answers as a wrong PIN; two instances on one database keep the count exact; no PIN in
//! the logs or the audit trail. Over HTTPS, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use cie_core::otp::hotp::totp;
use cie_core::otp::{Algorithm, KeyUri, OtpKind, TimeStep};
use common::{Harness, backends, device_key, pem_tls, sqlite};
use companion_server::Clock;
use companion_server::abroad::{IssueRequest, LOCK_SECS, MAX_DELAY_SECS, delay_after, issue_pin};
use companion_server::api::OtpKey;
use companion_server::store::{AbroadStore, Channel, SqlStore};
use serde_json::{Value, json};

const CF: &str = "RSSMRA80A01H501U";
/// Valid, with no account.
const UNKNOWN_CF: &str = "BNCGVN75L41F205W";
const NEW_PIN: &str = "K7W9X2QZ";
const LOGIN: &str = "/api/v1/abroad/login";
const CHANGE: &str = "/api/v1/abroad/pin";
const ENROL: &str = "/api/v1/abroad/enrol";
const BY_CODE: &str = "/api/v1/devices/by-code";

/// Every log line of this test binary (all tests), as the server's tracing writes them.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "companion_server=trace,sqlx=debug",
            ))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Neither the logs nor the audit trail hold any of `pins` (in any case).
async fn assert_no_pin_logged(store: &SqlStore, pins: &[&str]) {
    let text = String::from_utf8(logs().lock().unwrap().clone())
        .unwrap()
        .to_ascii_uppercase();
    assert!(text.contains("PIN"), "the capture works");
    let audit = format!("{:?}", store.audit_log().await.unwrap()).to_ascii_uppercase();
    for pin in pins {
        let pin = pin.to_ascii_uppercase();
        let line = text.lines().find(|l| l.contains(&pin));
        assert!(line.is_none(), "a PIN in the logs: {line:?}");
        assert!(!audit.contains(&pin), "a PIN in the audit trail");
    }
}

async fn start(db: &common::TestDb) -> Harness {
    logs();
    Harness::start_with(db, |c| {
        c.abroad_per_minute = 1000;
        c.otp_key = OtpKey::from_bytes(&[0x42; 32]);
    })
    .await
}

fn request(cf: &str) -> IssueRequest {
    IssueRequest {
        codice_fiscale: cf.into(),
        email: Some("mario.rossi@example.org".into()),
        address: Some("Calle Florida 100, Buenos Aires".into()),
        given_name: "MARIO".into(),
        surname: "ROSSI".into(),
    }
}

/// The delivery hook: both halves read (each from its own outbox) and acknowledged.
async fn deliver(store: &SqlStore) -> String {
    let digital = store.abroad_outbox(Channel::Digital).await.unwrap();
    let postal = store.abroad_outbox(Channel::Postal).await.unwrap();
    assert_eq!((digital.len(), postal.len()), (1, 1));
    let (d, p) = (&digital[0], &postal[0]);
    assert_eq!(d.recipient, "mario.rossi@example.org");
    assert_eq!(p.recipient, "Calle Florida 100, Buenos Aires");
    assert_eq!((d.half.expose().len(), p.half.expose().len()), (8, 8));
    let pin = format!("{}{}", d.half.expose(), p.half.expose());
    let audit = companion_server::store::AuditEntry::new("test_ack", "", "ok", "test");
    assert!(
        store
            .abroad_ack(Channel::Digital, d.id, &audit, 0)
            .await
            .unwrap()
    );
    assert!(
        store
            .abroad_ack(Channel::Postal, p.id, &audit, 0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .abroad_ack(Channel::Postal, p.id, &audit, 0)
            .await
            .unwrap()
    );
    assert!(
        store
            .abroad_outbox(Channel::Digital)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .abroad_outbox(Channel::Postal)
            .await
            .unwrap()
            .is_empty()
    );
    pin
}

async fn login(h: &Harness, client: &reqwest::Client, cf: &str, pin: &str) -> (u16, Value) {
    h.post(client, LOGIN, &json!({"codice_fiscale": cf, "pin": pin}))
        .await
}

async fn change(h: &Harness, cf: &str, old: &str, new: &str) -> (u16, Value) {
    let body = json!({"codice_fiscale": cf, "old_pin": old, "new_pin": new});
    h.post(&h.other_client(), CHANGE, &body).await
}

/// Issue, deliver, change to [`NEW_PIN`]: the initial PIN.
async fn account_with_new_pin(h: &Harness) -> String {
    let store = h.server().store();
    issue_pin(&*store, &request(CF), false, "test", h.clock.now())
        .await
        .unwrap();
    let initial = deliver(&store).await;
    assert_eq!(change(h, CF, &initial, NEW_PIN).await.0, 200);
    initial
}

/// The operator resets the PIN of [`CF`] (the stored addresses kept).
async fn reset_pin(h: &Harness) {
    let reset = IssueRequest {
        codice_fiscale: CF.into(),
        ..IssueRequest::default()
    };
    issue_pin(&*h.server().store(), &reset, true, "test", h.clock.now())
        .await
        .unwrap();
}

/// The refusal's body, after checking its status and code.
fn refused(r: (u16, Value), status: u16, code: &str) -> Value {
    assert_eq!(
        (r.0, r.1["error"].as_str()),
        (status, Some(code)),
        "{}",
        r.1
    );
    r.1
}

/// The audit trail as "kind outcome" lines.
async fn audit_lines(store: &SqlStore) -> Vec<String> {
    store
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _, o, _)| format!("{k} {o}"))
        .collect()
}

/// The Italian message.
fn it(body: &Value) -> &str {
    body["message_it"].as_str().unwrap_or_default()
}

fn failures(v: Option<(u32, u64)>) -> u32 {
    v.map_or(0, |(f, _)| f)
}

#[tokio::test]
async fn issue_deliver_first_login_forced_change_then_login() {
    for db in backends().await {
        let h = start(&db).await;
        let store = h.server().store();
        let identity = issue_pin(&*store, &request(CF), false, "test", h.clock.now())
            .await
            .unwrap();
        // A second issue is refused: the operator resets instead.
        assert!(
            issue_pin(&*store, &request(CF), false, "test", h.clock.now())
                .await
                .is_err()
        );
        let initial = deliver(&store).await;
        assert!(
            initial
                .bytes()
                .all(|c| companion_server::abroad::INITIAL_ALPHABET.contains(&c))
        );
        let browser = h.browser();

        // The initial PIN (typed in small letters) is right, but must be changed first.
        let (status, body) = login(&h, &browser, CF, &initial.to_ascii_lowercase()).await;
        assert_eq!(
            (status, &body),
            (200, &json!({"pin_change_required": true})),
            "{}",
            db.name
        );
        assert_eq!(h.get(&browser, "/api/v1/session").await.0, 404);

        // The policy is checked before the PIN, and says what is wrong in both languages.
        let body = refused(
            change(&h, CF, &initial, "12345678").await,
            400,
            "bad_request",
        );
        assert!(it(&body).contains("lettera"));
        let body = refused(
            change(&h, CF, &initial, "X1234QZW").await,
            400,
            "bad_request",
        );
        assert!(body["message"].as_str().unwrap().contains("in a row"));
        // A wrong old PIN does not change it.
        refused(
            change(&h, CF, "ABCDEFGH23456789", NEW_PIN).await,
            401,
            "wrong_code",
        );

        let (status, body) = change(&h, CF, &initial, NEW_PIN).await;
        assert_eq!(status, 200, "{body}");
        assert!(it(&body).contains("nuovo PIN"));

        // The initial PIN is void; the new one logs in at level 1.
        assert_eq!(login(&h, &browser, CF, &initial).await.0, 401);
        let (status, body) = login(&h, &browser, CF, NEW_PIN).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["pin_change_required"], json!(false));
        assert_eq!(body["identity"]["codice_fiscale"], CF);
        assert_eq!(body["identity"]["id"], identity);
        assert_eq!(body["level"], 1);
        let (status, session) = h.get(&browser, "/api/v1/session").await;
        assert_eq!((status, &session["level"]), (200, &json!(1)));
        assert_eq!(session["identity"]["given_name"], "MARIO");
        // A right login clears the failures.
        assert_eq!(failures(store.abroad_throttle(CF).await.unwrap()), 0);

        let kinds = audit_lines(&store).await;
        assert!(kinds.iter().any(|k| k.starts_with("abroad_pin_issue ok")));
        assert!(kinds.contains(&"abroad_login pin_change_required".to_owned()));
        assert!(kinds.contains(&"abroad_pin_change ok".to_owned()));
        assert_no_pin_logged(&store, &[&initial, &initial[..8], &initial[8..], NEW_PIN]).await;
    }
}

#[tokio::test]
async fn wrong_pins_delay_then_lock_for_a_time_and_reset_undoes_it() {
    for db in backends().await {
        let h = start(&db).await;
        let store = h.server().store();
        let initial = account_with_new_pin(&h).await;
        let browser = h.browser();
        let wrong = "ZZZZ9999";

        // Three answered at once, the third saying how long to wait.
        for n in 1..=3u32 {
            let body = refused(login(&h, &browser, CF, wrong).await, 401, "wrong_code");
            assert_eq!(body["retry_after"].as_u64(), (n == 3).then_some(1));
        }
        // Too early: refused without counting, even with the right PIN.
        let body = refused(login(&h, &browser, CF, NEW_PIN).await, 429, "rate_limited");
        assert_eq!(body["retry_after"], 1);
        assert!(it(&body).contains("riprova tra 1 secondo."));
        assert_eq!(failures(store.abroad_throttle(CF).await.unwrap()), 3);
        // The delays grow 1, 2, 4 … 64 s; the tenth failure locks for 15 minutes.
        for n in 4..=10u32 {
            h.clock.advance(delay_after(n - 1));
            let (status, body) = login(&h, &browser, CF, wrong).await;
            assert_eq!(status, 401, "attempt {n}");
            assert_eq!(body["retry_after"].as_u64(), Some(delay_after(n)));
        }
        assert_eq!(delay_after(10), LOCK_SECS);
        let locked = login(&h, &browser, CF, NEW_PIN).await;
        let body = refused(locked, 403, "too_many_attempts");
        assert_eq!(body["retry_after"], 900);
        assert!(it(&body).contains("riprova tra 900 secondi"));
        // Attempts while locked do not extend the lock: it ends by itself.
        h.clock.advance(LOCK_SECS - 1);
        assert_eq!(login(&h, &browser, CF, wrong).await.1["retry_after"], 1);
        h.clock.advance(1);
        assert_eq!(login(&h, &browser, CF, NEW_PIN).await.0, 200);
        assert_eq!(h.get(&browser, "/api/v1/session").await.0, 200);
        assert_eq!(store.abroad_throttle(CF).await.unwrap(), Some((0, 0)));

        // Locked again, then reset by the operator: unlocked, old PIN void, new halves only.
        for _ in 0..10 {
            let (_, next) = store.abroad_throttle(CF).await.unwrap().unwrap();
            h.clock.set(next.max(h.clock.now()));
            assert_eq!(login(&h, &browser, CF, wrong).await.0, 401);
        }
        assert_eq!(login(&h, &browser, CF, NEW_PIN).await.0, 403);
        reset_pin(&h).await;
        assert_eq!(store.abroad_throttle(CF).await.unwrap(), None);
        // The session the old PIN opened ends with it.
        assert_eq!(h.get(&browser, "/api/v1/session").await.0, 404);
        refused(login(&h, &browser, CF, NEW_PIN).await, 401, "wrong_code");
        assert_eq!(login(&h, &browser, CF, &initial).await.0, 401);
        let second = deliver(&store).await;
        assert_ne!(second, initial);
        let (status, body) = login(&h, &browser, CF, &second).await;
        assert_eq!(
            (status, body["pin_change_required"].as_bool()),
            (200, Some(true))
        );
        // Reset of no account is refused.
        let nobody = IssueRequest {
            codice_fiscale: UNKNOWN_CF.into(),
            ..IssueRequest::default()
        };
        assert!(issue_pin(&*store, &nobody, true, "test", 0).await.is_err());
        assert_no_pin_logged(&store, &[&initial, &second, NEW_PIN]).await;
    }
}

#[tokio::test]
async fn unknown_codice_fiscale_and_wrong_pin_answer_alike() {
    for db in backends().await {
        let h = start(&db).await;
        account_with_new_pin(&h).await;
        let store = h.server().store();
        let client = h.other_client();
        for round in 0..6 {
            let known = client
                .post(h.url(LOGIN))
                .json(&json!({"codice_fiscale": CF, "pin": "ZZZZ9999"}))
                .send()
                .await
                .unwrap();
            let unknown = client
                .post(h.url(LOGIN))
                .json(&json!({"codice_fiscale": UNKNOWN_CF, "pin": "ZZZZ9999"}))
                .send()
                .await
                .unwrap();
            assert_eq!(known.status(), unknown.status(), "round {round}");
            assert_eq!(
                known.headers().get("retry-after"),
                unknown.headers().get("retry-after")
            );
            let (k, u) = (known.text().await.unwrap(), unknown.text().await.unwrap());
            assert_eq!(k, u, "round {round}");
            h.clock.advance(1);
        }
        // The codice fiscale is checked first, with a message that says what is wrong.
        let check = login(&h, &client, "RSSMRA80A01H501A", NEW_PIN).await;
        let body = refused(check, 400, "bad_request");
        assert!(it(&body).contains("ultima lettera"));
        assert!(body["message"].as_str().unwrap().contains("last letter"));
        let short = login(&h, &client, "RSSMRA80A01", NEW_PIN).await;
        assert!(it(&refused(short, 400, "bad_request")).contains("16 caratteri"));
        // A PIN of a wrong shape costs no attempt.
        let body = refused(
            login(&h, &client, UNKNOWN_CF, "short").await,
            400,
            "bad_request",
        );
        assert!(it(&body).contains("16 al primo accesso"));
        // Five counted, one delayed, on either code.
        let counts = (
            store.abroad_throttle(CF).await.unwrap(),
            store.abroad_throttle(UNKNOWN_CF).await.unwrap(),
        );
        assert_eq!(counts.0, counts.1);
        assert_eq!(counts.0.map(|t| t.0), Some(5));
        // Codes typed without an account are not kept in clear, nor as a plain hash.
        let audit = format!("{:?}", store.audit_log().await.unwrap());
        assert!(audit.contains(&store.cf_key(UNKNOWN_CF)));
        assert!(!audit.contains(UNKNOWN_CF));
        assert!(!audit.contains(&companion_server::store::legacy_key(UNKNOWN_CF)));
        // A day without a counted attempt: the counts are forgotten, for any code.
        h.clock.advance(24 * 3600 + 1);
        refused(login(&h, &client, CF, "ZZZZ9999").await, 401, "wrong_code");
        assert_eq!(store.abroad_throttle(UNKNOWN_CF).await.unwrap(), None);
        assert_eq!(failures(store.abroad_throttle(CF).await.unwrap()), 1);
        let (status, _) = h.post(&client, LOGIN, &json!({"codice_fiscale": CF})).await;
        assert_eq!(status, 400);
        // A PIN sent as a number is refused without its digits reaching the logs.
        let number = json!({"codice_fiscale": CF, "pin": 73_952_846_u64});
        refused(h.post(&client, LOGIN, &number).await, 400, "bad_request");
        assert_no_pin_logged(&store, &["73952846"]).await;
    }
}

#[tokio::test]
async fn each_client_address_has_a_budget_per_minute() {
    for db in backends().await {
        logs();
        let h = Harness::start_with(&db, |c| c.abroad_per_minute = 3).await;
        // Start of a minute, so the budget's window is the whole test step.
        let now = h.clock.now();
        h.clock.set(now - now % 60 + 60);
        let client = h.other_client();
        for _ in 0..3 {
            assert_eq!(login(&h, &client, UNKNOWN_CF, "ZZZZ9999").await.0, 401);
        }
        let body = refused(
            login(&h, &client, CF, "ZZZZ9999").await,
            429,
            "rate_limited",
        );
        assert_eq!(body["retry_after"], 60);
        assert!(it(&body).contains("riprova tra 60 secondi"));
        // Not counted on the account it named.
        let store = h.server().store();
        assert_eq!(store.abroad_throttle(CF).await.unwrap(), None);
        h.clock.advance(60);
        assert_eq!(login(&h, &client, CF, "ZZZZ9999").await.0, 401);
    }
}

#[tokio::test]
async fn two_instances_keep_the_attempt_count_exact() {
    for db in backends().await {
        logs();
        let tls = pem_tls();
        let a = Harness::start_with(&db, |c| {
            c.tls = tls.source();
            c.abroad_per_minute = 1000;
        })
        .await;
        // The second instance has the default budget (20 a minute): 12 a round fit.
        let b = a.second_instance(&tls).await;
        account_with_new_pin(&a).await;
        let store = a.server().store();
        let mut counted = 0;
        // Round 1: the first three failures are free, the third sets a delay. Then one
        // counted per round (each round past the longest delay, in another minute), up to
        // the lock.
        for (round, expected) in [3, 1, 1, 1, 1, 1, 1, 1].into_iter().enumerate() {
            a.clock.advance(MAX_DELAY_SECS + 1);
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..12 {
                let h = if i % 2 == 0 { &a } else { &b };
                let client = h.other_client();
                let url = h.url(LOGIN);
                tasks.spawn(async move {
                    client
                        .post(url)
                        .json(&json!({"codice_fiscale": CF, "pin": "ZZZZ9999"}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                });
            }
            let statuses = tasks.join_all().await;
            let wrong = statuses.iter().filter(|&&s| s == 401).count();
            let waited = statuses.iter().filter(|&&s| s == 429 || s == 403).count();
            assert_eq!(
                (wrong, waited),
                (expected, 12 - expected),
                "{} round {round}",
                db.name
            );
            counted += wrong;
            let f = failures(store.abroad_throttle(CF).await.unwrap());
            assert_eq!(f as usize, counted, "{} round {round}", db.name);
        }
        assert_eq!(counted, 10);
        a.clock.advance(60);
        let (status, _) = login(&b, &b.other_client(), CF, NEW_PIN).await;
        assert_eq!(status, 403, "locked on both instances");
    }
}

#[test]
fn operator_commands_issue_print_and_acknowledge() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("ops.db").display());
    // `pin <args> --database <db>`: (success, stdout, stderr).
    let pin = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_companion-server"))
            .arg("pin")
            .args(args)
            .args(["--database", &db])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let issue = |cf: &str| {
        pin(&[
            "issue",
            "--codice-fiscale",
            cf,
            "--email",
            "m@example.org",
            "--address",
            "Via Roma 1",
        ])
    };
    let (ok, issued, err) = issue(CF);
    assert!(ok, "{err}");
    let outbox = |channel: &str| {
        let (ok, out, err) = pin(&["outbox", "--channel", channel]);
        assert!(ok, "{err}");
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (digital, postal) = (outbox("digital"), outbox("postal"));
    assert_eq!((digital.len(), postal.len()), (1, 1));
    let d = digital[0]["half"].as_str().unwrap().to_owned();
    let p = postal[0]["half"].as_str().unwrap().to_owned();
    assert_eq!(digital[0]["recipient"], "m@example.org");
    assert_eq!(postal[0]["recipient"], "Via Roma 1");
    // What the operator sees names no half; each outbox holds its own half only.
    assert!(!issued.contains(&d) && !issued.contains(&p) && !err.contains(&d));
    assert!(!postal[0].to_string().contains(&d));
    let id = digital[0]["id"].to_string();
    let ack = || pin(&["ack", "--channel", "digital", "--id", &id]);
    assert!(ack().0);
    assert!(outbox("digital").is_empty());
    let (ok, _, err) = ack();
    assert!(!ok && err.contains("no pending"), "{err}");
    // Reset needs an account and replaces the pending half; issue refuses a second
    // account; a bad codice fiscale is named.
    let (ok, _, err) = pin(&["reset", "--codice-fiscale", UNKNOWN_CF]);
    assert!(!ok && err.contains("pin issue"), "{err}");
    assert!(pin(&["reset", "--codice-fiscale", CF]).0);
    let postal = outbox("postal");
    assert_eq!(postal.len(), 1);
    assert_ne!(postal[0]["half"].as_str().unwrap(), p);
    let (ok, _, err) = issue(CF);
    assert!(!ok && err.contains("pin reset"), "{err}");
    let (ok, _, err) = issue("RSSMRA80A01H501A");
    assert!(!ok && err.contains("last letter"), "{err}");
    // Without a command the server's own flags stand as before.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_companion-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--listen") && help.contains("--abroad-per-minute"));
}

/// The desktop page offers codice fiscale + PIN beside the other logins, states the new PIN
/// policy, and its script (no inline one) calls both endpoints.
#[tokio::test]
async fn the_page_offers_the_pin_login_and_states_the_policy() {
    let db = sqlite();
    let h = start(&db).await;
    let get = |path: &'static str| {
        let req = h.browser().get(h.url(path));
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let html = get("/").await;
    for id in [
        "id=\"pin-cf\"",
        "id=\"pin\"",
        "id=\"pin-login\"",
        "id=\"pin-change-form\"",
        "id=\"new-pin\"",
        "id=\"level\"",
        "id=\"factors\"",
        "id=\"pin-otp-form\"",
        "id=\"otp-enrol-start\"",
        "id=\"otp-enrol-form\"",
    ] {
        assert!(html.contains(id), "{id}");
    }
    assert!(html.contains("Residenti all'estero"));
    assert!(html.contains("Residents abroad"));
    // The policy, as `check_new_pin` enforces it.
    for rule in [
        "esattamente 8 caratteri",
        "1234",
        "codice fiscale",
        "diverso",
    ] {
        assert!(html.contains(rule), "{rule}");
    }
    assert!(!html.contains("<script>"), "no inline script");
    let js = get("/static/app.js").await;
    assert!(js.contains(LOGIN) && js.contains(CHANGE));
    for path in [LOGIN_OTP, OTP_ENROL, OTP_CONFIRM, ENROL] {
        assert!(js.contains(path), "{path}");
    }
    assert!(html.contains("Attiva un codice OTP") && html.contains("Set up an OTP code"));
}

/// The phone answers the pending request `id` with `number` (device-signed list, then a
/// signed transcript), as the core does.
async fn phone_approves(
    h: &Harness,
    device_id: &str,
    key: &p256::ecdsa::SigningKey,
    id: &str,
    number: u8,
) {
    use cie_core::flows::wire::{ApprovalTranscript, Decision, TranscriptKind, b64};
    use p256::ecdsa::Signature;
    use p256::ecdsa::signature::Signer;
    let phone = h.other_client();
    let (iat, nonce) = (h.clock.now(), b64(&[7u8; 16]));
    let signed: Signature = key.sign(&cie_core::flows::wire::pending_statement(
        &h.origin, device_id, iat, &nonce,
    ));
    let body = json!({"device_id": device_id, "iat": iat, "nonce": nonce,
        "signature": b64(&signed.to_bytes())});
    let (s, list) = h.post(&phone, "/api/v1/approvals/pending", &body).await;
    assert_eq!(s, 200, "{list}");
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["request_id"] == id)
        .unwrap_or_else(|| panic!("{id} not pending: {list}"));
    let t = ApprovalTranscript {
        v: 1,
        iss: h.origin.clone(),
        kind: TranscriptKind::Approval,
        id: id.into(),
        service: item["context"]["service"].as_str().unwrap().into(),
        level: 2,
        context_hash: item["context_hash"].as_str().unwrap().into(),
        decision: Decision::Approve,
        number: Some(number),
        device_id: device_id.into(),
        iat,
        jti: b64(&[9u8; 16]),
    };
    let bytes = t.to_bytes();
    let signed: Signature = key.sign(&bytes);
    let body = json!({"transcript": b64(&bytes), "signature": b64(&signed.to_bytes())});
    let (s, v) = h
        .post(&phone, &format!("/api/v1/approvals/{id}/decision"), &body)
        .await;
    assert_eq!((s, &v), (200, &json!({"state": "approved"})));
}

/// A resident abroad has no card: a level-1 PIN session asks for a one-time code, the
/// phone spends it with its key (once, within 2 minutes, the newest code only); from then
/// on a right PIN opens no session by itself but a §3 request the phone approves (level 2).
#[tokio::test]
async fn a_phone_enrolled_from_a_pin_session_then_approves_pin_logins() {
    for db in backends().await {
        let h = start(&db).await;
        account_with_new_pin(&h).await;
        let browser = h.browser();
        refused(h.post(&browser, ENROL, &json!({})).await, 404, "not_found");
        let (s, v) = login(&h, &browser, CF, NEW_PIN).await;
        assert_eq!((s, &v["level"]), (200, &json!(1)), "{v}");
        let (s, first) = h.post(&browser, ENROL, &json!({})).await;
        assert_eq!(s, 200, "{first}");
        assert!(first["qr_svg"].as_str().unwrap().starts_with("<svg"));
        assert_eq!(first["expires_at"], h.clock.now() + 120);
        let (_, code) = h.post(&browser, ENROL, &json!({})).await;

        let (key, public) = device_key(0x21);
        let phone = h.other_client();
        let spend = |c: &Value| json!({"code": c, "device_key": public, "device_name": "Pixel 8"});
        // The newer code voided the first; a bad key is refused before the code is spent.
        refused(
            h.post(&phone, BY_CODE, &spend(&first["code"])).await,
            404,
            "not_found",
        );
        let bad = json!({"code": code["code"], "device_key": "AAAA", "device_name": "x"});
        refused(h.post(&phone, BY_CODE, &bad).await, 400, "bad_request");
        let (s, e) = h.post(&phone, BY_CODE, &spend(&code["code"])).await;
        assert_eq!(s, 200, "{}: {e}", db.name);
        assert_eq!(e["identity"]["codice_fiscale"], CF);
        let device_id = e["device_id"].as_str().unwrap().to_owned();
        // Single use.
        refused(
            h.post(&phone, BY_CODE, &spend(&code["code"])).await,
            404,
            "not_found",
        );

        // PIN + phone: the PIN alone opens no session.
        let desk = h.other_client(); // a browser without the level-1 session
        let (s, v) = login(&h, &desk, CF, NEW_PIN).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["pin_change_required"], false);
        assert!(
            v.get("identity").is_none() && v.get("level").is_none(),
            "{v}"
        );
        assert_eq!(h.get(&desk, "/api/v1/session").await.0, 404);
        let id = v["approval"]["request_id"].as_str().unwrap().to_owned();
        let number = u8::try_from(v["approval"]["number"].as_u64().unwrap()).unwrap();
        phone_approves(&h, &device_id, &key, &id, number).await;
        let (s, st) = h
            .get(&desk, &format!("/api/v1/approvals/{id}?after=pending"))
            .await;
        assert_eq!((s, &st["state"]), (200, &json!("consumed")), "{st}");
        let (s, me) = h.get(&desk, "/api/v1/session").await;
        assert_eq!((s, &me["level"]), (200, &json!(2)), "{me}");
        assert_eq!(me["identity"]["codice_fiscale"], CF);
        // A wrong PIN still asks no phone.
        refused(
            login(&h, &h.browser(), CF, "K7W9X2QA").await,
            401,
            "wrong_code",
        );

        // The level-1 session opened before the phone mints no more codes; a level-2 one
        // (PIN + app) does.
        let body = refused(
            h.post(&browser, ENROL, &json!({})).await,
            409,
            "wrong_state",
        );
        assert!(it(&body).contains("PIN + app"), "{body}");
        let (s, me) = h.get(&desk, "/api/v1/session").await;
        assert_eq!(s, 200);
        assert_eq!(
            (me["method"].as_str(), &me["factors"]),
            (Some("pin+app"), &json!(["pin", "app"]))
        );
        // A code lives 2 minutes.
        let (s, late) = h.post(&desk, ENROL, &json!({})).await;
        assert_eq!(s, 200, "{late}");
        h.clock.advance(121);
        let (_, other) = device_key(0x22);
        let body = json!({"code": late["code"], "device_key": other, "device_name": "x"});
        refused(h.post(&phone, BY_CODE, &body).await, 404, "not_found");

        let audit = h.server().store().audit_log().await.unwrap();
        for kind in ["abroad_enrol_code", "device_enroll_code"] {
            assert!(audit.iter().any(|(k, _, _, _)| k == kind), "{kind}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// PIN + OTP: the second factor by an authenticator app.

const LOGIN_OTP: &str = "/api/v1/abroad/login/otp";
const OTP_ENROL: &str = "/api/v1/abroad/otp/enrol";
const OTP_CONFIRM: &str = "/api/v1/abroad/otp/confirm";

fn code_at(uri: &KeyUri, at: u64) -> String {
    totp(&uri.secret, at, TimeStep::default(), 6, Algorithm::Sha1)
        .unwrap()
        .to_string()
}

/// A six-digit code outside the ±1 window around `at`.
fn bad_code(uri: &KeyUri, at: u64) -> String {
    let window: Vec<String> = [at - 30, at, at + 30]
        .iter()
        .map(|t| code_at(uri, *t))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", 100_000 + n * 7))
        .find(|c| !window.contains(c))
        .unwrap()
}

/// `POST /api/v1/abroad/otp/enrol` from `client`'s session: the parsed URI (checked
/// against the page's other fields).
async fn otp_setup(h: &Harness, client: &reqwest::Client) -> KeyUri {
    let (s, v) = h.post(client, OTP_ENROL, &json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert_eq!(v["expires_at"], h.clock.now() + 600);
    let uri = KeyUri::parse(v["uri"].as_str().unwrap()).unwrap();
    let typed = v["secret"].as_str().unwrap();
    assert_eq!(
        cie_core::otp::base32::decode(typed).unwrap().as_slice(),
        uri.secret.expose()
    );
    uri
}

async fn confirm(h: &Harness, client: &reqwest::Client, code: &str) -> (u16, Value) {
    h.post(client, OTP_CONFIRM, &json!({ "code": code })).await
}

/// An account with [`NEW_PIN`] and an active OTP (confirmed from a level-1 session); the
/// clock then moves to the next step, so the confirming code is not the current one.
async fn account_with_otp(h: &Harness) -> KeyUri {
    account_with_new_pin(h).await;
    let browser = h.other_client();
    assert_eq!(login(h, &browser, CF, NEW_PIN).await.0, 200);
    let uri = otp_setup(h, &browser).await;
    let (s, v) = confirm(h, &browser, &code_at(&uri, h.clock.now())).await;
    assert_eq!(s, 200, "{v}");
    h.clock.advance(30);
    uri
}

/// A right PIN on a fresh browser of an account with an OTP: the answer (no session).
async fn pin_asks_code(h: &Harness) -> (reqwest::Client, Value) {
    let desk = h.other_client();
    let (s, v) = login(h, &desk, CF, NEW_PIN).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["otp_required"], true, "{v}");
    assert!(
        v.get("identity").is_none() && v.get("level").is_none(),
        "{v}"
    );
    assert_eq!(h.get(&desk, "/api/v1/session").await.0, 404);
    (desk, v)
}

async fn code_login(h: &Harness, client: &reqwest::Client, code: &str) -> (u16, Value) {
    h.post(client, LOGIN_OTP, &json!({ "code": code })).await
}

/// The OTP seed shown from a level-1 PIN session is active only after a right code; then a
/// right PIN opens no session but asks for the code, and PIN + code is level 2. Replays,
/// tickets (single use, 5 minutes, this browser only), the factors listed, no seed logged.
#[tokio::test]
async fn otp_enrolled_from_a_pin_session_then_pin_and_code_give_level_2() {
    for db in backends().await {
        let h = start(&db).await;
        account_with_new_pin(&h).await;
        let browser = h.browser();
        refused(
            h.post(&browser, OTP_ENROL, &json!({})).await,
            404,
            "not_found",
        );
        assert_eq!(login(&h, &browser, CF, NEW_PIN).await.0, 200);
        let (_, me) = h.get(&browser, "/api/v1/session").await;
        assert_eq!((&me["level"], &me["method"]), (&json!(1), &json!("pin")));
        assert_eq!(me["factors"], json!(["pin"]));

        let uri = otp_setup(&h, &browser).await;
        // What every authenticator accepts, named for the service, no codice fiscale.
        assert_eq!(uri.issuer.as_deref(), Some("Servizio di prova"));
        assert_eq!(uri.account, "MARIO R.");
        assert_eq!((uri.algorithm, uri.digits), (Algorithm::Sha1, 6));
        assert_eq!(uri.kind, OtpKind::Totp { period: 30, t0: 0 });
        assert_eq!(uri.secret.expose().len(), 20);
        // A wrong confirmation code activates nothing.
        let now = h.clock.now();
        let body = refused(
            confirm(&h, &browser, &bad_code(&uri, now)).await,
            401,
            "wrong_code",
        );
        assert_eq!(body["tries_left"], 4);
        refused(confirm(&h, &browser, "12ab").await, 400, "bad_request");
        assert_eq!(
            h.get(&browser, "/api/v1/session").await.1["factors"],
            json!(["pin"])
        );
        let (s, v) = login(&h, &h.other_client(), CF, NEW_PIN).await;
        assert_eq!((s, &v["level"]), (200, &json!(1)), "{v}");
        // The right one does.
        let confirming = code_at(&uri, now);
        let (s, v) = confirm(&h, &browser, &confirming).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["factors"], json!(["pin", "otp"]));
        assert!(v["message_it"].as_str().unwrap().contains("codice"));
        refused(confirm(&h, &browser, &confirming).await, 410, "expired");
        // Fix: the level-1 session opened before the OTP enrols nothing more.
        for path in [ENROL, OTP_ENROL] {
            let body = refused(h.post(&browser, path, &json!({})).await, 409, "wrong_state");
            assert!(it(&body).contains("secondo fattore"), "{body}");
        }

        // The PIN alone now opens nothing; the confirming code is spent.
        let (desk, v) = pin_asks_code(&h).await;
        assert!(v.get("approval").is_none(), "{v}");
        refused(code_login(&h, &desk, &confirming).await, 409, "replayed");
        h.clock.advance(30);
        let code = code_at(&uri, h.clock.now());
        // Another browser has no ticket: the right code opens nothing there.
        refused(
            code_login(&h, &h.other_client(), &code).await,
            404,
            "not_found",
        );
        let (s, v) = code_login(&h, &desk, &code).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (&v["level"], &v["identity"]["codice_fiscale"]),
            (&json!(2), &json!(CF))
        );
        let (s, me) = h.get(&desk, "/api/v1/session").await;
        assert_eq!(
            (s, &me["level"], &me["method"]),
            (200, &json!(2), &json!("pin+otp"))
        );
        assert_eq!(me["factors"], json!(["pin", "otp"]));
        // The ticket is spent; a new PIN login with the same code is a replay.
        refused(code_login(&h, &desk, &code).await, 404, "not_found");
        let (again, _) = pin_asks_code(&h).await;
        refused(code_login(&h, &again, &code).await, 409, "replayed");
        // A ticket lives 5 minutes.
        h.clock.advance(301);
        let late = code_at(&uri, h.clock.now());
        refused(code_login(&h, &again, &late).await, 404, "not_found");
        // A wrong PIN gives no ticket.
        let stranger = h.other_client();
        refused(
            login(&h, &stranger, CF, "K7W9X2QA").await,
            401,
            "wrong_code",
        );
        refused(code_login(&h, &stranger, &late).await, 404, "not_found");

        // A level-2 session may enrol a phone or replace the OTP.
        assert_eq!(h.post(&desk, ENROL, &json!({})).await.0, 200);
        let replacement = otp_setup(&h, &desk).await;
        assert_ne!(replacement.secret.expose(), uri.secret.expose());

        let store = h.server().store();
        let audit = audit_lines(&store).await;
        for want in [
            "abroad_otp_enrol ok",
            "abroad_otp_confirm wrong_code",
            "abroad_otp_confirm activated",
            "abroad_login second_factor_required",
            "abroad_login_otp replayed",
            "abroad_login_otp ok (drift 0)",
            "abroad_login_otp no_ticket",
            "abroad_enrol_code second_factor_required",
        ] {
            assert!(audit.iter().any(|a| a == want), "{want}: {audit:?}");
        }
        // No seed in the logs or the audit trail, in either spelling.
        let seed_b32 = cie_core::otp::base32::encode(uri.secret.expose());
        let seed_hex: String = uri
            .secret
            .expose()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let logged = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
        let audit = format!("{audit:?}");
        for secret in [seed_b32.as_str(), seed_hex.as_str()] {
            assert!(!logged.contains(secret) && !audit.contains(secret));
        }
        assert_no_pin_logged(&store, &[NEW_PIN]).await;
    }
}

/// Wrong codes after a right PIN follow the validator's rules: 5 free, then 30 s waits that
/// double; a wait refuses even the right code, then it works.
#[tokio::test]
async fn wrong_codes_after_a_right_pin_are_throttled() {
    for db in backends().await {
        let h = start(&db).await;
        let uri = account_with_otp(&h).await;
        let (desk, _) = pin_asks_code(&h).await;
        let now = h.clock.now();
        let wrong = bad_code(&uri, now);
        for left in (0..5u64).rev() {
            let body = refused(code_login(&h, &desk, &wrong).await, 401, "wrong_code");
            assert_eq!(body["tries_left"], left, "{body}");
            assert_eq!(body["retry_after"].as_u64(), (left == 0).then_some(30));
        }
        let body = refused(
            code_login(&h, &desk, &code_at(&uri, now)).await,
            429,
            "rate_limited",
        );
        assert_eq!(body["retry_after"], 30);
        assert!(it(&body).contains("riprova tra 30 secondi"), "{body}");
        // A malformed code costs nothing and says what to type; one sent as a number is
        // refused without its digits reaching the logs.
        let body = refused(code_login(&h, &desk, "12345").await, 400, "bad_request");
        assert!(it(&body).contains("6 cifre"));
        let number = json!({ "code": 468_213_u32 });
        refused(h.post(&desk, LOGIN_OTP, &number).await, 400, "bad_request");
        let logged = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
        assert!(!logged.contains("468213"));
        h.clock.advance(30);
        let (s, v) = code_login(&h, &desk, &code_at(&uri, h.clock.now())).await;
        assert_eq!((s, &v["level"]), (200, &json!(2)), "{v}");
    }
}

/// A phone and an OTP: a right PIN offers both, either completes the login; the factors
/// list all three. A seed shown to a level-1 session before the phone came is void.
#[tokio::test]
async fn phone_and_otp_are_both_offered_after_a_right_pin() {
    for db in backends().await {
        let h = start(&db).await;
        account_with_new_pin(&h).await;
        let browser = h.browser();
        assert_eq!(login(&h, &browser, CF, NEW_PIN).await.0, 200);
        // Both enrolments started at level 1; the phone comes first.
        let early = otp_setup(&h, &browser).await;
        let (_, code) = h.post(&browser, ENROL, &json!({})).await;
        let (key, public) = device_key(0x31);
        let body = json!({"code": code["code"], "device_key": public, "device_name": "Pixel"});
        let (s, e) = h.post(&h.other_client(), BY_CODE, &body).await;
        assert_eq!(s, 200, "{e}");
        let device_id = e["device_id"].as_str().unwrap().to_owned();
        let now = h.clock.now();
        refused(
            confirm(&h, &browser, &code_at(&early, now)).await,
            410,
            "expired",
        );

        // PIN + app (level 2) may add the OTP.
        let desk = h.other_client();
        let (_, v) = login(&h, &desk, CF, NEW_PIN).await;
        assert!(v.get("otp_required").is_none(), "{v}");
        let id = v["approval"]["request_id"].as_str().unwrap().to_owned();
        let number = u8::try_from(v["approval"]["number"].as_u64().unwrap()).unwrap();
        phone_approves(&h, &device_id, &key, &id, number).await;
        h.get(&desk, &format!("/api/v1/approvals/{id}?after=pending"))
            .await;
        let uri = otp_setup(&h, &desk).await;
        let (s, v) = confirm(&h, &desk, &code_at(&uri, now)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["factors"], json!(["pin", "app", "otp"]));
        h.clock.advance(30);

        // Both offered; the code wins here.
        let (both, v) = pin_asks_code(&h).await;
        assert!(v["approval"]["request_id"].is_string(), "{v}");
        let (s, v) = code_login(&h, &both, &code_at(&uri, h.clock.now())).await;
        assert_eq!((s, &v["level"]), (200, &json!(2)), "{v}");
        let (_, me) = h.get(&both, "/api/v1/session").await;
        assert_eq!(me["method"], "pin+otp");
        assert_eq!(me["factors"], json!(["pin", "app", "otp"]));
    }
}

/// A reset keeps the phone and the OTP (a new PIN alone must not become the way in) and
/// voids what the old PIN started: its level-1 sessions, pending seeds, tickets.
#[tokio::test]
async fn reset_keeps_the_factors_and_voids_what_the_old_pin_started() {
    for db in backends().await {
        let h = start(&db).await;
        let uri = account_with_otp(&h).await;
        let store = h.server().store();
        // A right PIN's ticket, and a level-2 session with a replacement seed pending.
        let (ticket, _) = pin_asks_code(&h).await;
        let (desk, _) = pin_asks_code(&h).await;
        let (s, _) = code_login(&h, &desk, &code_at(&uri, h.clock.now())).await;
        assert_eq!(s, 200);
        let pending = otp_setup(&h, &desk).await;

        reset_pin(&h).await;
        h.clock.advance(30);
        let now = h.clock.now();
        refused(
            code_login(&h, &ticket, &code_at(&uri, now)).await,
            404,
            "not_found",
        );
        refused(
            confirm(&h, &desk, &code_at(&pending, now)).await,
            410,
            "expired",
        );

        // The new PIN, changed, still needs the code: the factors stayed.
        let initial = deliver(&store).await;
        let browser = h.other_client();
        let (_, v) = login(&h, &browser, CF, &initial).await;
        assert_eq!(v, json!({"pin_change_required": true}));
        assert_eq!(change(&h, CF, &initial, "M4Q8W2ZR").await.0, 200);
        let (s, v) = login(&h, &browser, CF, "M4Q8W2ZR").await;
        assert_eq!((s, &v["otp_required"]), (200, &json!(true)), "{v}");
        let (s, v) = code_login(&h, &browser, &code_at(&uri, now)).await;
        assert_eq!((s, &v["level"]), (200, &json!(2)), "{v}");
        let (_, me) = h.get(&browser, "/api/v1/session").await;
        assert_eq!(me["factors"], json!(["pin", "otp"]));
    }
}

/// Without an OTP key the server offers no OTP enrolment (and says so).
#[tokio::test]
async fn no_otp_key_no_otp_enrolment() {
    let db = sqlite();
    logs();
    let h = Harness::start_with(&db, |c| c.abroad_per_minute = 1000).await;
    account_with_new_pin(&h).await;
    let browser = h.browser();
    assert_eq!(login(&h, &browser, CF, NEW_PIN).await.0, 200);
    let body = refused(
        h.post(&browser, OTP_ENROL, &json!({})).await,
        404,
        "not_found",
    );
    assert!(it(&body).contains("non offre codici OTP"), "{body}");
}

/// Two instances on one database: the same right code sent with six tickets at once opens
/// one session (the others are replays), and concurrent wrong codes are all counted.
#[tokio::test]
async fn two_instances_accept_a_code_once_and_count_every_wrong_one() {
    for db in backends().await {
        logs();
        let tls = pem_tls();
        let key = || OtpKey::from_bytes(&[0x42; 32]);
        let a = Harness::start_with(&db, |c| {
            c.tls = tls.source();
            c.abroad_per_minute = 1000;
            c.otp_key = key();
        })
        .await;
        let b = a
            .second_instance_with(&tls, |c| {
                c.abroad_per_minute = 1000;
                c.otp_key = key();
            })
            .await;
        let uri = account_with_otp(&a).await;
        let mut desks = Vec::new();
        for _ in 0..6 {
            desks.push(pin_asks_code(&a).await.0);
        }
        let fire = |code: String| {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, desk) in desks.iter().enumerate() {
                let h = if i % 2 == 0 { &a } else { &b };
                let (client, url, code) = (desk.clone(), h.url(LOGIN_OTP), code.clone());
                tasks.spawn(async move {
                    let r = client.post(url).json(&json!({ "code": code }));
                    r.send().await.unwrap().status().as_u16()
                });
            }
            tasks.join_all()
        };
        let now = a.clock.now();
        let mut statuses = fire(bad_code(&uri, now)).await;
        statuses.sort_unstable();
        // 5 wrong codes are free, the 5th sets the wait: the sixth is throttled.
        assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{}", db.name);
        a.clock.advance(30);
        let mut statuses = fire(code_at(&uri, a.clock.now())).await;
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409, 409, 409, 409, 409], "{}", db.name);
    }
}
