//! Errors of the eMRTD applet (ICAO 9303 access control), with English and Italian
//! messages that tell the citizen what to do next.

use crate::apdu::ApduError;
use crate::tlv::DecodeError;

/// Which secret the citizen typed, so a refusal can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The 6-digit Card Access Number printed on the card.
    Can,
    /// Document number, date of birth and date of expiry from the MRZ.
    Mrz,
}

/// Why eMRTD access control (PACE, BAC) or the parsing it needs failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmrtdError {
    /// The exchange with the card failed: link lost, a status word that is not about the
    /// secret, or a broken secure channel. Passed through typed.
    #[error(transparent)]
    Apdu(#[from] ApduError),
    /// The card refused the secret (`6300`/`63Cx` at the authentication step): wrong CAN or
    /// wrong MRZ data. Never retried automatically (each refusal may slow the card down).
    #[error("{}", wrong_secret_en(*.kind))]
    WrongSecret {
        /// The secret that was refused.
        kind: SecretKind,
        /// Tries left when the card says (`63Cx`).
        remaining: Option<u8>,
    },
    /// The card blocked or suspended this secret (`6983`).
    #[error("the card has blocked access with this secret")]
    SecretBlocked,
    /// What the citizen typed cannot be a CAN or MRZ (wrong length, not digits...).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The card did not prove it knows the secret (bad PACE token, BAC cryptogram that does
    /// not match): a faulty or fake card, or someone on the link.
    #[error("the card failed to authenticate itself")]
    CardAuthenticationFailed,
    /// The card offers only protocols or domain parameters this reader does not implement.
    #[error("unsupported by this app: {0}")]
    Unsupported(String),
    /// A card file or answer did not decode as ICAO 9303 says.
    #[error("malformed {what} from the card: {reason}")]
    Malformed {
        /// Which object.
        what: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// No random numbers could be drawn.
    #[error("the system random number generator failed")]
    Randomness,
    /// The chip refused a Chip Authentication step (status word): a chip without the DG14
    /// private key, or a DG14 that does not describe this chip.
    #[error("the chip refused Chip Authentication (status {sw:04X})")]
    ChipAuthenticationRefused {
        /// The status word of the refused command.
        sw: u16,
    },
    /// After Chip Authentication the chip's first answer did not verify under the new keys:
    /// it does not hold the private key of DG14, so it may be a clone.
    #[error("the chip failed Chip Authentication: it may be a clone")]
    ChipAuthenticationFailed,
    /// The chip's Active Authentication signature does not verify with the DG15 key: the
    /// chip may be a clone.
    #[error("the chip failed Active Authentication ({0}): it may be a clone")]
    ActiveAuthenticationFailed(super::active_auth::AaError),
}

fn wrong_secret_en(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::Can => "wrong CAN: check the 6 digits printed on the card",
        SecretKind::Mrz => {
            "wrong document data: check document number, date of birth and date of expiry"
        }
    }
}

impl EmrtdError {
    pub(crate) fn malformed(what: &'static str, reason: &'static str) -> Self {
        Self::Malformed { what, reason }
    }

    /// Whether the citizen should retype the secret (and try once more, on purpose).
    pub fn is_wrong_secret(&self) -> bool {
        matches!(self, Self::WrongSecret { .. })
    }

    /// The same message in Italian, for the citizen.
    pub fn message_it(&self) -> String {
        match self {
            Self::Apdu(e) => e.message_it(),
            Self::WrongSecret {
                kind: SecretKind::Can,
                ..
            } => "CAN errato: controlla le 6 cifre stampate sulla carta.".into(),
            Self::WrongSecret {
                kind: SecretKind::Mrz,
                ..
            } => "Dati del documento errati: controlla numero del documento, data di nascita e data di scadenza.".into(),
            Self::SecretBlocked => {
                "La carta ha bloccato l'accesso con questo codice: usa l'altro codice (CAN o dati MRZ) o rivolgiti al Comune.".into()
            }
            Self::InvalidInput { what, .. } => match *what {
                "CAN" => "Il CAN è composto da 6 cifre: controlla il numero stampato sulla carta.".into(),
                "access key" => "Questo documento non accetta il CAN: inserisci numero del documento, data di nascita e data di scadenza.".into(),
                _ => "Dati del documento non validi: controlla numero del documento e date (AAMMGG).".into(),
            },
            Self::CardAuthenticationFailed => {
                "La carta non ha superato la verifica: potrebbe essere danneggiata o non autentica. Riprova; se succede ancora, non usarla.".into()
            }
            Self::Unsupported(_) => {
                "Questa carta usa un protocollo non ancora supportato dall'app.".into()
            }
            Self::Malformed { .. } => {
                "La carta ha dato una risposta non valida: avvicina di nuovo la carta e riprova.".into()
            }
            Self::Randomness => "Errore interno del dispositivo (generatore casuale): riprova.".into(),
            Self::ChipAuthenticationRefused { .. } => {
                "Il chip ha rifiutato l'autenticazione del chip: il documento potrebbe non essere autentico.".into()
            }
            Self::ChipAuthenticationFailed | Self::ActiveAuthenticationFailed(_) => {
                "Il chip non ha superato la verifica di autenticità: il documento potrebbe essere clonato.".into()
            }
        }
    }
}

impl From<DecodeError> for EmrtdError {
    fn from(e: DecodeError) -> Self {
        Self::Apdu(ApduError::Decode(e))
    }
}

impl From<crate::sm::SmError> for EmrtdError {
    fn from(e: crate::sm::SmError) -> Self {
        Self::Apdu(ApduError::SecureMessaging(e))
    }
}
