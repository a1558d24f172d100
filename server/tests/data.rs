//! Data minimisation (docs/data.md), on SQLite and PostgreSQL: the pruning pass deletes
//! what expired (store calls, and the server's own pass as its clock moves), and the
//! operator's erasure leaves none of a person's values in any table — nor, on SQLite, in
//! the bytes of the database, WAL and shared-memory files.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use cie_core::flows::wire::ChallengePurpose;
use cie_core::otp::verify::{AccountState, Verdict};
use common::*;
use companion_server::abroad::{IssueRequest, issue_pin};
use companion_server::card::VerifiedCard;
use companion_server::store::{
    AbroadStore, ApprovalStore, Attempt, AuditEntry, CfKey, ChallengeRecord, KeyChange, KeySource,
    NewOtpToken, NewRegistration, NewRendezvous, NewSession, OtpCheck, OtpStore, OtpSubject,
    RegistrationStore, Retention, SqlStore, Store, legacy_key,
};
use companion_server::{Clock, ManualClock};
use sha2::{Digest, Sha256};

/// The person erased.
const CF: &str = "BNCGVN75L41F205W";
const GIVEN: &str = "GIUSEPPINAERASE";
const SURNAME: &str = "CANCELLATESTER";
const EMAIL: &str = "erased.person@example.test";
const ADDRESS: &str = "Via Cancellata 42, Roma";
/// Stands for the certificates of the registration evidence (base64url of a SOD).
const CERT: &str = "MIIcertificateBytesOfTheErasedPersonSOD0123456789";
/// The person kept.
const KEPT_CF: &str = "KPTKPT90B02F205Z";
const KEPT_NAME: &str = "TENUTAKEPT";

fn card(cf: &str, given: &str, surname: &str, serial: &str) -> VerifiedCard {
    VerifiedCard {
        codice_fiscale: cf.into(),
        given_name: given.into(),
        surname: surname.into(),
        issuer: "CN=test".into(),
        serial: serial.into(),
    }
}

fn audit(kind: &'static str) -> AuditEntry {
    AuditEntry::new(kind, "-", "ok", "192.0.2.7")
}

/// The device's public key: distinctive bytes to look for.
fn public_key() -> Vec<u8> {
    let mut k = vec![0x04];
    k.extend((0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    k
}

/// The database seen directly, not through the store.
enum Raw {
    Sqlite(PathBuf),
    Pg(sqlx::PgPool),
}

impl Raw {
    async fn open(db: &TestDb) -> Self {
        match db.url.strip_prefix("sqlite:") {
            Some(path) => Raw::Sqlite(PathBuf::from(path)),
            None => Raw::Pg(sqlx::PgPool::connect(&db.url).await.unwrap()),
        }
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Raw::Sqlite(p) => rusqlite::Connection::open(p)
                .unwrap()
                .query_row(&sql, [], |r| r.get(0))
                .unwrap(),
            Raw::Pg(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        }
    }

    /// Run statements (`;`-separated).
    async fn exec(&self, sql: &str) {
        match self {
            Raw::Sqlite(p) => {
                rusqlite::Connection::open(p)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Raw::Pg(pool) => {
                sqlx::raw_sql(sql).execute(pool).await.unwrap();
            }
        }
    }

    /// The first column of every row, as text.
    async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Raw::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut st = c.prepare(sql).unwrap();
                st.query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<std::result::Result<_, _>>()
                    .unwrap()
            }
            Raw::Pg(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        }
    }

    /// Everything the database holds: PostgreSQL's rows as text, SQLite's db, WAL and
    /// shared-memory files byte for byte.
    async fn everything(&self) -> Vec<u8> {
        match self {
            Raw::Pg(_) => self.pg_dump().await.into_bytes(),
            Raw::Sqlite(path) => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    if let Ok(bytes) = std::fs::read(&p) {
                        all.extend(bytes);
                    }
                }
                all
            }
        }
    }

    /// PostgreSQL: every row of every table as text (bytea as `\x` hex).
    async fn pg_dump(&self) -> String {
        let Raw::Pg(pool) = self else { panic!() };
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(tables.len() > 20, "{tables:?}");
        let mut out = String::new();
        for t in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM {t} t"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            for r in rows {
                out.push_str(&t);
                out.push(' ');
                out.push_str(&r);
                out.push('\n');
            }
        }
        out
    }
}

fn otp_audit_subject(store: &SqlStore) -> String {
    companion_server::store::otp_audit_subject(&store.cf_key(CF))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A desktop session to open (its token hash all `byte`).
fn desktop_session(byte: u8, level: u8, expires: u64) -> NewSession {
    NewSession {
        token_hash: [byte; 32],
        level,
        kind: "desktop",
        expires,
    }
}

/// An OTP login attempt for `cf` (audited as the handler does) whose check is `check`.
async fn otp_attempt(store: &SqlStore, cf: &str, check: &OtpCheck<'_>, now: u64) {
    let session = desktop_session(11, 2, now + 60);
    let subject = companion_server::store::otp_audit_subject(&store.cf_key(cf));
    let entry = AuditEntry::new("otp_login", &subject, "", "192.0.2.9");
    store
        .otp_login(cf, check, &session, &entry, now)
        .await
        .unwrap();
}

/// An OTP token for `identity_id` (a sealed seed that opens under no key: the store never
/// opens it).
async fn enroll_otp(store: &SqlStore, identity_id: &str, cf: &str, device_id: &str, now: u64) {
    let nonce_key = format!("otp-enroll:{device_id}:n1");
    let otp = NewOtpToken {
        identity_id,
        codice_fiscale: cf,
        sealed_seed: &[0x01; 60],
        device_id,
        nonce_key: &nonce_key,
        nonce_expires: now + 300,
    };
    assert!(
        store
            .enroll_otp(&otp, &audit("otp_enroll"), now)
            .await
            .unwrap()
    );
}

/// A desktop's approval request for `cf`.
async fn request_approval(store: &SqlStore, id: &str, cf: &str, now: u64) {
    let approval = companion_server::store::NewApproval {
        id: id.into(),
        codice_fiscale: cf.into(),
        bind_hash: [4; 32],
        context_json: "{}".into(),
        context_hash: "h".into(),
        number: 42,
        choices: [42, 17, 88],
        created: now,
        expires: now + 120,
        client: "192.0.2.7".into(),
    };
    store
        .create_approval(&approval, 10, &audit("approval_create"))
        .await
        .unwrap();
}

/// Everything one person can leave: a card login with its session, an enrolled phone, a
/// registration, an OpenID Connect consent (code and token), a desktop approval request,
/// a PIN account for residents abroad with its two deliveries, and their audit rows.
async fn populate(store: &SqlStore, now: u64) -> String {
    let challenge = |id: &str, purpose| ChallengeRecord {
        id: id.into(),
        purpose,
        challenge: "c".into(),
        rid: None,
        expires: now + 60,
        used: false,
    };
    let person = card(CF, GIVEN, SURNAME, "5001");
    for (id, purpose) in [
        ("ch-login", ChallengePurpose::Login),
        ("ch-enrol", ChallengePurpose::DeviceEnroll),
        ("ch-reg", ChallengePurpose::Register),
        ("ch-kept", ChallengePurpose::Login),
    ] {
        store
            .insert_challenge(&challenge(id, purpose), &audit("challenge"), now)
            .await
            .unwrap();
    }
    let session = NewSession {
        token_hash: [7; 32],
        level: 3,
        kind: "desktop",
        expires: now + 3600,
    };
    let identity = store
        .card_login("ch-login", &person, &session, &audit("card_login"), now)
        .await
        .unwrap()
        .unwrap();
    store
        .enroll_device(
            "ch-enrol",
            &person,
            "device-erased-1",
            &public_key(),
            "Telefono di Giuseppina",
            &audit("device_enroll"),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    enroll_otp(store, &identity.id, CF, "device-erased-1", now).await;
    let reg = NewRegistration {
        nis: "NIS000111222".into(),
        nis_key_hash: "nis-key-hash".into(),
        codice_fiscale: CF.into(),
        given_name: GIVEN.into(),
        surname: SURNAME.into(),
        level: 3,
        attributes_json: format!(
            r#"{{"surname":"{SURNAME}","given_names":"{GIVEN}","date_of_birth":"19800101","place_of_birth":"ROMA"}}"#
        ),
        deviations_json: "[]".into(),
        evidence_json: format!(r#"{{"ias_sod":"{CERT}"}}"#),
    };
    store
        .register("ch-reg", &reg, &audit("registration"), now)
        .await
        .unwrap();
    let request = companion_server::store::PendingRequest {
        client_id: "https://rp.example".into(),
        request_json: "{}".into(),
        bind_hash: vec![3; 32],
        expires: now + 600,
        done: false,
    };
    store
        .oidc_put_request("req-1", &request, &audit("oidc_authorize"), now)
        .await
        .unwrap();
    let grant = format!(r#"{{"claims":["given_name"],"sub":"{}"}}"#, identity.id);
    assert!(
        store
            .oidc_finish_request(
                "req-1",
                Some((&[9; 32], &grant, now + 60)),
                &identity.id,
                &audit("oidc_consent").for_identity(&identity.id),
                now,
            )
            .await
            .unwrap()
    );
    store
        .oidc_put_token(
            "jti-erased-1",
            &[9; 32],
            "https://rp.example",
            &identity.id,
            &grant,
            Some(&[7; 32]),
            now + 3600,
        )
        .await
        .unwrap();
    request_approval(store, "approval-erased-1", CF, now).await;
    let pin = IssueRequest {
        codice_fiscale: CF.into(),
        email: Some(EMAIL.into()),
        address: Some(ADDRESS.into()),
        given_name: GIVEN.into(),
        surname: SURNAME.into(),
    };
    issue_pin(store, &pin, false, "operator", now)
        .await
        .unwrap();
    // A refused OTP login names the codice fiscale by its hash's prefix (api/otp.rs).
    store
        .audit(
            &AuditEntry::new(
                "otp_login",
                &otp_audit_subject(store),
                "wrong_code",
                "192.0.2.7",
            ),
            now,
        )
        .await
        .unwrap();
    // Someone else, who must stay.
    store
        .card_login(
            "ch-kept",
            &card(KEPT_CF, KEPT_NAME, KEPT_NAME, "5002"),
            &NewSession {
                token_hash: [8; 32],
                ..session
            },
            &audit("card_login"),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    identity.id
}

#[tokio::test]
async fn export_shows_everything_held_and_no_secret() {
    for db in backends().await {
        let store = SqlStore::connect(&db.url).await.unwrap();
        let now = ManualClock::new().now();
        let id = populate(&store, now).await;
        let export = store.export_identity(CF).await.unwrap().unwrap();
        let text = export.to_string();
        assert_eq!(export["identity"]["id"], id.as_str(), "{}", db.name);
        assert_eq!(export["identity"]["codice_fiscale"], CF);
        assert_eq!(export["devices"][0]["id"], "device-erased-1");
        assert_eq!(
            export["registrations"][0]["attributes"]["place_of_birth"],
            "ROMA"
        );
        assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(export["otp"][0]["active_since"], now);
        assert_eq!(
            export["oidc_consents"][0]["client_id"],
            "https://rp.example"
        );
        assert_eq!(
            export["oidc_consents"][0]["grant_json"]["claims"][0],
            "given_name"
        );
        assert_eq!(export["approvals"][0]["id"], "approval-erased-1");
        assert_eq!(export["abroad_account"][0]["email"], EMAIL);
        assert_eq!(
            export["abroad_pin_deliveries_digital"][0]["recipient"],
            EMAIL
        );
        let kinds: Vec<&str> = export["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].as_str().unwrap())
            .collect();
        for k in [
            "otp_login",
            "card_login",
            "device_enroll",
            "oidc_consent",
            "abroad_pin_issue",
        ] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        // Secrets and the other person are not in it.
        for absent in [
            "pin_hash",
            "sealed_seed",
            "half",
            "token_hash",
            "$argon2",
            KEPT_CF,
        ] {
            assert!(!text.contains(absent), "{absent} in the export");
        }
        assert!(
            store
                .export_identity("XXXXXX00X00X000X")
                .await
                .unwrap()
                .is_none()
        );
        store.close().await;
    }
}

#[tokio::test]
async fn erase_leaves_no_value_in_any_table_or_file() {
    for db in backends().await {
        let raw = Raw::open(&db).await;
        let store = SqlStore::connect(&db.url).await.unwrap();
        let now = ManualClock::new().now();
        let id = populate(&store, now).await;
        // Rows an earlier release left in the unkeyed form (a throttle, audit subjects): the
        // erasure finds them too.
        let old = legacy_key(CF);
        raw.exec(&format!(
            "INSERT INTO abroad_throttle (cf_key, failures, next_at, updated)
             VALUES ('{old}', 2, 0, {now});
             INSERT INTO audit (at, kind, subject, outcome, client)
             VALUES ({now}, 'abroad_login', '{old}', 'ok', '192.0.2.7');
             INSERT INTO audit (at, kind, subject, outcome, client)
             VALUES ({now}, 'otp_login', 'cf:{}', 'wrong_code', '192.0.2.7')",
            &old[..12]
        ))
        .await;
        let erased = store.erase_identity(CF, "operator", now + 5).await.unwrap();
        let rows = |t: &str| erased.rows.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!(rows("identities"), 1, "{}: {erased:?}", db.name);
        for t in [
            "cards",
            "sessions",
            "devices",
            "registrations",
            "oidc_codes",
            "oidc_tokens",
            "oidc_token_sessions",
            "approvals",
            "abroad_accounts",
            "otp_tokens",
            "otp_state",
            "abroad_outbox_digital",
            "abroad_outbox_postal",
            "abroad_throttle",
            "audit",
        ] {
            assert!(rows(t) >= 1, "{}: {t} erased: {erased:?}", db.name);
        }
        // Idempotent: nothing is left to erase.
        let again = store.erase_identity(CF, "operator", now + 6).await.unwrap();
        assert_eq!(again.total(), 0, "{again:?}");
        assert!(store.export_identity(CF).await.unwrap().is_none());
        assert!(store.export_identity(KEPT_CF).await.unwrap().is_some());

        let hashed = store.cf_key(CF);
        let otp_subject = otp_audit_subject(&store);
        let mut needles: Vec<Vec<u8>> = [
            CF,
            GIVEN,
            SURNAME,
            EMAIL,
            ADDRESS,
            CERT,
            &id,
            &hashed,
            &otp_subject,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain(plain_forms(CF))
        .collect();
        match &raw {
            Raw::Pg(_) => {
                assert_eq!(erased.wal_truncated, None);
                let dump = raw.pg_dump().await;
                assert!(dump.contains(KEPT_CF), "the search finds what is kept");
                needles.push(hex(&public_key()).into_bytes());
                for n in &needles {
                    let n = String::from_utf8_lossy(n);
                    assert!(!dump.contains(&*n), "{n} still in PostgreSQL:\n{dump}");
                }
            }
            Raw::Sqlite(path) => {
                assert_eq!(erased.wal_truncated, Some(true));
                needles.push(public_key());
                let mut files = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    if let Ok(bytes) = std::fs::read(&p) {
                        files.push((p, bytes));
                    }
                }
                let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
                assert!(
                    contains(&all, KEPT_CF.as_bytes()),
                    "the search finds what is kept"
                );
                for (p, bytes) in &files {
                    for n in &needles {
                        assert!(
                            !contains(bytes, n),
                            "{} still in {}",
                            String::from_utf8_lossy(n),
                            p.display()
                        );
                    }
                }
            }
        }
        assert_eq!(raw.count("identities").await, 1);
        store.close().await;
    }
}

#[tokio::test]
async fn pruning_deletes_what_expired_and_keeps_the_rest() {
    for db in backends().await {
        let raw = Raw::open(&db).await;
        let store = SqlStore::connect(&db.url).await.unwrap();
        let clock = ManualClock::new();
        let t0 = clock.now();
        populate(&store, t0).await;
        let keep = Retention { audit_days: 30 };
        let tables = [
            "challenges",
            "sessions",
            "oidc_requests",
            "oidc_codes",
            "oidc_tokens",
            "oidc_token_sessions",
            "approvals",
        ];
        let before: Vec<i64> = {
            let mut v = Vec::new();
            for t in tables {
                v.push(raw.count(t).await);
            }
            v
        };
        assert!(before.iter().all(|n| *n > 0), "{before:?}");
        // An OTP attempt on a codice fiscale nobody holds: its validator state is kept a
        // day after the attempt, the holder's for as long as the token.
        let wrong = |_: Option<&OtpSubject<'_>>, _: &mut AccountState| Some(Verdict::Wrong);
        otp_attempt(&store, KEPT_CF, &wrong, t0).await;
        assert_eq!(raw.count("otp_state").await, 2);
        // Nothing has expired yet.
        assert_eq!(store.prune(clock.now(), &keep).await.unwrap().total(), 0);
        // A rendezvous created later, still live when the others are pruned.
        clock.advance(2 * 3600);
        let r = NewRendezvous {
            rid: "r-live".into(),
            secret: [1; 16],
            bind_hash: [2; 32],
            context_json: "{}".into(),
            context_hash: "h".into(),
            created: clock.now(),
            expires: clock.now() + 120,
            client: "192.0.2.7".into(),
        };
        store
            .create_rendezvous(&r, 100, &audit("rendezvous_create"))
            .await
            .unwrap();
        let pruned = store.prune(clock.now(), &keep).await.unwrap();
        for t in tables {
            assert_eq!(raw.count(t).await, 0, "{}: {t} after {pruned:?}", db.name);
            assert!(pruned.get(t) > 0, "{t}: {pruned:?}");
        }
        assert_eq!(raw.count("rendezvous").await, 1);
        // The audit trail is kept for its retention, then goes; newer rows stay.
        let audit_rows = raw.count("audit").await;
        assert!(audit_rows > 5);
        assert_eq!(pruned.get("audit"), 0);
        clock.advance(29 * 86_400);
        store.audit(&audit("recent"), clock.now()).await.unwrap();
        clock.advance(2 * 86_400);
        let pruned = store.prune(clock.now(), &keep).await.unwrap();
        assert_eq!(pruned.get("audit") as i64, audit_rows, "{pruned:?}");
        assert_eq!(pruned.get("rendezvous"), 1);
        assert_eq!(pruned.get("otp_state"), 1, "{pruned:?}");
        assert_eq!(raw.count("otp_state").await, 1);
        assert_eq!(raw.count("otp_tokens").await, 1);
        let left = store.audit_log().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, "recent");
        // Retention 0 keeps audit rows for ever.
        clock.advance(3650 * 86_400);
        let forever = Retention { audit_days: 0 };
        assert_eq!(
            store
                .prune(clock.now(), &forever)
                .await
                .unwrap()
                .get("audit"),
            0
        );
        assert_eq!(raw.count("audit").await, 1);
        store.close().await;
    }
}

#[tokio::test]
async fn the_running_server_prunes_as_its_clock_moves() {
    for db in backends().await {
        let raw = Raw::open(&db).await;
        let h = Harness::start(&db).await;
        let store = h.server().store();
        populate(&store, h.clock.now()).await;
        assert!(raw.count("sessions").await > 0);
        h.clock.advance(2 * 3600);
        // The pass runs within a second of the clock passing its period.
        let mut left = i64::MAX;
        for _ in 0..50 {
            left = raw.count("sessions").await + raw.count("oidc_codes").await;
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(left, 0, "{}: expired rows left", db.name);
        assert_eq!(raw.count("identities").await, 2);
    }
}

/// The operator's commands, as the binary runs them (SQLite).
#[tokio::test]
async fn identity_commands_export_then_erase_once() {
    let db = sqlite();
    let store = SqlStore::connect(&db.url).await.unwrap();
    populate(&store, ManualClock::new().now()).await;
    store.close().await;
    drop(store);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_companion-server"))
            .args(["identity"])
            .args(args)
            .args(["--cf", CF, "--database", &db.url])
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        (
            out.status.success(),
            stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The server ran without an OTP key file: an operator's command given one is refused,
    // it would miss the rows kept under the database's key.
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), [0x42; 32]).unwrap();
    let key_path = key_file.path().to_str().unwrap();
    let (ok, _, err) = run(&["export", "--otp-key-file", key_path]);
    assert!(!ok);
    assert!(err.contains("--otp-key-file"), "{err}");
    assert!(err.contains("altra chiave"), "{err}");
    // A reader that stops reading (`| head`): the command ends quietly, no panic.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_companion-server"))
        .args(["identity", "export", "--cf", CF, "--database", &db.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let closed = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&closed.stderr);
    assert!(closed.status.success(), "{:?} {err}", closed.status);
    assert!(!err.contains("panicked"), "{err}");
    let (ok, export, _) = run(&["export"]);
    assert!(ok);
    let export: serde_json::Value = serde_json::from_str(&export).unwrap();
    assert_eq!(export["identity"]["surname"], SURNAME);
    let (ok, erased, _) = run(&["erase"]);
    assert!(ok);
    let erased: serde_json::Value = serde_json::from_str(&erased).unwrap();
    assert!(erased["total"].as_u64().unwrap() > 10, "{erased}");
    assert_eq!(erased["erased_rows"]["identities"], 1);
    assert_eq!(erased["sqlite_wal_truncated"], true);
    let (ok, again, _) = run(&["erase"]);
    assert!(ok);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["total"], 0);
    let (ok, _, err) = run(&["export"]);
    assert!(!ok);
    assert!(err.contains("nothing is held"), "{err}");
}

/// A codice fiscale typed by someone without an account.
const TYPED_CF: &str = "TYPTYP85C03L219K";

fn file_key(byte: u8) -> KeySource {
    KeySource::File(CfKey::derive(&[byte; 32]))
}

async fn keyed(db: &TestDb, byte: u8) -> SqlStore {
    SqlStore::connect_keyed(&db.url, file_key(byte), KeyChange::Adopt)
        .await
        .unwrap()
}

/// What the three places keyed by a codice fiscale see of one: an OTP login failure, three
/// PIN attempts of a resident abroad (audited as the handlers do: the third failure sets a
/// delay), an approval request. The PIN attempts' outcomes.
async fn typed_everywhere(store: &SqlStore, cf: &str, now: u64) -> Vec<Attempt> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let wrong = |_: Option<&OtpSubject<'_>>, st: &mut AccountState| {
        st.failures += 1;
        Some(Verdict::Wrong)
    };
    otp_attempt(store, cf, &wrong, now).await;
    let id = format!(
        "approval-typed-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    request_approval(store, &id, cf, now).await;
    let pin_audit = AuditEntry::new("abroad_login", &store.cf_key(cf), "ok", "192.0.2.9");
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(
            store
                .abroad_attempt(cf, 100, &pin_audit, now)
                .await
                .unwrap(),
        );
    }
    out
}

fn is_wait(a: &[Attempt]) -> bool {
    a.iter().all(|a| matches!(a, Attempt::Wait { .. }))
}

/// An identity for `cf` (a card login).
async fn card_holder(store: &SqlStore, cf: &str, now: u64) -> String {
    let ch = ChallengeRecord {
        id: "ch-holder".into(),
        purpose: ChallengePurpose::Login,
        challenge: "c".into(),
        rid: None,
        expires: now + 60,
        used: false,
    };
    store
        .insert_challenge(&ch, &audit("challenge"), now)
        .await
        .unwrap();
    let session = desktop_session(14, 3, now + 60);
    store
        .card_login(
            &ch.id,
            &card(cf, "H", "H", "7001"),
            &session,
            &audit("card_login"),
            now,
        )
        .await
        .unwrap()
        .unwrap()
        .id
}

/// The codice fiscale and its unkeyed SHA-256 in every form a table or file could hold.
fn plain_forms(cf: &str) -> Vec<Vec<u8>> {
    let digest = Sha256::digest(cf.as_bytes());
    vec![
        cf.as_bytes().to_vec(),
        legacy_key(cf).into_bytes(),
        legacy_key(cf).as_bytes()[..12].to_vec(),
        hex(&digest).into_bytes(),
        digest.to_vec(),
    ]
}

#[tokio::test]
async fn typed_codici_fiscali_are_stored_keyed_only() {
    for db in backends().await {
        let raw = Raw::open(&db).await;
        let store = keyed(&db, 0x42).await;
        let now = ManualClock::new().now();
        let first = typed_everywhere(&store, TYPED_CF, now).await;
        assert_eq!(first[2], Attempt::Go { failures: 3 }, "{}", db.name);
        let key = store.cf_key(TYPED_CF);
        assert!(key.starts_with("k1."), "{key}");
        // Each of the three places holds the keyed value.
        let otp = raw.strings("SELECT cf_key FROM otp_state").await;
        let throttle = raw.strings("SELECT cf_key FROM abroad_throttle").await;
        let buckets = raw.strings("SELECT bucket_key FROM rate_limits").await;
        assert_eq!(otp, vec![key.clone()], "{}", db.name);
        assert_eq!(throttle, vec![key.clone()]);
        assert!(
            buckets.contains(&format!("approval-cf:{key}")),
            "{buckets:?}"
        );
        let audit = format!("{:?}", store.audit_log().await.unwrap());
        assert!(audit.contains(&key), "{audit}");
        store.close().await;
        drop(store);
        let all = raw.everything().await;
        assert!(
            contains(&all, key.as_bytes()),
            "the search finds what is kept"
        );
        for form in plain_forms(TYPED_CF) {
            assert!(
                !contains(&all, &form),
                "{}: {} in the database",
                db.name,
                String::from_utf8_lossy(&form)
            );
        }
    }
}

#[tokio::test]
async fn throttles_survive_a_restart_with_the_same_key_only() {
    for db in backends().await {
        let now = ManualClock::new().now();
        let store = keyed(&db, 0x42).await;
        assert_eq!(
            typed_everywhere(&store, TYPED_CF, now).await[2],
            Attempt::Go { failures: 3 }
        );
        store.close().await;
        // Same key file: the delay the failures set still holds, the OTP failure is counted.
        let store = keyed(&db, 0x42).await;
        let again = typed_everywhere(&store, TYPED_CF, now).await;
        assert!(is_wait(&again), "{}: {again:?}", db.name);
        assert_eq!(
            store.abroad_throttle(TYPED_CF).await.unwrap().map(|t| t.0),
            Some(3)
        );
        let seen = std::sync::Mutex::new(None);
        let peek = |_: Option<&OtpSubject<'_>>, st: &mut AccountState| {
            *seen.lock().unwrap() = Some(st.failures);
            Some(Verdict::Wrong)
        };
        otp_attempt(&store, TYPED_CF, &peek, now).await;
        assert_eq!(*seen.lock().unwrap(), Some(2), "{}", db.name);
        store.close().await;
        // A command that looks up no codice fiscale (`oidc client add`) leaves the key check
        // alone: the server's key is still the one recorded.
        let ignoring = SqlStore::connect_keyed(&db.url, KeySource::Database, KeyChange::Ignore);
        ignoring.await.unwrap().close().await;
        let same = SqlStore::connect_keyed(&db.url, file_key(0x42), KeyChange::Refuse);
        same.await.unwrap().close().await;
        // An operator's command with another key is refused rather than missing rows.
        let refused = SqlStore::connect_keyed(&db.url, file_key(0x43), KeyChange::Refuse).await;
        assert!(
            matches!(
                refused,
                Err(companion_server::store::StoreError::CfKeyMismatch)
            ),
            "{}",
            db.name
        );
        let with_db_key = SqlStore::connect_keyed(&db.url, KeySource::Database, KeyChange::Refuse);
        assert!(with_db_key.await.is_err());
        // Another key file (documented): the old rows no longer match, nothing carries over.
        let store = keyed(&db, 0x43).await;
        assert_eq!(store.abroad_throttle(TYPED_CF).await.unwrap(), None);
        assert_eq!(
            store
                .abroad_attempt(TYPED_CF, 100, &audit("abroad_login"), now)
                .await
                .unwrap(),
            Attempt::Go { failures: 1 }
        );
        store.close().await;
    }
}

#[tokio::test]
async fn rows_of_the_unkeyed_form_are_re_keyed_or_honoured_until_they_expire() {
    const HOLDER_CF: &str = "HLDHLD70D04F839P";
    for db in backends().await {
        let raw = Raw::open(&db).await;
        let clock = ManualClock::new();
        let now = clock.now();
        let store = keyed(&db, 0x42).await;
        // A token holder with OTP state, and a codice fiscale with a PIN throttle, an OTP
        // state and an approvals bucket.
        let holder = card_holder(&store, HOLDER_CF, now).await;
        enroll_otp(&store, &holder, HOLDER_CF, "d", now).await;
        typed_everywhere(&store, TYPED_CF, now).await;
        store.close().await;
        // Rewritten as a release before keyed lookups left them: unkeyed SHA-256, and the
        // holder's validator state with a counter worth keeping.
        let state = r#"{"last_step":123456,"drift_steps":1,"failures":2,"locked_until":0}"#;
        let holder_key = CfKey::derive(&[0x42; 32]).lookup(HOLDER_CF);
        let typed_key = CfKey::derive(&[0x42; 32]).lookup(TYPED_CF);
        raw.exec(&format!(
            "UPDATE otp_state SET cf_key = '{}', state = '{state}' WHERE cf_key = '{holder_key}'",
            legacy_key(HOLDER_CF)
        ))
        .await;
        for (table, column, prefix) in [
            ("otp_state", "cf_key", ""),
            ("abroad_throttle", "cf_key", ""),
            ("rate_limits", "bucket_key", "approval-cf:"),
        ] {
            raw.exec(&format!(
                "UPDATE {table} SET {column} = '{prefix}{}' WHERE {column} = '{prefix}{typed_key}'",
                legacy_key(TYPED_CF)
            ))
            .await;
        }
        raw.exec("DELETE FROM store_keys").await;
        // Start: the holder's row is re-keyed, its state kept; twice changes nothing more.
        for _ in 0..2 {
            let store = keyed(&db, 0x42).await;
            store.close().await;
            let rows = raw
                .strings(&format!(
                    "SELECT state FROM otp_state WHERE cf_key = '{holder_key}'"
                ))
                .await;
            assert_eq!(rows.len(), 1, "{}", db.name);
            let kept: AccountState = serde_json::from_str(&rows[0]).unwrap();
            let want: AccountState = serde_json::from_str(state).unwrap();
            assert_eq!(kept, want);
            assert_eq!(
                raw.strings(&format!(
                    "SELECT cf_key FROM otp_state WHERE cf_key = '{}'",
                    legacy_key(HOLDER_CF)
                ))
                .await
                .len(),
                0
            );
        }
        // The other rows are honoured: the next attempt finds its delay and its OTP
        // failure, and moves them to the keyed form.
        let store = keyed(&db, 0x42).await;
        let again = typed_everywhere(&store, TYPED_CF, now).await;
        assert!(is_wait(&again), "{}: {again:?}", db.name);
        let otp_failures: Vec<String> = raw
            .strings(&format!(
                "SELECT state FROM otp_state WHERE cf_key = '{typed_key}'"
            ))
            .await;
        let st: AccountState = serde_json::from_str(&otp_failures[0]).unwrap();
        assert_eq!(st.failures, 2, "{}", db.name);
        let buckets = raw
            .strings("SELECT bucket_key FROM rate_limits WHERE bucket_key LIKE 'approval-cf:%'")
            .await;
        assert_eq!(buckets, vec![format!("approval-cf:{typed_key}")]);
        let all = raw.everything().await;
        if matches!(raw, Raw::Pg(_)) {
            // The holder's codice fiscale is on the identity row (readable by design).
            let holder_hashes = plain_forms(HOLDER_CF).into_iter().skip(1);
            for form in plain_forms(TYPED_CF).into_iter().chain(holder_hashes) {
                assert!(!contains(&all, &form), "{}", String::from_utf8_lossy(&form));
            }
        }
        // Unkeyed rows nobody tries again go with the pruning pass (a day).
        raw.exec(&format!(
            "INSERT INTO abroad_throttle (cf_key, failures, next_at, updated)
             VALUES ('{}', 3, 0, {now})",
            legacy_key("OLDOLD60E05H501Q")
        ))
        .await;
        clock.advance(24 * 3600 + 1);
        store
            .prune(clock.now(), &Retention::default())
            .await
            .unwrap();
        assert_eq!(
            raw.strings("SELECT cf_key FROM abroad_throttle WHERE cf_key NOT LIKE 'k1.%'")
                .await
                .len(),
            0
        );
        store.close().await;
    }
}
