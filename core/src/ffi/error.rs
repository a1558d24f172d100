//! The one error type the shells see.

use super::Language;
use crate::apdu::{ApduError, SwKind};
use crate::transport::TransportError;

/// What went wrong, in terms a citizen (and the app's UI) can act on. No card data, PIN or
/// personal data ever goes into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum CardError {
    /// The card left the field: ask the user to tap again.
    #[error("the card was moved away; hold it against the phone and tap again")]
    TagLost,
    /// The card did not answer in time.
    #[error("the card did not answer in time; hold it still and try again")]
    Timeout,
    /// The reader or OS failed.
    #[error("card reader error: {reason}")]
    Reader {
        /// What the platform reported.
        reason: String,
    },
    /// Wrong PIN; `remaining` tries are left before it blocks.
    #[error("wrong PIN: {remaining} tries left")]
    WrongPin {
        /// Tries left.
        remaining: u8,
    },
    /// The PIN is blocked; the PUK unblocks it.
    #[error("the PIN is blocked: unblock it with the PUK")]
    PinBlocked,
    /// The operation needs the PIN or a protected session first.
    #[error("access denied by the card: enter the PIN first")]
    AccessDenied,
    /// The file or application is not on this card.
    #[error("not found on this card")]
    NotFound,
    /// This card or reader cannot do what was asked.
    #[error("not supported by this card or reader: {reason}")]
    NotSupported {
        /// Which capability is missing.
        reason: String,
    },
    /// The card refused with another status word.
    #[error("the card refused the operation: {reason} (SW {sw:04X})")]
    Refused {
        /// Raw status word.
        sw: u16,
        /// Its meaning.
        reason: String,
    },
    /// One PIN try is left: ask the user to confirm, then call `confirm_last_try`.
    #[error("one PIN try left: a wrong PIN will block the card; confirm to go on")]
    LastTryNeedsConfirmation,
    /// The PIN must be typed again.
    #[error("type the PIN again")]
    PinNeeded,
    /// The PIN typed is not in the right form (no try was spent).
    #[error("invalid PIN: {reason}")]
    InvalidPin {
        /// Which rule.
        reason: String,
    },
    /// The card could not prove it is genuine.
    #[error("this card could not prove it is genuine")]
    NotGenuine,
    /// A resumed login was tapped with another card.
    #[error("this is a different card from the one the login started with: use the same card")]
    DifferentCard,
    /// Only 4 digits were typed but this card is not paired here.
    #[error("this card is not paired on this device: type the full 8-digit PIN")]
    NotPaired,
    /// The phone's NFC cannot carry the CIE's commands.
    #[error("this phone cannot read the CIE (its NFC link is too small)")]
    PhoneUnsupported,
    /// The keystore failed or the user cancelled.
    #[error("secure storage: {reason}")]
    Storage {
        /// Platform detail, for logs.
        reason: String,
    },
    /// Another call on the same object is running.
    #[error("another operation is running")]
    Busy,
    /// The CAN was refused: check the 6 digits printed on the card.
    #[error("wrong CAN: check the 6 digits printed on the front of the card")]
    WrongCan,
    /// The MRZ data (document number, birth, expiry) was refused.
    #[error("wrong document data: check the document number, date of birth and date of expiry")]
    WrongMrz,
    /// The card blocked access with this secret.
    #[error("the card has blocked access with this code")]
    AccessBlocked,
    /// The CAN or MRZ data is malformed (nothing was sent to the card).
    #[error("invalid access data: {reason}")]
    InvalidAccessKey {
        /// What is wrong.
        reason: String,
    },
    /// The card's answer broke the protocol or did not decode.
    #[error("the card gave an invalid answer: {reason}; tap the card again")]
    InvalidResponse {
        /// What was wrong.
        reason: String,
    },
    /// The PUK typed is not 8 digits (nothing was sent to the card).
    #[error("the PUK is 8 digits")]
    InvalidPuk,
    /// Wrong PUK; `remaining` tries are left (10 in all) before the card can no longer be
    /// unblocked.
    #[error("wrong PUK: {remaining} tries left")]
    WrongPuk {
        /// Tries left.
        remaining: u8,
    },
    /// The PUK is blocked: only a new card helps.
    #[error("the PUK is blocked: the card must be replaced")]
    PukBlocked,
    /// One PUK try is left: ask the user to confirm, then call again with it confirmed.
    #[error("one PUK try left: a wrong PUK will make the card unusable; confirm to go on")]
    LastPukTryNeedsConfirmation,
    /// The new PIN breaks a rule (nothing was sent to the card).
    #[error("new PIN refused: {reason}")]
    NewPinRejected {
        /// The rule, in English.
        reason: String,
        /// The rule, in Italian.
        reason_it: String,
    },
}

impl From<crate::applets::ias::pin::PinFormatError> for CardError {
    /// A new PIN refused before reaching the card.
    fn from(e: crate::applets::ias::pin::PinFormatError) -> Self {
        Self::NewPinRejected {
            reason: e.to_string(),
            reason_it: e.message_it().into(),
        }
    }
}

impl From<TransportError> for CardError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::TagLost => Self::TagLost,
            TransportError::Timeout => Self::Timeout,
            TransportError::Io { reason } => Self::Reader { reason },
        }
    }
}

impl From<ApduError> for CardError {
    fn from(e: ApduError) -> Self {
        match e {
            ApduError::Transport(t) => t.into(),
            ApduError::Status { sw, .. } => match sw.kind() {
                SwKind::WrongPin { remaining: 0 } | SwKind::AuthenticationBlocked => {
                    Self::PinBlocked
                }
                SwKind::WrongPin { remaining } => Self::WrongPin { remaining },
                SwKind::SecurityStatusNotSatisfied => Self::AccessDenied,
                SwKind::FileNotFound | SwKind::ReferenceNotFound => Self::NotFound,
                kind => Self::Refused {
                    sw: sw.0,
                    reason: kind.message_en(),
                },
            },
            ApduError::ExtendedLengthUnsupported => Self::NotSupported {
                reason: "extended-length APDUs".into(),
            },
            e @ (ApduError::ResponseTooShort { .. }
            | ApduError::CardMisbehaved(_)
            | ApduError::Decode(_)
            | ApduError::CommandTooLong { .. }
            | ApduError::InvalidLe { .. }) => Self::InvalidResponse {
                reason: e.to_string(),
            },
            // The protected session broke (MAC mismatch, malformed protected answer, SSC
            // out of step): nothing from the card was trusted; tapping again starts anew.
            e @ ApduError::SecureMessaging(_) => Self::InvalidResponse {
                reason: e.to_string(),
            },
        }
    }
}

impl From<crate::applets::ias::IasError> for CardError {
    fn from(e: crate::applets::ias::IasError) -> Self {
        use crate::applets::ias::IasError as E;
        match e {
            E::Apdu(a) => a.into(),
            E::WrongPin { remaining: 0 } | E::PinBlocked => Self::PinBlocked,
            E::WrongPin { remaining } => Self::WrongPin { remaining },
            E::LastTryNeedsConfirmation => Self::LastTryNeedsConfirmation,
            E::WrongPuk { remaining } => Self::WrongPuk { remaining },
            E::PukBlocked => Self::PukBlocked,
            E::LastPukTryNeedsConfirmation => Self::LastPukTryNeedsConfirmation,
            E::PinRequired => Self::AccessDenied,
            E::NotGenuine => Self::NotGenuine,
            E::NotACie => Self::NotSupported {
                reason: "not an Italian electronic identity card (CIE)".into(),
            },
            // A rule of the PIN, not the card's fault: "invalid answer from the card" would
            // send the citizen looking for a card problem.
            E::PinFormat(f) => f.into(),
            e @ E::Malformed { .. } => Self::InvalidResponse {
                reason: e.to_string(),
            },
        }
    }
}

impl From<crate::flows::login::LoginError> for CardError {
    fn from(e: crate::flows::login::LoginError) -> Self {
        use crate::flows::login::LoginError as E;
        match e {
            E::Card(c) => c.into(),
            E::DifferentCard => Self::DifferentCard,
            E::NotPaired => Self::NotPaired,
            E::PhoneUnsupported => Self::PhoneUnsupported,
            E::Store(s) => Self::Storage {
                reason: s.to_string(),
            },
            E::PinNeeded => Self::PinNeeded,
        }
    }
}

impl CardError {
    /// The message in `language`, saying what to do next.
    pub fn message(&self, language: Language) -> String {
        match language {
            Language::It => self.message_it(),
            Language::En => self.message_en(),
        }
    }

    /// The message in Italian, saying what to do next.
    pub fn message_it(&self) -> String {
        match self {
            Self::TagLost => {
                "La carta si è allontanata: avvicinala di nuovo al telefono e tienila ferma.".into()
            }
            Self::Timeout => "La carta non ha risposto in tempo: tienila ferma e riprova.".into(),
            // `reason` can be a platform exception's text: for logs, not for the citizen.
            Self::Reader { .. } => {
                "Errore del lettore di carte: riavvicina la carta o ricollega il lettore e riprova."
                    .into()
            }
            Self::WrongPin { remaining: 1 } => {
                "PIN errato: resta 1 tentativo prima del blocco. Ricontrolla il PIN e riprova.".into()
            }
            Self::WrongPin { remaining } => {
                format!("PIN errato: restano {remaining} tentativi. Ricontrolla il PIN e riprova.")
            }
            Self::PinBlocked => "Il PIN è bloccato: sbloccalo con il PUK.".into(),
            Self::AccessDenied => "La carta ha negato l'accesso: inserisci prima il PIN.".into(),
            Self::NotFound => {
                "Non trovato su questa carta: controlla che sia una CIE e avvicinala di nuovo."
                    .into()
            }
            // `reason` is English and technical: for logs.
            Self::NotSupported { .. } => {
                "Operazione non supportata da questa carta o da questo lettore: usa un altro lettore o telefono.".into()
            }
            Self::Refused { sw, .. } => {
                format!("La carta ha rifiutato l'operazione (SW {sw:04X}): avvicinala di nuovo e riprova.")
            }
            Self::LastTryNeedsConfirmation => "Resta un solo tentativo: un PIN errato bloccherà la carta. Conferma per continuare.".into(),
            Self::PinNeeded => "Inserisci di nuovo il PIN.".into(),
            Self::InvalidPin { .. } => "Il PIN è di 8 cifre (oppure le ultime 4, se la carta è abbinata): nessun tentativo è stato usato.".into(),
            Self::NotGenuine => "Questa carta non ha superato la verifica di autenticità: non usarla e rivolgiti al Comune.".into(),
            Self::DifferentCard => "Questa è un'altra carta: avvicina la stessa carta con cui hai iniziato.".into(),
            Self::NotPaired => "Questa carta non è abbinata a questo dispositivo: inserisci il PIN completo di 8 cifre.".into(),
            Self::PhoneUnsupported => "Questo telefono non può leggere la CIE: il suo NFC non supporta comandi abbastanza lunghi. Usa un altro telefono o un lettore sul computer.".into(),
            Self::Storage { .. } => "Archivio sicuro del telefono non disponibile: riprova o inserisci il PIN completo.".into(),
            Self::Busy => "Un'altra operazione è in corso: attendi che finisca.".into(),
            Self::WrongCan => "CAN errato: controlla le 6 cifre stampate sul fronte della carta.".into(),
            Self::WrongMrz => "Dati del documento errati: controlla numero del documento, data di nascita e data di scadenza.".into(),
            Self::AccessBlocked => "La carta ha bloccato l'accesso con questo codice: usa l'altro codice (CAN o dati del documento).".into(),
            Self::InvalidAccessKey { .. } => "Dati di accesso non validi: il CAN è di 6 cifre; le date sono nel formato AAMMGG.".into(),
            Self::InvalidResponse { .. } => {
                "La carta ha dato una risposta non valida: avvicinala di nuovo e riprova.".into()
            }
            Self::WrongPuk { remaining: 1 } => "PUK errato: resta 1 tentativo, poi la carta non si potrà più sbloccare. Ricontrolla il PUK (le prime 4 cifre nella ricevuta del Comune, le ultime 4 nella lettera con la carta).".into(),
            Self::WrongPuk { remaining } => format!("PUK errato: restano {remaining} tentativi. Ricontrolla il PUK (le prime 4 cifre nella ricevuta del Comune, le ultime 4 nella lettera con la carta)."),
            Self::InvalidPuk => "Il PUK è di 8 cifre: nessun tentativo è stato usato.".into(),
            Self::PukBlocked => "Il PUK è bloccato: la carta non si può più sbloccare. Chiedi al Comune una nuova carta.".into(),
            Self::LastPukTryNeedsConfirmation => "Resta un solo tentativo per il PUK: un PUK errato renderà la carta inutilizzabile. Conferma per continuare.".into(),
            Self::NewPinRejected { reason_it, .. } => format!("{reason_it} Nessun tentativo è stato usato."),
        }
    }

    /// The message in English, saying what to do next (the `Display` text is for logs: it
    /// carries platform and protocol details).
    pub fn message_en(&self) -> String {
        match self {
            Self::TagLost => {
                "The card moved away: hold it against the phone again and keep it still.".into()
            }
            Self::Timeout => "The card did not answer in time: keep it still and try again.".into(),
            Self::Reader { .. } => {
                "Card reader error: hold the card to the reader again or reconnect the reader, and try again."
                    .into()
            }
            Self::WrongPin { remaining: 1 } => {
                "Wrong PIN: 1 try left before the card blocks. Check the PIN and try again.".into()
            }
            Self::WrongPin { remaining } => {
                format!("Wrong PIN: {remaining} tries left. Check the PIN and try again.")
            }
            Self::PinBlocked => "The PIN is blocked: unblock it with the PUK.".into(),
            Self::AccessDenied => "The card refused access: enter the PIN first.".into(),
            Self::NotFound => {
                "Not found on this card: check that it is a CIE and hold it to the reader again."
                    .into()
            }
            Self::NotSupported { .. } => {
                "This card or reader does not support the operation: use another reader or phone."
                    .into()
            }
            Self::Refused { sw, .. } => {
                format!("The card refused the operation (SW {sw:04X}): hold it to the reader again and try again.")
            }
            Self::LastTryNeedsConfirmation => "Only one try left: a wrong PIN will block the card. Confirm to go on.".into(),
            Self::PinNeeded => "Type the PIN again.".into(),
            Self::InvalidPin { .. } => "The PIN has 8 digits (or the last 4, if the card is paired): no try was used.".into(),
            Self::NotGenuine => "This card failed the genuineness check: do not use it, and contact your Comune.".into(),
            Self::DifferentCard => "This is another card: hold the same card you started with.".into(),
            Self::NotPaired => "This card is not paired with this device: type the full 8-digit PIN.".into(),
            Self::PhoneUnsupported => "This phone cannot read the CIE: its NFC does not carry long enough commands. Use another phone or a reader on a computer.".into(),
            Self::Storage { .. } => "The phone's secure storage is unavailable: try again or type the full PIN.".into(),
            Self::Busy => "Another operation is running: wait for it to finish.".into(),
            Self::WrongCan => "Wrong CAN: check the 6 digits printed on the front of the card.".into(),
            Self::WrongMrz => "Wrong document data: check the document number, date of birth and date of expiry.".into(),
            Self::AccessBlocked => "The card has blocked access with this code: use the other one (CAN or document data).".into(),
            Self::InvalidAccessKey { .. } => "Invalid access data: the CAN has 6 digits; dates are written YYMMDD.".into(),
            Self::InvalidResponse { .. } => {
                "The card gave an invalid answer: hold it to the reader again and try again.".into()
            }
            Self::WrongPuk { remaining: 1 } => "Wrong PUK: 1 try left, then the card can no longer be unblocked. Check the PUK (the first 4 digits on the Comune's receipt, the last 4 in the letter with the card).".into(),
            Self::WrongPuk { remaining } => format!("Wrong PUK: {remaining} tries left. Check the PUK (the first 4 digits on the Comune's receipt, the last 4 in the letter with the card)."),
            Self::InvalidPuk => "The PUK has 8 digits: no try was used.".into(),
            Self::PukBlocked => "The PUK is blocked: the card can no longer be unblocked. Ask your Comune for a new card.".into(),
            Self::LastPukTryNeedsConfirmation => "Only one PUK try left: a wrong PUK will make the card unusable. Confirm to go on.".into(),
            Self::NewPinRejected { reason, .. } => {
                let mut r = reason.clone();
                if let Some(first) = r.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                format!("{r}. No try was used.")
            }
        }
    }
}

impl From<crate::applets::emrtd::EmrtdError> for CardError {
    fn from(e: crate::applets::emrtd::EmrtdError) -> Self {
        use crate::applets::emrtd::{EmrtdError as E, SecretKind};
        match e {
            E::Apdu(a) => a.into(),
            E::WrongSecret {
                kind: SecretKind::Can,
                ..
            } => Self::WrongCan,
            E::WrongSecret {
                kind: SecretKind::Mrz,
                ..
            } => Self::WrongMrz,
            E::SecretBlocked => Self::AccessBlocked,
            E::InvalidInput { reason, .. } => Self::InvalidAccessKey {
                reason: reason.into(),
            },
            // A chip that fails chip or active authentication may be a clone.
            E::CardAuthenticationFailed
            | E::ChipAuthenticationFailed
            | E::ActiveAuthenticationFailed(_) => Self::NotGenuine,
            E::ChipAuthenticationRefused { sw } => Self::Refused {
                sw,
                reason: "chip authentication refused".into(),
            },
            E::Unsupported(reason) => Self::NotSupported { reason },
            e @ E::Malformed { .. } => Self::InvalidResponse {
                reason: e.to_string(),
            },
            E::Randomness => Self::Reader {
                reason: "the system random number generator failed".into(),
            },
        }
    }
}

/// The message for a card error in `language`, saying what to do next (UniFFI errors
/// cannot carry methods across the FFI).
#[uniffi::export]
pub fn card_error_message(error: CardError, language: Language) -> String {
    error.message(language)
}

/// [`card_error_message`] in Italian (kept for the callers written before English).
#[uniffi::export]
pub fn card_error_message_it(error: CardError) -> String {
    error.message_it()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::apdu::Sw;

    fn status(sw: u16) -> CardError {
        ApduError::Status {
            sw: Sw(sw),
            ins: 0x20,
        }
        .into()
    }

    #[test]
    fn status_words_map_to_actionable_errors() {
        assert_eq!(status(0x63C2), CardError::WrongPin { remaining: 2 });
        assert_eq!(status(0x63C0), CardError::PinBlocked);
        assert_eq!(status(0x6983), CardError::PinBlocked);
        assert_eq!(status(0x6982), CardError::AccessDenied);
        assert_eq!(status(0x6A82), CardError::NotFound);
        assert!(matches!(
            status(0x6985),
            CardError::Refused { sw: 0x6985, .. }
        ));
        assert_eq!(
            CardError::from(ApduError::Transport(TransportError::TagLost)),
            CardError::TagLost
        );
        assert!(matches!(
            CardError::from(ApduError::ResponseTooShort { len: 1 }),
            CardError::InvalidResponse { .. }
        ));
    }

    /// A weak new PIN refused by the IAS session (not only by the FFI's own check) reaches
    /// the citizen as the rule it broke, never as "the card gave an invalid answer".
    #[test]
    fn a_pin_rule_from_the_session_is_not_a_card_fault() {
        use crate::applets::ias::{IasError, pin::PinFormatError};
        let e = CardError::from(IasError::from(PinFormatError::Sequence));
        let CardError::NewPinRejected { reason, reason_it } = &e else {
            panic!("{e:?}");
        };
        assert!(reason.contains("sequence"), "{reason}");
        assert!(reason_it.contains("sequenza"), "{reason_it}");
        assert!(e.message_it().contains("Nessun tentativo"));
    }

    #[test]
    fn italian_messages_say_what_to_do() {
        assert_eq!(
            CardError::WrongPin { remaining: 2 }.message_it(),
            "PIN errato: restano 2 tentativi. Ricontrolla il PIN e riprova."
        );
        assert!(
            CardError::TagLost
                .message_it()
                .contains("avvicinala di nuovo")
        );
    }

    /// A platform or protocol detail: for logs, never in a message to the citizen.
    pub(crate) const DETAIL: &str = "DETAIL-FOR-LOGS";

    /// One of each variant.
    pub(crate) fn all_card_errors() -> Vec<CardError> {
        let all = vec![
            CardError::TagLost,
            CardError::Timeout,
            CardError::Reader {
                reason: DETAIL.into(),
            },
            CardError::WrongPin { remaining: 2 },
            CardError::WrongPin { remaining: 1 },
            CardError::PinBlocked,
            CardError::AccessDenied,
            CardError::NotFound,
            CardError::NotSupported {
                reason: DETAIL.into(),
            },
            CardError::Refused {
                sw: 0x6985,
                reason: DETAIL.into(),
            },
            CardError::LastTryNeedsConfirmation,
            CardError::PinNeeded,
            CardError::InvalidPin {
                reason: DETAIL.into(),
            },
            CardError::NotGenuine,
            CardError::DifferentCard,
            CardError::NotPaired,
            CardError::PhoneUnsupported,
            CardError::Storage {
                reason: DETAIL.into(),
            },
            CardError::Busy,
            CardError::WrongCan,
            CardError::WrongMrz,
            CardError::AccessBlocked,
            CardError::InvalidAccessKey {
                reason: DETAIL.into(),
            },
            CardError::InvalidResponse {
                reason: DETAIL.into(),
            },
            CardError::InvalidPuk,
            CardError::WrongPuk { remaining: 1 },
            CardError::WrongPuk { remaining: 5 },
            CardError::PukBlocked,
            CardError::LastPukTryNeedsConfirmation,
            CardError::NewPinRejected {
                reason: "the new PIN cannot repeat a single digit".into(),
                reason_it: "Il nuovo PIN non può ripetere la stessa cifra.".into(),
            },
        ];
        for e in &all {
            // No wildcard: a new variant stops this from compiling until it is in the list.
            match e {
                CardError::TagLost
                | CardError::Timeout
                | CardError::Reader { .. }
                | CardError::WrongPin { .. }
                | CardError::PinBlocked
                | CardError::AccessDenied
                | CardError::NotFound
                | CardError::NotSupported { .. }
                | CardError::Refused { .. }
                | CardError::LastTryNeedsConfirmation
                | CardError::PinNeeded
                | CardError::InvalidPin { .. }
                | CardError::NotGenuine
                | CardError::DifferentCard
                | CardError::NotPaired
                | CardError::PhoneUnsupported
                | CardError::Storage { .. }
                | CardError::Busy
                | CardError::WrongCan
                | CardError::WrongMrz
                | CardError::AccessBlocked
                | CardError::InvalidAccessKey { .. }
                | CardError::InvalidResponse { .. }
                | CardError::InvalidPuk
                | CardError::WrongPuk { .. }
                | CardError::PukBlocked
                | CardError::LastPukTryNeedsConfirmation
                | CardError::NewPinRejected { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_card_error_has_an_italian_and_a_different_english_message() {
        for e in all_card_errors() {
            let (it, en) = (e.message(Language::It), e.message(Language::En));
            assert!(it.len() > 15 && en.len() > 15, "{e:?}: {it} / {en}");
            assert_ne!(it, en, "{e:?}");
            assert_eq!(card_error_message(e.clone(), Language::It), it);
            assert_eq!(card_error_message_it(e.clone()), it);
            assert!(
                !it.contains(DETAIL) && !en.contains(DETAIL),
                "{e:?}: {it} / {en}"
            );
        }
        assert_eq!(
            CardError::WrongPin { remaining: 1 }.message_en(),
            "Wrong PIN: 1 try left before the card blocks. Check the PIN and try again."
        );
    }
}
