//! The IAS secure session: key agreement, device authentication (DAPP), then PIN,
//! certificate and signature under secure messaging (cie.md §3.2 phases B-C).
//!
//! Every step is one card exchange with no network in between, so the whole login fits in
//! one short tap.

use super::constants::FID_CHIP_KEY;
use super::dapp::{self, Transcript, terminal_chr};
use super::dh::{self, CaKey, DhGroup, get_data};
use super::digest_info::{DigestAlgorithm, digest_info};
use super::pin::Pin;
use super::pubkey::RsaPublicKey;
use super::{IasApplet, IasError};
use crate::apdu::{ApduChannel, ApduError, Command, SwKind, files};
use crate::sm::{SecureChannel, Ssc, kdf};
use crate::tlv::Tag;
use zeroize::Zeroizing;

/// Where randomness comes from: the OS in the app, a seeded generator in tests.
pub trait Randomness: Send + Sync {
    /// Fill `buf` with unpredictable bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), IasError>;
}

/// The operating system's generator.
pub struct OsRandomness;

impl Randomness for OsRandomness {
    fn fill(&self, buf: &mut [u8]) -> Result<(), IasError> {
        getrandom::fill(buf).map_err(|e| IasError::malformed("system randomness", e))
    }
}

/// PIN reference of the CIE's authentication PIN; `82` is the PUK.
const PIN_REF: u8 = 0x81;
const PUK_REF: u8 = 0x82;

/// The state of a PIN (or PUK), read without spending a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Already verified in this session.
    Verified,
    /// Not verified; this many tries left.
    TriesLeft(u8),
    /// Blocked.
    Blocked,
}

/// An open secure session with the IAS application.
pub struct SecureIas<C: ApduChannel> {
    sm: SecureChannel<C>,
    sn_icc: [u8; 8],
}

impl<C: ApduChannel> std::fmt::Debug for SecureIas<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureIas").finish_non_exhaustive()
    }
}

/// Run the key agreement and DAPP on a selected IAS applet and return the secure session.
/// `ch` must be the channel the applet was selected on.
pub async fn open<C: ApduChannel>(ch: C, rng: &dyn Randomness) -> Result<SecureIas<C>, IasError> {
    let group = dh::read_group(&ch).await?;
    let chip_key = read_chip_key(&ch).await?;
    let ca = dh::read_ca_key(&ch).await?;

    // Private exponent in [2, q-2] by rejection sampling.
    let x = loop {
        let mut candidate = Zeroizing::new(vec![0u8; group.q.len()]);
        rng.fill(&mut candidate)?;
        if let Some(x) = group.exponent_from(&candidate) {
            break x;
        }
    };
    let ifd_public = group.public_value(&x)?;
    let mut kat = vec![0x80, 0x01, 0x9B, 0x83, 0x01, 0x81];
    kat.extend(crate::tlv::encode_to_vec(Tag::new(0x91), &ifd_public));
    ch.transmit(&Command::new(0x00, 0x22, 0x41, 0xA6).with_data(kat))
        .await?
        .check(0x22)?;
    let answer = ch
        .transmit(&get_data(&[0x4D, 0x04, 0xA6, 0x02, 0x91, 0x00]))
        .await?
        .into_data(0xCB)?;
    let icc_public = crate::tlv::find_deep(&answer, Tag::new(0x91))?
        .ok_or_else(|| IasError::malformed("card DH value", "no 91 object"))?
        .value
        .to_vec();
    let secret = group.shared_secret(&icc_public, &x)?;
    drop(x);
    let ssc = Ssc::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 1]).map_err(ApduError::from)?;
    let sm = SecureChannel::new(ch, Box::new(kdf::ias_session(&secret)), ssc)
        .map_err(ApduError::from)?;
    drop(secret);

    let sn_icc = authenticate(&sm, &group, &ca, &chip_key, &ifd_public, &icc_public, rng).await?;
    Ok(SecureIas { sm, sn_icc })
}

/// EF 1004, the key the chip proves itself with.
async fn read_chip_key<C: ApduChannel + ?Sized>(ch: &C) -> Result<RsaPublicKey, IasError> {
    files::select_file(ch, FID_CHIP_KEY).await?;
    let der = files::read_tlv_object(ch).await?;
    RsaPublicKey::from_pkcs1_der(&der)
}

/// DAPP under secure messaging (cie.md §3.2 step 9), ending with the SSC re-seed.
async fn authenticate<C: ApduChannel>(
    sm: &SecureChannel<C>,
    group: &DhGroup,
    ca: &CaKey,
    chip_key: &RsaPublicKey,
    ifd_public: &[u8],
    icc_public: &[u8],
    rng: &dyn Randomness,
) -> Result<[u8; 8], IasError> {
    let send_ok = |cmd: Command| async move {
        let ins = cmd.ins;
        sm.transmit(&cmd).await?.check(ins).map_err(IasError::from)
    };
    send_ok(Command::new(0x00, 0x22, 0x81, 0xB6).with_data([0x80, 0x01, 0x41, 0x83, 0x01, 0x84]))
        .await?;
    send_ok(Command::new(0x00, 0x2A, 0x00, 0xAE).with_data(dapp::terminal_certificate(ca)?))
        .await?;
    let mut chr = vec![0x83, 0x0C];
    chr.extend_from_slice(&terminal_chr());
    send_ok(Command::new(0x00, 0x22, 0x81, 0xA4).with_data(chr)).await?;
    let rnd_icc = sm
        .transmit(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8))
        .await?
        .into_data(0x84)?;
    let rnd_icc: [u8; 8] = rnd_icc
        .try_into()
        .map_err(|_| IasError::malformed("card challenge", "not 8 bytes"))?;
    let transcript = Transcript {
        group,
        ifd_public,
        icc_public,
    };
    let mut prnd = Zeroizing::new(vec![0u8; dapp::prnd_len()]);
    rng.fill(&mut prnd)?;
    let ext_auth = transcript.external_authenticate(&rnd_icc, &prnd)?;
    send_ok(Command::new(0x00, 0x82, 0x00, 0x00).with_data(ext_auth)).await?;
    send_ok(Command::new(0x00, 0x22, 0x41, 0xA4).with_data([0x84, 0x01, 0x82, 0x80, 0x01, 0x9B]))
        .await?;
    let mut rnd_ifd = [0u8; 8];
    rng.fill(&mut rnd_ifd)?;
    let answer = sm
        .transmit(
            &Command::new(0x00, 0x88, 0x00, 0x00)
                .with_data(rnd_ifd)
                .with_le(256),
        )
        .await?
        .into_data(0x88)?;
    let sn_icc = transcript.check_chip(chip_key, &rnd_ifd, &answer)?;
    sm.set_ssc(Ssc::from_challenges(&rnd_icc, &rnd_ifd))
        .map_err(ApduError::from)?;
    Ok(sn_icc)
}

impl<C: ApduChannel> SecureIas<C> {
    /// The chip serial SN.ICC the card proved.
    pub fn chip_serial(&self) -> [u8; 8] {
        self.sn_icc
    }

    /// The secure channel, for reads under secure messaging.
    pub fn channel(&self) -> &SecureChannel<C> {
        &self.sm
    }

    /// The PIN's state without spending a try: VERIFY with no data (ISO 7816-4 §11.5.6).
    pub async fn pin_status(&self) -> Result<PinStatus, IasError> {
        self.status_of(PIN_REF).await
    }

    /// The PUK's state without spending a try.
    pub async fn puk_status(&self) -> Result<PinStatus, IasError> {
        self.status_of(PUK_REF).await
    }

    async fn status_of(&self, reference: u8) -> Result<PinStatus, IasError> {
        let resp = self
            .sm
            .transmit(&Command::new(0x00, 0x20, 0x00, reference))
            .await?;
        match resp.sw.kind() {
            SwKind::Ok => Ok(PinStatus::Verified),
            SwKind::WrongPin { remaining: 0 } | SwKind::AuthenticationBlocked => {
                Ok(PinStatus::Blocked)
            }
            SwKind::WrongPin { remaining } => Ok(PinStatus::TriesLeft(remaining)),
            _ => Err(ApduError::Status {
                sw: resp.sw,
                ins: 0x20,
            }
            .into()),
        }
    }

    /// Verify the PIN. Before sending, the tries left are read: with none left the card is
    /// blocked and nothing is sent; with one left the caller must have confirmed
    /// (`last_try_confirmed`), because a wrong PIN now blocks the card.
    pub async fn verify_pin(&self, pin: &Pin, last_try_confirmed: bool) -> Result<(), IasError> {
        self.verify(PIN_REF, pin, last_try_confirmed).await
    }

    async fn verify(
        &self,
        reference: u8,
        pin: &Pin,
        last_try_confirmed: bool,
    ) -> Result<(), IasError> {
        match self.status_of(reference).await? {
            PinStatus::Blocked => return Err(IasError::PinBlocked),
            PinStatus::TriesLeft(1) if !last_try_confirmed => {
                return Err(IasError::LastTryNeedsConfirmation);
            }
            _ => {}
        }
        let cmd = Command::new(0x00, 0x20, 0x00, reference).with_data(pin.bytes());
        let resp = self.sm.transmit(&cmd).await?;
        pin_outcome(resp.sw)
    }

    /// Unblock the PIN with the PUK and set `new_pin` (VERIFY PUK, then RESET RETRY COUNTER).
    /// The new PIN's rules are checked first, spending no PUK try; the PUK's own outcomes
    /// come back as PUK errors (`WrongPuk`, `PukBlocked`, `LastPukTryNeedsConfirmation`),
    /// never as the PIN's.
    pub async fn unblock_pin(
        &self,
        puk: &Pin,
        new_pin: &Pin,
        last_try_confirmed: bool,
    ) -> Result<(), IasError> {
        new_pin.check_rules()?;
        self.verify(PUK_REF, puk, last_try_confirmed)
            .await
            .map_err(|e| match e {
                IasError::WrongPin { remaining: 0 } | IasError::PinBlocked => IasError::PukBlocked,
                IasError::WrongPin { remaining } => IasError::WrongPuk { remaining },
                IasError::LastTryNeedsConfirmation => IasError::LastPukTryNeedsConfirmation,
                other => other,
            })?;
        let cmd = Command::new(0x00, 0x2C, 0x02, PIN_REF).with_data(new_pin.bytes());
        let resp = self.sm.transmit(&cmd).await?;
        resp.check(0x2C).map_err(IasError::from)
    }

    /// Change the PIN (CHANGE REFERENCE DATA with old ‖ new). The new PIN is checked against
    /// the official apps' rules first, spending no try.
    pub async fn change_pin(
        &self,
        old: &Pin,
        new: &Pin,
        last_try_confirmed: bool,
    ) -> Result<(), IasError> {
        new.check_new(old)?;
        match self.status_of(PIN_REF).await? {
            PinStatus::Blocked => return Err(IasError::PinBlocked),
            PinStatus::TriesLeft(1) if !last_try_confirmed => {
                return Err(IasError::LastTryNeedsConfirmation);
            }
            _ => {}
        }
        let mut data = Zeroizing::new(old.bytes().to_vec());
        data.extend_from_slice(new.bytes());
        let resp = self
            .sm
            .transmit(&Command::new(0x00, 0x24, 0x00, PIN_REF).with_data(data.to_vec()))
            .await?;
        pin_outcome(resp.sw)
    }

    /// Read the authentication certificate (EF 1003, DER; trailing file padding cut).
    pub async fn read_certificate(&self) -> Result<Vec<u8>, IasError> {
        self.read_certificate_progress(&mut |_, _| {}).await
    }

    /// [`Self::read_certificate`], calling `progress(bytes so far, certificate length)`
    /// after each chunk.
    pub async fn read_certificate_progress(
        &self,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<Vec<u8>, IasError> {
        files::select_file(&self.sm, super::constants::FID_CERT).await?;
        Ok(files::read_tlv_object_progress(&self.sm, files::ReadPlan::CURRENT, progress).await?)
    }

    /// Sign a digest with the authentication key (needs the PIN verified): the card pads
    /// the DigestInfo with PKCS#1 v1.5 type 01 and returns the signature.
    pub async fn sign(&self, alg: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, IasError> {
        self.sign_pkcs1(&digest_info(alg, digest)?).await
    }

    /// Sign `data` as given with the authentication key (needs the PIN verified): the card
    /// pads it with PKCS#1 v1.5 type 01 and returns the signature. `data` is normally a
    /// DigestInfo; PKCS#11's `CKM_RSA_PKCS` passes it through unchanged (TLS 1.2 client
    /// authentication). At most the modulus length minus 11 bytes (RFC 8017 §9.2).
    pub async fn sign_pkcs1(&self, data: &[u8]) -> Result<Vec<u8>, IasError> {
        if data.is_empty() {
            return Err(IasError::malformed("data to sign", "empty"));
        }
        let di = data.to_vec();
        let mse =
            Command::new(0x00, 0x22, 0x41, 0xA4).with_data([0x80, 0x01, 0x02, 0x84, 0x01, 0x81]);
        self.sm.transmit(&mse).await?.check(0x22)?;
        let resp = self
            .sm
            .transmit(
                &Command::new(0x00, 0x88, 0x00, 0x00)
                    .with_data(di)
                    .with_le(256),
            )
            .await?;
        if resp.sw.kind() == SwKind::SecurityStatusNotSatisfied {
            return Err(IasError::PinRequired);
        }
        Ok(resp.into_data(0x88)?)
    }
}

/// What a VERIFY or CHANGE answer means for the citizen.
fn pin_outcome(sw: crate::apdu::Sw) -> Result<(), IasError> {
    match sw.kind() {
        SwKind::Ok => Ok(()),
        SwKind::WrongPin { remaining: 0 } | SwKind::AuthenticationBlocked => {
            Err(IasError::PinBlocked)
        }
        SwKind::WrongPin { remaining } => Err(IasError::WrongPin { remaining }),
        _ => Err(ApduError::Status { sw, ins: 0x20 }.into()),
    }
}

impl<'a, C: ApduChannel + ?Sized> IasApplet<'a, C> {
    /// Open the secure session on this applet's channel.
    pub async fn open_secure(&self, rng: &dyn Randomness) -> Result<SecureIas<&'a C>, IasError> {
        open(self.channel(), rng).await
    }
}

impl<C: ApduChannel> SecureIas<C> {
    /// VERIFY when the caller has just read the status itself (the login flow does, to
    /// detect a try spent in a lost earlier tap): no second status read.
    pub async fn verify_pin_with_status(
        &self,
        pin: &Pin,
        status: PinStatus,
        last_try_confirmed: bool,
    ) -> Result<(), IasError> {
        match status {
            PinStatus::Verified => return Ok(()),
            PinStatus::Blocked => return Err(IasError::PinBlocked),
            PinStatus::TriesLeft(1) if !last_try_confirmed => {
                return Err(IasError::LastTryNeedsConfirmation);
            }
            PinStatus::TriesLeft(_) => {}
        }
        let cmd = Command::new(0x00, 0x20, 0x00, PIN_REF).with_data(pin.bytes());
        let resp = self.sm.transmit(&cmd).await?;
        pin_outcome(resp.sw)
    }
}
