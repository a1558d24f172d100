//! Errors of the IAS applet.

use crate::apdu::ApduError;
use crate::tlv::DecodeError;

/// Why an IAS operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IasError {
    /// The exchange with the card failed.
    #[error(transparent)]
    Apdu(#[from] ApduError),
    /// The card answered, but is not a CIE (no IAS application or NIS).
    #[error("this card is not an Italian electronic identity card (CIE)")]
    NotACie,
    /// Wrong PIN (or PUK); `remaining` tries left.
    #[error("wrong PIN: {remaining} tries left")]
    WrongPin {
        /// Tries left.
        remaining: u8,
    },
    /// The PIN (or PUK) is blocked.
    #[error("the PIN is blocked: unblock it with the PUK")]
    PinBlocked,
    /// Wrong PUK; `remaining` tries left (the CIE's PUK has 10).
    #[error("wrong PUK: {remaining} tries left")]
    WrongPuk {
        /// Tries left.
        remaining: u8,
    },
    /// The PUK is blocked: the card cannot be unblocked any more.
    #[error("the PUK is blocked: the card must be replaced")]
    PukBlocked,
    /// One PUK try is left: the caller must confirm before it is spent.
    #[error("one PUK try left: confirm before it is spent")]
    LastPukTryNeedsConfirmation,
    /// One try is left and the caller has not confirmed it may be spent.
    #[error("one PIN try left: confirm before trying, a wrong PIN will block the card")]
    LastTryNeedsConfirmation,
    /// The operation needs the PIN verified first.
    #[error("enter the PIN first")]
    PinRequired,
    /// The card failed to prove it holds its private key: a clone or a forgery.
    #[error("this card could not prove it is genuine")]
    NotGenuine,
    /// A PIN (new or typed) refused by the rules before reaching the card: no try spent.
    #[error("PIN refused before reaching the card: {0}")]
    PinFormat(#[from] super::pin::PinFormatError),
    /// A file's contents did not decode.
    #[error("malformed {what} on the card: {reason}")]
    Malformed {
        /// Which file or object.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl IasError {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

impl From<DecodeError> for IasError {
    fn from(e: DecodeError) -> Self {
        Self::Apdu(ApduError::Decode(e))
    }
}
