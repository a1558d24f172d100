//! HTTPS through the platform's own stack (HttpsURLConnection or OkHttp on Android,
//! URLSession on iOS) instead of reqwest and rustls, so the mobile library can leave those
//! out (docs/mobile.md, "Size of the core per ABI").
//!
//! The shell only moves bytes; every rule stays here. The core builds the request (the
//! allow-listed URL, method, headers, body, timeout, size limit) and decides whether the
//! server's key is ours: the shell's TLS trust callback hands the leaf certificate to
//! [`ServerKeyCheck::accepts`] and stops the handshake unless it says yes, so no byte of a
//! request reaches a server that is not pinned. The core reads the answer (status, `Date`
//! for the clock, body) exactly as on the reqwest path, and refuses the answers of a
//! transport that never asked it about the server's key.

use super::pin::{Pin, spki_pin};
use super::{Answer, MAX_BODY, NetError, device_now};
use crate::otp::clock::ClockOffset;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The protocol's two methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum HttpsMethod {
    /// `GET`, no body.
    Get,
    /// `POST` with a JSON body.
    Post,
}

/// One header to set on the request.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpsHeader {
    /// Name (`Accept`, `Content-Type`, `User-Agent`).
    pub name: String,
    /// Value.
    pub value: String,
}

/// One request as the core built it: send it exactly so, without following redirects,
/// through no proxy that terminates TLS, with only [`ServerKeyCheck`] as the trust.
#[derive(Clone, uniffi::Record)]
pub struct HttpsRequest {
    /// The method.
    pub method: HttpsMethod,
    /// An absolute `https://` URL on one of the app's origins (checked by the core).
    pub url: String,
    /// Headers to set; the platform may add its own (`Host`, `Content-Length`).
    pub headers: Vec<HttpsHeader>,
    /// The JSON body of a `POST`.
    pub body: Option<Vec<u8>>,
    /// Give up after this long, connection included (then `HttpsFailure::Timeout`).
    pub timeout_ms: u64,
    /// Read at most this many body bytes; a longer body is `HttpsFailure::TooLarge`.
    pub max_body: u64,
}

// Bodies carry proofs, signatures and (residents abroad) a PIN: never in a log.
impl std::fmt::Debug for HttpsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// The server's answer, whatever its status (a refusal's JSON body is read by the core).
#[derive(Clone, uniffi::Record)]
pub struct HttpsAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Date` header, as sent (the server's clock, for the OTP and expiry checks).
    pub date: Option<String>,
    /// The body, whole.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsAnswer")
            .field("status", &self.status)
            .field("date", &self.date)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why the platform got no answer. Kotlin `HttpsFailure.*`, Swift `HttpsFailure.*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum HttpsFailure {
    /// [`ServerKeyCheck::accepts`] said no and the handshake was stopped: nothing was sent.
    #[error("the server's key is not pinned")]
    ServerKeyRefused,
    /// Any other TLS failure (handshake, protocol, certificate that does not parse).
    #[error("TLS failed: {reason}")]
    Tls {
        /// The platform's text, for logs.
        reason: String,
    },
    /// No connection: DNS, refused, reset, no network.
    #[error("no connection: {reason}")]
    Offline {
        /// The platform's text, for logs.
        reason: String,
    },
    /// `timeout_ms` passed.
    #[error("timed out")]
    Timeout,
    /// The body passed `max_body`.
    #[error("answer too large")]
    TooLarge,
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HttpsFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Offline { reason: e.reason }
    }
}

/// The platform's HTTPS client, implemented by the shells. One call per request; the core
/// retries (idempotent requests only), so the implementation must not.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait HttpsTransport: Send + Sync {
    /// Send `request` and read the whole answer, or say why not.
    async fn send(&self, request: HttpsRequest) -> Result<HttpsAnswer, HttpsFailure>;
}

/// Which server keys the app trusts, for the shell's TLS trust callback (Android's
/// `X509TrustManager.checkServerTrusted`, iOS's server-trust challenge): it passes the
/// leaf certificate (the chain's first, DER) to [`accepts`](Self::accepts) and fails the
/// handshake unless it is true. Nothing else is checked — names, dates and chains: the key
/// is the trust anchor, as on the rustls path (see [`super::pin`]); the platform's TLS still
/// verifies the handshake signature, which proves the server holds that key.
#[derive(uniffi::Object)]
pub struct ServerKeyCheck {
    pins: Vec<Pin>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl std::fmt::Debug for ServerKeyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeyCheck")
            .field("pins", &self.pins.len())
            .field("accepted", &self.accepted.load(Ordering::Relaxed))
            .field("refused", &self.refused.load(Ordering::Relaxed))
            .finish()
    }
}

impl ServerKeyCheck {
    /// A check for `pins` (at least one).
    pub fn with_pins(pins: Vec<Pin>) -> Result<Self, NetError> {
        if pins.is_empty() {
            return Err(NetError::Config {
                reason: "at least one pin is needed".into(),
            });
        }
        Ok(Self {
            pins,
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The pins (the mutual-TLS login builds its own rustls client from them).
    #[cfg(feature = "rustls-https")]
    pub(crate) fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// How many handshakes the shell has let through with this check.
    pub fn accepted_count(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

#[uniffi::export]
impl ServerKeyCheck {
    /// True when `certificate` (DER, the chain's first) carries a pinned key: let the
    /// handshake go on. False (also for bytes that are not a certificate): stop it.
    pub fn accepts(&self, certificate: Vec<u8>) -> bool {
        // Pins are public: a plain comparison is fine.
        let ok = spki_pin(&certificate).is_some_and(|pin| self.pins.contains(&pin));
        let counter = if ok { &self.accepted } else { &self.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }
}

/// A shell that forgets its own timeout still cannot hold a flow longer than this beyond
/// the request's.
const GRACE: Duration = Duration::from_secs(5);

/// One request through the platform: the same [`Answer`] as the reqwest path.
pub(crate) async fn fetch(
    transport: &Arc<dyn HttpsTransport>,
    check: &ServerKeyCheck,
    url: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, NetError> {
    let header = |name: &str, value: &str| HttpsHeader {
        name: name.into(),
        value: value.into(),
    };
    let mut headers = vec![
        header("Accept", "application/json"),
        header("User-Agent", super::USER_AGENT),
    ];
    let method = if body.is_some() {
        headers.push(header("Content-Type", "application/json"));
        HttpsMethod::Post
    } else {
        HttpsMethod::Get
    };
    let request = HttpsRequest {
        method,
        url: url.into(),
        headers,
        body,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        max_body: MAX_BODY as u64,
    };
    let answer = tokio::time::timeout(timeout + GRACE, transport.send(request))
        .await
        .map_err(|_| NetError::Timeout)?
        .map_err(failure)?;
    // An answer can only be trusted if the shell's TLS asked us about the server's key at
    // least once on this client: a shell that trusts the system's CAs instead (or nothing)
    // must not work by accident. A guard against a shell never wired to the check, no more:
    // it runs after the request was sent and does not tie this answer to a checked
    // connection (the shells' tests do that: a wrong key gets nothing).
    if check.accepted_count() == 0 {
        return Err(NetError::UntrustedServer {
            reason: "the app's HTTPS transport did not let the core check the server key".into(),
        });
    }
    if answer.body.len() > MAX_BODY {
        return Err(failure(HttpsFailure::TooLarge));
    }
    let clock = answer
        .date
        .as_deref()
        .and_then(|d| ClockOffset::from_http_date(d, device_now()).ok());
    Ok(Answer {
        status: answer.status,
        body: answer.body,
        clock,
    })
}

/// The platform's failure as the flows know it from the reqwest path.
fn failure(e: HttpsFailure) -> NetError {
    match e {
        HttpsFailure::ServerKeyRefused => NetError::UntrustedServer {
            reason: "the server's key is not pinned".into(),
        },
        HttpsFailure::Tls { reason } => NetError::UntrustedServer { reason },
        HttpsFailure::Offline { reason } => NetError::Offline { reason },
        HttpsFailure::Timeout => NetError::Timeout,
        HttpsFailure::TooLarge => NetError::BadResponse {
            reason: "answer too large".into(),
        },
    }
}
