//! Typed errors of the desktop program, each with an English and an Italian message, a hint
//! saying what to do next, and a process exit code.

use cie_core::applets::emrtd::EmrtdError;
use cie_core::otp::OtpError;
use cie_core::transport::TransportError;
use cie_readers::ReaderError;

/// Exit codes of `cie-companion` (also listed in `--help`).
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// Bad command line (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// No reader, reader not found, or the reader service is not available.
    pub const READER: u8 = 3;
    /// A reader was found but the card is missing, was removed, or did not answer.
    pub const CARD: u8 = 4;
    /// The virtual reader driver (vpcd) could not be reached or broke the protocol.
    pub const VPCD: u8 = 5;
    /// The encrypted store could not be opened (wrong passphrase, damaged, unwritable).
    pub const STORE: u8 = 6;
    /// A login flow (`demo`) was refused or failed: card, server or network.
    pub const FLOW: u8 = 7;
    /// `pkcs11 install` could not register the module (NSS tools missing or refusing,
    /// files not writable).
    pub const SETUP: u8 = 8;
    /// `doctor` found at least one problem (each failed check says what to do).
    pub const DOCTOR: u8 = 9;
}

/// Everything that can stop a command.
#[derive(Debug)]
pub enum CliError {
    /// `--reader` could not be parsed.
    BadReaderSpec { spec: String },
    /// The PC/SC service (pcscd) is not running or refused us.
    PcscUnavailable { reason: String },
    /// No reader of the requested kind is attached.
    NoReaders { kind: &'static str },
    /// The named reader does not exist.
    ReaderNotFound {
        name: String,
        available: Vec<String>,
    },
    /// The reader exists but holds no card (or no ISO 14443-4 card in the field).
    NoCard { reader: String },
    /// libnfc could not be initialised or the device could not be opened.
    Nfc { reason: String },
    /// The card link failed mid-way.
    Transport(TransportError),
    /// The card answered with something the program could not use.
    Card { reason: String },
    /// The vpcd socket failed.
    Vpcd { reason: String },
    /// A bad argument or input file.
    Input { reason: String },
    /// One-time codes: a refused link, an unknown name, or the store.
    Otp(OtpError),
    /// Reading an identity document: wrong CAN/MRZ, unsupported chip, card refusal.
    Document(EmrtdError),
    /// A login flow stopped (card, server refusal, network), with the core's messages.
    Flow { message: String, message_it: String },
    /// `pkcs11 install --module`: the file is not a loadable PKCS#11 module.
    NotAModule {
        path: String,
        reason_en: String,
        reason_it: String,
    },
    /// Registering the module failed (NSS tools, files).
    Setup {
        message_en: String,
        message_it: String,
    },
    /// `doctor`: this many checks failed.
    Doctor { failed: usize },
}

impl CliError {
    /// Process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadReaderSpec { .. } => exit::USAGE,
            Self::PcscUnavailable { .. }
            | Self::NoReaders { .. }
            | Self::ReaderNotFound { .. }
            | Self::Nfc { .. } => exit::READER,
            Self::NoCard { .. } | Self::Transport(_) | Self::Card { .. } => exit::CARD,
            Self::Vpcd { .. } => exit::VPCD,
            Self::Input { .. } => exit::USAGE,
            Self::Otp(e) if crate::otp::is_input_error(e) => exit::USAGE,
            Self::Otp(_) => exit::STORE,
            Self::Document(EmrtdError::WrongSecret { .. } | EmrtdError::InvalidInput { .. }) => {
                exit::USAGE
            }
            Self::Document(_) => exit::CARD,
            Self::Flow { .. } => exit::FLOW,
            Self::NotAModule { .. } => exit::USAGE,
            Self::Setup { .. } => exit::SETUP,
            Self::Doctor { .. } => exit::DOCTOR,
        }
    }

    /// English message with the next step.
    pub fn message_en(&self) -> String {
        match self {
            Self::BadReaderSpec { spec } => format!(
                "'{spec}' is not a reader. Use --reader sim, --reader pcsc:NAME or --reader nfc:CONNSTRING \
                 (see `cie-companion readers` for the names)."
            ),
            Self::PcscUnavailable { reason } => format!(
                "The PC/SC service is not available ({reason}). Start it with `sudo systemctl start pcscd` \
                 (Debian/Ubuntu: `sudo apt-get install pcscd`) and try again."
            ),
            Self::NoReaders { kind } => format!(
                "No {kind} card readers found. Plug in a reader and try again, or use --reader sim for the virtual card."
            ),
            Self::ReaderNotFound { name, available } => {
                let list = if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join("; ")
                };
                format!(
                    "Reader '{name}' not found. Available: {list}. Run `cie-companion readers` and copy the exact name."
                )
            }
            Self::NoCard { reader } => format!(
                "No card in reader '{reader}'. Insert the CIE (chip facing the contacts) or hold it on the reader, then try again."
            ),
            Self::Nfc { reason } => format!(
                "The NFC reader could not be used ({reason}). Check that it is plugged in and not claimed by another \
                 driver (e.g. pn533 kernel module), then try again."
            ),
            Self::Transport(e) => format!("{e}."),
            Self::Card { reason } => format!(
                "The card answered unexpectedly: {reason}. Try again; if it persists, report it."
            ),
            Self::Vpcd { reason } => format!(
                "Could not talk to the virtual reader driver vpcd ({reason}). Is pcscd running with vsmartcard-vpcd \
                 installed (`sudo apt-get install pcscd vsmartcard-vpcd`)?"
            ),
            Self::Input { reason } => format!("{reason}."),
            Self::Otp(e) => format!("{e}."),
            Self::Document(e) => format!("{e}."),
            Self::Flow { message, .. } => format!("{message}."),
            Self::NotAModule {
                path, reason_en, ..
            } => format!(
                "{path} is not a PKCS#11 module: {reason_en}. Pass the path of libcie_companion_pkcs11.so \
                 (`cargo build --release -p cie-companion-pkcs11` builds it in target/release/)."
            ),
            Self::Setup { message_en, .. } => format!("{message_en}."),
            Self::Doctor { failed } => format!(
                "{failed} check(s) failed: do what the lines marked ✗ (FAIL) say, then run `cie-companion doctor` again."
            ),
        }
    }

    /// Italian message for the citizen.
    pub fn message_it(&self) -> String {
        match self {
            Self::BadReaderSpec { spec } => format!(
                "'{spec}' non è un lettore valido. Usa --reader sim, pcsc:NOME oppure nfc:CONNSTRING."
            ),
            Self::PcscUnavailable { .. } => {
                "Il servizio PC/SC non è attivo: avvialo (`sudo systemctl start pcscd`) e riprova."
                    .into()
            }
            Self::NoReaders { .. } => {
                "Nessun lettore di carte trovato: collega un lettore e riprova.".into()
            }
            Self::ReaderNotFound { name, .. } => format!(
                "Lettore '{name}' non trovato: controlla il nome con `cie-companion readers`."
            ),
            Self::NoCard { .. } => {
                "Nessuna carta nel lettore: inserisci o avvicina la CIE e riprova.".into()
            }
            Self::Nfc { .. } => {
                "Il lettore NFC non è utilizzabile: controlla che sia collegato e riprova.".into()
            }
            Self::Transport(e) => e.message_it(),
            Self::Card { .. } => "La carta ha risposto in modo inatteso: riprova.".into(),
            Self::Vpcd { .. } => {
                "Impossibile collegarsi al lettore virtuale (vpcd): controlla che pcscd sia attivo."
                    .into()
            }
            Self::Input { reason } => format!("Dati non validi: {reason}."),
            Self::Otp(e) => format!("{}.", e.message_it()),
            Self::Document(e) => e.message_it(),
            Self::Flow { message_it, .. } => message_it.clone(),
            Self::NotAModule {
                path, reason_it, ..
            } => format!(
                "{path} non è un modulo PKCS#11: {reason_it}. Indica il percorso di libcie_companion_pkcs11.so."
            ),
            Self::Setup { message_it, .. } => format!("{message_it}."),
            Self::Doctor { failed } => format!(
                "{failed} controllo/i non superato/i: segui le indicazioni delle righe ✗ (FAIL) e riesegui `cie-companion doctor`."
            ),
        }
    }

    /// Whether the error fits on one line (refusals of a typed input, for scripts).
    pub fn one_line(&self) -> bool {
        matches!(
            self,
            Self::Otp(_) | Self::Input { .. } | Self::Document(_) | Self::Doctor { .. }
        )
    }
}

impl From<TransportError> for CliError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

impl From<OtpError> for CliError {
    fn from(e: OtpError) -> Self {
        Self::Otp(e)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message_en())
    }
}

impl std::error::Error for CliError {}

impl From<ReaderError> for CliError {
    fn from(e: ReaderError) -> Self {
        match e {
            ReaderError::Unavailable { reason } => Self::PcscUnavailable { reason },
            ReaderError::NoReaders => Self::NoReaders { kind: "PC/SC" },
            ReaderError::NotFound { name, available } => Self::ReaderNotFound { name, available },
            ReaderError::NoCard { reader } => Self::NoCard { reader },
            ReaderError::Transport(t) => Self::Transport(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_messages() {
        let no_readers = CliError::NoReaders { kind: "PC/SC" };
        assert_eq!(no_readers.exit_code(), exit::READER);
        assert!(no_readers.message_it().contains("Nessun lettore"));
        let lost = CliError::from(TransportError::TagLost);
        assert_eq!(lost.exit_code(), exit::CARD);
        assert_eq!(lost.message_it(), TransportError::TagLost.message_it());
        assert_eq!(
            CliError::BadReaderSpec { spec: "x".into() }.exit_code(),
            exit::USAGE
        );
        assert_eq!(
            CliError::Vpcd { reason: "x".into() }.exit_code(),
            exit::VPCD
        );
    }
}
