//! PC/SC readers (pcsc-lite on Linux, WinSCard on Windows, CryptoTokenKit on macOS).
//!
//! **Extended length.** PC/SC itself carries up to 65 544-byte commands, but whether a given
//! reader and driver pass extended APDUs through depends on the reader (CCID "short APDU
//! level" readers do not) and on the protocol (T=0 needs ENVELOPE, which pcsc-lite does not
//! do). So we are conservative: a link is extended only if the reader itself says so through
//! the PC/SC v2 part 10 property `dwMaxAPDUDataSize` (queried with `SCardControl`; the CCID
//! driver answers it), the card runs T=1, or the user forces it with `--extended-length`.
//! Otherwise the link is short (261/258), which every reader handles; the APDU layer then
//! chunks reads. vpcd 0.8 (Debian's vsmartcard-vpcd 3.3) does not answer the property, so
//! the virtual reader is reported as short.

use std::ffi::{CStr, CString};

use cie_core::transport::{CardTransport, TransportError, TransportInfo, TransportKind};

use crate::ReaderError;

/// An open PC/SC context (pcsc-lite connection), kept by long-lived users such as the
/// PKCS#11 module.
pub use ::pcsc::Context as PcscContext;

/// One PC/SC reader as listed by `readers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcscReader {
    /// Name exactly as PC/SC gives it (use it with `--reader pcsc:NAME`).
    pub name: String,
    /// Whether a card is present, when the status query answered.
    pub card_present: Option<bool>,
}

/// Map a PC/SC error on an open card link to the core's transport error.
pub fn map_pcsc_error(e: pcsc::Error) -> TransportError {
    match e {
        pcsc::Error::RemovedCard | pcsc::Error::ResetCard | pcsc::Error::NoSmartcard => {
            TransportError::TagLost
        }
        pcsc::Error::Timeout => TransportError::Timeout,
        other => TransportError::Io {
            reason: format!("PC/SC: {other}"),
        },
    }
}

/// Open a PC/SC context (user scope). `Err(Unavailable)` when pcscd is not running.
pub fn establish() -> Result<pcsc::Context, ReaderError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| ReaderError::Unavailable {
        reason: e.to_string(),
    })
}

fn reader_names(ctx: &pcsc::Context) -> Result<Vec<CString>, ReaderError> {
    match ctx.list_readers_owned() {
        Ok(names) => Ok(names),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(ReaderError::Unavailable {
            reason: e.to_string(),
        }),
    }
}

/// List the PC/SC readers. `Err(PcscUnavailable)` when pcscd is not running.
pub fn list_readers() -> Result<Vec<PcscReader>, ReaderError> {
    list_readers_in(&establish()?)
}

/// List the readers of an open context, with whether each holds a card.
pub fn list_readers_in(ctx: &pcsc::Context) -> Result<Vec<PcscReader>, ReaderError> {
    let names = reader_names(ctx)?;
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
        .collect();
    let status_ok = states.is_empty()
        || ctx
            .get_status_change(std::time::Duration::from_millis(0), &mut states)
            .is_ok();
    Ok(names
        .iter()
        .zip(states.iter())
        .map(|(n, s)| PcscReader {
            name: n.to_string_lossy().into_owned(),
            card_present: status_ok.then(|| s.event_state().contains(pcsc::State::PRESENT)),
        })
        .collect())
}

self_cell::self_cell!(
    /// A card connection inside `SCardBeginTransaction` … `SCardEndTransaction`: the
    /// transaction borrows the card, so both live in one cell (no `unsafe` here).
    struct Exclusive {
        owner: self_cell::MutBorrow<pcsc::Card>,
        #[covariant]
        dependent: Transaction,
    }
);

type Transaction<'card> = pcsc::Transaction<'card>;

/// The card link, shared with other applications or held for a sequence of commands.
enum Link {
    Shared(pcsc::Card),
    Exclusive(Exclusive),
    /// Only while switching between the two (a failed switch puts the card back).
    Switching,
}

/// A connected PC/SC card.
pub struct PcscTransport {
    link: std::sync::Mutex<Link>,
    reader: String,
    info: TransportInfo,
    /// Reset the card when this connection closes (else leave it as it is, so other
    /// applications' sessions on it survive our exit).
    reset_on_close: std::sync::atomic::AtomicBool,
}

/// What [`PcscTransport::begin_exclusive`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The card as we left it.
    AsLeft,
    /// Another application reset the card since our last command (its sessions and PIN
    /// state are gone); the connection was re-established and is held now.
    AfterReset,
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        let link = match self.link.get_mut() {
            Ok(link) => std::mem::replace(link, Link::Switching),
            Err(poisoned) => std::mem::replace(poisoned.into_inner(), Link::Switching),
        };
        let card = match link {
            Link::Shared(card) => card,
            Link::Exclusive(held) => held.into_owner().into_inner(),
            Link::Switching => return,
        };
        let disposition = if *self.reset_on_close.get_mut() {
            pcsc::Disposition::ResetCard
        } else {
            pcsc::Disposition::LeaveCard
        };
        // A failed disconnect drops the card, which resets it: the safe side.
        let _ = card.disconnect(disposition);
    }
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("info", &self.info)
            .finish()
    }
}

impl PcscTransport {
    /// Connect (shared, T=0 or T=1) to the card in `reader`, or in the first reader holding a
    /// card when `reader` is `None`. `force_extended` overrides the extended-length probe.
    pub fn connect(
        reader: Option<&str>,
        force_extended: Option<bool>,
    ) -> Result<Self, ReaderError> {
        let ctx = establish()?;
        let names = reader_names(&ctx)?;
        if names.is_empty() {
            return Err(ReaderError::NoReaders);
        }
        let candidates: Vec<&CString> = match reader {
            Some(name) => {
                let found = names.iter().find(|n| n.to_string_lossy() == name);
                match found {
                    Some(n) => vec![n],
                    None => {
                        return Err(ReaderError::NotFound {
                            name: name.to_string(),
                            available: names
                                .iter()
                                .map(|n| n.to_string_lossy().into_owned())
                                .collect(),
                        });
                    }
                }
            }
            None => names.iter().collect(),
        };
        let mut last = None;
        for name in candidates {
            match Self::connect_one(&ctx, name, force_extended) {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ReaderError::NoReaders))
    }

    /// Connect (shared, T=0 or T=1) to the card in the reader `name` of an open context.
    pub fn connect_in(
        ctx: &pcsc::Context,
        name: &str,
        force_extended: Option<bool>,
    ) -> Result<Self, ReaderError> {
        let cname = CString::new(name).map_err(|_| ReaderError::NotFound {
            name: name.to_string(),
            available: Vec::new(),
        })?;
        Self::connect_one(ctx, &cname, force_extended)
    }

    fn connect_one(
        ctx: &pcsc::Context,
        name: &CStr,
        force_extended: Option<bool>,
    ) -> Result<Self, ReaderError> {
        let reader = name.to_string_lossy().into_owned();
        let card = ctx
            .connect(
                name,
                pcsc::ShareMode::Shared,
                pcsc::Protocols::T0 | pcsc::Protocols::T1,
            )
            .map_err(|e| match e {
                pcsc::Error::NoSmartcard
                | pcsc::Error::RemovedCard
                | pcsc::Error::UnpoweredCard
                | pcsc::Error::UnresponsiveCard => ReaderError::NoCard {
                    reader: reader.clone(),
                },
                pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
                    ReaderError::NotFound {
                        name: reader.clone(),
                        available: Vec::new(),
                    }
                }
                other => ReaderError::Transport(map_pcsc_error(other)),
            })?;
        let status = card
            .status2_owned()
            .map_err(|e| ReaderError::Transport(map_pcsc_error(e)))?;
        let atr = status.atr().to_vec();
        let t1 = status.protocol2() == Some(pcsc::Protocol::T1);
        let max_apdu_data = if t1 {
            reader_max_apdu_data(&card)
        } else {
            None
        };
        let extended = match force_extended {
            Some(forced) => forced,
            None => max_apdu_data.is_some_and(|n| n > 256),
        };
        let mut info = TransportInfo::short(TransportKind::Contact);
        info.atr = Some(atr);
        if extended {
            // Extended Lc is at most 65 535 and Ne at most 65 536: 4 + 3 + 65 535 + 2 = 65 544
            // and 65 536 + SW = 65 538, unless the reader states a smaller dwMaxAPDUDataSize.
            let data = max_apdu_data.unwrap_or(65_536);
            info.extended_length = true;
            info.max_command_len = 4 + 3 + data.min(65_535) + 2;
            info.max_response_len = data.min(65_536) + 2;
        }
        Ok(Self {
            link: std::sync::Mutex::new(Link::Shared(card)),
            reader,
            info,
            reset_on_close: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Reset the card when this connection closes: for a card whose PIN state outlives a
    /// connection (a CNS verifies in clear), so nobody signs with our PIN after we leave.
    pub fn reset_when_closed(&self) {
        self.reset_on_close
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn link(&self) -> Result<std::sync::MutexGuard<'_, Link>, TransportError> {
        self.link.lock().map_err(|_| TransportError::Io {
            reason: "PC/SC link lock poisoned".into(),
        })
    }

    /// Hold the card for a sequence of commands (`SCardBeginTransaction`): other
    /// applications' commands wait until [`Self::end_exclusive`], so a secure-messaging
    /// session or a PIN verification and the signature that needs it are never interleaved
    /// with another application's. Blocks while another application holds the card. Holding
    /// it already is fine. `Err(TagLost)` when the card was removed or reset by another
    /// application since the last command (our session on it is gone).
    pub fn begin_exclusive(&self) -> Result<Held, TransportError> {
        let mut link = self.link()?;
        match std::mem::replace(&mut *link, Link::Switching) {
            Link::Shared(card) => {
                let (held, card) = match Self::hold(card) {
                    Ok(held) => (Held::AsLeft, Ok(held)),
                    // pcsc-lite tells each other handle once that the card was reset:
                    // reconnect (leaving the card as it is) and hold it.
                    Err((mut card, pcsc::Error::ResetCard)) => {
                        let reconnected = card.reconnect(
                            pcsc::ShareMode::Shared,
                            pcsc::Protocols::T0 | pcsc::Protocols::T1,
                            pcsc::Disposition::LeaveCard,
                        );
                        match reconnected {
                            Ok(()) => (Held::AfterReset, Self::hold(card)),
                            Err(e) => (Held::AfterReset, Err((card, e))),
                        }
                    }
                    Err(other) => (Held::AsLeft, Err(other)),
                };
                match card {
                    Ok(exclusive) => {
                        *link = Link::Exclusive(exclusive);
                        Ok(held)
                    }
                    Err((card, e)) => {
                        *link = Link::Shared(card);
                        Err(map_pcsc_error(e))
                    }
                }
            }
            held @ Link::Exclusive(_) => {
                *link = held;
                Ok(Held::AsLeft)
            }
            Link::Switching => Err(TransportError::Io {
                reason: "PC/SC link lost while switching".into(),
            }),
        }
    }

    fn hold(card: pcsc::Card) -> Result<Exclusive, (pcsc::Card, pcsc::Error)> {
        Exclusive::try_new_or_recover(self_cell::MutBorrow::new(card), |c| {
            c.borrow_mut().transaction()
        })
        .map_err(|(card, e)| (card.into_inner(), e))
    }

    /// Let other applications use the card again (`SCardEndTransaction`, card left as it
    /// is). Not holding it is fine.
    pub fn end_exclusive(&self) {
        let Ok(mut link) = self.link.lock() else {
            return;
        };
        if let Link::Exclusive(held) = std::mem::replace(&mut *link, Link::Switching) {
            // Dropping the transaction ends it.
            *link = Link::Shared(held.into_owner().into_inner());
        }
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's ATR, as `SCardStatus` gave it at connection (vpcd does not answer the
    /// ATR attribute request, so the status is what is read).
    pub fn atr(&self) -> &[u8] {
        self.info.atr.as_deref().unwrap_or_default()
    }
}

/// `dwMaxAPDUDataSize` from the reader's PC/SC part 10 TLV properties, if it answers.
fn reader_max_apdu_data(card: &pcsc::Card) -> Option<u32> {
    // CM_IOCTL_GET_FEATURE_REQUEST = SCARD_CTL_CODE(3400); FEATURE_GET_TLV_PROPERTIES = 0x12;
    // PCSCv2_PART10_PROPERTY_dwMaxAPDUDataSize = 0x0A (pcsc-lite reader.h).
    let mut buf = [0u8; 256];
    let features = card.control(pcsc::ctl_code(3400), &[], &mut buf).ok()?;
    let ioctl = features.chunks_exact(6).find_map(|f| {
        (f[0] == 0x12 && f[1] == 4).then(|| u32::from_be_bytes([f[2], f[3], f[4], f[5]]))
    })?;
    let mut buf = [0u8; 256];
    #[allow(clippy::useless_conversion)] // DWORD is u64 on some targets.
    let props = card.control(ioctl.into(), &[], &mut buf).ok()?;
    let mut rest = props;
    while rest.len() >= 2 {
        let (tag, len) = (rest[0], usize::from(rest[1]));
        let value = rest.get(2..2 + len)?;
        if tag == 0x0A && len == 4 {
            return Some(u32::from_le_bytes([value[0], value[1], value[2], value[3]]));
        }
        rest = &rest[2 + len..];
    }
    None
}

#[async_trait::async_trait]
impl CardTransport for PcscTransport {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let link = self.link()?;
        let card: &pcsc::Card = match &*link {
            Link::Shared(card) => card,
            Link::Exclusive(held) => held.borrow_dependent(),
            Link::Switching => {
                return Err(TransportError::Io {
                    reason: "PC/SC link lost while switching".into(),
                });
            }
        };
        let rapdu = card.transmit(&apdu, &mut buf).map_err(map_pcsc_error)?;
        Ok(rapdu.to_vec())
    }

    fn info(&self) -> TransportInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_card_loss_and_timeouts() {
        assert_eq!(
            map_pcsc_error(pcsc::Error::RemovedCard),
            TransportError::TagLost
        );
        assert_eq!(
            map_pcsc_error(pcsc::Error::ResetCard),
            TransportError::TagLost
        );
        assert_eq!(
            map_pcsc_error(pcsc::Error::NoSmartcard),
            TransportError::TagLost
        );
        assert_eq!(
            map_pcsc_error(pcsc::Error::Timeout),
            TransportError::Timeout
        );
        assert!(matches!(
            map_pcsc_error(pcsc::Error::CommError),
            TransportError::Io { .. }
        ));
    }
}
