//! Test harness: a server over real TLS on loopback, on SQLite (always) and PostgreSQL
//! (when `CIE_TEST_POSTGRES_URL` is set; required when `CI=true`), a client trusting its
//! certificate, a manual clock, and the virtual card's key to sign statements.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use cie_core::flows::wire::{CardStatement, DesktopQr, Origin, b64};
use companion_server::{Config, ManualClock, RunningServer, TlsSource, serve};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sqlx::Connection;

pub const AUTH_CERT: &[u8] = include_bytes!("../../../card-sim/testdata/auth_cert.der");
pub const AUTH_KEY: &[u8] = include_bytes!("../../../card-sim/testdata/auth_key.pk8.der");
pub const TEST_CA: &[u8] = include_bytes!("../../../card-sim/testdata/test_ca_cert.der");
pub const TEST_CF: &str = "TSTTST80A01H501X";

/// A database for one test: its own SQLite file or PostgreSQL schema.
pub struct TestDb {
    pub url: String,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
}

pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("server.db").display());
    TestDb {
        url,
        name: "sqlite",
        _dir: Some(dir),
    }
}

/// A fresh schema on the test PostgreSQL, or `None` (with a notice) when there is none.
pub async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var("CIE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CIE_TEST_POSTGRES_URL is not set: run `eval \"$(bash scripts/postgres.sh)\"`"
        );
        eprintln!(
            "NOTICE: CIE_TEST_POSTGRES_URL not set, skipping the PostgreSQL half of this test"
        );
        return None;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("test_{now}_{}", hex_lower(&companion_server_random::<8>()));
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    // Schemas of runs more than an hour old are leftovers: drop them so the database does
    // not grow run after run (concurrent runs' schemas are younger).
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for (name,) in names {
        let stale = name
            .split('_')
            .nth(1)
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|t| t + 3600 < now);
        if stale {
            let _ = sqlx::Executor::execute(
                &mut conn,
                format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str(),
            )
            .await;
        }
    }
    sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    conn.close().await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(TestDb {
        url: format!("{base}{sep}options[search_path]={schema}"),
        name: "postgres",
        _dir: None,
    })
}

/// SQLite, and PostgreSQL when available.
pub async fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite()];
    v.extend(postgres().await);
    v
}

fn companion_server_random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A TLS certificate and key as PEM files, so a restarted server keeps its identity.
pub struct PemTls {
    pub dir: tempfile::TempDir,
    pub der: Vec<u8>,
}

impl PemTls {
    pub fn source(&self) -> TlsSource {
        TlsSource::PemFiles {
            cert: self.dir.path().join("cert.pem"),
            key: self.dir.path().join("key.pem"),
        }
    }
}

pub fn pem_tls() -> PemTls {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    PemTls {
        der: cert.der().to_vec(),
        dir,
    }
}

/// A running server and what a test needs around it.
pub struct Harness {
    pub server: Option<RunningServer>,
    pub clock: ManualClock,
    pub db_url: String,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub origin: Origin,
}

impl Harness {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let clock = ManualClock::new();
        let mut config = Config::new(db.url.clone());
        config.card_cas = vec![TEST_CA.to_vec()];
        config.clock = Arc::new(clock.clone());
        config.service_name = "Servizio di prova".into();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve(config, listener).await.unwrap();
        Self {
            origin: server.origin().clone(),
            server: Some(server),
            clock,
            db_url: db.url.clone(),
            jar: Arc::new(reqwest::cookie::Jar::default()),
        }
    }

    /// Stop the server and start a new one on the same database, TLS identity and origin
    /// (so signatures and the browser's cookies still apply); the clock goes on.
    pub async fn restart(&mut self, tls: &PemTls) {
        if let Some(old) = self.server.take() {
            old.shutdown().await;
        }
        let mut config = Config::new(self.db_url.clone());
        config.card_cas = vec![TEST_CA.to_vec()];
        config.clock = Arc::new(self.clock.clone());
        config.service_name = "Servizio di prova".into();
        config.public_origin = Some(self.origin.clone());
        config.tls = tls.source();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.server = Some(serve(config, listener).await.unwrap());
    }

    /// Another instance on the same database, TLS identity, origin, clock and browser
    /// cookies (two servers behind one name).
    pub async fn second_instance(&self, tls: &PemTls) -> Self {
        self.second_instance_with(tls, |_| {}).await
    }

    /// [`Harness::second_instance`] with more settings.
    pub async fn second_instance_with(
        &self,
        tls: &PemTls,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(self.db_url.clone());
        config.card_cas = vec![TEST_CA.to_vec()];
        config.clock = Arc::new(self.clock.clone());
        config.service_name = "Servizio di prova".into();
        config.public_origin = Some(self.origin.clone());
        config.tls = tls.source();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self {
            server: Some(serve(config, listener).await.unwrap()),
            clock: self.clock.clone(),
            db_url: self.db_url.clone(),
            jar: self.jar.clone(),
            origin: self.origin.clone(),
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.server().local_addr())
    }

    /// The "desktop browser": keeps cookies across calls (and restarts).
    pub fn browser(&self) -> reqwest::Client {
        self.client(Some(self.jar.clone()))
    }

    /// A client with its own empty cookie jar (another browser, or the phone).
    pub fn other_client(&self) -> reqwest::Client {
        self.client(Some(Arc::new(reqwest::cookie::Jar::default())))
    }

    fn client(&self, jar: Option<Arc<reqwest::cookie::Jar>>) -> reqwest::Client {
        let cert = reqwest::Certificate::from_der(self.server().certificate_der()).unwrap();
        let mut b = reqwest::Client::builder()
            .add_root_certificate(cert)
            .tls_built_in_root_certs(false)
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36");
        if let Some(jar) = jar {
            b = b.cookie_provider(jar);
        }
        b.build().unwrap()
    }

    pub async fn post<T: serde::Serialize>(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &T,
    ) -> (u16, serde_json::Value) {
        let resp = client.post(self.url(path)).json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, serde_json::Value) {
        let resp = client.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// The virtual card's signature (PKCS#1 v1.5 SHA-256) over a statement.
pub fn card_sign(statement: &CardStatement<'_>) -> String {
    static KEY: OnceLock<SigningKey<sha2_10::Sha256>> = OnceLock::new();
    let key =
        KEY.get_or_init(|| SigningKey::new(rsa::RsaPrivateKey::from_pkcs8_der(AUTH_KEY).unwrap()));
    b64(&key.sign(&statement.to_bytes()).to_bytes())
}

/// The error code of an `ApiError` body.
pub fn code(body: &serde_json::Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

/// A device key from a seed: (key, SEC1 uncompressed public key, base64url).
pub fn device_key(seed: u8) -> (p256::ecdsa::SigningKey, String) {
    let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let public = sk.verifying_key().to_sec1_point(false);
    (sk.clone(), b64(public.as_bytes()))
}

/// Enrol `key_b64` for the test card's holder (a card-signed `DeviceEnroll`): the answer.
pub async fn enroll(h: &Harness, key_b64: &str) -> (u16, serde_json::Value) {
    let phone = h.other_client();
    let (_, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &serde_json::json!({"purpose": "device_enroll"}),
        )
        .await;
    let signature = card_sign(&CardStatement::DeviceEnroll {
        origin: &h.origin,
        challenge: ch["challenge"].as_str().unwrap(),
        device_key: key_b64,
    });
    let body = serde_json::json!({
        "challenge_id": ch["challenge_id"],
        "certificate": b64(AUTH_CERT),
        "signature": signature,
        "device_key": key_b64,
        "device_name": "Pixel 8",
    });
    h.post(&phone, "/api/v1/devices", &body).await
}

/// A device key enrolled for the test card's holder: (key, device id).
pub async fn enrolled(h: &Harness, seed: u8) -> (p256::ecdsa::SigningKey, String) {
    let (key, public) = device_key(seed);
    let (s, e) = enroll(h, &public).await;
    assert_eq!(s, 200, "{e}");
    (key, e["device_id"].as_str().unwrap().to_owned())
}

/// Ask a login challenge; sign it (with `sign`) and log in with `cert`: the answer.
pub async fn card_login_with(
    h: &Harness,
    cert: &[u8],
    sign: impl Fn(&str) -> String,
) -> (u16, serde_json::Value) {
    let phone = h.other_client();
    let (status, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &serde_json::json!({"purpose": "login"}),
        )
        .await;
    assert_eq!(status, 200, "{ch}");
    let challenge = ch["challenge"].as_str().unwrap();
    let body = serde_json::json!({
        "challenge_id": ch["challenge_id"],
        "certificate": b64(cert),
        "signature": sign(challenge),
    });
    h.post(&phone, "/api/v1/card/login", &body).await
}

/// A desktop QR made by `browser`, claimed by a phone and approved with the virtual card,
/// `between` run after the claim (tests move the clock there): the rendezvous id and the
/// code the phone shows.
pub async fn desktop_qr_approved(
    h: &Harness,
    browser: &reqwest::Client,
    between: impl FnOnce(),
) -> (String, String) {
    let phone = h.other_client();
    let (_, body) = h
        .post(
            browser,
            "/api/v1/desktop/rendezvous",
            &serde_json::json!({}),
        )
        .await;
    let rid = body["rid"].as_str().unwrap().to_owned();
    let qr = DesktopQr::parse(
        body["qr"].as_str().unwrap(),
        std::slice::from_ref(&h.origin),
    )
    .unwrap();
    let claim =
        serde_json::json!({"rid": rid, "proof": b64(&qr.claim_proof()), "device_name": "Pixel 8"});
    let (s, claimed) = h.post(&phone, "/api/v1/rendezvous/claim", &claim).await;
    assert_eq!(s, 200, "{claimed}");
    between();
    let token = claimed["claim_token"].as_str().unwrap();
    let (_, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &serde_json::json!({"purpose": "desktop_approve", "rid": rid, "claim_token": token}),
        )
        .await;
    let signature = card_sign(&CardStatement::DesktopApprove {
        origin: &h.origin,
        rid: &rid,
        context_hash: claimed["context_hash"].as_str().unwrap(),
        challenge: ch["challenge"].as_str().unwrap(),
    });
    let approve = serde_json::json!({"method": "cie", "claim_token": token,
        "challenge_id": ch["challenge_id"], "certificate": b64(AUTH_CERT), "signature": signature});
    let (s, approved) = h
        .post(
            &phone,
            &format!("/api/v1/rendezvous/{rid}/approve"),
            &approve,
        )
        .await;
    assert_eq!(s, 200, "{approved}");
    (rid, approved["code"].as_str().unwrap().to_owned())
}
