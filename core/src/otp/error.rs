//! OTP errors and warnings, each with an English and an Italian message that says what to
//! do next. No secret or code ever goes into a message.

use crate::ffi::Language;
use crate::flows::pairing::StoreError;

/// Why a URI, token or code request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum OtpError {
    /// Not an `otpauth://` URI, or structurally broken.
    #[error(
        "not a valid otpauth link: {reason}; scan the QR code again or ask the service for a new one"
    )]
    InvalidUri {
        /// What is wrong, without the secret.
        reason: String,
    },
    /// A type other than `totp` or `hotp`.
    #[error(
        "unsupported code type \"{kind}\": only time-based (totp) and counter-based (hotp) codes are supported"
    )]
    UnsupportedType {
        /// The type as written.
        kind: String,
    },
    /// An algorithm other than SHA1/SHA256/SHA512.
    #[error(
        "unsupported algorithm \"{name}\": codes would not match the service's, so the token was not added"
    )]
    UnsupportedAlgorithm {
        /// The algorithm as written.
        name: String,
    },
    /// Digits outside 6–8.
    #[error("unsupported code length {digits}: only 6, 7 or 8 digits are supported")]
    UnsupportedDigits {
        /// The value as written (0 when not a number).
        digits: u32,
    },
    /// A zero or unreadable period.
    #[error("unsupported period {period} s: the period must be a positive number of seconds")]
    UnsupportedPeriod {
        /// The value as written (0 when not a number).
        period: u64,
    },
    /// The URI has no secret.
    #[error("the link has no secret; ask the service for a new QR code")]
    MissingSecret,
    /// The secret is not Base32.
    #[error("the secret is not valid Base32 ({reason}); check it was copied completely")]
    BadSecret {
        /// Which character or length is wrong (never the secret).
        reason: String,
    },
    /// Under 80 bits: guessable, refused.
    #[error(
        "the secret is too short ({bits} bits, at least 80 required): ask the service for a new one"
    )]
    SecretTooShort {
        /// Its length in bits.
        bits: u32,
    },
    /// The device clock is before the token's T0.
    #[error(
        "the device clock ({unix}) is before the token's start time ({t0}): set the date and time automatically"
    )]
    ClockBeforeEpoch {
        /// Device time, Unix seconds.
        unix: u64,
        /// The token's T0.
        t0: u64,
    },
    /// No token with this name or id.
    #[error("no code named \"{name}\"; list the saved codes and try again")]
    NotFound {
        /// Name asked for.
        name: String,
    },
    /// A token with this issuer and account already exists.
    #[error("a code for \"{name}\" is already saved; remove it first to replace it")]
    Duplicate {
        /// The existing token's name.
        name: String,
    },
    /// The platform keystore failed or the user cancelled.
    #[error("secure storage: {0}")]
    Store(#[from] StoreError),
    /// The saved data is unreadable (corrupt or from a newer version).
    #[error("saved codes are unreadable: {reason}")]
    Corrupt {
        /// What failed to parse.
        reason: String,
    },
    /// More than one saved code matches the name.
    #[error("more than one code matches \"{name}\"; use the full name (service:account)")]
    Ambiguous {
        /// Name asked for.
        name: String,
    },
    /// The server's time could not be read (clock correction skipped).
    #[error("server time unreadable: {reason}")]
    BadServerTime {
        /// What was wrong.
        reason: String,
    },
    /// A bug on our side; report it.
    #[error("internal error: {reason}")]
    Internal {
        /// Detail for the report.
        reason: String,
    },
}

impl OtpError {
    /// The message in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::InvalidUri { reason } => format!(
                "link otpauth non valido: {reason}; inquadra di nuovo il codice QR o chiedine uno nuovo al servizio"
            ),
            Self::UnsupportedType { kind } => format!(
                "tipo di codice \"{kind}\" non supportato: sono supportati solo codici a tempo (totp) e a contatore (hotp)"
            ),
            Self::UnsupportedAlgorithm { name } => format!(
                "algoritmo \"{name}\" non supportato: i codici non coinciderebbero con quelli del servizio, quindi non è stato aggiunto"
            ),
            Self::UnsupportedDigits { digits } => {
                format!("lunghezza del codice {digits} non supportata: sono ammesse 6, 7 o 8 cifre")
            }
            Self::UnsupportedPeriod { period } => format!(
                "periodo di {period} s non supportato: deve essere un numero positivo di secondi"
            ),
            Self::MissingSecret => {
                "il link non contiene il segreto: chiedi al servizio un nuovo codice QR".into()
            }
            Self::BadSecret { reason } => format!(
                "il segreto non è in Base32 valido ({reason}): controlla di averlo copiato per intero"
            ),
            Self::SecretTooShort { bits } => format!(
                "segreto troppo corto ({bits} bit, ne servono almeno 80): chiedine uno nuovo al servizio"
            ),
            Self::ClockBeforeEpoch { .. } => {
                "l'orologio del dispositivo è indietro: imposta data e ora automatiche".into()
            }
            Self::NotFound { name } => {
                format!(
                    "nessun codice di nome \"{name}\": controlla l'elenco dei codici salvati e riprova"
                )
            }
            Self::Duplicate { name } => {
                format!("un codice per \"{name}\" è già salvato: rimuovilo prima di sostituirlo")
            }
            Self::Ambiguous { name } => format!(
                "più di un codice corrisponde a \"{name}\": usa il nome completo (servizio:account)"
            ),
            Self::BadServerTime { reason } => format!("ora del server non leggibile: {reason}"),
            Self::Store(e) => format!("archivio sicuro: {e}"),
            Self::Corrupt { reason } => format!("i codici salvati non sono leggibili: {reason}"),
            Self::Internal { reason } => format!("errore interno: {reason}"),
        }
    }
}

/// The message for an OTP error in the shell's language (English is the error's
/// `Display`, Italian [`OtpError::message_it`]).
#[uniffi::export]
pub fn otp_error_message(error: OtpError, language: Language) -> String {
    match language {
        Language::It => error.message_it(),
        Language::En => error.to_string(),
    }
}

/// [`otp_error_message`] in Italian (kept for the callers written before English).
#[uniffi::export]
pub fn otp_error_message_it(error: OtpError) -> String {
    error.message_it()
}

/// Accepted, but worth telling the user about.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum UriWarning {
    /// 80–127 bits: accepted, below RFC 4226's 128-bit minimum.
    ShortSecret {
        /// Its length in bits.
        bits: u32,
    },
    /// The label's issuer prefix and the `issuer` parameter differ; the parameter wins.
    IssuerMismatch {
        /// Prefix in the label.
        label: String,
        /// The `issuer` parameter (used).
        parameter: String,
    },
    /// An hotp link without `counter`: started at 0.
    CounterMissing,
}

impl UriWarning {
    /// The warning in English.
    pub fn message_en(&self) -> String {
        match self {
            Self::ShortSecret { bits } => format!(
                "the service uses a short secret ({bits} bits, 128 recommended): codes work but are weaker"
            ),
            Self::IssuerMismatch { label, parameter } => format!(
                "the link names two issuers (\"{label}\" and \"{parameter}\"); saved as \"{parameter}\""
            ),
            Self::CounterMissing => "the link has no counter; started from 0".into(),
        }
    }

    /// The warning in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::ShortSecret { bits } => format!(
                "il servizio usa un segreto corto ({bits} bit, ne sono consigliati 128): i codici funzionano ma sono più deboli"
            ),
            Self::IssuerMismatch { label, parameter } => format!(
                "il link indica due emittenti (\"{label}\" e \"{parameter}\"); salvato come \"{parameter}\""
            ),
            Self::CounterMissing => "il link non indica il contatore; si parte da 0".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error has a message in each language, the two differ, and the language asked
    /// for is the one given.
    #[test]
    fn every_error_speaks_both_languages() {
        let all = [
            OtpError::InvalidUri { reason: "r".into() },
            OtpError::UnsupportedType { kind: "k".into() },
            OtpError::UnsupportedAlgorithm { name: "n".into() },
            OtpError::UnsupportedDigits { digits: 9 },
            OtpError::UnsupportedPeriod { period: 0 },
            OtpError::MissingSecret,
            OtpError::BadSecret { reason: "r".into() },
            OtpError::SecretTooShort { bits: 40 },
            OtpError::ClockBeforeEpoch { unix: 1, t0: 2 },
            OtpError::NotFound { name: "n".into() },
            OtpError::Duplicate { name: "n".into() },
            OtpError::Store(StoreError::Unavailable { reason: "r".into() }),
            OtpError::Corrupt { reason: "r".into() },
            OtpError::Ambiguous { name: "n".into() },
            OtpError::BadServerTime { reason: "r".into() },
            OtpError::Internal { reason: "r".into() },
        ];
        for e in all {
            let it = otp_error_message(e.clone(), Language::It);
            let en = otp_error_message(e.clone(), Language::En);
            assert!(!it.is_empty() && !en.is_empty(), "{e:?}");
            assert_ne!(it, en, "{e:?}");
            assert_eq!(it, otp_error_message_it(e.clone()));
            assert_eq!(en, e.to_string());
        }
        assert!(
            otp_error_message(OtpError::MissingSecret, Language::En).contains("ask the service")
        );
        assert!(
            otp_error_message(OtpError::MissingSecret, Language::It).contains("chiedi al servizio")
        );
    }
}
