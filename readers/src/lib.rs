//! Desktop card readers as [`cie_core::transport::CardTransport`]s. PC/SC lives here, shared
//! by the desktop program (`cli/`) and the PKCS#11 module (`pkcs11/`): the core itself never
//! links a desktop library.

pub mod pcsc;

use cie_core::transport::TransportError;

/// Why a reader could not be listed or a card could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    /// The PC/SC service (pcscd) is not running or refused us.
    #[error("the PC/SC service is not available ({reason})")]
    Unavailable {
        /// What PC/SC said.
        reason: String,
    },
    /// No reader is attached.
    #[error("no PC/SC card readers found")]
    NoReaders,
    /// The named reader does not exist.
    #[error("reader '{name}' not found")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The readers that do exist.
        available: Vec<String>,
    },
    /// The reader holds no card, or the card does not answer.
    #[error("no card in reader '{reader}'")]
    NoCard {
        /// The reader's name.
        reader: String,
    },
    /// The link failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}
