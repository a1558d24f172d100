//! The browser card login page (`GET /login/card` on the mutual-TLS listeners) with a
//! rustls client holding the virtual cards' keys, as a browser's PKCS#11 module would:
//! the CIE (PKCS#1 v1.5 only) logs in on the TLS-1.2-only origin and cannot on the one
//! that offers TLS 1.3; the CNS (PSS too) logs in over TLS 1.3. The session cookie the page
//! sets is the desktop session of the main origin; every login is audited.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
mod hardening;

use std::sync::Arc;

use common::*;
use companion_server::RunningServer;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{ProtocolVersion, SignatureAlgorithm, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CNS_CERT: &[u8] = include_bytes!("../../card-sim/testdata/cns_auth_cert.der");
const CNS_KEY: &[u8] = include_bytes!("../../card-sim/testdata/cns_auth_key.pk8.der");
const CNS_CF: &str = "PRVLCU85T10A662C";

/// A key that signs RSA PKCS#1 v1.5 with SHA-256 only, like the CIE (INTERNAL
/// AUTHENTICATE pads on the card; no raw RSA, no PSS).
#[derive(Debug)]
struct Pkcs1Only(Arc<dyn SigningKey>);

impl SigningKey for Pkcs1Only {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let pkcs1 = SignatureScheme::RSA_PKCS1_SHA256;
        offered
            .contains(&pkcs1)
            .then(|| self.0.choose_scheme(&[pkcs1]))
            .flatten()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }
}

/// Always offers the one card certificate, recording nothing.
#[derive(Debug)]
struct Card(Arc<CertifiedKey>);

impl ResolvesClientCert for Card {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn signing_key(pkcs8: &[u8]) -> Arc<dyn SigningKey> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
    rustls::crypto::ring::sign::any_supported_type(&der).unwrap()
}

/// The virtual CIE's certificate and key (PKCS#1 only).
fn cie() -> Card {
    let key = Arc::new(Pkcs1Only(signing_key(AUTH_KEY)));
    Card(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(AUTH_CERT.to_vec())],
        key,
    )))
}

/// The virtual CNS's certificate and key (PKCS#1 and PSS).
fn cns() -> Card {
    Card(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(CNS_CERT.to_vec())],
        signing_key(CNS_KEY),
    )))
}

async fn start(db: &TestDb) -> Harness {
    Harness::start_with(db, |c| {
        c.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.mtls_tls12_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

/// What the browser got: the TLS version, the status, the headers and the page.
struct Visit {
    version: Option<ProtocolVersion>,
    status: u16,
    head: String,
    body: String,
}

impl Visit {
    /// The page says "logged in" with this holder, codice fiscale and TLS version, and the
    /// connection used that version.
    fn assert_shows(&self, name: &str, cf: &str, tls: ProtocolVersion) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.version, Some(tls));
        assert_eq!(
            hardening::problems_of_head(&self.head),
            Vec::<String>::new()
        );
        let label = if tls == ProtocolVersion::TLSv1_3 {
            "TLS 1.3"
        } else {
            "TLS 1.2"
        };
        for shown in [
            format!("<strong id=\"holder\">{name}</strong>"),
            format!("<strong id=\"codice-fiscale\">{cf}</strong>"),
            format!("<span id=\"tls-version\">{label}</span>"),
        ] {
            assert!(self.body.contains(&shown), "{shown} not in:\n{}", self.body);
        }
    }

    fn session_cookie(&self) -> String {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: cc_session="))
            .and_then(|v| v.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie in:\n{}", self.head))
            .to_owned()
    }
}

/// `GET /login/card` at `addr` presenting `card`, client offering TLS 1.2 and 1.3 (as
/// Chromium does), or only `versions` when given. `Err` when the handshake or the
/// connection fails.
async fn visit(
    server: &RunningServer,
    addr: std::net::SocketAddr,
    card: Card,
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
) -> Result<Visit, std::io::Error> {
    request(server, addr, card, versions, "GET /login/card").await
}

/// [`visit`] with another request line (`METHOD /path`, no body).
async fn request(
    server: &RunningServer,
    addr: std::net::SocketAddr,
    card: Card,
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
    line: &str,
) -> Result<Visit, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server.certificate_der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider);
    let builder = match versions {
        Some(v) => builder.with_protocol_versions(v),
        None => builder.with_safe_default_protocol_versions(),
    }
    .unwrap();
    let config = builder
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(card));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let version = tls.get_ref().1.protocol_version();
    tls.write_all(
        format!(
            "{line} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    // In TLS 1.3 the server checks the client's certificate after the client's handshake
    // has ended: a refusal arrives here, as an alert instead of a response.
    tls.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Visit {
        version,
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// The identity the main origin's `GET /api/v1/session` returns for `cookie`.
async fn session_of(h: &Harness, cookie: &str) -> serde_json::Value {
    let resp = h
        .other_client()
        .get(h.url("/api/v1/session"))
        .header("cookie", format!("cc_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the page's cookie is no session"
    );
    resp.json().await.unwrap()
}

async fn page_audit(h: &Harness) -> Vec<String> {
    h.server()
        .store()
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .filter(|(kind, ..)| kind == "card_page_login")
        .map(|(_, _, outcome, _)| outcome)
        .collect()
}

#[tokio::test]
async fn cie_logs_in_on_the_tls12_origin() {
    for db in backends().await {
        let h = start(&db).await;
        let addr = h.server().mtls_tls12_addr().unwrap();
        // The client offers 1.3 too (as Chromium does); this origin settles on 1.2.
        let v = visit(h.server(), addr, cie(), None).await.unwrap();
        v.assert_shows("MARIA TESTER", TEST_CF, ProtocolVersion::TLSv1_2);
        assert!(v.head.contains("content-type: text/html"), "{}", v.head);
        assert!(v.head.contains("cache-control: no-store"), "{}", v.head);
        let cookie = v.session_cookie();
        assert!(
            v.head.contains("HttpOnly; Secure; SameSite=Strict"),
            "{}",
            v.head
        );
        let session = session_of(&h, &cookie).await;
        assert_eq!(session["identity"]["codice_fiscale"], TEST_CF);
        assert_eq!(session["level"], 3);
        assert_eq!(page_audit(&h).await, ["ok"]);
        // A second visit is a second login of the same identity.
        let again = visit(h.server(), addr, cie(), None).await.unwrap();
        let second = session_of(&h, &again.session_cookie()).await;
        assert_eq!(second["identity"]["id"], session["identity"]["id"]);
        assert_ne!(again.session_cookie(), cookie);
    }
}

#[tokio::test]
async fn cie_cannot_log_in_where_tls13_is_offered() {
    let db = sqlite();
    let h = start(&db).await;
    let addr = h.server().mtls_addr().unwrap();
    // TLS 1.3 is negotiated; the CIE's key has no PSS, so no certificate is sent and the
    // server refuses: what Chromium shows as ERR_SSL_CLIENT_AUTH_NO_COMMON_ALGORITHMS.
    let refused = visit(h.server(), addr, cie(), None).await;
    assert!(refused.is_err(), "a PKCS#1-only key logged in over TLS 1.3");
    assert!(page_audit(&h).await.is_empty());
    // The TLS-1.2-only origin refuses a client that speaks 1.3 only.
    let addr12 = h.server().mtls_tls12_addr().unwrap();
    let v13 = visit(h.server(), addr12, cns(), Some(&[&rustls::version::TLS13])).await;
    assert!(v13.is_err(), "the TLS 1.2 origin spoke TLS 1.3");
}

#[tokio::test]
async fn cns_logs_in_over_tls13() {
    for db in backends().await {
        let h = start(&db).await;
        let addr = h.server().mtls_addr().unwrap();
        let v = visit(h.server(), addr, cns(), None).await.unwrap();
        v.assert_shows("LUCA PROVA", CNS_CF, ProtocolVersion::TLSv1_3);
        let session = session_of(&h, &v.session_cookie()).await;
        assert_eq!(session["identity"]["codice_fiscale"], CNS_CF);
        assert_eq!(session["identity"]["surname"], "PROVA");
        // The CNS logs in on the TLS 1.2 origin as well.
        let addr12 = h.server().mtls_tls12_addr().unwrap();
        let v12 = visit(h.server(), addr12, cns(), None).await.unwrap();
        v12.assert_shows("LUCA PROVA", CNS_CF, ProtocolVersion::TLSv1_2);
        assert_eq!(page_audit(&h).await, ["ok", "ok"]);
    }
}

#[tokio::test]
async fn only_cards_of_the_configured_cas_get_the_page() {
    let db = sqlite();
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    // Only a CA that did not issue the cards: the handshake is refused (unknown_ca).
    let h = Harness::start_with(&db, |c| {
        c.card_cas = vec![other.der().to_vec()];
        c.mtls_tls12_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let addr = h.server().mtls_tls12_addr().unwrap();
    assert!(visit(h.server(), addr, cie(), None).await.is_err());
    // Several card CAs (as `--card-ca` repeated): the cards' one among them is enough.
    let db2 = sqlite();
    let h2 = Harness::start_with(&db2, |c| {
        c.card_cas = vec![other.der().to_vec(), TEST_CA.to_vec()];
        c.mtls_tls12_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let addr2 = h2.server().mtls_tls12_addr().unwrap();
    let v = visit(h2.server(), addr2, cns(), None).await.unwrap();
    v.assert_shows("LUCA PROVA", CNS_CF, ProtocolVersion::TLSv1_2);
}

/// The mutual-TLS listener's answers carry the security headers (src/headers.rs) like the
/// main listener's: the page (checked in `assert_shows`), the app's login, a refusal, a
/// path it does not serve.
#[tokio::test]
async fn mtls_responses_carry_the_security_headers() {
    let db = sqlite();
    let h = start(&db).await;
    let addr = h.server().mtls_addr().unwrap();
    for (line, status) in [
        ("POST /api/v1/card/mtls-login", 200),
        ("GET /login/card?x=1", 200),
        ("GET /nope", 404),
        ("DELETE /login/card", 405),
    ] {
        let v = request(h.server(), addr, cns(), None, line).await.unwrap();
        assert_eq!(v.status, status, "{line}: {}", v.head);
        assert_eq!(
            hardening::problems_of_head(&v.head),
            Vec::<String>::new(),
            "{line}"
        );
    }
}
