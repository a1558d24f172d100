//! The card side of the module: readers, and a token on one of them: a CIE driven through
//! the core's IAS applet (secure session, PIN, certificate, signature), or a CNS / TS-CNS
//! through the core's `cns` applet (clear PIN, raw RSA with host padding). No PKCS#11
//! types here beyond the return codes the errors map to.

use cie_core::apdu::{ApduError, CardChannel, SwKind};
use cie_core::applets::cns::atr::{ChipFamily, CnsAtr};
use cie_core::applets::cns::personal::PersonalData;
use cie_core::applets::cns::pin::CnsPin;
use cie_core::applets::cns::{self, CnsApplet, CnsError};
use cie_core::applets::ias::bigint::modexp;
use cie_core::applets::ias::certificate::CieCertificate;
use cie_core::applets::ias::pin::{Pin, PinFormatError};
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
    fn connect(&mut self, name: &str) -> Result<Connection, ck::CK_RV>;
}

/// Holding a shared card for a sequence of commands, so other applications' commands do
/// not fall between them (PC/SC transactions).
pub trait Hold: Send + Sync {
    /// Hold the card (waits while another application holds it). `Ok(true)` when another
    /// application reset the card since our last command: every session on it is gone.
    fn begin(&self) -> Result<bool, TransportError>;
    /// Release it.
    fn end(&self);
    /// Reset the card when the connection closes (a CNS keeps its PIN state otherwise).
    fn reset_when_closed(&self);
}

/// A card connection: the transport, and how to hold the card (none for a card only this
/// process can reach, such as an in-process virtual card).
#[derive(Clone)]
pub struct Connection {
    /// The APDU link.
    pub transport: SharedTransport,
    /// PC/SC transactions, when the card is shared with other applications.
    pub hold: Option<Arc<dyn Hold>>,
}

impl Connection {
    /// A card nobody else can reach: nothing to hold.
    pub fn unshared(transport: SharedTransport) -> Self {
        Self {
            transport,
            hold: None,
        }
    }
}

impl Hold for cie_readers::pcsc::PcscTransport {
    fn begin(&self) -> Result<bool, TransportError> {
        Ok(self.begin_exclusive()? == cie_readers::pcsc::Held::AfterReset)
    }

    fn end(&self) {
        self.end_exclusive();
    }

    fn reset_when_closed(&self) {
        cie_readers::pcsc::PcscTransport::reset_when_closed(self);
    }
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

    fn connect(&mut self, name: &str) -> Result<Connection, ck::CK_RV> {
        // vpcd and many readers do not state their APDU size: short APDUs, chained and
        // chunked by the core, work everywhere.
        let connected = cie_readers::pcsc::PcscTransport::connect_in(self.context()?, name, None);
        let t = match connected {
            Ok(t) => t,
            // pcscd restarted since the context was made: one fresh context, then give up.
            Err(cie_readers::ReaderError::Unavailable { .. })
            | Err(cie_readers::ReaderError::Transport(TransportError::Io { .. })) => {
                self.ctx = None;
                cie_readers::pcsc::PcscTransport::connect_in(self.context()?, name, None)
                    .map_err(reader_rv)?
            }
            Err(e) => return Err(reader_rv(e)),
        };
        let t = Arc::new(t);
        Ok(Connection {
            transport: t.clone(),
            hold: Some(t),
        })
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

/// The PKCS#11 code for a link failure: a card gone is a removed device.
pub fn transport_rv(e: &TransportError) -> ck::CK_RV {
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
        IasError::PinFormat(PinFormatError::NotEightDigits | PinFormatError::NotFourDigits) => {
            ck::CKR_PIN_LEN_RANGE
        }
        IasError::PinFormat(_) => ck::CKR_PIN_INVALID,
        IasError::Apdu(ApduError::Transport(t)) => transport_rv(t),
        _ => ck::CKR_DEVICE_ERROR,
    }
}

/// A CIE in a reader, with its secure session open: the certificate read, the PIN state
/// known, and (after `login`) the PIN verified on this session.
pub struct CieToken {
    transport: SharedTransport,
    secure: SecureIas<CardChannel>,
    /// The PIN, kept while logged in (zeroized on logout, when the token is dropped): when
    /// another application on the same card opens its own secure session, ours ends, and
    /// the PIN's verified state with it; the module then reopens the session and verifies
    /// the PIN again without asking, as the official module does before every signature.
    verified_pin: Option<Pin>,
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
        let (nis, secure) = Self::secure_session(&transport).await?;
        let der = secure.read_certificate().await?;
        let certificate = CieCertificate::from_der(&der)?;
        let pin = secure.pin_status().await?;
        Ok(Self {
            logged_in: pin == PinStatus::Verified,
            transport,
            secure,
            verified_pin: None,
            certificate,
            nis,
            pin,
        })
    }

    /// Select the CIE, read its NIS, open a secure session.
    async fn secure_session(
        transport: &SharedTransport,
    ) -> Result<(String, SecureIas<CardChannel>), IasError> {
        let ch = CardChannel::new(transport.clone());
        let nis = {
            let ias = IasApplet::select(&ch).await?;
            ias.read_nis().await?.text()
        };
        Ok((nis, secure::open(ch, &OsRandomness).await?))
    }

    /// Open the secure session again on the same card (another application's session
    /// ended ours), and verify the kept PIN again if logged in. Another card in the reader
    /// (another NIS) is a removed device.
    async fn reopen(&mut self) -> Result<(), IasError> {
        let (nis, secure) = Self::secure_session(&self.transport).await?;
        if nis != self.nis {
            return Err(IasError::Apdu(ApduError::Transport(
                TransportError::TagLost,
            )));
        }
        self.secure = secure;
        if let Some(pin) = &self.verified_pin {
            self.secure.verify_pin(pin, true).await?;
        }
        Ok(())
    }

    /// VERIFY the user PIN. A PIN of the wrong shape reaches no card and spends no try.
    pub fn login(&mut self, pin: &[u8]) -> Result<(), ck::CK_RV> {
        let text = std::str::from_utf8(pin).map_err(|_| ck::CKR_PIN_LEN_RANGE)?;
        let pin = Pin::new(text).map_err(|_| ck::CKR_PIN_LEN_RANGE)?;
        let mut outcome =
            pollster::block_on(self.secure.verify_pin_with_status(&pin, self.pin, true));
        if outcome.as_ref().is_err_and(session_refused) {
            // The card refused the protected VERIFY as a whole (`6987`/`6988`/`6882`): it
            // never saw the PIN, so no try was counted; a fresh session, then the VERIFY again.
            outcome = pollster::block_on(async {
                self.reopen().await?;
                self.secure
                    .verify_pin_with_status(&pin, self.pin, true)
                    .await
            });
        }
        match outcome {
            Ok(()) => {
                self.pin = PinStatus::Verified;
                self.logged_in = true;
                self.verified_pin = Some(pin);
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
    /// authentication key; the card adds PKCS#1 v1.5 type 01 padding. If another
    /// application's session ended ours, the session is reopened, the kept PIN verified
    /// again, and the signature asked once more (signing twice spends nothing).
    pub fn sign_pkcs1(&mut self, data: &[u8]) -> Result<Vec<u8>, ck::CK_RV> {
        // The block the card pads `data` into, to open the signature against (and the
        // length check: too long for the modulus is `CKR_DATA_LEN_RANGE` before the card).
        let block = cns::padding::pkcs1_v15(data, self.modulus_len()).map_err(|e| cns_rv(&e))?;
        let mut outcome = pollster::block_on(self.secure.sign_pkcs1(data));
        if self.verified_pin.is_some()
            && outcome
                .as_ref()
                .is_err_and(|e| session_refused(e) || matches!(e, IasError::PinRequired))
        {
            outcome = pollster::block_on(async {
                self.reopen().await?;
                self.secure.sign_pkcs1(data).await
            });
        }
        let signature = outcome.map_err(|e| {
            if matches!(e, IasError::WrongPin { .. } | IasError::PinBlocked) {
                // The kept PIN no longer opens the card (changed elsewhere): log in again.
                self.verified_pin = None;
                self.logged_in = false;
                self.pin = match e {
                    IasError::WrongPin { remaining } => PinStatus::TriesLeft(remaining),
                    _ => PinStatus::Blocked,
                };
                ck::CKR_USER_NOT_LOGGED_IN
            } else {
                ias_rv(&e)
            }
        })?;
        checked(&self.certificate, &block, signature)
    }

    /// Length of the modulus (and of every signature) in bytes.
    pub fn modulus_len(&self) -> usize {
        self.certificate.public_key.modulus.len()
    }
}

/// Whether the card refused a protected command as a whole because our secure session is
/// not its session any more (`6987`/`6988`/`6882`, in clear): it did not run the command.
fn session_refused(e: &IasError) -> bool {
    matches!(
        e,
        IasError::Apdu(ApduError::Status { sw, .. })
            if sw.kind() == SwKind::SecureMessagingFailed
    )
}

/// The CIE's and the CNS's PIN have 3 tries (cie.md §0.4; the CNS count is what OpenSC's
/// users and the TS-CNS activation letters report **[unsure for every CNS family: the
/// CNS spec text was not read]**).
const PIN_TRIES: u8 = 3;

/// The token flags a PIN state gives: COUNT_LOW below the full count, FINAL_TRY with one
/// left, LOCKED when blocked; nothing when the card does not say.
fn pin_flags(tries: Option<u8>, blocked: bool) -> ck::CK_FLAGS {
    if blocked {
        return ck::CKF_USER_PIN_LOCKED;
    }
    match tries {
        Some(1) => ck::CKF_USER_PIN_COUNT_LOW | ck::CKF_USER_PIN_FINAL_TRY,
        Some(n) if n < PIN_TRIES => ck::CKF_USER_PIN_COUNT_LOW,
        _ => 0,
    }
}

/// The PKCS#11 code for a failed CNS operation (same rules as [`ias_rv`]).
pub fn cns_rv(e: &CnsError) -> ck::CK_RV {
    match e {
        CnsError::WrongPin { .. } => ck::CKR_PIN_INCORRECT,
        CnsError::PinBlocked => ck::CKR_PIN_LOCKED,
        CnsError::PinRequired => ck::CKR_USER_NOT_LOGGED_IN,
        CnsError::PinFormat => ck::CKR_PIN_LEN_RANGE,
        CnsError::InputLength { .. } => ck::CKR_DATA_LEN_RANGE,
        CnsError::NotACns => ck::CKR_TOKEN_NOT_RECOGNIZED,
        CnsError::Apdu(ApduError::Transport(t)) => transport_rv(t),
        _ => ck::CKR_DEVICE_ERROR,
    }
}

/// A CNS / TS-CNS in a reader: its files read, the PIN state known (no try spent).
pub struct CnsToken {
    applet: CnsApplet<CardChannel>,
    /// The CNS0 authentication certificate.
    pub certificate: CieCertificate,
    /// EF_IDCarta (the token serial).
    pub card_id: String,
    /// The chip family the ATR names, if it names one.
    pub family: Option<ChipFamily>,
    /// EF_DatiPersonali, when it parses (the certificate names the holder too).
    pub personal: Option<PersonalData>,
    /// The PIN state as last read from the card.
    pub pin: cns::PinStatus,
    /// Whether the PIN was verified on this connection.
    pub logged_in: bool,
}

impl std::fmt::Debug for CnsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CnsToken")
            .field("pin", &self.pin)
            .field("logged_in", &self.logged_in)
            .finish_non_exhaustive()
    }
}

impl CnsToken {
    /// Recognise a CNS by its files (the ATR's family only picks the PIN reference).
    pub fn open(transport: SharedTransport) -> Result<Self, ck::CK_RV> {
        pollster::block_on(Self::open_async(transport)).map_err(|e| cns_rv(&e))
    }

    async fn open_async(transport: SharedTransport) -> Result<Self, CnsError> {
        let family = transport
            .info()
            .atr
            .as_deref()
            .and_then(CnsAtr::parse)
            .map(|a| a.family);
        let mut applet = CnsApplet::select(CardChannel::new(transport), family).await?;
        let family = family.filter(|f| !matches!(f, ChipFamily::Other(_)));
        let card_id = applet.read_card_id().await?.as_str().to_owned();
        let personal = match applet.read_personal_data().await {
            Ok(p) => Some(p),
            Err(e @ CnsError::Apdu(ApduError::Transport(_))) => return Err(e),
            Err(_) => None,
        };
        let der = applet.read_certificate().await?;
        let certificate = CieCertificate::from_der(&der).map_err(|e| CnsError::Malformed {
            what: "certificate",
            reason: e.to_string(),
        })?;
        let pin = applet.pin_status().await?;
        Ok(Self {
            logged_in: pin == cns::PinStatus::Verified,
            applet,
            certificate,
            card_id,
            family,
            personal,
            pin,
        })
    }

    /// VERIFY the PIN (5-8 digits, in clear). Another shape reaches no card.
    pub fn login(&mut self, pin: &[u8]) -> Result<(), ck::CK_RV> {
        let pin = CnsPin::new(pin).map_err(|e| cns_rv(&e))?;
        match pollster::block_on(self.applet.verify_pin(&pin, self.pin, true)) {
            Ok(()) => {
                self.pin = cns::PinStatus::Verified;
                self.logged_in = true;
                Ok(())
            }
            Err(e) => {
                match e {
                    CnsError::WrongPin { remaining } => {
                        self.pin = cns::PinStatus::TriesLeft(remaining);
                    }
                    CnsError::PinBlocked => self.pin = cns::PinStatus::Blocked,
                    _ => {}
                }
                Err(cns_rv(&e))
            }
        }
    }

    /// The raw RSA operation on a modulus-length block.
    pub fn sign_raw(&self, block: &[u8]) -> Result<Vec<u8>, ck::CK_RV> {
        let signature = pollster::block_on(self.applet.sign_raw(block)).map_err(|e| cns_rv(&e))?;
        checked(&self.certificate, block, signature)
    }
}

/// `signature`, if it opens with the certificate's key to `block`: a signature that does
/// not verify never leaves the module (the CNS answers in clear, so a byte flipped on the
/// link would otherwise reach the caller as a bad signature; the CIE's answer is under
/// secure messaging, checked all the same). One public-key operation per signature.
fn checked(
    certificate: &CieCertificate,
    block: &[u8],
    signature: Vec<u8>,
) -> Result<Vec<u8>, ck::CK_RV> {
    let key = &certificate.public_key;
    match modexp(&signature, &key.exponent, &key.modulus) {
        Ok(opened) if opened == block => Ok(signature),
        _ => Err(ck::CKR_DEVICE_ERROR),
    }
}

/// Mechanisms of a CIE: only what the card does (PKCS#1 v1.5 padding on the card).
pub const CIE_MECHANISMS: &[ck::CK_MECHANISM_TYPE] = &[
    ck::CKM_RSA_PKCS,
    ck::CKM_SHA1_RSA_PKCS,
    ck::CKM_SHA256_RSA_PKCS,
    ck::CKM_SHA384_RSA_PKCS,
    ck::CKM_SHA512_RSA_PKCS,
];

/// Mechanisms of a CNS: the card does raw RSA, so the host pads PKCS#1 v1.5 and PSS, and
/// `CKM_RSA_X_509` is the card's own operation.
pub const CNS_MECHANISMS: &[ck::CK_MECHANISM_TYPE] = &[
    ck::CKM_RSA_PKCS,
    ck::CKM_SHA1_RSA_PKCS,
    ck::CKM_SHA256_RSA_PKCS,
    ck::CKM_SHA384_RSA_PKCS,
    ck::CKM_SHA512_RSA_PKCS,
    ck::CKM_RSA_X_509,
    ck::CKM_RSA_PKCS_PSS,
    ck::CKM_SHA1_RSA_PKCS_PSS,
    ck::CKM_SHA256_RSA_PKCS_PSS,
    ck::CKM_SHA384_RSA_PKCS_PSS,
    ck::CKM_SHA512_RSA_PKCS_PSS,
];

/// The card in a slot.
#[derive(Debug)]
pub enum Token {
    /// An Italian electronic identity card.
    Cie(CieToken),
    /// A CNS or TS-CNS.
    Cns(CnsToken),
}

impl Token {
    /// Recognise the card: a CNS ATR tries the CNS first, anything else the CIE first;
    /// each is confirmed by its applications and files.
    pub fn open(transport: SharedTransport) -> Result<Self, ck::CK_RV> {
        let cns_atr = transport
            .info()
            .atr
            .as_deref()
            .and_then(CnsAtr::parse)
            .is_some();
        let cie = |t: SharedTransport| CieToken::open(t).map(Self::Cie);
        let cns = |t: SharedTransport| CnsToken::open(t).map(Self::Cns);
        let (first, second): (&dyn Fn(SharedTransport) -> _, &dyn Fn(SharedTransport) -> _) =
            if cns_atr { (&cns, &cie) } else { (&cie, &cns) };
        match first(transport.clone()) {
            Err(ck::CKR_TOKEN_NOT_RECOGNIZED) => second(transport),
            other => other,
        }
    }

    /// Another application reset the card: every session on it is gone. The CIE reopens
    /// its secure session (and verifies the kept PIN again if logged in); a CNS is logged
    /// out (its PIN was not kept).
    pub fn after_reset(&mut self) -> Result<(), ck::CK_RV> {
        match self {
            Self::Cie(t) => pollster::block_on(t.reopen()).map_err(|e| ias_rv(&e)),
            Self::Cns(t) => {
                t.logged_in = false;
                t.pin = cns::PinStatus::Unknown;
                Ok(())
            }
        }
    }

    /// The authentication certificate.
    pub fn certificate(&self) -> &CieCertificate {
        match self {
            Self::Cie(t) => &t.certificate,
            Self::Cns(t) => &t.certificate,
        }
    }

    /// Whether the PIN was verified on this connection.
    pub fn logged_in(&self) -> bool {
        match self {
            Self::Cie(t) => t.logged_in,
            Self::Cns(t) => t.logged_in,
        }
    }

    /// The token serial: the CIE's NIS, the CNS's card id.
    pub fn serial(&self) -> &str {
        match self {
            Self::Cie(t) => &t.nis,
            Self::Cns(t) => &t.card_id,
        }
    }

    /// "CIE" or "CNS", for labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cie(_) => "CIE",
            Self::Cns(_) => "CNS",
        }
    }

    /// The token model in `C_GetTokenInfo`.
    pub fn model(&self) -> &'static str {
        match self {
            Self::Cie(_) => "CIE 3.0",
            Self::Cns(_) => "CNS / TS-CNS",
        }
    }

    /// The manufacturer in `C_GetTokenInfo`: IPZS, or the CNS's chip OS maker.
    pub fn manufacturer(&self) -> &'static str {
        match self {
            Self::Cie(_) => "IPZS",
            Self::Cns(t) => t.family.map_or("CNS", ChipFamily::label),
        }
    }

    /// Shortest and longest PIN: the CIE's 8 digits, the CNS's 5 to 8.
    pub fn pin_len(&self) -> (usize, usize) {
        match self {
            Self::Cie(_) => (8, 8),
            Self::Cns(_) => (cns::constants::PIN_MIN, cns::constants::PIN_MAX),
        }
    }

    /// The PIN flags true to the card's last answer.
    pub fn pin_flags(&self) -> ck::CK_FLAGS {
        match self {
            Self::Cie(t) => match t.pin {
                PinStatus::Verified => 0,
                PinStatus::Blocked => pin_flags(None, true),
                PinStatus::TriesLeft(n) => pin_flags(Some(n), false),
            },
            Self::Cns(t) => match t.pin {
                cns::PinStatus::Verified | cns::PinStatus::Unknown => 0,
                cns::PinStatus::Blocked => pin_flags(None, true),
                cns::PinStatus::TriesLeft(n) => pin_flags(Some(n), false),
            },
        }
    }

    /// The mechanisms the card really supports.
    pub fn mechanisms(&self) -> &'static [ck::CK_MECHANISM_TYPE] {
        match self {
            Self::Cie(_) => CIE_MECHANISMS,
            Self::Cns(_) => CNS_MECHANISMS,
        }
    }

    /// VERIFY the user PIN.
    pub fn login(&mut self, pin: &[u8]) -> Result<(), ck::CK_RV> {
        match self {
            Self::Cie(t) => t.login(pin),
            Self::Cns(t) => t.login(pin),
        }
    }

    /// PKCS#1 v1.5 over `data` (a DigestInfo): on the card for the CIE, padded here for
    /// the CNS.
    pub fn sign_pkcs1(&mut self, data: &[u8]) -> Result<Vec<u8>, ck::CK_RV> {
        let modulus_len = self.modulus_len();
        match self {
            Self::Cie(t) => t.sign_pkcs1(data),
            Self::Cns(t) => {
                let block = cns::padding::pkcs1_v15(data, modulus_len).map_err(|e| cns_rv(&e))?;
                t.sign_raw(&block)
            }
        }
    }

    /// The raw RSA operation on a modulus-length block (CNS only).
    pub fn sign_raw(&self, block: &[u8]) -> Result<Vec<u8>, ck::CK_RV> {
        match self {
            Self::Cie(_) => Err(ck::CKR_MECHANISM_INVALID),
            Self::Cns(t) => t.sign_raw(block),
        }
    }

    /// Length of the modulus (and of every signature) in bytes.
    pub fn modulus_len(&self) -> usize {
        self.certificate().public_key.modulus.len()
    }
}
