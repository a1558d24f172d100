//! Errors of the APDU layer, grouped by who is at fault (rustls style): the link, the card
//! (misbehaved or refused), or the caller.

use super::{Sw, SwKind};
use crate::tlv::DecodeError;
use crate::transport::TransportError;

/// Why an APDU exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// The link failed (tag lost, timeout, reader error).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered with a non-success status word.
    #[error("{} (SW {sw}, INS {ins:02X})", sw.kind().message_en())]
    Status {
        /// The status word.
        sw: Sw,
        /// The instruction it answered.
        ins: u8,
    },
    /// The response had fewer than the two status bytes.
    #[error("malformed card response: {len} bytes, at least 2 expected")]
    ResponseTooShort {
        /// Bytes received.
        len: usize,
    },
    /// The card broke the protocol (endless GET RESPONSE, wrong data object, ...).
    #[error("the card broke the protocol: {0}")]
    CardMisbehaved(&'static str),
    /// Card data did not decode.
    #[error("malformed card data: {0}")]
    Decode(#[from] DecodeError),
    /// The command needs extended length and the link or card cannot carry it.
    #[error("this command needs extended-length APDUs, which this reader or card does not support")]
    ExtendedLengthUnsupported,
    /// The command data exceeds what any APDU can carry.
    #[error("command data of {len} bytes exceeds the maximum of {max}")]
    CommandTooLong {
        /// Bytes of data.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// Ne outside 1..=65536.
    #[error("invalid expected length {ne}")]
    InvalidLe {
        /// The bad value.
        ne: usize,
    },
    /// Secure messaging failed: a response MAC did not verify, a protected response was
    /// malformed, or the protected session is broken.
    #[error(transparent)]
    SecureMessaging(#[from] crate::sm::SmError),
}

impl ApduError {
    /// The status word's meaning, when the card answered with one.
    pub fn sw_kind(&self) -> Option<SwKind> {
        match self {
            Self::Status { sw, .. } => Some(sw.kind()),
            _ => None,
        }
    }

    /// The same message in Italian, for the citizen.
    pub fn message_it(&self) -> String {
        match self {
            Self::Transport(t) => t.message_it(),
            Self::Status { sw, .. } => format!("{} (SW {sw})", sw.kind().message_it()),
            Self::ResponseTooShort { .. } | Self::CardMisbehaved(_) | Self::Decode(_) => {
                "La carta ha dato una risposta non valida: avvicina di nuovo la carta e riprova.".into()
            }
            Self::ExtendedLengthUnsupported => {
                "Questo lettore o questa carta non supporta i comandi lunghi (extended length): prova un altro lettore.".into()
            }
            Self::CommandTooLong { .. } | Self::InvalidLe { .. } => {
                "Errore interno nella costruzione del comando per la carta.".into()
            }
            Self::SecureMessaging(_) => {
                "Il canale protetto con la carta si è interrotto: avvicina di nuovo la carta e riprova.".into()
            }
        }
    }
}
