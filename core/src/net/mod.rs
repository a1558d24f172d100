//! The app's HTTPS client for the login flows (docs/protocol.md): pinned keys, an origin
//! allow-list checked before any connection, short timeouts, retries only where a repeat is
//! harmless, and typed errors the UI can act on.
//!
//! Requests go through the platform's HTTPS stack behind [`platform::HttpsTransport`] (the
//! mobile library), or, with the `rustls-https` feature, through reqwest with rustls and the
//! *ring* provider (no OpenSSL, no platform verifier). Either way trust is the pin set alone
//! ([`pin`]), redirects are not followed (a redirect could lead off the allow-list), no proxy
//! is used, and the rules below are the same.

#[cfg(feature = "rustls-https")]
pub mod card_key;
pub mod pin;
pub mod platform;

use crate::flows::wire::{ApiError, ErrorCode, Origin};
use crate::otp::clock::ClockOffset;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Connecting (TCP + TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole ordinary request may take this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// A long-poll request (the server holds it up to 25 s) may take this long.
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(35);
/// Attempts of an idempotent request (the first and two retries).
pub const IDEMPOTENT_ATTEMPTS: u32 = 3;
/// Largest response body read (the protocol's are a few kilobytes).
pub const MAX_BODY: usize = 256 * 1024;
/// The app's `User-Agent`.
pub const USER_AGENT: &str = concat!("cie-companion/", env!("CARGO_PKG_VERSION"));

/// Whether a request may be sent again after a failure that left its fate unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Sent once, whatever happens: a login, claim, approval, denial, decision or code. A
    /// repeat could act twice or burn a single-use value; the flow decides what to do next.
    Never,
    /// Harmless to repeat (fetching a challenge: an unused one just expires; a GET).
    Idempotent,
}

/// A refusal by the server, as its `ApiError` body said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRefusal {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: ErrorCode,
    /// English message.
    pub message: String,
    /// Italian message.
    pub message_it: String,
    /// Code guesses left.
    pub tries_left: Option<u8>,
    /// Seconds to wait.
    pub retry_after: Option<u64>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The URL is not on the app's allow-list (nothing was sent).
    #[error("this site is not trusted: {origin}")]
    UntrustedOrigin {
        /// What was asked.
        origin: String,
    },
    /// The server's key is not the pinned one (or TLS failed): not our server.
    #[error("the server could not be verified ({reason}); do not go on")]
    UntrustedServer {
        /// TLS detail, for logs.
        reason: String,
    },
    /// No connection.
    #[error("no connection to the server ({reason}); check the connection and try again")]
    Offline {
        /// Detail, for logs.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("the server did not answer in time; check the connection and try again")]
    Timeout,
    /// The server refused with an `ApiError` body.
    #[error("{}", .0.message)]
    Refused(ServerRefusal),
    /// A non-2xx status without a readable `ApiError` body (a proxy page, a crash).
    #[error("the server answered HTTP {status}; try again later")]
    Status {
        /// HTTP status.
        status: u16,
    },
    /// A 2xx body that breaks the contract.
    #[error("invalid answer from the server ({reason}); try again later")]
    BadResponse {
        /// What was wrong.
        reason: String,
    },
    /// The app's own configuration (origins, pins) is unusable.
    #[error("invalid app configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

impl NetError {
    /// The same message in Italian, saying what to do next.
    pub fn message_it(&self) -> String {
        match self {
            Self::UntrustedOrigin { origin } => {
                format!("sito non attendibile ({origin}): non proseguire")
            }
            Self::UntrustedServer { .. } => {
                "impossibile verificare il server: potrebbe non essere quello autentico, non proseguire (se usi una rete pubblica, cambiala e riprova)".into()
            }
            Self::Offline { .. } => "nessuna connessione al server: controlla la connessione e riprova".into(),
            Self::Timeout => "il server non ha risposto in tempo: controlla la connessione e riprova".into(),
            Self::Refused(r) if !r.message_it.trim().is_empty() => r.message_it.clone(),
            Self::Refused(r) => fallback_it(r.code).into(),
            Self::Status { status } => {
                format!("il server ha risposto con un errore (HTTP {status}): riprova più tardi")
            }
            Self::BadResponse { .. } => "risposta del server non valida: riprova più tardi".into(),
            Self::Config { .. } => "configurazione dell'app non valida: aggiorna o reinstalla l'app".into(),
        }
    }

    /// A failure a repeat may cure (only used for idempotent requests).
    fn transient(&self) -> bool {
        match self {
            Self::Offline { .. } | Self::Timeout => true,
            Self::Status { status } => matches!(status, 502..=504),
            Self::Refused(r) => r.code == ErrorCode::Internal,
            _ => false,
        }
    }
}

/// Italian text for a refusal whose body had none (never expected from our server).
fn fallback_it(code: ErrorCode) -> &'static str {
    use ErrorCode as C;
    match code {
        C::Expired => "richiesta scaduta: ricomincia (se è un codice QR, inquadra quello nuovo)",
        C::AlreadyClaimed => {
            "questo codice QR è stato inquadrato da un altro telefono: l'accesso è stato annullato, ricomincia dal computer"
        }
        C::WrongCode => "codice errato: riprova",
        C::TooManyAttempts => "troppi tentativi: ricomincia dall'inizio",
        C::RateLimited => "troppe richieste: attendi qualche istante e riprova",
        C::AlreadyRegistered => "questa carta è già registrata: accedi con la carta",
        C::CardRequired => {
            "questo servizio richiede la CIE: approva con la carta (avvicinala e digita il PIN)"
        }
        C::Internal => "errore del server: riprova più tardi",
        C::UntrustedCertificate | C::CertificateExpired | C::CertificateRevoked => {
            "la carta non è accettata dal server: controlla che sia valida"
        }
        _ => "richiesta rifiutata dal server: ricomincia",
    }
}

/// Map a non-2xx answer to a typed error: an `ApiError` body when there is one.
pub fn refusal_from_body(status: u16, body: &[u8]) -> NetError {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => NetError::Refused(ServerRefusal {
            status,
            code: e.error,
            message: e.message,
            message_it: e.message_it,
            tries_left: e.tries_left,
            retry_after: e.retry_after,
        }),
        Err(_) => NetError::Status { status },
    }
}

/// Unix seconds of the device clock.
pub fn device_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The client: one per app, shared by the flows.
pub struct ApiClient {
    origins: Vec<Origin>,
    // Kept for the per-login clients of mutual TLS (`card_key`), which carry a card key.
    #[cfg(feature = "rustls-https")]
    pins: Vec<pin::Pin>,
    http: Http,
    clock: Mutex<Option<ClockOffset>>,
    backoff: Duration,
}

/// Who carries the requests.
enum Http {
    /// reqwest with rustls, trusting the pins ([`pin::PinnedVerifier`]).
    #[cfg(feature = "rustls-https")]
    Rustls(reqwest::Client),
    /// The platform's stack, its TLS trusting what the check says.
    Platform {
        transport: Arc<dyn platform::HttpsTransport>,
        check: Arc<platform::ServerKeyCheck>,
    },
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `origins` (`https://host[:port]`) trusting the server keys whose pins
    /// (base64url SHA-256 of the SubjectPublicKeyInfo) are in `pins`.
    #[cfg(feature = "rustls-https")]
    pub fn new(origins: &[String], pins: &[String]) -> Result<Self, NetError> {
        let origins = parse_origins(origins)?;
        let pins = parse_pins(pins)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            pin::PinnedVerifier::new(pins.clone(), provider.signature_verification_algorithms);
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Config {
                reason: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| NetError::Config {
                reason: e.to_string(),
            })?;
        Ok(Self {
            origins,
            pins,
            http: Http::Rustls(http),
            clock: Mutex::new(None),
            backoff: Duration::from_millis(500),
        })
    }

    /// A client for `origins` whose requests go through the platform's `transport`, its
    /// TLS trusting the keys `check` accepts (the shell built it with the same check).
    pub fn with_platform(
        origins: &[String],
        check: Arc<platform::ServerKeyCheck>,
        transport: Arc<dyn platform::HttpsTransport>,
    ) -> Result<Self, NetError> {
        let origins = parse_origins(origins)?;
        Ok(Self {
            origins,
            #[cfg(feature = "rustls-https")]
            pins: check.pins().to_vec(),
            http: Http::Platform { transport, check },
            clock: Mutex::new(None),
            backoff: Duration::from_millis(500),
        })
    }

    /// The allowed origins.
    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    /// Parse `text` as an origin and check it is on the list.
    pub fn origin(&self, text: &str) -> Result<Origin, NetError> {
        let untrusted = || NetError::UntrustedOrigin {
            origin: text.chars().take(80).collect(),
        };
        let origin = Origin::parse(text).map_err(|_| untrusted())?;
        if self.origins.contains(&origin) {
            Ok(origin)
        } else {
            Err(untrusted())
        }
    }

    /// The server clock minus the device clock, from the last answer's `Date`.
    pub fn clock_offset(&self) -> Option<ClockOffset> {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Now, in the server's time when known (for transcript `iat`, expiry checks).
    pub fn now(&self) -> u64 {
        let local = device_now();
        self.clock_offset().map_or(local, |o| o.apply(local))
    }

    /// Shorten the back-off between retries (tests).
    #[cfg(all(test, feature = "rustls-https"))]
    pub(crate) fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// `POST` `body` as JSON to `path` on `origin`, decode the answer.
    pub async fn post<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        origin: &Origin,
        path: &str,
        body: &Q,
        retry: Retry,
    ) -> Result<R, NetError> {
        let body = serde_json::to_vec(body).map_err(|e| NetError::Config {
            reason: e.to_string(),
        })?;
        self.call(origin, path, Some(body), REQUEST_TIMEOUT, retry)
            .await
    }

    /// `GET` `path` on `origin` (idempotent: retried), waiting up to `timeout`
    /// ([`LONG_POLL_TIMEOUT`] for long polls).
    pub async fn get<R: DeserializeOwned>(
        &self,
        origin: &Origin,
        path: &str,
        timeout: Duration,
    ) -> Result<R, NetError> {
        self.call(origin, path, None, timeout, Retry::Idempotent)
            .await
    }

    async fn call<R: DeserializeOwned>(
        &self,
        origin: &Origin,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
        retry: Retry,
    ) -> Result<R, NetError> {
        let url = self.url(origin, path)?;
        let attempts = match retry {
            Retry::Never => 1,
            Retry::Idempotent => IDEMPOTENT_ATTEMPTS,
        };
        let mut attempt = 1;
        loop {
            match self.once(url.clone(), body.clone(), timeout).await {
                Err(e) if attempt < attempts && e.transient() => {
                    tokio::time::sleep(self.backoff * attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(bytes) => {
                    // An empty 2xx body reads as JSON `null` (a unit answer).
                    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
                    return serde_json::from_slice(bytes).map_err(|e| NetError::BadResponse {
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// The URL of `path` on `origin`, refused unless the origin is allowed and the path
    /// cannot make the URL name another host: it starts with one `/`, and holds only the
    /// characters of an RFC 3986 path and query (no `\`, which WHATWG parsers read as `/`,
    /// no `#`, no spaces or controls, nothing outside ASCII).
    pub(crate) fn url(&self, origin: &Origin, path: &str) -> Result<String, NetError> {
        let untrusted = || NetError::UntrustedOrigin {
            origin: origin.as_string(),
        };
        let safe = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%/?".contains(c);
        // Every `%` starts an escape of two hex digits (a stray one makes platforms' URL
        // parsers give up, which would read as "no connection").
        let escapes_ok = path.match_indices('%').all(|(i, _)| {
            path.get(i + 1..i + 3)
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
        });
        if !self.origins.contains(origin)
            || !path.starts_with('/')
            || path.starts_with("//")
            || !path.chars().all(safe)
            || !escapes_ok
        {
            return Err(untrusted());
        }
        Ok(origin.url(path))
    }

    /// One request; the body of a 2xx answer.
    async fn once(
        &self,
        url: String,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        let answer = match &self.http {
            #[cfg(feature = "rustls-https")]
            Http::Rustls(http) => fetch(http, parsed_url(&url)?, body, timeout).await?,
            Http::Platform { transport, check } => {
                platform::fetch(transport, check, &url, body, timeout).await?
            }
        };
        self.record(&answer);
        answer.into_body()
    }

    /// The key pins.
    #[cfg(feature = "rustls-https")]
    pub(crate) fn pins(&self) -> &[pin::Pin] {
        &self.pins
    }

    /// Take the server clock from an answer's `Date`.
    pub(crate) fn record(&self, answer: &Answer) {
        if let Some(offset) = answer.clock {
            *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = Some(offset);
        }
    }
}

/// `https://host[:port]` texts, at least one.
fn parse_origins(origins: &[String]) -> Result<Vec<Origin>, NetError> {
    let origins = origins
        .iter()
        .map(|o| Origin::parse(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NetError::Config {
            reason: e.to_string(),
        })?;
    if origins.is_empty() {
        return Err(NetError::Config {
            reason: "at least one origin and one pin are needed".into(),
        });
    }
    Ok(origins)
}

/// Pins as `companion-server` prints them, at least one.
pub fn parse_pins(pins: &[String]) -> Result<Vec<pin::Pin>, NetError> {
    let pins = pins
        .iter()
        .map(|p| {
            pin::parse_pin(p).ok_or_else(|| NetError::Config {
                reason: format!("not a SHA-256 pin: {p}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if pins.is_empty() {
        return Err(NetError::Config {
            reason: "at least one origin and one pin are needed".into(),
        });
    }
    Ok(pins)
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    status: u16,
    body: Vec<u8>,
    clock: Option<ClockOffset>,
}

impl Answer {
    /// The body of a 2xx answer, or the refusal.
    pub(crate) fn into_body(self) -> Result<Vec<u8>, NetError> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(refusal_from_body(self.status, &self.body))
        }
    }
}

/// A URL from [`ApiClient::url`] as reqwest takes it, checked once more by its parser: the
/// scheme and that no user name crept in.
#[cfg(feature = "rustls-https")]
pub(crate) fn parsed_url(url: &str) -> Result<reqwest::Url, NetError> {
    reqwest::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https" && u.username().is_empty() && u.password().is_none())
        .ok_or_else(|| NetError::UntrustedOrigin {
            origin: url.chars().take(80).collect(),
        })
}

/// One request on `http` (JSON `body` posted, or a GET), the answer read up to
/// [`MAX_BODY`].
#[cfg(feature = "rustls-https")]
pub(crate) async fn fetch(
    http: &reqwest::Client,
    url: reqwest::Url,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, NetError> {
    let request = match body {
        Some(body) => http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body),
        None => http.get(url),
    };
    let mut response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(classify)?;
    let clock = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| ClockOffset::from_http_date(d, device_now()).ok());
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(NetError::BadResponse {
                reason: "answer too large".into(),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        body: bytes,
        clock,
    })
}

/// A reqwest failure as the user needs it: not our server, no connection, too slow.
#[cfg(feature = "rustls-https")]
fn classify(e: reqwest::Error) -> NetError {
    if let Some(tls) = tls_error(&e) {
        // Only a card login sends a client certificate, so only it can draw these.
        if let rustls::Error::AlertReceived(alert) = tls
            && let Some(refusal) = card_key::alert_refusal(alert)
        {
            return refusal;
        }
        return NetError::UntrustedServer {
            reason: tls.to_string(),
        };
    }
    if e.is_timeout() {
        return NetError::Timeout;
    }
    // Print the chain: reqwest's own text is only "error sending request".
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    NetError::Offline { reason }
}

/// The rustls error inside a reqwest error, if the failure was TLS. hyper-rustls nests it
/// in `io::Error`s, whose `source()` skips the wrapped error, hence `get_ref`.
#[cfg(feature = "rustls-https")]
fn tls_error(e: &reqwest::Error) -> Option<rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests;
