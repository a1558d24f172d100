//! Errors of the CNS applet, in English (`Display`) and Italian ([`CnsError::message_it`]),
//! each saying what to do next.

use crate::apdu::ApduError;
use crate::tlv::DecodeError;

/// Why a CNS operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CnsError {
    /// The exchange with the card failed.
    #[error(transparent)]
    Apdu(#[from] ApduError),
    /// The card answered, but has no CNS file layout.
    #[error("this card is not a CNS or TS-CNS: insert your health card (TS-CNS) or CNS")]
    NotACns,
    /// Wrong PIN; `remaining` tries left.
    #[error("wrong PIN: {remaining} tries left; check the PIN from your activation letter")]
    WrongPin {
        /// Tries left.
        remaining: u8,
    },
    /// The PIN is blocked.
    #[error("the PIN is blocked: unblock it with the PUK (issuer's software or desk)")]
    PinBlocked,
    /// One try is left and the caller has not confirmed it may be spent.
    #[error("one PIN try left: confirm before trying, a wrong PIN will block the card")]
    LastTryNeedsConfirmation,
    /// The PIN is not 5 to 8 digits; it never reached the card.
    #[error("the CNS PIN is 5 to 8 digits; no try was spent")]
    PinFormat,
    /// Signing needs the PIN verified first.
    #[error("enter the PIN first")]
    PinRequired,
    /// The data to sign does not fit the key.
    #[error("the data to sign does not fit a {modulus_len}-byte RSA key")]
    InputLength {
        /// The key's modulus length in bytes.
        modulus_len: usize,
    },
    /// A file's contents did not decode.
    #[error("malformed {what} on the card: {reason}; the card may be damaged, ask the issuer")]
    Malformed {
        /// Which file or object.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl CnsError {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    /// The message in Italian, for the citizen.
    pub fn message_it(&self) -> String {
        match self {
            Self::Apdu(e) => e.message_it(),
            Self::NotACns => "Questa carta non è una CNS o TS-CNS: inserisci la tessera sanitaria (TS-CNS) o la CNS.".into(),
            Self::WrongPin { remaining } => format!(
                "PIN errato: restano {remaining} tentativi. Controlla il PIN ricevuto all'attivazione."
            ),
            Self::PinBlocked => "Il PIN è bloccato: sbloccalo con il PUK (software o sportello dell'ente emettitore).".into(),
            Self::LastTryNeedsConfirmation => "Resta un solo tentativo: conferma prima di provare, un PIN errato bloccherà la carta.".into(),
            Self::PinFormat => "Il PIN della CNS è di 5-8 cifre; nessun tentativo è stato usato.".into(),
            Self::PinRequired => "Inserisci prima il PIN.".into(),
            Self::InputLength { modulus_len } => {
                format!("I dati da firmare non entrano in una chiave RSA di {modulus_len} byte.")
            }
            Self::Malformed { what, reason } => format!(
                "Dato non valido sulla carta ({what}: {reason}): la carta potrebbe essere danneggiata, rivolgiti all'ente emettitore."
            ),
        }
    }
}

impl From<DecodeError> for CnsError {
    fn from(e: DecodeError) -> Self {
        Self::Apdu(ApduError::Decode(e))
    }
}
