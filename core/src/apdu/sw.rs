//! Status words: the raw value first (`Sw`), its meaning second (`SwKind`).
//!
//! The APDU layer hands applets the raw SW; applets decide what it means for them (a `63Cx`
//! after VERIFY is a wrong PIN, after EXTERNAL AUTHENTICATE it is a failed check).

use std::fmt;

/// SW1 SW2 as one number, e.g. `Sw(0x9000)`. Unknown values still decode.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sw(pub u16);

impl Sw {
    /// `9000` normal processing.
    pub const OK: Sw = Sw(0x9000);
    /// `6282` end of file reached before reading Le bytes.
    pub const END_OF_FILE: Sw = Sw(0x6282);
    /// `6700` wrong length.
    pub const WRONG_LENGTH: Sw = Sw(0x6700);
    /// `6881` logical channel not supported.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: Sw = Sw(0x6881);
    /// `6882` secure messaging not supported.
    pub const SM_NOT_SUPPORTED: Sw = Sw(0x6882);
    /// `6883` last command of the chain expected.
    pub const LAST_COMMAND_EXPECTED: Sw = Sw(0x6883);
    /// `6884` command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: Sw = Sw(0x6884);
    /// `6981` command incompatible with file structure.
    pub const INCOMPATIBLE_FILE_STRUCTURE: Sw = Sw(0x6981);
    /// `6982` security status not satisfied.
    pub const SECURITY_STATUS_NOT_SATISFIED: Sw = Sw(0x6982);
    /// `6983` authentication method blocked.
    pub const AUTHENTICATION_METHOD_BLOCKED: Sw = Sw(0x6983);
    /// `6984` reference data not usable.
    pub const REFERENCE_DATA_NOT_USABLE: Sw = Sw(0x6984);
    /// `6985` conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Sw = Sw(0x6985);
    /// `6986` command not allowed (no current EF).
    pub const NO_CURRENT_EF: Sw = Sw(0x6986);
    /// `6987` expected secure messaging data objects missing.
    pub const SM_DATA_MISSING: Sw = Sw(0x6987);
    /// `6988` incorrect secure messaging data objects.
    pub const SM_DATA_INCORRECT: Sw = Sw(0x6988);
    /// `6A80` incorrect parameters in the data field.
    pub const WRONG_DATA: Sw = Sw(0x6A80);
    /// `6A81` function not supported.
    pub const FUNCTION_NOT_SUPPORTED: Sw = Sw(0x6A81);
    /// `6A82` file or application not found.
    pub const FILE_NOT_FOUND: Sw = Sw(0x6A82);
    /// `6A83` record not found.
    pub const RECORD_NOT_FOUND: Sw = Sw(0x6A83);
    /// `6A84` not enough memory space in the file.
    pub const NOT_ENOUGH_MEMORY: Sw = Sw(0x6A84);
    /// `6A86` incorrect parameters P1-P2.
    pub const INCORRECT_P1P2: Sw = Sw(0x6A86);
    /// `6A88` referenced data not found.
    pub const REFERENCE_DATA_NOT_FOUND: Sw = Sw(0x6A88);
    /// `6B00` wrong parameters P1-P2 (offset outside the EF).
    pub const WRONG_P1P2: Sw = Sw(0x6B00);
    /// `6D00` instruction not supported.
    pub const INS_NOT_SUPPORTED: Sw = Sw(0x6D00);
    /// `6E00` class not supported.
    pub const CLA_NOT_SUPPORTED: Sw = Sw(0x6E00);
    /// `6F00` no precise diagnosis.
    pub const UNKNOWN_ERROR: Sw = Sw(0x6F00);

    /// From the two trailing response bytes.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Sw(((sw1 as u16) << 8) | sw2 as u16)
    }

    /// SW1.
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `9000` only. Warnings (`62xx`, `63xx`) are not success: callers that accept them
    /// say so explicitly.
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }

    /// What the status word means in ISO 7816-4 terms.
    pub fn kind(self) -> SwKind {
        match (self.sw1(), self.sw2()) {
            (0x90, 0x00) => SwKind::Ok,
            (0x61, n) => SwKind::BytesRemaining {
                remaining: if n == 0 { 256 } else { u16::from(n) },
            },
            (0x6C, n) => SwKind::WrongLe {
                exact: if n == 0 { 256 } else { u16::from(n) },
            },
            (0x62, 0x82) => SwKind::EndOfFile,
            (0x63, n) if n & 0xF0 == 0xC0 => SwKind::WrongPin {
                remaining: n & 0x0F,
            },
            (0x67, 0x00) => SwKind::WrongLength,
            (0x68, 0x83) => SwKind::LastCommandExpected,
            (0x68, 0x84) => SwKind::ChainingNotSupported,
            (0x68, 0x82) | (0x69, 0x87) | (0x69, 0x88) => SwKind::SecureMessagingFailed,
            (0x69, 0x82) => SwKind::SecurityStatusNotSatisfied,
            (0x69, 0x83) => SwKind::AuthenticationBlocked,
            (0x69, 0x84) => SwKind::ReferenceDataNotUsable,
            (0x69, 0x85) => SwKind::ConditionsNotSatisfied,
            (0x69, 0x86) | (0x69, 0x81) => SwKind::CommandNotAllowed,
            (0x6A, 0x82) => SwKind::FileNotFound,
            (0x6A, 0x83) | (0x6A, 0x88) => SwKind::ReferenceNotFound,
            (0x6A, 0x80) | (0x6A, 0x86) | (0x6B, 0x00) => SwKind::WrongParameters,
            (0x6A, 0x81) | (0x6D, 0x00) | (0x6E, 0x00) | (0x68, 0x81) => SwKind::NotSupported,
            (0x65, _) | (0x6A, 0x84) => SwKind::MemoryFailure,
            _ => SwKind::Other,
        }
    }
}

impl fmt::Debug for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sw({:04X})", self.0)
    }
}

impl fmt::Display for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// The meaning of a status word, with the data some of them carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwKind {
    /// `9000`.
    Ok,
    /// `61xx`: more response bytes wait for GET RESPONSE.
    BytesRemaining {
        /// Bytes announced (256 when SW2 is 00).
        remaining: u16,
    },
    /// `6Cxx`: resend with Le = xx.
    WrongLe {
        /// The length the card can return (256 when SW2 is 00).
        exact: u16,
    },
    /// `6282`: end of file before Le bytes.
    EndOfFile,
    /// `63Cx`: verification failed, x tries left.
    WrongPin {
        /// Tries left before the reference is blocked.
        remaining: u8,
    },
    /// `6700`.
    WrongLength,
    /// `6883`.
    LastCommandExpected,
    /// `6884`.
    ChainingNotSupported,
    /// `6882`, `6987`, `6988`: secure messaging missing or wrong.
    SecureMessagingFailed,
    /// `6982`: the PIN or secure channel this needs is not in place.
    SecurityStatusNotSatisfied,
    /// `6983`: the PIN (or key) is blocked.
    AuthenticationBlocked,
    /// `6984`: reference data not usable (e.g. PIN not yet activated).
    ReferenceDataNotUsable,
    /// `6985`.
    ConditionsNotSatisfied,
    /// `6981`, `6986`.
    CommandNotAllowed,
    /// `6A82`.
    FileNotFound,
    /// `6A83`, `6A88`.
    ReferenceNotFound,
    /// `6A80`, `6A86`, `6B00`.
    WrongParameters,
    /// `6A81`, `6D00`, `6E00`, `6881`.
    NotSupported,
    /// `65xx`, `6A84`.
    MemoryFailure,
    /// Anything else.
    Other,
}

impl SwKind {
    /// Whether the status says "no such application or file here, or not for this
    /// command" (another kind of card), as opposed to a chip or link glitch (`6F00`,
    /// `64xx`, `65xx`) or a secure-messaging fault. Card recognition must not report a
    /// glitch as "not this card": the user would put away a good card instead of holding
    /// it still.
    pub fn refuses_application(self) -> bool {
        matches!(
            self,
            Self::FileNotFound
                | Self::ReferenceNotFound
                | Self::WrongParameters
                | Self::NotSupported
                | Self::CommandNotAllowed
                | Self::ConditionsNotSatisfied
                | Self::SecurityStatusNotSatisfied
                | Self::WrongLength
        )
    }

    /// A sentence in English for logs and the English UI.
    pub fn message_en(self) -> String {
        match self {
            Self::Ok => "success".into(),
            Self::BytesRemaining { remaining } => format!("{remaining} more response bytes are waiting"),
            Self::WrongLe { exact } => format!("wrong expected length; the card has {exact} bytes"),
            Self::EndOfFile => "end of file reached before the requested length".into(),
            Self::WrongPin { remaining: 0 } => "wrong PIN: no tries left, the PIN is now blocked; unblock it with the PUK".into(),
            Self::WrongPin { remaining: 1 } => "wrong PIN: 1 try left before the PIN is blocked".into(),
            Self::WrongPin { remaining } => format!("wrong PIN: {remaining} tries left"),
            Self::WrongLength => "wrong length: the card rejected the size of the command".into(),
            Self::LastCommandExpected => "the card expected the last command of a chain".into(),
            Self::ChainingNotSupported => "the card does not support command chaining".into(),
            Self::SecureMessagingFailed => "secure messaging failed: the protected session with the card was lost; tap the card again".into(),
            Self::SecurityStatusNotSatisfied => "security status not satisfied: enter the PIN or open a protected session first".into(),
            Self::AuthenticationBlocked => "the PIN is blocked: unblock it with the PUK".into(),
            Self::ReferenceDataNotUsable => "the PIN or key is not usable on this card (not activated or disabled)".into(),
            Self::ConditionsNotSatisfied => "the card refused: conditions of use not satisfied".into(),
            Self::CommandNotAllowed => "command not allowed in the card's current state".into(),
            Self::FileNotFound => "file or application not found on the card".into(),
            Self::ReferenceNotFound => "record or reference not found on the card".into(),
            Self::WrongParameters => "the card rejected the command's parameters".into(),
            Self::NotSupported => "the card does not support this command".into(),
            Self::MemoryFailure => "the card reported a memory failure".into(),
            Self::Other => "the card reported an unexpected status".into(),
        }
    }

    /// The same sentence in Italian, for the citizen.
    pub fn message_it(self) -> String {
        match self {
            Self::Ok => "operazione riuscita".into(),
            Self::BytesRemaining { remaining } => {
                format!("la carta ha ancora {remaining} byte da inviare")
            }
            Self::WrongLe { exact } => format!("lunghezza attesa errata; la carta ha {exact} byte"),
            Self::EndOfFile => "fine del file raggiunta prima della lunghezza richiesta".into(),
            Self::WrongPin { remaining: 0 } => {
                "PIN errato: nessun tentativo rimasto, il PIN è bloccato; sbloccalo con il PUK"
                    .into()
            }
            Self::WrongPin { remaining: 1 } => {
                "PIN errato: resta 1 tentativo prima del blocco".into()
            }
            Self::WrongPin { remaining } => format!("PIN errato: restano {remaining} tentativi"),
            Self::WrongLength => {
                "lunghezza errata: la carta ha rifiutato la dimensione del comando".into()
            }
            Self::LastCommandExpected => "la carta attendeva l'ultimo comando della catena".into(),
            Self::ChainingNotSupported => {
                "la carta non supporta il concatenamento dei comandi".into()
            }
            Self::SecureMessagingFailed => {
                "canale protetto con la carta interrotto: avvicina di nuovo la carta".into()
            }
            Self::SecurityStatusNotSatisfied => {
                "condizioni di sicurezza non soddisfatte: inserisci prima il PIN".into()
            }
            Self::AuthenticationBlocked => "il PIN è bloccato: sbloccalo con il PUK".into(),
            Self::ReferenceDataNotUsable => {
                "PIN o chiave non utilizzabili su questa carta (non attivati o disabilitati)".into()
            }
            Self::ConditionsNotSatisfied => {
                "la carta ha rifiutato: condizioni d'uso non soddisfatte".into()
            }
            Self::CommandNotAllowed => {
                "comando non consentito nello stato attuale della carta".into()
            }
            Self::FileNotFound => "file o applicazione non trovati sulla carta".into(),
            Self::ReferenceNotFound => "record o riferimento non trovato sulla carta".into(),
            Self::WrongParameters => "la carta ha rifiutato i parametri del comando".into(),
            Self::NotSupported => "la carta non supporta questo comando".into(),
            Self::MemoryFailure => "la carta ha segnalato un errore di memoria".into(),
            Self::Other => "la carta ha risposto con uno stato inatteso".into(),
        }
    }
}
