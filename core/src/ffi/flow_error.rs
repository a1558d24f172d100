//! The one error of the login flows on the UniFFI surface: card errors (as `CardError`),
//! server refusals (with the server's code and messages), QR, network and device-key
//! failures, each with an Italian message that says what to do next
//! ([`flow_error_message_it`]).

use super::CardError;
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

/// The Italian message for a flow error (UniFFI errors cannot carry methods).
#[uniffi::export]
pub fn flow_error_message_it(error: FlowError) -> String {
    error.message_it()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn every_variant_has_an_italian_message() {
        let all = [
            FlowError::Card {
                error: CardError::TagLost,
            },
            FlowError::NotALoginCode,
            FlowError::UntrustedSite { origin: "o".into() },
            FlowError::AppTooOld,
            FlowError::UntrustedServer { reason: "r".into() },
            FlowError::Network { reason: "r".into() },
            FlowError::Timeout,
            FlowError::BadResponse { reason: "r".into() },
            FlowError::DeviceKey { reason: "r".into() },
            FlowError::Cancelled,
            FlowError::Storage { reason: "r".into() },
            FlowError::Finished,
            FlowError::InvalidChoice,
            FlowError::Busy,
            FlowError::Internal { reason: "r".into() },
        ];
        for e in all {
            let it = e.message_it();
            assert!(it.len() > 10, "{e:?}: {it}");
        }
    }
}
