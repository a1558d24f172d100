//! The phone-tap CIE login, in one short tap with no network while the card is in the
//! field: the server's challenge is fetched before the tap, the card does everything in
//! one offline burst (NIS, optional genuineness proof, secure channel, PIN, signature,
//! certificate), and the app talks to the server afterwards (cie.md §8.4).
//!
//! A [`LoginTap`] survives a lost tag: tapping again resumes on the same card (checked by
//! NIS) without redoing finished steps, and without asking the user for the PIN again. A
//! PIN try whose outcome was lost with the tag is never retried blindly: the next tap
//! reads the counter first and reports a spent try to the user.

use super::pairing::{Protection, SharedStore, cert_key, pin_half_key};
use crate::apdu::ApduChannel;
use crate::applets::ias::certificate::CieCertificate;
use crate::applets::ias::digest_info::{DigestAlgorithm, digest_info};
use crate::applets::ias::genuine::{GenuineProof, pkcs1_type1_matches};
use crate::applets::ias::pin::Pin;
use crate::applets::ias::secure::{PinStatus, Randomness, SecureIas};
use crate::applets::ias::{IasApplet, IasError, Nis};
use crate::sm::SM_CHAIN_PIECE;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::Zeroizing;

/// How the user gives the PIN.
#[derive(Clone)]
pub enum PinEntry {
    /// All 8 digits (first login, or no pairing).
    Full(Pin),
    /// Only the last 4; the first 4 come from the keystore (paired card).
    LastFour(Zeroizing<String>),
}

impl std::fmt::Debug for PinEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "PinEntry::Full(********)",
            Self::LastFour(_) => "PinEntry::LastFour(****)",
        })
    }
}

/// The steps a tap goes through, for the app's progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LoginStep {
    /// Selecting the CIE application.
    Connecting,
    /// Reading the card's service identifier.
    ReadingIdentity,
    /// Checking the card is genuine.
    CheckingCard,
    /// Opening the protected channel.
    SecureChannel,
    /// Checking the PIN.
    VerifyingPin,
    /// The card signs.
    Signing,
    /// Reading the certificate.
    ReadingCertificate,
    /// Finished: the card may be removed.
    Done,
}

impl LoginStep {
    pub(crate) const ALL: u32 = 8;

    pub(crate) fn index(self) -> u32 {
        self as u32 + 1
    }
}

/// Receives progress (the UI's NFC sheet, "tieni la carta vicina").
pub trait LoginProgress: Send + Sync {
    /// `step` has started; `done` of `total` steps are behind.
    fn on_step(&self, step: LoginStep, done: u32, total: u32);

    /// Within `step` (the certificate read, ~2 KB in ~10 commands): `done` of `total`
    /// bytes are read ("lettura certificato 40%").
    fn on_bytes(&self, _step: LoginStep, _done: u32, _total: u32) {}
}

/// The certificate read, reporting its bytes to `progress`.
async fn read_certificate<C: ApduChannel>(
    secure: &crate::applets::ias::secure::SecureIas<C>,
    progress: &dyn LoginProgress,
) -> Result<Vec<u8>, IasError> {
    let mut bytes = |done: usize, total: usize| {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        progress.on_bytes(LoginStep::ReadingCertificate, clamp(done), clamp(total));
    };
    secure.read_certificate_progress(&mut bytes).await
}

/// Ignore progress.
pub struct NoProgress;

impl LoginProgress for NoProgress {
    fn on_step(&self, _: LoginStep, _: u32, _: u32) {}
}

/// Why a login tap failed, as the citizen needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The card, the link or the PIN.
    #[error(transparent)]
    Card(#[from] IasError),
    /// A resumed login was tapped with another card.
    #[error("this is a different card from the one the login started with")]
    DifferentCard,
    /// Only 4 digits were given but this card is not paired on this device.
    #[error("this card is not paired on this device: type the full 8-digit PIN")]
    NotPaired,
    /// The phone cannot carry the commands the CIE needs (transceive limit too small).
    #[error("this phone cannot read the CIE: its NFC link is too small for the card's commands")]
    PhoneUnsupported,
    /// The keystore failed.
    #[error("secure storage: {0}")]
    Store(#[from] super::pairing::StoreError),
    /// The PIN must be typed again (it was wrong, and is no longer held).
    #[error("the PIN is needed again")]
    PinNeeded,
}

/// What the server needs, gathered in the tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The card's NIS.
    pub nis: Nis,
    /// The authentication certificate.
    pub certificate: CieCertificate,
    /// The signature over the challenge (PKCS#1 v1.5 with `algorithm`).
    pub signature: Vec<u8>,
    /// The hash used for the signature.
    pub algorithm: DigestAlgorithm,
    /// The NIS-key proof, when asked for.
    pub genuine: Option<GenuineProof>,
    /// Whether the certificate came from the pairing cache (no read from the card).
    pub certificate_from_cache: bool,
    /// Whether this tap paired the card on this device.
    pub paired_now: bool,
}

/// One login, possibly over several taps.
pub struct LoginTap {
    challenge: Vec<u8>,
    algorithm: DigestAlgorithm,
    check_genuine: bool,
    pin: Option<PinEntry>,
    store: Option<SharedStore>,
    // Progress kept across taps.
    nis: Option<Nis>,
    genuine: Option<GenuineProof>,
    signature: Option<Vec<u8>>,
    certificate: Option<(Vec<u8>, bool)>,
    tries_before_verify: Option<u8>,
    confirm_last_try: bool,
}

impl std::fmt::Debug for LoginTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTap")
            .field("algorithm", &self.algorithm)
            .field("signed", &self.signature.is_some())
            .finish_non_exhaustive()
    }
}

impl LoginTap {
    /// A login signing `challenge` (fetched from the server before the tap) hashed with
    /// `algorithm`. With a `store`, a full-PIN login pairs the card and a 4-digit login
    /// uses the pairing.
    pub fn new(
        challenge: Vec<u8>,
        algorithm: DigestAlgorithm,
        pin: PinEntry,
        store: Option<SharedStore>,
    ) -> Self {
        Self {
            challenge,
            algorithm,
            check_genuine: false,
            pin: Some(pin),
            store,
            nis: None,
            genuine: None,
            signature: None,
            certificate: None,
            tries_before_verify: None,
            confirm_last_try: false,
        }
    }

    /// Also have the card prove it is genuine (NIS internal authentication).
    pub fn with_genuine_check(mut self) -> Self {
        self.check_genuine = true;
        self
    }

    /// The user confirmed a try may be spent with only one left.
    pub fn confirm_last_try(&mut self) {
        self.confirm_last_try = true;
    }

    /// Give the PIN again (after [`LoginError::PinNeeded`] or a wrong PIN).
    pub fn set_pin(&mut self, pin: PinEntry) {
        self.pin = Some(pin);
    }

    /// Whether the card has signed the challenge (from then on the challenge is fixed).
    pub fn has_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// Sign `challenge` instead (the server's expired before the card signed): keeps the
    /// PIN and the card's identity, drops what depended on the old challenge. Refused
    /// (`false`) once the card has signed.
    pub fn replace_challenge(&mut self, challenge: Vec<u8>) -> bool {
        if self.signature.is_some() {
            return false;
        }
        self.challenge = challenge;
        self.genuine = None;
        true
    }

    /// Run (or resume) the tap on `ch`.
    pub async fn run<C: ApduChannel + ?Sized>(
        &mut self,
        ch: &C,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<LoginOutcome, LoginError> {
        let step = |s: LoginStep| progress.on_step(s, s.index() - 1, LoginStep::ALL);
        let (ias, nis) = self.identify(ch, progress).await?;
        let key = nis.text();
        if self.check_genuine && self.genuine.is_none() {
            step(LoginStep::CheckingCard);
            let nonce = Sha256::digest(&self.challenge);
            self.genuine = Some(ias.verify_card_genuine(&nonce).await?);
        }
        if self.signature.is_none() || self.certificate.is_none() {
            step(LoginStep::SecureChannel);
            let secure = ias.open_secure(rng).await?;
            if self.signature.is_none() {
                step(LoginStep::VerifyingPin);
                self.verify_pin_on(&secure, &key).await?;
                step(LoginStep::Signing);
                let digest = hash(self.algorithm, &self.challenge);
                self.signature = Some(secure.sign(self.algorithm, &digest).await?);
            }
            if self.certificate.is_none() {
                step(LoginStep::ReadingCertificate);
                self.certificate = Some((read_certificate(&secure, progress).await?, false));
            }
        }
        step(LoginStep::Done);
        self.finish(nis)
    }

    /// The start of every tap: the link can carry the CIE's commands, the IAS application
    /// is selected, the NIS read and compared with an earlier tap's, and a paired card's
    /// certificate taken from the cache.
    async fn identify<'c, C: ApduChannel + ?Sized>(
        &mut self,
        ch: &'c C,
        progress: &dyn LoginProgress,
    ) -> Result<(IasApplet<'c, C>, Nis), LoginError> {
        let step = |s: LoginStep| progress.on_step(s, s.index() - 1, LoginStep::ALL);
        // The secure channel chains 231-byte pieces: a link that cannot carry a short APDU
        // with 255 data bytes would fail mid-login, so say so before the PIN is asked.
        if ch.limits().max_command_data < SM_CHAIN_PIECE + 24 {
            return Err(LoginError::PhoneUnsupported);
        }
        step(LoginStep::Connecting);
        let ias = IasApplet::select(ch).await?;
        step(LoginStep::ReadingIdentity);
        let nis = ias.read_nis().await?;
        match &self.nis {
            Some(prev) if *prev != nis => return Err(LoginError::DifferentCard),
            _ => self.nis = Some(nis.clone()),
        }
        if self.certificate.is_none()
            && let Some(store) = &self.store
            && let Some(der) = store.load(cert_key(&nis.text()))?
        {
            self.certificate = Some((der, true));
        }
        Ok((ias, nis))
    }

    /// Run the tap up to the signature, for a message that exists only once the card is
    /// ready: the TLS CertificateVerify of mutual TLS, whose transcript includes the
    /// certificate sent just before it. The card is identified, the PIN verified and the
    /// certificate known (from the pairing cache, or read now), all in this tap; the
    /// returned [`CardSigner`] then signs while the card stays in the field. End with
    /// [`Self::finish_signing`]. The challenge and the genuineness check of [`Self::new`]
    /// play no part here.
    pub async fn open_for_signing<'c, C: ApduChannel + ?Sized>(
        &mut self,
        ch: &'c C,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<CardSigner<'c, C>, LoginError> {
        let step = |s: LoginStep| progress.on_step(s, s.index() - 1, LoginStep::ALL);
        let (ias, nis) = self.identify(ch, progress).await?;
        step(LoginStep::SecureChannel);
        let secure = ias.open_secure(rng).await?;
        step(LoginStep::VerifyingPin);
        // Every tap opens a new secure session, whose PIN state starts unverified.
        self.verify_pin_on(&secure, &nis.text()).await?;
        if self.certificate.is_none() {
            step(LoginStep::ReadingCertificate);
            self.certificate = Some((read_certificate(&secure, progress).await?, false));
        }
        let (der, from_cache) = self.certificate.clone().ok_or(LoginError::PinNeeded)?;
        let certificate = match CieCertificate::from_der(&der) {
            Ok(c) => c,
            Err(e) => {
                self.drop_certificate(&nis)?;
                return Err(e.into());
            }
        };
        Ok(CardSigner {
            secure,
            nis,
            certificate,
            der,
            from_cache,
            algorithm: self.algorithm,
            key_mismatch: AtomicBool::new(false),
        })
    }

    /// After the signatures of [`Self::open_for_signing`]: a cached certificate whose key
    /// did not match the card's signature is dropped; when `signed` (the card signed and
    /// the signature checked out) a full-PIN login pairs the card and the PIN is cleared.
    pub fn finish_signing<C: ApduChannel + ?Sized>(
        &mut self,
        signer: CardSigner<'_, C>,
        signed: bool,
    ) -> Result<SigningOutcome, LoginError> {
        if signer.key_mismatch.load(Ordering::Relaxed) {
            self.drop_certificate(&signer.nis)?;
            return Err(IasError::NotGenuine.into());
        }
        let mut paired_now = false;
        if signed {
            paired_now = self.pair(&signer.nis, &signer.der, signer.from_cache)?;
            self.pin = None;
        }
        Ok(SigningOutcome {
            nis: signer.nis,
            certificate: signer.certificate,
            certificate_from_cache: signer.from_cache,
            paired_now,
        })
    }

    /// Forget the certificate (cached or read): the next tap reads it from the card.
    fn drop_certificate(&mut self, nis: &Nis) -> Result<(), LoginError> {
        if let Some((_, true)) = self.certificate
            && let Some(store) = &self.store
        {
            store.remove(cert_key(&nis.text()))?;
        }
        self.certificate = None;
        Ok(())
    }

    /// A full-PIN login pairs the card: the first 4 digits go to the keystore behind the
    /// user's presence, the certificate to plain storage. Whether it did.
    fn pair(&self, nis: &Nis, der: &[u8], from_cache: bool) -> Result<bool, LoginError> {
        let (Some(store), Some(PinEntry::Full(pin))) = (&self.store, &self.pin) else {
            return Ok(false);
        };
        let key = nis.text();
        store.save(
            pin_half_key(&key),
            pin.first_half().as_bytes().to_vec(),
            Protection::UserPresence,
        )?;
        if !from_cache {
            store.save(cert_key(&key), der.to_vec(), Protection::Public)?;
        }
        Ok(true)
    }

    /// VERIFY the PIN in `secure`, reporting a try spent in an earlier tap whose answer was
    /// lost, and forgetting a wrong PIN so it is never sent twice.
    async fn verify_pin_on<S: ApduChannel>(
        &mut self,
        secure: &SecureIas<S>,
        key: &str,
    ) -> Result<(), LoginError> {
        let pin = self.resolve_pin(key)?;
        let status = secure.pin_status().await?;
        if let (Some(before), PinStatus::TriesLeft(now)) = (self.tries_before_verify, status)
            && now < before
        {
            // The previous tap's VERIFY reached the card and was wrong, but its answer was
            // lost: tell the user now, do not try the same PIN again.
            self.forget_pin();
            return Err(IasError::WrongPin { remaining: now }.into());
        }
        if let PinStatus::TriesLeft(n) = status {
            self.tries_before_verify = Some(n);
        }
        match secure
            .verify_pin_with_status(&pin, status, self.confirm_last_try)
            .await
        {
            Ok(()) => {
                self.tries_before_verify = None;
                Ok(())
            }
            Err(e @ (IasError::WrongPin { .. } | IasError::PinBlocked)) => {
                self.forget_pin();
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn resolve_pin(&self, key: &str) -> Result<Pin, LoginError> {
        match &self.pin {
            None => Err(LoginError::PinNeeded),
            Some(PinEntry::Full(pin)) => Ok(pin.clone()),
            Some(PinEntry::LastFour(last)) => {
                let store = self.store.as_ref().ok_or(LoginError::NotPaired)?;
                let first = store
                    .load(pin_half_key(key))?
                    .ok_or(LoginError::NotPaired)?;
                let first =
                    Zeroizing::new(String::from_utf8(first).map_err(|_| LoginError::NotPaired)?);
                Pin::from_halves(&first, last).map_err(|e| LoginError::Card(e.into()))
            }
        }
    }

    fn forget_pin(&mut self) {
        self.pin = None;
        self.tries_before_verify = None;
    }

    /// Check the signature against the certificate (a stale cache, or a card that signed
    /// with another key, is caught here, not at the server), store the pairing, and clear
    /// the PIN.
    fn finish(&mut self, nis: Nis) -> Result<LoginOutcome, LoginError> {
        let (der, from_cache) = self.certificate.clone().ok_or(LoginError::PinNeeded)?;
        let certificate = CieCertificate::from_der(&der)?;
        let signature = self.signature.clone().ok_or(LoginError::PinNeeded)?;
        let digest = hash(self.algorithm, &self.challenge);
        if !pkcs1_v15_matches(&certificate, self.algorithm, &digest, &signature)? {
            self.drop_certificate(&nis)?;
            return Err(IasError::NotGenuine.into());
        }
        let paired_now = self.pair(&nis, &der, from_cache)?;
        self.pin = None;
        Ok(LoginOutcome {
            nis,
            certificate,
            signature,
            algorithm: self.algorithm,
            genuine: self.genuine.clone(),
            certificate_from_cache: from_cache,
            paired_now,
        })
    }
}

/// What a mutual-TLS tap gave, besides the signatures made for the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOutcome {
    /// The card's NIS.
    pub nis: Nis,
    /// The authentication certificate (the TLS client certificate).
    pub certificate: CieCertificate,
    /// Whether the certificate came from the pairing cache (no read from the card).
    pub certificate_from_cache: bool,
    /// Whether this tap paired the card on this device.
    pub paired_now: bool,
}

/// A card ready to sign in the current tap: PIN verified, certificate known.
pub struct CardSigner<'c, C: ApduChannel + ?Sized> {
    secure: SecureIas<&'c C>,
    nis: Nis,
    certificate: CieCertificate,
    der: Vec<u8>,
    from_cache: bool,
    algorithm: DigestAlgorithm,
    // Set when a signature did not verify under the certificate: a stale cache entry, or
    // a card signing with another key.
    key_mismatch: AtomicBool,
}

impl<C: ApduChannel + ?Sized> std::fmt::Debug for CardSigner<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSigner")
            .field("from_cache", &self.from_cache)
            .finish_non_exhaustive()
    }
}

impl<C: ApduChannel + ?Sized> CardSigner<'_, C> {
    /// The certificate, DER (as the card stores it, padding cut).
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn certificate(&self) -> &CieCertificate {
        &self.certificate
    }

    /// Have the card sign `DigestInfo(hash(message))` (PKCS#1 v1.5), checked against the
    /// certificate before it is used.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, LoginError> {
        let digest = hash(self.algorithm, message);
        let signature = self.secure.sign(self.algorithm, &digest).await?;
        if !pkcs1_v15_matches(&self.certificate, self.algorithm, &digest, &signature)? {
            self.key_mismatch.store(true, Ordering::Relaxed);
            return Err(IasError::NotGenuine.into());
        }
        Ok(signature)
    }
}

fn hash(alg: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    match alg {
        DigestAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        DigestAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
        DigestAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
        DigestAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// `sig^e mod n == 00 01 FF…FF 00 ‖ DigestInfo(digest)`.
fn pkcs1_v15_matches(
    cert: &CieCertificate,
    alg: DigestAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool, IasError> {
    let di = digest_info(alg, digest)?;
    Ok(pkcs1_type1_matches(&cert.public_key, &di, signature))
}
