//! Refusals as the protocol's `ApiError` bodies: a stable code, and messages in English and
//! Italian that tell the user what to do next.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cie_core::flows::wire::{ApiError, ErrorCode};

use crate::card::CardError;
use crate::store::StoreError;

/// A refused request.
#[derive(Debug, Clone)]
pub struct Refusal(pub ApiError);

impl Refusal {
    /// The refusal of `code`, with its standard messages.
    pub fn new(code: ErrorCode) -> Self {
        let (en, it) = messages(code);
        Self(ApiError {
            error: code,
            message: en.into(),
            message_it: it.into(),
            tries_left: None,
            retry_after: None,
        })
    }

    /// With other messages.
    pub fn with(code: ErrorCode, en: &str, it: &str) -> Self {
        let mut r = Self::new(code);
        r.0.message = en.into();
        r.0.message_it = it.into();
        r
    }

    /// A wrong code with what is left.
    pub fn wrong_code(tries_left: u8) -> Self {
        let mut r = Self::new(ErrorCode::WrongCode);
        r.0.tries_left = Some(tries_left);
        r
    }

    /// Rate limited.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut r = Self::new(ErrorCode::RateLimited);
        r.0.retry_after = Some(retry_after);
        r
    }

    /// The code, for the audit trail.
    pub fn code_str(&self) -> String {
        serde_json::to_value(self.0.error)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "error".into())
    }

    fn status(&self) -> StatusCode {
        use ErrorCode::*;
        match self.0.error {
            BadRequest => StatusCode::BAD_REQUEST,
            NotFound => StatusCode::NOT_FOUND,
            Expired => StatusCode::GONE,
            Replayed | AlreadyClaimed | WrongState | AlreadyRegistered => StatusCode::CONFLICT,
            BadSignature | UntrustedCertificate | CertificateExpired | CertificateRevoked
            | UnknownIdentity | WrongDevice | ContextMismatch | WrongNumber | CardRequired => {
                StatusCode::FORBIDDEN
            }
            WrongCode => StatusCode::UNAUTHORIZED,
            TooManyAttempts => StatusCode::FORBIDDEN,
            NotThisBrowser => StatusCode::FORBIDDEN,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn messages(code: ErrorCode) -> (&'static str, &'static str) {
    use ErrorCode::*;
    match code {
        BadRequest => (
            "The request is malformed: update the app and try again.",
            "Richiesta non valida: aggiorna l'app e riprova.",
        ),
        NotFound => (
            "Not found: start again from the login page.",
            "Non trovato: ricomincia dalla pagina di accesso.",
        ),
        Expired => ("Time ran out: start again.", "Tempo scaduto: ricomincia."),
        Replayed => (
            "This request was already used: start again.",
            "Questa richiesta è già stata usata: ricomincia.",
        ),
        AlreadyClaimed => (
            "Another phone scanned this code, so it was cancelled: reload the page and scan the new code.",
            "Un altro telefono ha inquadrato questo codice, che è stato annullato: ricarica la pagina e inquadra il nuovo codice.",
        ),
        WrongState => (
            "This login is no longer waiting for this step: start again.",
            "Questo accesso non è più in attesa di questo passaggio: ricomincia.",
        ),
        BadSignature => (
            "The signature does not verify: try again, and if it keeps failing, contact support.",
            "La firma non è valida: riprova; se l'errore si ripete, contatta l'assistenza.",
        ),
        UntrustedCertificate => (
            "This card was not issued by an authority this service trusts.",
            "Questa carta non è stata emessa da un'autorità riconosciuta da questo servizio.",
        ),
        CertificateExpired => (
            "The card's certificate is expired or not yet valid: check the card's expiry date.",
            "Il certificato della carta è scaduto o non ancora valido: controlla la scadenza della carta.",
        ),
        CertificateRevoked => (
            "This card has been revoked: contact your municipality.",
            "Questa carta è stata revocata: rivolgiti al tuo Comune.",
        ),
        UnknownIdentity => (
            "The card names no codice fiscale: it cannot be used to log in.",
            "La carta non riporta un codice fiscale: non può essere usata per l'accesso.",
        ),
        WrongCode => (
            "Wrong code: type the code shown on your phone.",
            "Codice errato: digita il codice mostrato sul telefono.",
        ),
        TooManyAttempts => (
            "Too many wrong codes: reload the page and start again.",
            "Troppi codici errati: ricarica la pagina e ricomincia.",
        ),
        WrongDevice => (
            "This phone is not enrolled for this person.",
            "Questo telefono non è registrato per questa persona.",
        ),
        ContextMismatch => (
            "What was approved is not what the server showed: start again.",
            "Ciò che è stato autorizzato non corrisponde alla richiesta: ricomincia.",
        ),
        WrongNumber => (
            "Wrong number: pick the number shown on the computer.",
            "Numero errato: scegli il numero mostrato sul computer.",
        ),
        NotThisBrowser => (
            "This login was started in another browser: continue there or start again here.",
            "Questo accesso è stato avviato in un altro browser: prosegui lì o ricomincia qui.",
        ),
        RateLimited => (
            "Too many requests: wait a moment and try again.",
            "Troppe richieste: attendi qualche istante e riprova.",
        ),
        Internal => (
            "Server error: try again later.",
            "Errore del server: riprova più tardi.",
        ),
        AlreadyRegistered => (
            "This card is already registered: log in with it.",
            "Questa carta è già registrata: accedi con la carta.",
        ),
        CardRequired => (
            "This service asks for your CIE: approve with the card (tap it and type the PIN).",
            "Questo servizio richiede la CIE: approva con la carta (avvicinala e digita il PIN).",
        ),
    }
}

impl From<CardError> for Refusal {
    fn from(e: CardError) -> Self {
        Self::new(match e {
            CardError::Malformed(_) => ErrorCode::BadRequest,
            CardError::Untrusted => ErrorCode::UntrustedCertificate,
            CardError::Expired => ErrorCode::CertificateExpired,
            CardError::Revoked => ErrorCode::CertificateRevoked,
            CardError::BadSignature => ErrorCode::BadSignature,
            CardError::UnknownIdentity => ErrorCode::UnknownIdentity,
        })
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::new(ErrorCode::Internal)
    }
}

impl From<getrandom::Error> for Refusal {
    fn from(e: getrandom::Error) -> Self {
        tracing::error!(error = %e, "no randomness");
        Self::new(ErrorCode::Internal)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.0.retry_after;
        let code = crate::observability::RefusedCode(self.code_str());
        let mut resp = (status, Json(self.0)).into_response();
        // For the access line and the login counters (observability::observe).
        resp.extensions_mut().insert(code);
        if let Some(s) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            resp.headers_mut().insert(header::RETRY_AFTER, s);
        }
        resp
    }
}
