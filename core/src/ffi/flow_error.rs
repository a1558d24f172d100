//! The one error of the login flows on the UniFFI surface: card errors (as `CardError`),
//! server refusals (with the server's code and messages), QR, network and device-key
//! failures, each with a message in Italian and English that says what to do next
//! ([`flow_error_message`]).

use super::{CardError, Language};
use crate::flows::device_key::DeviceKeyError;
use crate::flows::pairing::StoreError;
use crate::flows::step::StepError;
use crate::flows::wire::{ErrorCode, WireError};
use crate::net::NetError;

/// Why a login flow step failed, as the app must act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FlowError {
    /// The card, the NFC link or the PIN (tap again, retype the PIN…).
    #[error("{error}")]
    Card {
        /// What the card step reported.
        error: CardError,
    },
    /// The server refused. `code` says why; `tries_left` (wrong code) and `retry_after`
    /// (rate limit, seconds) when they apply.
    #[error("{message_en}")]
    Server {
        /// Stable code (`Internal` when the answer had no error body).
        code: ErrorCode,
        /// HTTP status.
        status: u16,
        /// English message (not `message`: Kotlin exceptions have one already).
        message_en: String,
        /// Italian message.
        message_it: String,
        /// Code guesses left.
        tries_left: Option<u8>,
        /// Seconds to wait.
        retry_after: Option<u64>,
    },
    /// The scanned QR is not a login code.
    #[error("this QR is not a login code: scan the QR shown by the login page")]
    NotALoginCode,
    /// A site or QR for a server not on the app's list (nothing was sent to it).
    #[error("this site is not trusted ({origin}): do not go on and close the page")]
    UntrustedSite {
        /// The origin named.
        origin: String,
    },
    /// A login code of a newer protocol version.
    #[error("this login code needs a newer version of the app: update it")]
    AppTooOld,
    /// The server's key is not the pinned one: not our server.
    #[error("the server could not be verified ({reason}): do not go on")]
    UntrustedServer {
        /// TLS detail, for logs.
        reason: String,
    },
    /// No connection.
    #[error("no connection to the server ({reason}): check the connection and try again")]
    Network {
        /// Detail, for logs.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("the server did not answer in time: check the connection and try again")]
    Timeout,
    /// The server's answer broke the protocol.
    #[error("invalid answer from the server ({reason}): try again later")]
    BadResponse {
        /// What was wrong.
        reason: String,
    },
    /// The device key or its signature is unusable (enrol the device again).
    #[error("the device key is unusable ({reason}): enrol this device again with the CIE")]
    DeviceKey {
        /// What was wrong.
        reason: String,
    },
    /// The user cancelled the keystore prompt.
    #[error("cancelled")]
    Cancelled,
    /// The keystore is unavailable.
    #[error("secure storage unavailable: {reason}")]
    Storage {
        /// Platform detail, for logs.
        reason: String,
    },
    /// This request is already finished (approved or denied): start again.
    #[error("this request is already finished: start again")]
    Finished,
    /// The number picked is not one of those shown.
    #[error("pick the number shown on the computer")]
    InvalidChoice,
    /// Another call on the same object is running.
    #[error("another operation is running")]
    Busy,
    /// The app's configuration (origins, pins) or the system failed.
    #[error("app error: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

impl From<CardError> for FlowError {
    fn from(error: CardError) -> Self {
        match error {
            CardError::Busy => Self::Busy,
            error => Self::Card { error },
        }
    }
}

impl From<NetError> for FlowError {
    fn from(e: NetError) -> Self {
        let message_it = e.message_it();
        match e {
            NetError::UntrustedOrigin { origin } => Self::UntrustedSite { origin },
            NetError::UntrustedServer { reason } => Self::UntrustedServer { reason },
            NetError::Offline { reason } => Self::Network { reason },
            NetError::Timeout => Self::Timeout,
            NetError::Refused(r) => Self::Server {
                code: r.code,
                status: r.status,
                message_en: r.message,
                message_it,
                tries_left: r.tries_left,
                retry_after: r.retry_after,
            },
            e @ NetError::Status { status } => Self::Server {
                code: ErrorCode::Internal,
                status,
                message_en: e.to_string(),
                message_it,
                tries_left: None,
                retry_after: None,
            },
            NetError::BadResponse { reason } => Self::BadResponse { reason },
            NetError::Config { reason } => Self::Internal { reason },
        }
    }
}

impl From<WireError> for FlowError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::UntrustedOrigin(origin) => Self::UntrustedSite { origin },
            WireError::UnsupportedVersion => Self::AppTooOld,
            WireError::NotALoginCode | WireError::Malformed(_) | WireError::BadOrigin(_) => {
                Self::NotALoginCode
            }
        }
    }
}

impl From<DeviceKeyError> for FlowError {
    fn from(e: DeviceKeyError) -> Self {
        match e {
            DeviceKeyError::Store(StoreError::Cancelled) => Self::Cancelled,
            DeviceKeyError::Store(StoreError::Unavailable { reason }) => Self::Storage { reason },
            e => Self::DeviceKey {
                reason: e.to_string(),
            },
        }
    }
}

impl From<StepError> for FlowError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Card(c) => CardError::from(c).into(),
            StepError::Net(n) => n.into(),
            StepError::Qr(q) => q.into(),
            StepError::DeviceKey(d) => d.into(),
            e @ StepError::Protocol(_) => Self::BadResponse {
                reason: e.to_string(),
            },
            StepError::Finished => Self::Finished,
            StepError::InvalidChoice => Self::InvalidChoice,
            e @ StepError::Randomness => Self::Internal {
                reason: e.to_string(),
            },
        }
    }
}

impl FlowError {
    /// The message in `language`, saying what to do next.
    pub fn message(&self, language: Language) -> String {
        match language {
            Language::It => self.message_it(),
            Language::En => self.message_en(),
        }
    }

    /// The message in English, saying what to do next (the `Display` text is for logs: it
    /// carries the TLS, network and protocol details).
    pub fn message_en(&self) -> String {
        match self {
            Self::Card { error } => error.message_en(),
            Self::Server { message_en, .. } if !message_en.trim().is_empty() => message_en.clone(),
            Self::Server { .. } => "The server refused the request: start again.".into(),
            Self::NotALoginCode => {
                "This QR is not a login code: scan the QR shown by the login page.".into()
            }
            Self::UntrustedSite { origin } => {
                format!("Untrusted site ({origin}): do not go on, and close the page.")
            }
            Self::AppTooOld => "This code needs a newer version of the app: update it.".into(),
            Self::UntrustedServer { .. } => "The server could not be verified: it may not be the real one, so do not go on (on a public network, switch networks and try again).".into(),
            Self::Network { .. } => {
                "No connection to the server: check the connection and try again.".into()
            }
            Self::Timeout => {
                "The server did not answer in time: check the connection and try again.".into()
            }
            Self::BadResponse { .. } => "Invalid answer from the server: try again later.".into(),
            Self::DeviceKey { .. } => {
                "This device's key is not valid: enrol the device again with the CIE.".into()
            }
            Self::Cancelled => "Cancelled: try again when you like.".into(),
            Self::Storage { .. } => "The phone's secure storage is unavailable: unlock the phone and try again, or enrol the device again.".into(),
            Self::Finished => {
                "This request is already finished: start again from the computer or the app."
                    .into()
            }
            Self::InvalidChoice => "Pick the number shown on the computer.".into(),
            Self::Busy => CardError::Busy.message_en(),
            Self::Internal { .. } => {
                "Internal app error: close the app and try again; if it keeps happening, update it."
                    .into()
            }
        }
    }

    /// The message in Italian, saying what to do next.
    pub fn message_it(&self) -> String {
        match self {
            Self::Card { error } => error.message_it(),
            Self::Server { message_it, .. } => message_it.clone(),
            Self::NotALoginCode => WireError::NotALoginCode.message_it(),
            Self::UntrustedSite { origin } => {
                format!("Sito non attendibile ({origin}): non proseguire e chiudi la pagina.")
            }
            Self::AppTooOld => WireError::UnsupportedVersion.message_it(),
            Self::UntrustedServer { .. } => NetError::UntrustedServer {
                reason: String::new(),
            }
            .message_it(),
            Self::Network { .. } => NetError::Offline {
                reason: String::new(),
            }
            .message_it(),
            Self::Timeout => NetError::Timeout.message_it(),
            Self::BadResponse { .. } => NetError::BadResponse {
                reason: String::new(),
            }
            .message_it(),
            Self::DeviceKey { .. } => DeviceKeyError::WrongKey.message_it(),
            Self::Cancelled => DeviceKeyError::Store(StoreError::Cancelled).message_it(),
            Self::Storage { reason } => DeviceKeyError::Store(StoreError::Unavailable {
                reason: reason.clone(),
            })
            .message_it(),
            Self::Finished => {
                "Questa richiesta è già conclusa: ricomincia dal computer o dall'app.".into()
            }
            Self::InvalidChoice => "Scegli il numero mostrato sul computer.".into(),
            Self::Busy => CardError::Busy.message_it(),
            Self::Internal { .. } => {
                "Errore interno dell'app: chiudila e riprova; se continua, aggiornala.".into()
            }
        }
    }
}

/// The message for a flow error in `language`, saying what to do next (UniFFI errors
/// cannot carry methods). The shells pick `language` with `language_for_locale`.
#[uniffi::export]
pub fn flow_error_message(error: FlowError, language: Language) -> String {
    error.message(language)
}

/// [`flow_error_message`] in Italian (kept for the callers written before English).
#[uniffi::export]
pub fn flow_error_message_it(error: FlowError) -> String {
    error.message_it()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::flows::login::LoginError;
    use crate::net::ServerRefusal;

    #[test]
    fn every_source_maps_to_an_actionable_error() {
        let refused = NetError::Refused(ServerRefusal {
            status: 410,
            code: ErrorCode::Expired,
            message: "QR code expired".into(),
            message_it: "codice QR scaduto: inquadra quello nuovo".into(),
            tries_left: None,
            retry_after: None,
        });
        let e = FlowError::from(StepError::Net(refused));
        assert!(matches!(
            e,
            FlowError::Server {
                code: ErrorCode::Expired,
                status: 410,
                ..
            }
        ));
        assert_eq!(e.message_it(), "codice QR scaduto: inquadra quello nuovo");

        let e = FlowError::from(StepError::Net(NetError::Status { status: 502 }));
        assert!(matches!(
            e,
            FlowError::Server {
                code: ErrorCode::Internal,
                status: 502,
                ..
            }
        ));
        assert!(e.message_it().contains("riprova più tardi"));

        let e = FlowError::from(StepError::Card(LoginError::NotPaired));
        assert_eq!(
            e,
            FlowError::Card {
                error: CardError::NotPaired
            }
        );
        assert!(e.message_it().contains("8 cifre"));

        assert_eq!(
            FlowError::from(StepError::Qr(WireError::UntrustedOrigin(
                "https://x.it".into()
            ))),
            FlowError::UntrustedSite {
                origin: "https://x.it".into()
            }
        );
        assert_eq!(
            FlowError::from(StepError::DeviceKey(DeviceKeyError::Store(
                StoreError::Cancelled
            ))),
            FlowError::Cancelled
        );
        assert!(
            FlowError::from(StepError::Net(NetError::Offline {
                reason: "dns".into()
            }))
            .message_it()
            .contains("controlla la connessione e riprova")
        );
    }

    /// One of each variant, every card error included.
    pub(crate) fn all_flow_errors() -> Vec<FlowError> {
        let detail = crate::ffi::error::tests::DETAIL;
        let mut all: Vec<FlowError> = crate::ffi::error::tests::all_card_errors()
            .into_iter()
            .map(|error| FlowError::Card { error })
            .collect();
        all.extend([
            FlowError::Server {
                code: ErrorCode::Expired,
                status: 410,
                message_en: "QR code expired: scan the new one".into(),
                message_it: "codice QR scaduto: inquadra quello nuovo".into(),
                tries_left: None,
                retry_after: None,
            },
            FlowError::Server {
                code: ErrorCode::Internal,
                status: 502,
                message_en: " ".into(),
                message_it: "il server ha risposto con un errore (HTTP 502): riprova più tardi"
                    .into(),
                tries_left: None,
                retry_after: None,
            },
            FlowError::NotALoginCode,
            FlowError::UntrustedSite {
                origin: "https://x.example".into(),
            },
            FlowError::AppTooOld,
            FlowError::UntrustedServer {
                reason: detail.into(),
            },
            FlowError::Network {
                reason: detail.into(),
            },
            FlowError::Timeout,
            FlowError::BadResponse {
                reason: detail.into(),
            },
            FlowError::DeviceKey {
                reason: detail.into(),
            },
            FlowError::Cancelled,
            FlowError::Storage {
                reason: detail.into(),
            },
            FlowError::Finished,
            FlowError::InvalidChoice,
            FlowError::Busy,
            FlowError::Internal {
                reason: detail.into(),
            },
        ]);
        for e in &all {
            // No wildcard: a new variant stops this from compiling until it is in the list.
            match e {
                FlowError::Card { .. }
                | FlowError::Server { .. }
                | FlowError::NotALoginCode
                | FlowError::UntrustedSite { .. }
                | FlowError::AppTooOld
                | FlowError::UntrustedServer { .. }
                | FlowError::Network { .. }
                | FlowError::Timeout
                | FlowError::BadResponse { .. }
                | FlowError::DeviceKey { .. }
                | FlowError::Cancelled
                | FlowError::Storage { .. }
                | FlowError::Finished
                | FlowError::InvalidChoice
                | FlowError::Busy
                | FlowError::Internal { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_has_a_different_italian_and_english_message() {
        let detail = crate::ffi::error::tests::DETAIL;
        for e in all_flow_errors() {
            let it = flow_error_message(e.clone(), Language::It);
            let en = flow_error_message(e.clone(), Language::En);
            assert!(
                it.trim().len() > 10 && en.trim().len() > 10,
                "{e:?}: {it} / {en}"
            );
            assert_ne!(it, en, "{e:?}");
            assert_eq!(flow_error_message_it(e.clone()), it);
            assert!(
                !it.contains(detail) && !en.contains(detail),
                "{e:?}: {it} / {en}"
            );
        }
        // The server's own words when it gave them; a fallback when it did not.
        let expired = &all_flow_errors()[crate::ffi::error::tests::all_card_errors().len()];
        assert_eq!(expired.message_en(), "QR code expired: scan the new one");
        let blank = &all_flow_errors()[crate::ffi::error::tests::all_card_errors().len() + 1];
        assert!(blank.message_en().contains("start again"));
        assert_eq!(
            FlowError::Card {
                error: CardError::TagLost
            }
            .message(Language::En),
            "The card moved away: hold it against the phone again and keep it still."
        );
    }
}
