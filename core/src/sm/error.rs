//! Errors of secure messaging. Every one of them after a command was protected means the
//! session with the card is no longer trustworthy: the [`super::SecureChannel`] refuses
//! further use and the app asks the citizen to tap the card again.

use crate::tlv::{DecodeError, Tag};

/// Why a command could not be protected or a response could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    /// The response's cryptographic checksum (DO8E) is wrong: tampered, or keys/SSC out of
    /// step. Nothing of the response was decrypted or used.
    #[error("secure messaging: the response MAC does not match")]
    MacMismatch,
    /// A data object the protocol requires is absent (e.g. `DO8E`, `DO99`).
    #[error("secure messaging: missing {0}")]
    MissingObject(&'static str),
    /// A data object appears twice, or both `DO85` and `DO87` appear.
    #[error("secure messaging: duplicate data object {0}")]
    DuplicateObject(Tag),
    /// A data object that has no place in a protected response.
    #[error("secure messaging: unexpected data object {0}")]
    UnexpectedObject(Tag),
    /// A data object whose value has the wrong size (MAC not 8 bytes, status not 2,
    /// cryptogram not a whole number of blocks).
    #[error("secure messaging: {0} has a bad length")]
    BadObjectLength(&'static str),
    /// The decrypted data does not end in ISO/IEC 7816-4 padding (`80 00…`), or `DO87`
    /// lacks the `01` padding-content indicator.
    #[error("secure messaging: bad padding in the decrypted data")]
    BadPadding,
    /// The send sequence counter would wrap around.
    #[error("secure messaging: the send sequence counter is exhausted")]
    SscExhausted,
    /// The SSC given does not have the length the cipher needs (8 for 3DES, 16 for AES).
    #[error("secure messaging: SSC of {got} bytes, {expected} expected")]
    SscLength {
        /// Bytes the cipher needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A session key of the wrong length for its cipher.
    #[error("secure messaging: session key of invalid length {0}")]
    InvalidKey(usize),
    /// The protected response is not a sequence of BER-TLV data objects.
    #[error("secure messaging: malformed response: {0}")]
    Malformed(#[from] DecodeError),
    /// The command cannot be protected (Le out of range, data too long).
    #[error("secure messaging: cannot protect this command: {0}")]
    BadCommand(&'static str),
    /// Another exchange is in progress on this secure channel; running two at once would
    /// corrupt the SSC, so the second one is refused.
    #[error("secure messaging: another command is in progress on this channel")]
    Busy,
    /// An earlier failure (MAC mismatch, lost card, cancelled exchange) left the SSC out of
    /// step with the card; the session must be established again.
    #[error("secure messaging: the protected session is broken; establish it again")]
    SessionBroken,
}
