//! Mutual TLS with the CIE as the client key (docs/protocol.md §1, mutual-TLS mode; the
//! official IdP's "Login2", cie.md §5.2): the card's certificate is the TLS client
//! certificate and the card signs the CertificateVerify. The CIE signs only RSA PKCS#1
//! v1.5, and TLS 1.3 forbids PKCS#1 in CertificateVerify, so this is TLS 1.2 offering only
//! `rsa_pkcs1_sha256`.
//!
//! rustls asks for the signature synchronously (`Signer::sign`) in the middle of the
//! handshake, while the card answers asynchronously (an NFC transceive the platform
//! completes later). The bridge: the TLS connection runs on a thread of its own with a
//! private single-thread tokio runtime ([`spawn_post`]); `sign` hands the transcript to the
//! login's task over a channel ([`SignRequest`]) and blocks that private thread until the
//! card has answered. Blocking there stalls nothing else (no other task lives on that
//! runtime), and the card keeps running where the caller drives it (the app's executor,
//! where its transport's callbacks land), so neither side needs `block_in_place`, a
//! multi-thread runtime, or a `Send + 'static` card channel.

use super::pin::{Pin, PinnedVerifier};
use super::{Answer, CONNECT_TIMEOUT, NetError, REQUEST_TIMEOUT, ServerRefusal, fetch};
use crate::flows::wire::ErrorCode;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{AlertDescription, SignatureAlgorithm, SignatureScheme};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::{mpsc as async_mpsc, oneshot};

/// The only scheme offered: the card pads PKCS#1 v1.5 over a SHA-256 DigestInfo.
pub const CARD_SCHEME: SignatureScheme = SignatureScheme::RSA_PKCS1_SHA256;

/// How long the handshake waits for the card (a signature takes well under a second; this
/// only bounds a card or task that has gone away).
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(20);

/// A handshake's request for a card signature of `message` (PKCS#1 v1.5 over
/// SHA-256(`message`)). Answer with [`SignRequest::reply`].
pub struct SignRequest {
    message: Vec<u8>,
    reply: mpsc::SyncSender<Option<Vec<u8>>>,
}

impl std::fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest")
            .field("message_len", &self.message.len())
            .finish_non_exhaustive()
    }
}

impl SignRequest {
    /// What to sign (the TLS 1.2 handshake transcript so far).
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The signature, or `None` when the card failed (the flow keeps the card's error).
    pub fn reply(self, signature: Option<Vec<u8>>) {
        // The handshake may have given up waiting: nothing to tell then.
        let _ = self.reply.send(signature);
    }
}

/// The requests of one login's handshake.
pub type SignRequests = async_mpsc::UnboundedReceiver<SignRequest>;

/// The card's key as rustls sees it.
#[derive(Debug)]
struct CardKey {
    requests: async_mpsc::UnboundedSender<SignRequest>,
}

impl SigningKey for CardKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&CARD_SCHEME).then(|| {
            Box::new(CardTlsSigner {
                requests: self.requests.clone(),
            }) as Box<dyn Signer>
        })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct CardTlsSigner {
    requests: async_mpsc::UnboundedSender<SignRequest>,
}

impl Signer for CardTlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        let request = SignRequest {
            message: message.to_vec(),
            reply,
        };
        let gone = || rustls::Error::General("the card is no longer available".into());
        self.requests.send(request).map_err(|_| gone())?;
        // Blocks the connection's own thread (see the module comment), never a shared one.
        match answer.recv_timeout(SIGN_TIMEOUT) {
            Ok(Some(signature)) => Ok(signature),
            Ok(None) => Err(rustls::Error::General("the card did not sign".into())),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(rustls::Error::General(
                "the card did not sign in time".into(),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        CARD_SCHEME
    }
}

/// Sends the card's certificate whenever the server asks for one we can sign for.
#[derive(Debug)]
struct CardCertResolver(Arc<CertifiedKey>);

impl ResolvesClientCert for CardCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // A server that cannot take PKCS#1 SHA-256 gets no certificate and refuses us
        // itself, with its own alert.
        sigschemes.contains(&CARD_SCHEME).then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The TLS configuration of one card login: TLS 1.2 only, the server's key pinned, the
/// card's `certificate` (DER) as client certificate with a key whose signatures arrive on
/// the returned [`SignRequests`]. No session resumption: every login is a full handshake
/// the card signs.
pub(crate) fn client_config(
    pins: &[Pin],
    certificate: Vec<u8>,
) -> Result<(rustls::ClientConfig, SignRequests), NetError> {
    let config_error = |e: rustls::Error| NetError::Config {
        reason: e.to_string(),
    };
    let (requests, receiver) = async_mpsc::unbounded_channel();
    let key = CertifiedKey::new(
        vec![CertificateDer::from(certificate)],
        Arc::new(CardKey { requests }),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedVerifier::new(pins.to_vec(), provider.signature_verification_algorithms);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(CardCertResolver(Arc::new(key))));
    config.resumption = rustls::client::Resumption::disabled();
    Ok((config, receiver))
}

/// POST `body` (JSON) to `url` over `config` on a new thread with its own single-thread
/// runtime (the side of the bridge that may block, see the module comment). The answer
/// arrives on the returned receiver once the thread has dropped the connection, and with
/// it the key: by then the [`SignRequests`] stream has ended.
pub(crate) fn spawn_post(
    config: rustls::ClientConfig,
    url: reqwest::Url,
    body: Vec<u8>,
) -> Result<oneshot::Receiver<Result<Answer, NetError>>, NetError> {
    let (done, answer) = oneshot::channel();
    let thread_error = |e: std::io::Error| NetError::Config {
        reason: format!("cannot start the TLS thread: {e}"),
    };
    std::thread::Builder::new()
        .name("cie-mtls".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(runtime) => {
                    let result = runtime.block_on(post(config, url, body));
                    // Drop the connection (and the card key in it) before answering.
                    drop(runtime);
                    result
                }
                Err(e) => Err(thread_error(e)),
            };
            let _ = done.send(result);
        })
        .map_err(thread_error)?;
    Ok(answer)
}

async fn post(
    config: rustls::ClientConfig,
    url: reqwest::Url,
    body: Vec<u8>,
) -> Result<Answer, NetError> {
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(super::USER_AGENT)
        .build()
        .map_err(|e| NetError::Config {
            reason: e.to_string(),
        })?;
    fetch(&http, url, Some(body), REQUEST_TIMEOUT).await
}

/// The server refused the card's certificate or signature with a TLS alert, as the
/// official IdP does (`unknown_ca`, `certificate_expired`, `certificate_revoked`): a
/// refusal with the protocol's code, HTTP status 0 (no HTTP was spoken). `None` for other
/// alerts.
pub(crate) fn alert_refusal(alert: AlertDescription) -> Option<NetError> {
    use AlertDescription as A;
    let (code, en, it) = match alert {
        A::UnknownCA | A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => (
            ErrorCode::UntrustedCertificate,
            "the server does not accept this card's certificate (not issued by an authority it trusts)",
            "il server non accetta il certificato di questa carta (non è emesso da un'autorità riconosciuta)",
        ),
        A::CertificateExpired => (
            ErrorCode::CertificateExpired,
            "the card's certificate is expired or not yet valid",
            "il certificato della carta è scaduto o non ancora valido: controlla la scadenza della carta",
        ),
        A::CertificateRevoked => (
            ErrorCode::CertificateRevoked,
            "the card's certificate is revoked: the card is no longer valid",
            "il certificato della carta è revocato: la carta non è più valida",
        ),
        A::AccessDenied => (
            ErrorCode::UnknownIdentity,
            "the server does not recognise the card holder",
            "il server non riconosce il titolare della carta",
        ),
        A::DecryptError => (
            ErrorCode::BadSignature,
            "the server did not accept the card's signature; try again",
            "il server non ha accettato la firma della carta: riprova",
        ),
        _ => return None,
    };
    Some(NetError::Refused(ServerRefusal {
        status: 0,
        code,
        message: format!("{en} (TLS alert {alert:?})"),
        message_it: it.into(),
        tries_left: None,
        retry_after: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pkcs1_sha256_is_offered() {
        let (requests, _rx) = async_mpsc::unbounded_channel();
        let key = CardKey { requests };
        assert!(
            key.choose_scheme(&[SignatureScheme::RSA_PSS_SHA256])
                .is_none()
        );
        let signer = key
            .choose_scheme(&[SignatureScheme::RSA_PSS_SHA256, CARD_SCHEME])
            .unwrap();
        assert_eq!(signer.scheme(), CARD_SCHEME);
        assert_eq!(key.algorithm(), SignatureAlgorithm::RSA);
    }

    #[test]
    fn a_gone_card_fails_the_signature_at_once() {
        let (requests, rx) = async_mpsc::unbounded_channel();
        drop(rx);
        let signer = CardTlsSigner { requests };
        assert!(signer.sign(b"transcript").is_err());
    }

    #[test]
    fn the_signature_comes_from_the_card_side() {
        let (requests, mut rx) = async_mpsc::unbounded_channel::<SignRequest>();
        let card = std::thread::spawn(move || {
            let req = rx.blocking_recv().unwrap();
            assert_eq!(req.message(), b"transcript");
            req.reply(Some(vec![1, 2, 3]));
        });
        let signer = CardTlsSigner { requests };
        assert_eq!(signer.sign(b"transcript").unwrap(), vec![1, 2, 3]);
        card.join().unwrap();
    }

    #[test]
    fn certificate_alerts_are_card_refusals() {
        let Some(NetError::Refused(r)) = alert_refusal(AlertDescription::UnknownCA) else {
            panic!("unknown_ca is a refusal");
        };
        assert_eq!(r.code, ErrorCode::UntrustedCertificate);
        assert!(alert_refusal(AlertDescription::HandshakeFailure).is_none());
    }
}
