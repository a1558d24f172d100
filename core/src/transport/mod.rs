//! The card link: one trait every reader implements, whether it is Android `IsoDep`,
//! iOS `NFCISO7816Tag`, a PC/SC or libnfc reader on the desktop, or the virtual card.
//!
//! The trait is deliberately narrow (yubikit's `SmartCardConnection` shape): it moves raw
//! APDU bytes and states its limits. Everything protocol-related (GET RESPONSE, chaining,
//! chunked reads, secure messaging) lives above it, in Rust, once.

use std::sync::Arc;

/// What went wrong on the link itself, below any card protocol.
///
/// Foreign transports raise these (Kotlin `TransportException.TagLost`, Swift
/// `TransportError.TagLost`, Python `TransportError.TagLost`), and they come back out of
/// the core unchanged so the app can say "avvicina di nuovo la carta".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    /// The card left the field (NFC) or was pulled from the reader.
    #[error("the card was moved away from the phone or reader; hold it still and tap again")]
    TagLost,
    /// The card did not answer in time.
    #[error("the card did not answer in time; hold it still and try again")]
    Timeout,
    /// Any other reader or OS failure.
    #[error("card reader error: {reason}")]
    Io {
        /// What the reader or OS reported (never card data or secrets).
        reason: String,
    },
}

impl TransportError {
    /// The same message in Italian, for the citizen.
    pub fn message_it(&self) -> String {
        match self {
            Self::TagLost => "La carta si è allontanata dal telefono o dal lettore: avvicina di nuovo la carta e tienila ferma.".into(),
            Self::Timeout => "La carta non ha risposto in tempo: tienila ferma e riprova.".into(),
            Self::Io { reason } => format!("Errore del lettore di carte: {reason}"),
        }
    }
}

// A foreign transport that throws something it should not (a bare IllegalStateException, a
// Python ValueError) must still reach Rust as a typed error, never as a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Io { reason: e.reason }
    }
}

/// How the card is attached. It changes nothing in the protocol; it is reported to the user
/// and used for link-time estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TransportKind {
    /// Contactless, ISO 14443 (phone NFC, contactless desktop reader).
    Nfc,
    /// Contact reader (ISO 7816-3).
    Contact,
    /// A virtual card in the same process.
    Virtual,
}

/// The limits of one link. Android `IsoDep.getMaxTransceiveLength()` and
/// `isExtendedLengthApduSupported()`, iOS CoreNFC and PC/SC readers all differ, so the
/// transport states them and the APDU layer sizes every command and read to fit.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportInfo {
    /// Contactless, contact or virtual.
    pub kind: TransportKind,
    /// Whether extended-length APDUs (Lc/Le up to 65535) pass through this link.
    pub extended_length: bool,
    /// Largest command APDU, header included, the link can send.
    pub max_command_len: u32,
    /// Largest response, status word included, the link can receive.
    pub max_response_len: u32,
    /// The ATR (contact) or ATS/historical bytes (contactless), when the platform exposes
    /// them. iOS exposes none.
    pub atr: Option<Vec<u8>>,
}

impl TransportInfo {
    /// Limits of a plain short-APDU link: 5-byte header + 255 data + Le; 256 data + SW.
    pub fn short(kind: TransportKind) -> Self {
        Self {
            kind,
            extended_length: false,
            max_command_len: 261,
            max_response_len: 258,
            atr: None,
        }
    }
}

/// A link to one card.
///
/// `transmit` sends one command APDU exactly as given and returns the card's full response
/// (data followed by SW1 SW2). It must not interpret status words or retry.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait CardTransport: Send + Sync {
    /// Send one command APDU; return the response bytes, status word last.
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError>;

    /// The link's limits, read once per session.
    fn info(&self) -> TransportInfo;
}

/// Shared handle to a transport, as the core stores it.
pub type SharedTransport = Arc<dyn CardTransport>;
