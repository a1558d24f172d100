//! The mutual-TLS card login end to end: the core's flow with the virtual CIE (its
//! certificate the TLS client certificate, its signature the CertificateVerify) against an
//! in-process `companion-server` with the mutual-TLS listener; a wrong PIN; and plain TLS
//! clients the server must refuse (a certificate from an untrusted CA, no certificate).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Counter, MemoryStore};

use card_sim::VirtualCard;
use cie_core::apdu::CardChannel;
use cie_core::applets::ias::IasError;
use cie_core::applets::ias::pin::Pin;
use cie_core::ffi::{CardError, CompanionClient, FlowError};
use cie_core::flows::login::{LoginError, NoProgress, PinEntry};
use cie_core::flows::mtls_login::MtlsLogin;
use cie_core::flows::step::StepError;
use cie_core::flows::wire::ErrorCode;
use cie_core::net::ApiClient;
use cie_core::net::pin::{PinnedVerifier, parse_pin};
use companion_server::{Config, ManualClock, RevokedSerials, RunningServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

const TEST_CF: &str = "TSTTST80A01H501X";

struct Harness {
    server: RunningServer,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(format!("sqlite:{}", dir.path().join("s.db").display()));
        config.card_cas = vec![card_sim::ias::pki::TEST_CA_CERT_DER.to_vec()];
        config.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = companion_server::serve(config, listener).await.unwrap();
        Self { server, _dir: dir }
    }

    fn mtls_origin(&self) -> String {
        format!("https://{}", self.server.mtls_addr().unwrap())
    }

    fn origins(&self) -> Vec<String> {
        vec![self.server.origin().as_string(), self.mtls_origin()]
    }

    fn api(&self) -> ApiClient {
        ApiClient::new(&self.origins(), &[self.server.spki_pin().to_owned()]).unwrap()
    }

    async fn audit(&self, kind: &str) -> Vec<(String, String)> {
        self.server
            .store()
            .audit_log()
            .await
            .unwrap()
            .into_iter()
            .filter(|(k, ..)| k == kind)
            .map(|(_, subject, outcome, _)| (subject, outcome))
            .collect()
    }

    /// The audit rows of a refused handshake. The server writes them from its accept loop
    /// after the alert has gone out, so the client may see the failure first: wait for them
    /// (bounded).
    async fn handshake_audit(&self, kind: &str) -> Vec<(String, String)> {
        for _ in 0..100 {
            let rows = self.audit(kind).await;
            if !rows.is_empty() {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Vec::new()
    }
}

fn full_pin(pin: &str) -> PinEntry {
    PinEntry::Full(Pin::new(pin).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_logs_in_over_mutual_tls_then_again_with_four_digits() {
    let h = Harness::start().await;
    let api = h.api();
    let card = Arc::new(VirtualCard::cie());
    let store = Arc::new(MemoryStore::default());
    let origin = api.origin(&h.mtls_origin()).unwrap();

    let mut login = MtlsLogin::new(&api, origin.clone(), Some(store.clone())).unwrap();
    let ch = CardChannel::new(card.clone());
    let done = login
        .tap(
            &api,
            &ch,
            Some(full_pin("12345678")),
            &Counter::new(5),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(done.response.level, 3);
    assert_eq!(done.response.identity.codice_fiscale, TEST_CF);
    assert_eq!(done.response.identity.given_name, "MARIA");
    assert!(!done.response.session.is_empty());
    assert!(done.outcome.paired_now);
    assert!(!done.outcome.certificate_from_cache);
    let ok = h.audit("mtls_login").await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].1, "ok");
    assert!(ok[0].0.contains(&done.response.identity.id), "{ok:?}");

    // Paired: the last 4 digits, the certificate from the cache, the same identity.
    card.power_cycle();
    card.clear_log();
    let mut again = MtlsLogin::new(&api, origin, Some(store.clone())).unwrap();
    let ch = CardChannel::new(card.clone());
    let second = again
        .tap(
            &api,
            &ch,
            Some(PinEntry::LastFour(Zeroizing::new("5678".into()))),
            &Counter::new(9),
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(second.outcome.certificate_from_cache);
    assert_eq!(second.response.identity.id, done.response.identity.id);
    assert_ne!(second.response.session, done.response.session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_the_cards_error_with_tries_left_and_logs_nobody_in() {
    let h = Harness::start().await;
    let card = Arc::new(VirtualCard::cie());
    let client =
        CompanionClient::new(h.origins(), vec![h.server.spki_pin().to_owned()], None).unwrap();
    let err = client
        .mtls_login(h.mtls_origin(), card.clone(), "11112222".into(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FlowError::Card {
            error: CardError::WrongPin { remaining: 2 }
        }
    );
    assert!(
        err.message_it().contains("PIN errato"),
        "{}",
        err.message_it()
    );
    assert!(
        err.message_it().contains("restano 2 tentativi"),
        "{}",
        err.message_it()
    );
    assert_eq!(card.pin_tries_left(), Some(2));
    // The PIN is checked before the handshake: the server never saw this card.
    assert!(h.audit("mtls_login").await.is_empty());

    // The Rust flow reports the same, typed; a session resumes with the right PIN.
    let api = h.api();
    let mut login = MtlsLogin::new(&api, api.origin(&h.mtls_origin()).unwrap(), None).unwrap();
    let ch = CardChannel::new(card.clone());
    let err = login
        .tap(
            &api,
            &ch,
            Some(full_pin("11112222")),
            &Counter::new(1),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StepError::Card(LoginError::Card(IasError::WrongPin { remaining: 1 }))
    );
    // The wrong PIN was forgotten: tapping again without one asks for it.
    let err = login
        .tap(&api, &ch, None, &Counter::new(2), &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err, StepError::Card(LoginError::PinNeeded));
    login.confirm_last_try();
    let done = login
        .tap(
            &api,
            &ch,
            Some(full_pin("12345678")),
            &Counter::new(3),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(done.response.identity.codice_fiscale, TEST_CF);
    assert_eq!(card.pin_tries_left(), Some(3));
}

/// A TLS 1.2 client trusting the server by its pin, with `client` as its certificate and
/// key (or none), POSTing to the login endpoint. The error text, or the HTTP answer.
async fn plain_client(
    h: &Harness,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<String, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pin = parse_pin(h.server.spki_pin()).unwrap();
    let verifier = PinnedVerifier::new(vec![pin], provider.signature_verification_algorithms);
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match client {
        // Through a resolver: rustls's own constructor would refuse a key that does not
        // match the certificate, which is one of the cases tested.
        Some((chain, key)) => {
            let key = rustls::crypto::ring::default_provider()
                .key_provider
                .load_private_key(key)
                .unwrap();
            let certified = rustls::sign::CertifiedKey::new(chain, key);
            builder.with_client_cert_resolver(Arc::new(Fixed(Arc::new(certified))))
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(h.server.mtls_addr().unwrap())
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let request = "POST /api/v1/card/mtls-login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Always presents the same certificate and key.
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Fixed {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A CA of our own and a client certificate it issued to a software key, naming the same
/// holder as the virtual card: only the issuer differs.
fn untrusted_client() -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Not the Ministry");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, TEST_CF);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_untrusted_ca_is_refused_with_unknown_ca_and_audited() {
    let h = Harness::start().await;
    let err = plain_client(&h, Some(untrusted_client()))
        .await
        .unwrap_err();
    assert!(err.contains("UnknownCA"), "{err}");
    let rows = h.handshake_audit("mtls_login").await;
    assert_eq!(
        rows,
        vec![("tls-handshake".into(), "untrusted_certificate".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cards_certificate_without_the_cards_key_is_refused() {
    // The genuine certificate (public, anyone may have a copy) signed for by another RSA
    // key: the CertificateVerify does not verify, so nobody logs in.
    let h = Harness::start().await;
    let cert = include_bytes!("../../card-sim/testdata/auth_cert.der").to_vec();
    let other = include_bytes!("../../card-sim/testdata/nis_intauth_key.pk8.der").to_vec();
    let client = (
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(other)),
    );
    let err = plain_client(&h, Some(client)).await.unwrap_err();
    assert!(err.contains("DecryptError"), "{err}");
    let rows = h.handshake_audit("mtls_login").await;
    assert_eq!(rows, vec![("tls-handshake".into(), "bad_signature".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let h = Harness::start().await;
    let result = plain_client(&h, None).await;
    assert!(result.is_err(), "{result:?}");
    let rows = h.handshake_audit("mtls_login").await;
    assert_eq!(
        rows,
        vec![("tls-handshake".into(), "no_certificate".into())]
    );
}

/// Log the virtual CIE in at a server configured by `setup`; the refusal the app gets.
async fn refused_card(setup: impl FnOnce(&mut Config)) -> FlowError {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(format!("sqlite:{}", dir.path().join("s.db").display()));
    config.card_cas = vec![card_sim::ias::pki::TEST_CA_CERT_DER.to_vec()];
    config.mtls_listen = Some("127.0.0.1:0".parse().unwrap());
    setup(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = companion_server::serve(config, listener).await.unwrap();
    let mtls = format!("https://{}", server.mtls_addr().unwrap());
    let client = CompanionClient::new(
        vec![server.origin().as_string(), mtls.clone()],
        vec![server.spki_pin().to_owned()],
        None,
    )
    .unwrap();
    let card = Arc::new(VirtualCard::cie());
    let err = client
        .mtls_login(mtls, card, "12345678".into(), None)
        .await
        .unwrap_err();
    let logins = server.store().audit_log().await.unwrap();
    assert!(
        logins
            .iter()
            .all(|(kind, _, outcome, _)| kind != "mtls_login" || outcome != "ok"),
        "{logins:?}"
    );
    err
}

fn server_code(err: &FlowError) -> (ErrorCode, String) {
    match err {
        FlowError::Server {
            code, message_it, ..
        } => (*code, message_it.clone()),
        other => panic!("not a server refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_reports_the_servers_alerts_as_typed_refusals_of_the_card() {
    // Not "this is not our server": the server refused the card, and says why.
    let (code, it) = server_code(&refused_card(|c| c.card_cas.clear()).await);
    assert_eq!(code, ErrorCode::UntrustedCertificate);
    assert!(it.contains("autorità"), "{it}");

    let clock = ManualClock::new();
    clock.set(2_400_000_000); // 2046: past the card's notAfter (2045)
    let (code, it) = server_code(&refused_card(|c| c.clock = Arc::new(clock)).await);
    assert_eq!(code, ErrorCode::CertificateExpired);
    assert!(it.contains("scaduto"), "{it}");

    let (code, it) = server_code(
        &refused_card(|c| c.revocation = Arc::new(RevokedSerials::new(["1003"]))).await,
    );
    assert_eq!(code, ErrorCode::CertificateRevoked);
    assert!(it.contains("revocato"), "{it}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_lost_while_the_card_signs_the_handshake_resumes_with_the_pin_held() {
    use card_sim::{Fault, FaultyTransport};
    use cie_core::apdu::ApduError;
    use cie_core::transport::TransportError;
    let h = Harness::start().await;
    let api = h.api();
    let origin = api.origin(&h.mtls_origin()).unwrap();
    let card = Arc::new(VirtualCard::cie());
    // A clean login shows where the handshake's signature is: the last INTERNAL
    // AUTHENTICATE the card receives.
    let mut clean = MtlsLogin::new(&api, origin.clone(), None).unwrap();
    let ch = CardChannel::new(card.clone());
    clean
        .tap(
            &api,
            &ch,
            Some(full_pin("12345678")),
            &Counter::new(1),
            &NoProgress,
        )
        .await
        .unwrap();
    let sign_at = card.log().iter().rposition(|a| a[1] == 0x88).unwrap();
    card.power_cycle();
    card.clear_log();

    let mut login = MtlsLogin::new(&api, origin, None).unwrap();
    let faulty = Arc::new(FaultyTransport::new(card.clone()).fail_at(sign_at, Fault::TagLost));
    let ch = CardChannel::new(faulty);
    let err = login
        .tap(
            &api,
            &ch,
            Some(full_pin("12345678")),
            &Counter::new(1),
            &NoProgress,
        )
        .await
        .unwrap_err();
    // The card's error, not the TLS failure it caused.
    assert_eq!(
        err,
        StepError::Card(LoginError::Card(IasError::Apdu(ApduError::Transport(
            TransportError::TagLost
        ))))
    );
    // Everything up to the signature reached the card (PIN verified, certificate read):
    // the tag was lost mid-handshake.
    assert_eq!(card.log().len(), sign_at);
    // Tap again, no PIN typed: the held one is verified in the new session.
    card.power_cycle();
    let ch = CardChannel::new(card.clone());
    let done = login
        .tap(&api, &ch, None, &Counter::new(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(done.response.identity.codice_fiscale, TEST_CF);
    let oks = h.audit("mtls_login").await;
    assert_eq!(oks.iter().filter(|(_, o)| o == "ok").count(), 2, "{oks:?}");
}
