//! The virtual CIE's IAS application, card side (cie.md §3): DH parameters and key
//! agreement, secure messaging, DAPP (terminal CV certificate, EXTERNAL AUTHENTICATE, chip
//! INTERNAL AUTHENTICATE), PIN/PUK, signing and NIS internal authentication.
//!
//! Written independently of `cie-core`'s terminal side (only the transport trait is
//! shared), with RustCrypto primitives.
//!
//! | Command | Accepted | Errors |
//! |---|---|---|
//! | GET DATA `00 CB 3F FF` `4D{70{BFA101{A3{97\|98\|99 00}}}}` | clear or SM | `6A88` unknown selector (or the one-request `A3 80` form on a card that does not take it), `6A80` malformed, `6A86` P1-P2 ≠ 3FFF |
//! | GET DATA `4D{70{BFA004{7F49 80}}}` | clear or SM | as above |
//! | GET DATA `4D{A6{91 00}}` | after MSE SET KAT | `6985` before it |
//! | MSE SET `41 A6` KAT `{80 9B, 83 81, 91 PuK.IFD}` | clear (chained) | `6A80` bad data or PuK.IFD not in the group |
//! | MSE SET `81 B6` `{80 41, 83 84}` | SM | `6982` clear, `6A80` |
//! | PSO VERIFY CERT `00 2A 00 AE` | SM, after `81 B6` | `6982`, `6985` no DST, `6A88` CAR ≠ CA's, `6A80` bad certificate |
//! | MSE SET `81 A4` `{83 CHR}` | SM, after the certificate | `6A88` CHR unknown |
//! | GET CHALLENGE `00 84 00 00 08` | clear or SM | `6700` Le ≠ 8 |
//! | EXTERNAL AUTHENTICATE `00 82` | SM, after CHR and challenge | `6985`, `6300` bad signature |
//! | MSE SET `41 A4` `{84 82, 80 9B}` / `{80 02, 84 81}` / `{80 02, 84 83}` | SM for 82, any for 81/83 | `6A80` other pairs, `6985` 82 before ext. auth |
//! | INTERNAL AUTHENTICATE `00 88` | per selected key | `6985` no key selected, `6982` signing without PIN, `6700` bad length |
//! | VERIFY `00 20 00 81`/`82` | SM after DAPP | `6982` otherwise; `63Cx`, `6983` |
//! | RESET RETRY COUNTER `00 2C 02 81 <PIN>`/`00 2C 03 81` | SM after PUK | `6982` |
//! | CHANGE REFERENCE DATA `00 24 00 81 <old‖new>` | SM after DAPP | `6700`, `63Cx`, `6983` |
//!
//! Session rules: a protected command with a bad MAC or malformed SM objects gets `6988`
//! (`6987` without `8E`) in clear and ends the session; a clear command other than GET
//! RESPONSE after the first protected one also ends it (keys, DAPP state, verified PIN).

pub(crate) mod dapp;
pub(crate) mod dh;
pub(crate) mod pin;
pub mod pki;
pub(crate) mod sm;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rsa::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;

use crate::ber;
use crate::command::Command;
use crate::fs::Access;
use dapp::{TerminalCert, Transcript};
pub use dh::DhGroup;
use pin::Secret;
use pki::CardKeys;
use sm::SmSession;

/// Status words of the IAS application.
mod sw {
    pub const OK: u16 = 0x9000;
    pub const AUTH_FAILED: u16 = 0x6300;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY: u16 = 0x6982;
    pub const CONDITIONS: u16 = 0x6985;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const REF_NOT_FOUND: u16 = 0x6A88;
}

/// Instructions the IAS application adds to the file-system card.
pub(crate) const IAS_INS: [u8; 9] = [0x22, 0x2A, 0x84, 0x82, 0x88, 0x20, 0x24, 0x2C, 0xCB];

/// Chip vendor of a CIE (cie.md §2.3). Decides the ATR and the EF.ATR contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Gemalto (historical bytes `… B0 85 04 00 11 …`, EF.ATR with "IasEccRoot").
    Gemalto,
    /// Gemalto, second series (`… B0 85 03 00 EF …`).
    Gemalto2,
    /// NXP (`… 49 54 4E 58 50 …`).
    Nxp,
    /// STMicroelectronics.
    St,
    /// Actalis JCOP4.
    Actalis,
    /// Actalis JCOP4, 2023.
    Actalis2023,
    /// Bit4id JCOP4.
    Bit4id,
    /// Bit4id JCOP4, 2023.
    Bit4id2023,
    /// Bit4id B9547 (2025-03).
    Bit4idB9547,
    /// Actalis B946 (2025-06).
    ActalisB946,
}

/// The NXP-like EF.ATR prefix of cie.md §2.3 (without its last two bytes).
const NXP_EF_ATR_PREFIX: [u8; 14] = [
    0x80, 0x00, 0x43, 0x01, 0xB8, 0x46, 0x04, 0x10, 0x10, 0x10, 0x10, 0x47, 0x03, 0x94,
];

impl Vendor {
    /// Historical bytes of the ATR (cie.md §2.3 table; the JCOP4 byte `xx` per card).
    pub fn historical_bytes(self) -> Vec<u8> {
        let jcop = |xx: u8| {
            vec![
                0x80, 0x31, 0x80, 0x65, 0x49, 0x54, 0x4A, 0x34, xx, 0x12, 0x0F, 0xFF, 0x82, 0x90,
                0x00,
            ]
        };
        match self {
            Vendor::Gemalto => vec![
                0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x04, 0x00, 0x11, 0x12, 0x0F, 0xFF, 0x82, 0x90,
                0x00,
            ],
            Vendor::Gemalto2 => vec![
                0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x03, 0x00, 0xEF, 0x12, 0x0F, 0xFF, 0x82, 0x90,
                0x00,
            ],
            Vendor::Nxp => vec![
                0x80, 0x31, 0x80, 0x65, 0x49, 0x54, 0x4E, 0x58, 0x50, 0x12, 0x0F, 0xFF, 0x82, 0x90,
                0x00,
            ],
            Vendor::St => vec![
                0x80, 0x66, 0x47, 0x50, 0x00, 0xB8, 0x00, 0x94, 0x82, 0x90, 0x00,
            ],
            Vendor::Actalis => jcop(0x41),
            Vendor::Actalis2023 => jcop(0x43),
            Vendor::Bit4id => jcop(0x42),
            Vendor::Bit4id2023 => jcop(0x44),
            Vendor::Bit4idB9547 => jcop(0x49),
            Vendor::ActalisB946 => jcop(0x4C),
        }
    }

    /// The ATR: `3B 8x 80 01` (T=0 then T=1) + historical bytes + TCK.
    pub fn atr(self) -> Vec<u8> {
        let hist = self.historical_bytes();
        let mut atr = vec![0x3B, 0x80 | hist.len() as u8, 0x80, 0x01];
        atr.extend_from_slice(&hist);
        let tck = atr.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
        atr.push(tck);
        atr
    }

    /// EF.ATR (`2F01`) contents: the vendor marker of cie.md §2.3 followed by the ASCII
    /// marker "SYNTHETIC" (the rest of the real files is not public).
    pub fn ef_atr(self) -> Vec<u8> {
        let mut v = match self {
            Vendor::Gemalto => {
                let mut v = vec![0x80, 0x00, 0x43, 0x01, 0xB8, 0x4F, 0x0A];
                v.extend_from_slice(b"IasEccRoot");
                v
            }
            Vendor::Gemalto2 => vec![
                0x80, 0x00, 0x43, 0x01, 0xB8, 0x46, 0x04, 0x00, 0x00, 0x00, 0x10, 0x47, 0x03, 0x94,
                0x41, 0xC0,
            ],
            Vendor::Nxp => {
                let mut v = NXP_EF_ATR_PREFIX.to_vec();
                v.extend_from_slice(&[0x01, 0x80]);
                v
            }
            Vendor::St => vec![
                0x80, 0x00, 0x43, 0x01, 0xB9, 0x46, 0x04, 0x00, 0x00, 0x00, 0x10, 0x47, 0x03, 0x94,
                0x01, 0x81, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x00, 0x95,
            ],
            // Actalis per §2.3; the Bit4id files are not described publicly [I].
            _ => {
                let mut v = NXP_EF_ATR_PREFIX.to_vec();
                v.extend_from_slice(&[0x01, 0xE0, 0x7F, 0x66, 0x08]);
                v
            }
        };
        v.extend_from_slice(b"SYNTHETIC");
        v
    }
}

/// Field-variant switches of the virtual CIE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CieVariant {
    /// ATR and EF.ATR come from this vendor.
    pub vendor: Vendor,
    /// SELECT by the IAS AID works. When false (NXP, JCOP4) it answers `6A82`, and the IAS
    /// files (D003, D004, DF_CIE) sit in the MF, reached by `00 A4 00 00`.
    pub ias_aid_selectable: bool,
    /// GET DATA accepts the one-request form (`A3 80`) that returns g, p and q together
    /// (Gemalto). The three-request form always works.
    pub dh_single_get_data: bool,
    /// The `7F49` CA key template lists its children in another order (2023+ chips):
    /// `5F4C, 82, 5F20, 81` instead of `81, 82, 5F20, 5F4C` (the real order is not public).
    pub reordered_ca_key_template: bool,
    /// MSE SET `81 B6 {83 CHR}` is accepted as well as `81 A4` (not on ST).
    pub chr_via_dst: bool,
    /// Seed of the card's random generator (DH keys, challenges, PRND).
    pub rng_seed: u64,
    /// Which of the test holder's cards (NIS, keys, certificate, SOD).
    pub card: pki::CieCard,
}

impl Default for CieVariant {
    /// The permissive synthetic card: NXP identification data, but the IAS AID selectable
    /// and both GET DATA forms accepted.
    fn default() -> Self {
        Self {
            vendor: Vendor::Nxp,
            ias_aid_selectable: true,
            dh_single_get_data: true,
            reordered_ca_key_template: false,
            chr_via_dst: true,
            rng_seed: 0x0C1E_5EED,
            card: pki::CieCard::First,
        }
    }
}

impl CieVariant {
    /// A variant that behaves as cie.md §2.3 reports for `vendor`.
    pub fn for_vendor(vendor: Vendor) -> Self {
        use Vendor::*;
        let gemalto = matches!(vendor, Gemalto | Gemalto2);
        Self {
            vendor,
            ias_aid_selectable: matches!(vendor, Gemalto | Gemalto2 | St),
            dh_single_get_data: gemalto,
            reordered_ca_key_template: matches!(
                vendor,
                Actalis2023 | Bit4id2023 | Bit4idB9547 | ActalisB946
            ),
            chr_via_dst: vendor != St,
            ..Self::default()
        }
    }
}

/// Which key INTERNAL AUTHENTICATE uses (last MSE SET `41 A4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyUse {
    /// Chip authentication inside DAPP (key `82`, algorithm `9B`).
    Dapp,
    /// Authentication/signature key `81`, PKCS#1 v1.5 (algorithm `02`).
    Sign,
    /// NIS internal-authentication key `83` (algorithm `02`).
    Nis,
}

/// State that one "tap" (power cycle) drops.
#[derive(Debug, Default)]
struct Session {
    puk_ifd: Option<Vec<u8>>,
    puk_icc: Option<Vec<u8>>,
    sm: Option<SmSession>,
    sm_used: bool,
    ca_selected: bool,
    terminal: Option<TerminalCert>,
    chr_set: bool,
    challenge: Option<[u8; 8]>,
    rnd_icc: Option<[u8; 8]>,
    ext_auth: bool,
    dapp_done: bool,
    key_use: Option<KeyUse>,
    pin_verified: bool,
    puk_verified: bool,
    reseed: Option<[u8; 8]>,
}

/// The IAS application: keys and counters persist; the session does not.
#[derive(Debug)]
pub(crate) struct IasApp {
    variant: CieVariant,
    keys: CardKeys,
    group: DhGroup,
    ca_chr: Vec<u8>,
    ca_cha: Vec<u8>,
    sn_icc: [u8; 8],
    pin: Secret,
    puk: Secret,
    rng: ChaCha20Rng,
    s: Session,
}

/// CA certificate holder reference: `00000000 ‖ CAR` (CAR synthetic, "ITTST" + 3 bytes).
const CA_CHR: [u8; 12] = [0, 0, 0, 0, b'I', b'T', b'T', b'S', b'T', 0x00, 0x00, 0x01];
/// CA certificate holder authorization: CIE DF AID ‖ role (synthetic).
const CA_CHA: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x00, 0x39, 0x02];
/// SN.ICC returned by the chip authentication (synthetic).
const SN_ICC: [u8; 8] = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];

impl IasApp {
    pub(crate) fn new(variant: CieVariant) -> Self {
        Self {
            rng: ChaCha20Rng::seed_from_u64(variant.rng_seed),
            keys: CardKeys::load(variant.card),
            variant,
            group: DhGroup::rfc5114_2048_256(),
            ca_chr: CA_CHR.to_vec(),
            ca_cha: CA_CHA.to_vec(),
            sn_icc: SN_ICC,
            pin: Secret::new(pki::TEST_PIN, 3),
            puk: Secret::new(pki::TEST_PUK, 10),
            s: Session::default(),
        }
    }

    pub(crate) fn variant(&self) -> &CieVariant {
        &self.variant
    }

    /// Drop the session (selection is the card's business); keys and counters stay.
    pub(crate) fn power_cycle(&mut self) {
        self.s = Session::default();
    }

    pub(crate) fn pin_tries_left(&self) -> u8 {
        self.pin.tries_left()
    }

    pub(crate) fn puk_tries_left(&self) -> u8 {
        self.puk.tries_left()
    }

    /// Whether protected commands can be unwrapped now.
    pub(crate) fn sm_established(&self) -> bool {
        self.s.sm.is_some()
    }

    /// Unwrap a protected command. Any SM error ends the session.
    pub(crate) fn unwrap(&mut self, cmd: &Command) -> Result<Command, u16> {
        let Some(sm) = self.s.sm.as_mut() else {
            return Err(sm::sw::SM_INCORRECT);
        };
        match sm.unwrap_command(cmd) {
            Ok(plain) => {
                self.s.sm_used = true;
                Ok(plain)
            }
            Err(e) => {
                self.s = Session::default();
                Err(e)
            }
        }
    }

    /// Protect a response to a protected command; returns the data field and the outer
    /// status word (equal to the inner one, as cie.md §9 observed). Applies a pending SSC
    /// re-seed afterwards.
    pub(crate) fn wrap(&mut self, ins: u8, data: &[u8], status: u16) -> (Vec<u8>, u16) {
        let Some(sm) = self.s.sm.as_mut() else {
            return (data.to_vec(), status);
        };
        let out = sm.wrap_response(ins & 1 == 1, data, status);
        if let Some(ssc) = self.s.reseed.take() {
            sm.reseed(ssc);
        }
        (out, status)
    }

    /// A command arrived in clear (not GET RESPONSE): a session already used in SM ends.
    pub(crate) fn on_clear_command(&mut self) {
        if self.s.sm_used {
            self.s = Session::default();
        }
    }

    /// Whether an EF with `access` may be read by this command.
    pub(crate) fn may_read(&self, access: Access, secure: bool) -> bool {
        match access {
            Access::Always => true,
            Access::SecureAfterDapp => secure && self.s.dapp_done,
            // The card checks this one against the eMRTD application.
            Access::AfterEmrtdAccessControl => false,
        }
    }

    /// Run an IAS command (already unwrapped if it came under SM).
    pub(crate) fn command(&mut self, cmd: &Command, secure: bool) -> Result<(Vec<u8>, u16), u16> {
        match cmd.ins {
            0xCB => self.get_data(cmd),
            0x22 => self.mse_set(cmd, secure).map(|()| (Vec::new(), sw::OK)),
            0x2A => self.pso_verify_certificate(cmd, secure),
            0x84 => self.get_challenge(cmd),
            0x82 => self.external_authenticate(cmd, secure),
            0x88 => self.internal_authenticate(cmd, secure),
            0x20 => self.verify(cmd, secure),
            0x2C => self.reset_retry_counter(cmd, secure),
            0x24 => self.change_reference_data(cmd, secure),
            _ => Err(0x6D00),
        }
    }

    fn ok(data: Vec<u8>) -> Result<(Vec<u8>, u16), u16> {
        Ok((data, sw::OK))
    }

    // ---- GET DATA ----------------------------------------------------------------------

    fn get_data(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0x3FFF {
            return Err(sw::WRONG_P1P2);
        }
        let sel = match ber::parse_single(&cmd.data) {
            Some((0x4D, v)) => v,
            _ => return Err(sw::WRONG_DATA),
        };
        match sel {
            // DH domain parameters: BF A1 01 { A3 { 97|98|99 00 } } or A3 80 (all).
            [0x70, _, 0xBF, 0xA1, 0x01, _, 0xA3, rest @ ..] => {
                let g = &self.group;
                let all = || {
                    let mut v = ber::tlv(&[0x97], &g.g);
                    v.extend(ber::tlv(&[0x98], &g.p));
                    v.extend(ber::tlv(&[0x99], &g.q));
                    v
                };
                let inner = match rest {
                    [0x02, 0x97, 0x00] => ber::tlv(&[0x97], &g.g),
                    [0x02, 0x98, 0x00] => ber::tlv(&[0x98], &g.p),
                    [0x02, 0x99, 0x00] => ber::tlv(&[0x99], &g.q),
                    [0x80] | [0x00] if self.variant.dh_single_get_data => all(),
                    _ => return Err(sw::REF_NOT_FOUND),
                };
                let a3 = ber::tlv(&[0xA3], &inner);
                Self::ok(ber::tlv(&[0x70], &ber::tlv(&[0xBF, 0xA1, 0x01], &a3)))
            }
            // The ext-auth CA public key (key 84 → BF A0 04).
            [0x70, 0x07, 0xBF, 0xA0, 0x04, 0x03, 0x7F, 0x49, 0x80 | 0x00] => {
                let n = ber::tlv(&[0x81], pki::CA_EXTAUTH_MODULUS);
                let e = ber::tlv(&[0x82], pki::CA_EXTAUTH_PUBLIC_EXPONENT);
                let chr = ber::tlv(&[0x5F, 0x20], &self.ca_chr);
                let cha = ber::tlv(&[0x5F, 0x4C], &self.ca_cha);
                let children = if self.variant.reordered_ca_key_template {
                    [cha, e, chr, n].concat()
                } else {
                    [n, e, chr, cha].concat()
                };
                let key = ber::tlv(&[0x7F, 0x49], &children);
                Self::ok(ber::tlv(&[0x70], &ber::tlv(&[0xBF, 0xA0, 0x04], &key)))
            }
            // The card's ephemeral DH public value.
            [0xA6, 0x02, 0x91, 0x00] => {
                let puk = self.s.puk_icc.as_ref().ok_or(sw::CONDITIONS)?;
                Self::ok(ber::tlv(&[0xA6], &ber::tlv(&[0x91], puk)))
            }
            _ => Err(sw::REF_NOT_FOUND),
        }
    }

    // ---- MSE SET -----------------------------------------------------------------------

    fn mse_set(&mut self, cmd: &Command, secure: bool) -> Result<(), u16> {
        let tlvs = ber::parse_all(&cmd.data).ok_or(sw::WRONG_DATA)?;
        let get = |tag: u8| ber::find(&tlvs, &[tag]);
        match cmd.p1p2() {
            0x41A6 => {
                if get(0x80) != Some(&[0x9B][..]) || get(0x83) != Some(&[0x81][..]) {
                    return Err(sw::WRONG_DATA);
                }
                let puk_ifd = get(0x91).ok_or(sw::WRONG_DATA)?;
                if puk_ifd.len() > self.group.p.len() || !self.group.is_valid_public(puk_ifd) {
                    return Err(sw::WRONG_DATA);
                }
                let puk_ifd = dh::fixed(
                    &num_bigint_dig::BigUint::from_bytes_be(puk_ifd),
                    self.group.p.len(),
                );
                let pair = self.group.generate(&mut self.rng);
                let secret = self.group.shared_secret(&pair, &puk_ifd);
                self.s = Session {
                    puk_ifd: Some(puk_ifd),
                    puk_icc: Some(pair.public.clone()),
                    sm: Some(SmSession::from_secret(&secret)),
                    ..Session::default()
                };
                Ok(())
            }
            0x81B6 => {
                if !secure {
                    return Err(sw::SECURITY);
                }
                if get(0x80) == Some(&[0x41][..]) && get(0x83) == Some(&[0x84][..]) {
                    self.s.ca_selected = true;
                    Ok(())
                } else if let (Some(chr), true) = (get(0x83), self.variant.chr_via_dst) {
                    self.set_chr(chr)
                } else {
                    Err(sw::WRONG_DATA)
                }
            }
            0x81A4 => {
                if !secure {
                    return Err(sw::SECURITY);
                }
                self.set_chr(get(0x83).ok_or(sw::WRONG_DATA)?)
            }
            0x41A4 => {
                let use_ = match (get(0x80), get(0x84)) {
                    (Some([0x9B]), Some([0x82])) => {
                        if !secure {
                            return Err(sw::SECURITY);
                        }
                        if !self.s.ext_auth {
                            return Err(sw::CONDITIONS);
                        }
                        KeyUse::Dapp
                    }
                    (Some([0x02]), Some([0x81])) => KeyUse::Sign,
                    (Some([0x02]), Some([0x83])) => KeyUse::Nis,
                    _ => return Err(sw::WRONG_DATA),
                };
                self.s.key_use = Some(use_);
                Ok(())
            }
            _ => Err(sw::WRONG_P1P2),
        }
    }

    fn set_chr(&mut self, chr: &[u8]) -> Result<(), u16> {
        match &self.s.terminal {
            Some(t) if t.chr == chr => {
                self.s.chr_set = true;
                Ok(())
            }
            _ => Err(sw::REF_NOT_FOUND),
        }
    }

    // ---- DAPP --------------------------------------------------------------------------

    fn pso_verify_certificate(
        &mut self,
        cmd: &Command,
        secure: bool,
    ) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0x00AE {
            return Err(sw::WRONG_P1P2);
        }
        if !secure {
            return Err(sw::SECURITY);
        }
        if !self.s.ca_selected {
            return Err(sw::CONDITIONS);
        }
        let cert = dapp::verify_cv_certificate(
            &self.keys.ca,
            &self.ca_chr[4..],
            &self.ca_cha[..6],
            &cmd.data,
        )?;
        self.s.terminal = Some(cert);
        self.s.chr_set = false;
        self.s.ext_auth = false;
        self.s.dapp_done = false;
        Self::ok(Vec::new())
    }

    fn get_challenge(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.le != Some(8) || !cmd.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let mut rnd = [0u8; 8];
        self.rng.fill_bytes(&mut rnd);
        self.s.challenge = Some(rnd);
        Self::ok(rnd.to_vec())
    }

    fn transcript(&self) -> Option<Transcript<'_>> {
        Some(Transcript {
            puk_ifd: self.s.puk_ifd.as_deref()?,
            puk_icc: self.s.puk_icc.as_deref()?,
            g: &self.group.g,
            p: &self.group.p,
            q: &self.group.q,
        })
    }

    fn external_authenticate(
        &mut self,
        cmd: &Command,
        secure: bool,
    ) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if !secure {
            return Err(sw::SECURITY);
        }
        let challenge = self.s.challenge.take();
        let (Some(terminal), Some(rnd_icc), true) = (&self.s.terminal, challenge, self.s.chr_set)
        else {
            return Err(sw::CONDITIONS);
        };
        let t = self.transcript().ok_or(sw::CONDITIONS)?;
        if dapp::verify_external_auth(terminal, &t, &rnd_icc, &cmd.data) {
            self.s.ext_auth = true;
            self.s.rnd_icc = Some(rnd_icc);
            Self::ok(Vec::new())
        } else {
            self.s.ext_auth = false;
            Err(sw::AUTH_FAILED)
        }
    }

    fn internal_authenticate(
        &mut self,
        cmd: &Command,
        secure: bool,
    ) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        match self.s.key_use.ok_or(sw::CONDITIONS)? {
            KeyUse::Dapp => {
                if !secure {
                    return Err(sw::SECURITY);
                }
                let rnd_icc = self.s.rnd_icc.filter(|_| self.s.ext_auth);
                let Some(rnd_icc) = rnd_icc else {
                    return Err(sw::CONDITIONS);
                };
                if cmd.data.len() != 8 {
                    return Err(sw::WRONG_LENGTH);
                }
                let mut rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
                let t = self.transcript().ok_or(sw::CONDITIONS)?;
                let answer = dapp::internal_auth_answer(
                    &self.keys.icc,
                    &self.sn_icc,
                    &t,
                    &cmd.data,
                    &mut rng,
                );
                let mut ssc = [0u8; 8];
                ssc[..4].copy_from_slice(&rnd_icc[4..]);
                ssc[4..].copy_from_slice(&cmd.data[4..]);
                self.s.reseed = Some(ssc);
                self.s.dapp_done = true;
                Self::ok(answer)
            }
            KeyUse::Sign => {
                if !self.s.pin_verified {
                    return Err(sw::SECURITY);
                }
                Self::pkcs1_sign(&self.keys.auth, &cmd.data)
            }
            KeyUse::Nis => Self::pkcs1_sign(&self.keys.nis, &cmd.data),
        }
    }

    /// PKCS#1 v1.5 type-01 padding of the caller's bytes (a DigestInfo or any challenge),
    /// then the private-key operation.
    fn pkcs1_sign(key: &rsa::RsaPrivateKey, data: &[u8]) -> Result<(Vec<u8>, u16), u16> {
        if data.is_empty() || data.len() > key.size() - 11 {
            return Err(sw::WRONG_LENGTH);
        }
        key.sign(Pkcs1v15Sign::new_unprefixed(), data)
            .map(|s| (s, sw::OK))
            .map_err(|_| sw::WRONG_DATA)
    }

    // ---- PIN / PUK ---------------------------------------------------------------------

    /// VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER need the DAPP channel.
    fn require_channel(&self, secure: bool) -> Result<(), u16> {
        if secure && self.s.dapp_done {
            Ok(())
        } else {
            Err(sw::SECURITY)
        }
    }

    fn verify(&mut self, cmd: &Command, secure: bool) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1 != 0 || !matches!(cmd.p2, 0x81 | 0x82) {
            return Err(if cmd.p1 != 0 {
                sw::WRONG_P1P2
            } else {
                sw::REF_NOT_FOUND
            });
        }
        self.require_channel(secure)?;
        let is_pin = cmd.p2 == 0x81;
        let verified = if is_pin {
            self.s.pin_verified
        } else {
            self.s.puk_verified
        };
        let secret = if is_pin { &mut self.pin } else { &mut self.puk };
        if cmd.data.is_empty() {
            // Query: ISO 7816-4 "VERIFY with no data" — tries left, none spent. The real CIE
            // is unverified on this (cie.md §3.4).
            let status = if verified && secret.tries_left() > 0 {
                sw::OK
            } else {
                secret.status()
            };
            return Ok((Vec::new(), status));
        }
        if cmd.data.len() != 8 {
            return Err(sw::WRONG_LENGTH);
        }
        let status = secret.verify(&cmd.data);
        let ok = status == pin::OK;
        if is_pin {
            self.s.pin_verified = ok;
        } else {
            self.s.puk_verified = ok;
        }
        Ok((Vec::new(), status))
    }

    fn reset_retry_counter(&mut self, cmd: &Command, secure: bool) -> Result<(Vec<u8>, u16), u16> {
        if !matches!(cmd.p1, 0x02 | 0x03) {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.p2 != 0x81 {
            return Err(sw::REF_NOT_FOUND);
        }
        self.require_channel(secure)?;
        if !self.s.puk_verified {
            return Err(sw::SECURITY);
        }
        match (cmd.p1, cmd.data.len()) {
            (0x02, 8) => self.pin.set(&cmd.data),
            (0x03, 0) => self.pin.unblock(),
            _ => return Err(sw::WRONG_LENGTH),
        }
        Self::ok(Vec::new())
    }

    fn change_reference_data(
        &mut self,
        cmd: &Command,
        secure: bool,
    ) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.p2 != 0x81 {
            return Err(sw::REF_NOT_FOUND);
        }
        self.require_channel(secure)?;
        if cmd.data.len() != 16 {
            return Err(sw::WRONG_LENGTH);
        }
        let (old, new) = cmd.data.split_at(8);
        let status = self.pin.verify(old);
        if status != pin::OK {
            self.s.pin_verified = false;
            return Ok((Vec::new(), status));
        }
        self.pin.set(new);
        self.s.pin_verified = true;
        Self::ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atrs_match_the_published_ones() {
        // Real ATRs quoted in cie.md §2.3 (cie-middleware#180) and the table's TCKs.
        let hex = dh::hex;
        assert_eq!(
            Vendor::Gemalto.atr(),
            hex("3B8F8001803180 65B08504 0011120FFF8290008A"
                .replace(' ', "")
                .as_str())
        );
        assert_eq!(
            Vendor::ActalisB946.atr(),
            hex("3B8F80018031806549544A344C120FFF82900085")
        );
        assert_eq!(*Vendor::Actalis.atr().last().expect("tck"), 0x88);
        assert_eq!(*Vendor::Bit4id.atr().last().expect("tck"), 0x8B);
        assert_eq!(*Vendor::Bit4id2023.atr().last().expect("tck"), 0x8D);
        assert_eq!(*Vendor::Bit4idB9547.atr().last().expect("tck"), 0x80);
        assert_eq!(*Vendor::Actalis2023.atr().last().expect("tck"), 0x8A);
        // ST: the §2.3 fragment "80 01 80 66 … 90 00 C5" is the tail of a whole ATR.
        assert!(Vendor::St.atr().ends_with(&hex(
            "800180664750 00B8009482900 0C5".replace(' ', "").as_str()
        )));
    }
}
