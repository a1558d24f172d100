//! The mutual-TLS card login (docs/protocol.md §1, mutual-TLS mode; the official IdP's
//! "Login2", cie.md §5.2): a second listener that requires a client certificate, and
//! `POST /api/v1/card/mtls-login` on it, which logs in the holder of that certificate.
//!
//! Where the checks happen: in the handshake. [`CardCertVerifier`] runs the same
//! [`CardVerifier`] checks as the challenge login (chain to a configured card CA, validity,
//! revocation, a codice fiscale to map), so a refused card gets the TLS alert the official
//! IdP sends (`unknown_ca`, `certificate_expired`, `certificate_revoked`) and no HTTP is
//! ever spoken with it; rustls then checks the CertificateVerify signature under the
//! certificate's key with the provider's algorithms. Failed handshakes that are about the
//! client certificate are audited from the accept loop. The handler checks the peer
//! certificate once more (its time may differ from the handshake's on a kept-alive
//! connection) and maps it to the identity exactly as the challenge login does.
//!
//! The same listener serves browsers too: `GET /login/card` ([`page`]) logs the holder in
//! with a session cookie and shows who they are. A browser with a CIE needs an origin that
//! offers TLS 1.2 only (`tls12_only`): browsers pick TLS 1.3 whenever it is offered, where
//! RSA client keys must sign PSS, which the CIE cannot; Chromium then fails with
//! `ERR_SSL_CLIENT_AUTH_NO_COMMON_ALGORITHMS` and does not retry over 1.2
//! (tests/pkcs11/chromium.sh), and NSS (Firefox) sends no certificate. A CNS (raw RSA, PSS
//! padded on the host) logs in over TLS 1.3.

mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cie_core::flows::wire::{Identity, LoginResponse, b64};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, ProtocolVersion,
    SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;
use x509_cert::der::{Decode, Encode};

use crate::api::SESSION_SECS;
use crate::card::{CardError, CardVerifier};
use crate::clock::Clock;
use crate::error::Refusal;
use crate::store::{AuditEntry, NewSession, SqlStore, Store};
use crate::{ServerError, TlsMaterial, random_bytes};

/// The login endpoint (only route of the mutual-TLS listener).
pub const MTLS_LOGIN_PATH: &str = "/api/v1/card/mtls-login";

/// A handshake may take this long: the card signs in the middle of it, and in a browser
/// that is after the user has typed the PIN into the browser's dialog (30 s cut slow
/// typists off after their PIN was accepted).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(120);

/// Handshakes in progress at once; a connection beyond that is closed at once, so slow
/// handshakes (up to [`HANDSHAKE_TIMEOUT`] each) cannot pile up without bound.
const MAX_PENDING_HANDSHAKES: usize = 256;

/// The audit kind of mutual-TLS logins and their refusals.
const AUDIT_KIND: &str = "mtls_login";

/// Accepts client certificates that pass [`CardVerifier::check_certificate`].
pub struct CardCertVerifier {
    cards: CardVerifier,
    clock: Arc<dyn Clock>,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for CardCertVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardCertVerifier")
            .field("cards", &self.cards)
            .finish_non_exhaustive()
    }
}

impl CardCertVerifier {
    /// Checks with `cards` at `clock`'s time; `ca_ders` (the same CAs) are named in the
    /// CertificateRequest so a client with several certificates can pick.
    pub fn new(cards: CardVerifier, ca_ders: &[Vec<u8>], clock: Arc<dyn Clock>) -> Self {
        let hints = ca_ders
            .iter()
            .filter_map(|der| {
                let ca = x509_cert::Certificate::from_der(der).ok()?;
                let name = ca.tbs_certificate().subject().to_der().ok()?;
                Some(DistinguishedName::from(name))
            })
            .collect();
        Self {
            cards,
            clock,
            hints,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

/// The certificate error whose alert tells the client what the official IdP would.
fn certificate_error(e: &CardError) -> CertificateError {
    match e {
        CardError::Untrusted => CertificateError::UnknownIssuer,
        CardError::Expired => CertificateError::Expired,
        CardError::Revoked => CertificateError::Revoked,
        CardError::Malformed(_) => CertificateError::BadEncoding,
        // No codice fiscale: a valid card we cannot map (alert access_denied).
        CardError::UnknownIdentity | CardError::BadSignature => {
            CertificateError::ApplicationVerificationFailure
        }
    }
}

impl ClientCertVerifier for CardCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Our clock, not rustls's: the same time as every other check (tests move it).
        match self.cards.check_certificate(end_entity, self.clock.now()) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(e) => {
                tracing::info!(error = %e, "mTLS client certificate refused");
                Err(rustls::Error::InvalidCertificate(certificate_error(&e)))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// TLS 1.2 (the CIE's, PKCS#1 CertificateVerify) and 1.3 (other clients), or 1.2 alone
/// (`tls12_only`: the origin for browsers with a CIE); client certificate required,
/// HTTP/1.1.
pub(crate) fn server_config(
    verifier: Arc<dyn ClientCertVerifier>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    tls12_only: bool,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the handler needs.
#[derive(Clone)]
struct MtlsState {
    store: Arc<SqlStore>,
    cards: CardVerifier,
    clock: Arc<dyn Clock>,
}

/// The client certificate of the connection (DER), put in each request by the accept loop.
#[derive(Clone)]
struct PeerCertificate(Arc<Vec<u8>>);

/// The connection's TLS version, put in each request by the accept loop.
#[derive(Clone, Copy)]
struct Negotiated(Option<ProtocolVersion>);

impl Negotiated {
    /// "TLS 1.2", "TLS 1.3" (what the browser page shows).
    fn label(self) -> &'static str {
        match self.0 {
            Some(ProtocolVersion::TLSv1_2) => "TLS 1.2",
            Some(ProtocolVersion::TLSv1_3) => "TLS 1.3",
            _ => "TLS",
        }
    }
}

/// Everything `serve` hands over to start the listener.
pub(crate) struct MtlsSetup<'a> {
    pub(crate) listener: TcpListener,
    pub(crate) material: &'a TlsMaterial,
    pub(crate) cards: CardVerifier,
    pub(crate) card_cas: &'a [Vec<u8>],
    pub(crate) store: Arc<SqlStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stop: watch::Receiver<bool>,
    /// Offer TLS 1.2 only (the browser origin for a CIE).
    pub(crate) tls12_only: bool,
    /// The server's metrics.
    pub(crate) metrics: Arc<crate::observability::Metrics>,
}

/// Start the mutual-TLS listener on its own task; its address and task.
pub(crate) fn start(setup: MtlsSetup<'_>) -> Result<(SocketAddr, JoinHandle<()>), ServerError> {
    let addr = setup.listener.local_addr()?;
    let verifier = CardCertVerifier::new(setup.cards.clone(), setup.card_cas, setup.clock.clone());
    let config = setup
        .material
        .mtls_server_config(Arc::new(verifier), setup.tls12_only)?;
    let state = MtlsState {
        store: setup.store,
        cards: setup.cards,
        clock: setup.clock,
    };
    let app = Router::new()
        .route(MTLS_LOGIN_PATH, post(mtls_login))
        .route(page::CARD_PAGE_PATH, get(page::card_page))
        .layer(DefaultBodyLimit::max(4096))
        .with_state(state.clone());
    let app = crate::observability::layer(app, setup.metrics);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(accept_loop(
        setup.listener,
        acceptor,
        crate::headers::harden(app),
        state,
        setup.stop,
    ));
    let tls12_only = setup.tls12_only;
    tracing::info!(%addr, tls12_only, "serving mutual-TLS card login");
    Ok((addr, task))
}

async fn mtls_login(
    State(s): State<MtlsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(PeerCertificate(der)): Extension<PeerCertificate>,
) -> Result<Response, Refusal> {
    let (identity, token) = login(&s, peer, &der, "app", AUDIT_KIND).await?;
    tracing::info!(identity = %identity.id, "mutual-TLS card login");
    let mut response = Json(LoginResponse {
        identity,
        level: 3,
        session: b64(&token),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Log in the holder of the connection's certificate `der`: check it again, map it to its
/// identity, open a session of `kind` (`app`: bearer, `desktop`: cookie), audit as
/// `audit_kind`. The identity and the session token.
async fn login(
    s: &MtlsState,
    peer: SocketAddr,
    der: &[u8],
    kind: &'static str,
    audit_kind: &'static str,
) -> Result<(Identity, [u8; 32]), Refusal> {
    let now = s.clock.now();
    let client = peer.ip().to_string();
    // The subject names the certificate, not the holder (the audit carries no identity
    // data beyond the identity id added on success).
    let subject = format!("cert:{}", b64(&Sha256::digest(der)[..12]));
    let card = match s.cards.check_certificate(der, now) {
        Ok(card) => card,
        Err(e) => {
            let refusal = Refusal::from(e);
            crate::observability::login_refused(
                crate::observability::Flow::Mtls,
                &refusal.code_str(),
            );
            let entry = AuditEntry::new(audit_kind, &subject, &refusal.code_str(), &client);
            audit(&s.store, &entry, now).await;
            return Err(refusal);
        }
    };
    let token = random_bytes::<32>()?;
    let session = NewSession {
        token_hash: Sha256::digest(token).into(),
        level: 3,
        kind,
        expires: now + SESSION_SECS,
    };
    let entry = AuditEntry::new(audit_kind, &subject, "ok", &client);
    let identity = s.store.mtls_login(&card, &session, &entry, now).await?;
    crate::observability::login_ok(crate::observability::Flow::Mtls);
    Ok((identity, token))
}

/// Best effort: the refusal stands even if the audit write fails.
async fn audit(store: &SqlStore, entry: &AuditEntry, now: u64) {
    if let Err(e) = store.audit(entry, now).await {
        tracing::error!(error = %e, "audit write failed");
    }
}

/// The audit outcome of a failed handshake, when the failure is about the client's
/// certificate or its signature (port scans and dropped connections are not audited).
fn refused_outcome(e: &std::io::Error) -> Option<&'static str> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let alert = match tls {
        rustls::Error::NoCertificatesPresented => return Some("no_certificate"),
        rustls::Error::InvalidCertificate(c) => AlertDescription::from(c.clone()),
        _ => return None,
    };
    Some(match alert {
        AlertDescription::UnknownCA => "untrusted_certificate",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::DecryptError => "bad_signature",
        AlertDescription::AccessDenied => "unknown_identity",
        _ => "bad_certificate",
    })
}

/// Like the main accept loop, plus the peer certificate in each request and an audit row
/// for each handshake refused over its client certificate.
async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    state: MtlsState,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(handshaking) = pending.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many mTLS handshakes in progress: connection closed");
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let state = state.clone();
                connections.spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                    drop(handshaking);
                    let tls = match handshake {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "mTLS handshake failed");
                            if let Some(outcome) = refused_outcome(&e) {
                                let client = peer.ip().to_string();
                                let entry = AuditEntry::new(AUDIT_KIND, "tls-handshake", outcome, &client);
                                audit(&state.store, &entry, state.clock.now()).await;
                            }
                            return;
                        }
                        Err(_) => return,
                    };
                    let negotiated = Negotiated(tls.get_ref().1.protocol_version());
                    let Some(cert) = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| PeerCertificate(Arc::new(c.to_vec())))
                    else {
                        // The verifier makes a certificate mandatory: not reached.
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |mut req: hyper::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            req.extensions_mut().insert(cert.clone());
                            req.extensions_mut().insert(negotiated);
                            app.clone().oneshot(req)
                        },
                    );
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                    if let Err(e) = served {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_errors_become_the_official_alerts() {
        let alert = |e: CardError| AlertDescription::from(certificate_error(&e));
        assert_eq!(alert(CardError::Untrusted), AlertDescription::UnknownCA);
        assert_eq!(
            alert(CardError::Expired),
            AlertDescription::CertificateExpired
        );
        assert_eq!(
            alert(CardError::Revoked),
            AlertDescription::CertificateRevoked
        );
        assert_eq!(
            alert(CardError::UnknownIdentity),
            AlertDescription::AccessDenied
        );
    }

    #[test]
    fn only_certificate_failures_are_audited() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert_eq!(
            refused_outcome(&io(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))),
            Some("untrusted_certificate")
        );
        assert_eq!(
            refused_outcome(&io(rustls::Error::NoCertificatesPresented)),
            Some("no_certificate")
        );
        assert_eq!(refused_outcome(&io(rustls::Error::DecryptError)), None);
        assert_eq!(
            refused_outcome(&std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            None
        );
    }
}
