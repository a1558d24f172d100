//! The card side of the module: readers, and a CIE token on one of them, driven through
//! the core's IAS applet (secure session, PIN, certificate, signature). No PKCS#11 types
//! here beyond the return codes the errors map to.

use cie_core::apdu::{ApduError, CardChannel};
use cie_core::applets::ias::certificate::CieCertificate;
use cie_core::applets::ias::pin::Pin;
use cie_core::applets::ias::secure::{self, OsRandomness, PinStatus, SecureIas};
use cie_core::applets::ias::{IasApplet, IasError};
use cie_core::transport::{SharedTransport, TransportError};
use cryptoki_sys as ck;
use std::sync::Arc;

/// One reader as the module sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderState {
    /// The reader's name (the slot description).
    pub name: String,
    /// Whether a card is in it.
    pub card_present: bool,
}

/// Where the readers come from: PC/SC in the shipped module, virtual cards in tests.
pub trait Readers: Send {
    /// The readers attached now. `Err` when the reader service is not available.
    fn list(&mut self) -> Result<Vec<ReaderState>, ck::CK_RV>;
    /// Connect to the card in reader `name`.
    fn connect(&mut self, name: &str) -> Result<SharedTransport, ck::CK_RV>;
}

/// PC/SC readers through pcsc-lite (one context for the module's life).
#[derive(Default)]
pub struct PcscReaders {
    ctx: Option<cie_readers::pcsc::PcscContext>,
}

impl PcscReaders {
    fn context(&mut self) -> Result<&cie_readers::pcsc::PcscContext, ck::CK_RV> {
        if self.ctx.is_none() {
            self.ctx = Some(cie_readers::pcsc::establish().map_err(reader_rv)?);
        }
        self.ctx.as_ref().ok_or(ck::CKR_GENERAL_ERROR)
    }
}

impl Readers for PcscReaders {
    fn list(&mut self) -> Result<Vec<ReaderState>, ck::CK_RV> {
        let listed = cie_readers::pcsc::list_readers_in(self.context()?);
        let listed = match listed {
            Ok(l) => l,
            // pcscd restarted: one fresh context, then give up.
            Err(_) => {
                self.ctx = None;
                cie_readers::pcsc::list_readers_in(self.context()?).map_err(reader_rv)?
            }
        };
        Ok(listed
            .into_iter()
            .map(|r| ReaderState {
                name: r.name,
                card_present: r.card_present.unwrap_or(false),
            })
            .collect())
    }

    fn connect(&mut self, name: &str) -> Result<SharedTransport, ck::CK_RV> {
        // vpcd and many readers do not state their APDU size: short APDUs, chained and
        // chunked by the core, work everywhere.
        let t = cie_readers::pcsc::PcscTransport::connect_in(self.context()?, name, None)
            .map_err(reader_rv)?;
        Ok(Arc::new(t))
    }
}

fn reader_rv(e: cie_readers::ReaderError) -> ck::CK_RV {
    use cie_readers::ReaderError as R;
    match e {
        R::Unavailable { .. } | R::NoReaders | R::NotFound { .. } => ck::CKR_SLOT_ID_INVALID,
        R::NoCard { .. } => ck::CKR_TOKEN_NOT_PRESENT,
        R::Transport(t) => transport_rv(&t),
    }
}

fn transport_rv(e: &TransportError) -> ck::CK_RV {
    match e {
        TransportError::TagLost => ck::CKR_DEVICE_REMOVED,
        TransportError::Timeout | TransportError::Io { .. } => ck::CKR_DEVICE_ERROR,
    }
}

/// The PKCS#11 code for a failed card operation: the card's own verdict on a PIN, else
/// the link's fault, else a device error. Never `CKR_PIN_INCORRECT` unless the card said so.
pub fn ias_rv(e: &IasError) -> ck::CK_RV {
    match e {
        IasError::WrongPin { .. } => ck::CKR_PIN_INCORRECT,
        IasError::PinBlocked => ck::CKR_PIN_LOCKED,
        IasError::PinRequired => ck::CKR_USER_NOT_LOGGED_IN,
        IasError::NotACie => ck::CKR_TOKEN_NOT_RECOGNIZED,
        IasError::Apdu(ApduError::Transport(t)) => transport_rv(t),
        _ => ck::CKR_DEVICE_ERROR,
    }
}

/// A CIE in a reader, with its secure session open: the certificate read, the PIN state
/// known, and (after `login`) the PIN verified on this session.
pub struct CieToken {
    secure: SecureIas<CardChannel>,
    /// The authentication certificate.
    pub certificate: CieCertificate,
    /// The card's NIS (identification number for services), as text.
    pub nis: String,
    /// The PIN state as last read from the card, without spending a try.
    pub pin: PinStatus,
    /// Whether the PIN was verified on this session.
    pub logged_in: bool,
}

impl std::fmt::Debug for CieToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CieToken")
            .field("pin", &self.pin)
            .field("logged_in", &self.logged_in)
            .finish_non_exhaustive()
    }
}

impl CieToken {
    /// Recognise a CIE on `transport` (IAS and CIE applications, NIS) and open its secure
    /// session; read the certificate and the PIN state (no try spent).
    pub fn open(transport: SharedTransport) -> Result<Self, ck::CK_RV> {
        pollster::block_on(Self::open_async(transport)).map_err(|e| ias_rv(&e))
    }

    async fn open_async(transport: SharedTransport) -> Result<Self, IasError> {
        let ch = CardChannel::new(transport);
        let nis = {
            let ias = IasApplet::select(&ch).await?;
            ias.read_nis().await?.text()
        };
        let secure = secure::open(ch, &OsRandomness).await?;
        let der = secure.read_certificate().await?;
        let certificate = CieCertificate::from_der(&der)?;
        let pin = secure.pin_status().await?;
        Ok(Self {
            logged_in: pin == PinStatus::Verified,
            secure,
            certificate,
            nis,
            pin,
        })
    }

    /// VERIFY the user PIN. A PIN of the wrong shape reaches no card and spends no try.
    pub fn login(&mut self, pin: &[u8]) -> Result<(), ck::CK_RV> {
        let text = std::str::from_utf8(pin).map_err(|_| ck::CKR_PIN_LEN_RANGE)?;
        let pin = Pin::new(text).map_err(|_| ck::CKR_PIN_LEN_RANGE)?;
        let outcome = pollster::block_on(self.secure.verify_pin_with_status(&pin, self.pin, true));
        match outcome {
            Ok(()) => {
                self.pin = PinStatus::Verified;
                self.logged_in = true;
                Ok(())
            }
            Err(e) => {
                match e {
                    IasError::WrongPin { remaining } => self.pin = PinStatus::TriesLeft(remaining),
                    IasError::PinBlocked => self.pin = PinStatus::Blocked,
                    _ => {}
                }
                Err(ias_rv(&e))
            }
        }
    }

    /// Sign `data` (a DigestInfo, or any data up to the modulus length minus 11) with the
    /// authentication key; the card adds PKCS#1 v1.5 type 01 padding.
    pub fn sign_pkcs1(&self, data: &[u8]) -> Result<Vec<u8>, ck::CK_RV> {
        if data.is_empty() || data.len() + 11 > self.modulus_len() {
            return Err(ck::CKR_DATA_LEN_RANGE);
        }
        pollster::block_on(self.secure.sign_pkcs1(data)).map_err(|e| ias_rv(&e))
    }

    /// Length of the modulus (and of every signature) in bytes.
    pub fn modulus_len(&self) -> usize {
        self.certificate.public_key.modulus.len()
    }
}
