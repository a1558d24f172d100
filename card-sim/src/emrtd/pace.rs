//! PACE v2 with Generic Mapping, chip side (9303-11 §4.4, §9.5-§9.7): MSE:Set AT, then the
//! four GENERAL AUTHENTICATE steps (encrypted nonce, mapping, key agreement, mutual
//! authentication tokens).
//!
//! Variants: DH-GM with 3DES on the RFC 5114 §2.3 group (parameterId 2, what the CIE
//! advertises) and ECDH-GM with AES-128 on NIST P-256 (parameterId 12) or brainpoolP256r1
//! (parameterId 13, the 9303-11 App. G.1 example and most European passports).

use num_bigint_dig::BigUint;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{AffinePoint, EncodedPoint, FieldBytes, NonZeroScalar, ProjectivePoint, Scalar, U256};
use rand_core::RngCore;
use subtle::ConstantTimeEq;

use super::brainpool;
use super::crypto::{Cipher, cbc, kdf, mac};
use super::lds::{bsi_oid, pace_info};
use super::sm::SmSession;
use crate::ber::{self, tlv};
use crate::ias::dh::{DhGroup, fixed};

/// RFC 5114 §2.1 1024-bit MODP group with a 160-bit subgroup (PACE parameterId 0), hex.
const P0_P: [&str; 4] = [
    "B10B8F96A080E01DDE92DE5EAE5D54EC52C99FBCFB06A3C69A6A9DCA52D23B61",
    "6073E28675A23D189838EF1E2EE652C013ECB4AEA906112324975C3CD49B83BF",
    "ACCBDD7D90C4BD7098488E9C219A73724EFFD6FAE5644738FAA31A4FF55BCCC0",
    "A151AF5F0DC8B4BD45BF37DF365C1A65E68CFDA76D4DA708DF1FB2BC2E4A4371",
];
const P0_G: [&str; 4] = [
    "A4D1CBD5C3FD34126765A442EFB99905F8104DD258AC507FD6406CFF14266D31",
    "266FEA1E5C41564B777E690F5504F213160217B4B01B886A5E91547F9E2749F4",
    "D7FBD7D3B9A92EE1909D0D2263F80A76A6A24C087A091F531DBF0A0169B6A28A",
    "D662A4D18E73AFA32D779D5918D08BC8858F4DCEF97C2A24855E6EEB22B3B2E5",
];
const P0_Q: &str = "F518AA8781A8DF278ABA4E7D64B7CB9D49462353";

/// A PACE protocol the chip offers in EF.CardAccess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceVariant {
    /// id-PACE-DH-GM-3DES-CBC-CBC, 2048-bit MODP group with 256-bit subgroup (parameterId 2).
    DhGm3desParam2,
    /// id-PACE-DH-GM-AES-CBC-CMAC-128, 1024-bit MODP group with 160-bit subgroup
    /// (parameterId 0; the 9303-11 App. G.2 example).
    DhGmAes128Param0,
    /// id-PACE-ECDH-GM-AES-CBC-CMAC-128 on NIST P-256 (parameterId 12).
    EcdhGmAes128P256,
    /// id-PACE-ECDH-GM-AES-CBC-CMAC-128 on brainpoolP256r1 (parameterId 13).
    EcdhGmAes128BrainpoolP256r1,
}

impl PaceVariant {
    /// The protocol OID (DER content bytes).
    pub fn oid(self) -> Vec<u8> {
        match self {
            PaceVariant::DhGm3desParam2 => bsi_oid(&[0x04, 0x01, 0x01]),
            PaceVariant::DhGmAes128Param0 => bsi_oid(&[0x04, 0x01, 0x02]),
            PaceVariant::EcdhGmAes128P256 | PaceVariant::EcdhGmAes128BrainpoolP256r1 => {
                bsi_oid(&[0x04, 0x02, 0x02])
            }
        }
    }

    /// Standardized domain parameter id.
    pub fn parameter_id(self) -> u8 {
        match self {
            PaceVariant::DhGm3desParam2 => 2,
            PaceVariant::DhGmAes128Param0 => 0,
            PaceVariant::EcdhGmAes128P256 => 12,
            PaceVariant::EcdhGmAes128BrainpoolP256r1 => 13,
        }
    }

    /// The session cipher.
    pub fn cipher(self) -> Cipher {
        match self {
            PaceVariant::DhGm3desParam2 => Cipher::Tdes,
            PaceVariant::DhGmAes128Param0
            | PaceVariant::EcdhGmAes128P256
            | PaceVariant::EcdhGmAes128BrainpoolP256r1 => Cipher::Aes128,
        }
    }

    /// The DH group of a DH variant.
    fn dh_group(self) -> DhGroup {
        match self {
            PaceVariant::DhGmAes128Param0 => DhGroup {
                g: crate::ias::dh::hex(&P0_G.concat()),
                p: crate::ias::dh::hex(&P0_P.concat()),
                q: crate::ias::dh::hex(P0_Q),
            },
            _ => DhGroup::rfc5114_2048_256(),
        }
    }

    /// Its PACEInfo (for EF.CardAccess and DG14).
    pub fn pace_info(self) -> Vec<u8> {
        pace_info(&self.oid(), self.parameter_id())
    }
}

/// PACE password reference of MSE:Set AT (`83`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRef {
    /// `01`: MRZ information, K = SHA-1(MRZ information).
    Mrz,
    /// `02`: CAN, K = the ASCII digits.
    Can,
}

/// Where a PACE run stands.
#[derive(Debug)]
enum Step {
    /// After MSE:Set AT: expecting GA step 1 (empty `7C`).
    Nonce,
    /// Nonce sent: expecting the terminal's mapping key (`81`).
    Map { s: Vec<u8> },
    /// Generator mapped: expecting the terminal's ephemeral key (`83`).
    Agree { g: Generator },
    /// Keys derived: expecting the terminal's token (`85`).
    Token {
        sm: SmSession,
        pk_pcd: Vec<u8>,
        pk_picc: Vec<u8>,
    },
}

/// A mapped generator and the chip's ephemeral key on it.
#[derive(Debug)]
enum Generator {
    Dh(BigUint),
    Ec(ProjectivePoint),
    Bp(brainpool::Point),
}

/// One PACE run in progress.
#[derive(Debug)]
pub(crate) struct PaceRun {
    variant: PaceVariant,
    password: Vec<u8>,
    step: Step,
    /// The shared secret K once agreed (for the token MAC key).
    secret: Vec<u8>,
    /// CAR of the most recent CVCA, returned in `87` with the chip's token (TA-capable
    /// chips).
    car: Option<Vec<u8>>,
}

/// What a GA step produced.
pub(crate) enum Outcome {
    /// Answer data, the run goes on.
    Continue(Vec<u8>),
    /// Mutual authentication done: answer data and the new SM session.
    Done(Vec<u8>, SmSession),
}

/// Status words of PACE.
pub(crate) mod sw {
    pub const AUTH_FAILED: u16 = 0x6300;
    pub const WRONG_DATA: u16 = 0x6A80;
}

impl PaceRun {
    /// Start after a valid MSE:Set AT; `password` is the raw secret (CAN digits or MRZ
    /// information).
    pub(crate) fn new(
        variant: PaceVariant,
        reference: PasswordRef,
        password: &[u8],
        car: Option<Vec<u8>>,
    ) -> Self {
        // K = f(π): the CAN as is; the MRZ information hashed with SHA-1 (9303-11 §9.7.3).
        let password = match reference {
            PasswordRef::Can => password.to_vec(),
            PasswordRef::Mrz => super::crypto::sha1(password).to_vec(),
        };
        Self {
            variant,
            password,
            step: Step::Nonce,
            secret: Vec::new(),
            car,
        }
    }

    /// Run one GENERAL AUTHENTICATE step with the command data `7C{...}`.
    pub(crate) fn step(
        mut self,
        data: &[u8],
        rng: &mut dyn RngCore,
    ) -> (Option<Self>, Result<Outcome, u16>) {
        let inner = match ber::parse_one(data) {
            Some((t, rest)) if t.tag == [0x7C] && rest.is_empty() => t.value,
            _ => return (None, Err(sw::WRONG_DATA)),
        };
        let Some(objs) = ber::parse_all(inner) else {
            return (None, Err(sw::WRONG_DATA));
        };
        let cipher = self.variant.cipher();
        let step = std::mem::replace(&mut self.step, Step::Nonce);
        match step {
            Step::Nonce => {
                if !objs.is_empty() {
                    return (None, Err(sw::WRONG_DATA));
                }
                let mut s = vec![0u8; cipher.block()];
                rng.fill_bytes(&mut s);
                let k_pi = kdf(&self.password, 3, cipher);
                let z = cbc(cipher, &k_pi, &[0; 16], &s, true);
                self.step = Step::Map { s };
                (
                    Some(self),
                    Ok(Outcome::Continue(tlv(&[0x7C], &tlv(&[0x80], &z)))),
                )
            }
            Step::Map { s } => {
                let Some(pk_map_pcd) = ber::find(&objs, &[0x81]) else {
                    return (None, Err(sw::WRONG_DATA));
                };
                let result = match self.variant {
                    PaceVariant::DhGm3desParam2 | PaceVariant::DhGmAes128Param0 => {
                        self.dh_map(&s, pk_map_pcd, rng)
                    }
                    PaceVariant::EcdhGmAes128P256 => self.ec_map(&s, pk_map_pcd, rng),
                    PaceVariant::EcdhGmAes128BrainpoolP256r1 => bp_map(&s, pk_map_pcd, rng),
                };
                match result {
                    Ok((g, answer)) => {
                        self.step = Step::Agree { g };
                        (
                            Some(self),
                            Ok(Outcome::Continue(tlv(&[0x7C], &tlv(&[0x82], &answer)))),
                        )
                    }
                    Err(e) => (None, Err(e)),
                }
            }
            Step::Agree { g } => {
                let Some(pk_pcd) = ber::find(&objs, &[0x83]) else {
                    return (None, Err(sw::WRONG_DATA));
                };
                let agreed = match &g {
                    Generator::Dh(gen_) => dh_agree(&self.variant.dh_group(), gen_, pk_pcd, rng),
                    Generator::Ec(gen_) => ec_agree(gen_, pk_pcd, rng),
                    Generator::Bp(gen_) => bp_agree(gen_, pk_pcd, rng),
                };
                let (pk_picc, secret) = match agreed {
                    Ok(v) => v,
                    Err(e) => return (None, Err(e)),
                };
                // 9303-11 §4.4.3.3.4: the chip must check that the keys differ.
                if pk_picc == pk_pcd {
                    return (None, Err(sw::WRONG_DATA));
                }
                let sm = SmSession::from_secret(cipher, &secret);
                self.secret = secret;
                self.step = Step::Token {
                    sm,
                    pk_pcd: pk_pcd.to_vec(),
                    pk_picc: pk_picc.clone(),
                };
                (
                    Some(self),
                    Ok(Outcome::Continue(tlv(&[0x7C], &tlv(&[0x84], &pk_picc)))),
                )
            }
            Step::Token {
                sm,
                pk_pcd,
                pk_picc,
            } => {
                let Some(t_pcd) = ber::find(&objs, &[0x85]) else {
                    return (None, Err(sw::WRONG_DATA));
                };
                let k_mac = kdf(&self.secret, 2, cipher);
                // T_PCD is over the chip's key, T_PICC over the terminal's.
                let expect = mac(cipher, &k_mac, &self.key_object(&pk_picc));
                if t_pcd.len() != 8 || !bool::from(expect.ct_eq(t_pcd)) {
                    // Wrong password: the terminal mapped another generator (6300, as the
                    // CIE answers; nothing is counted for the CAN).
                    return (None, Err(sw::AUTH_FAILED));
                }
                let t_picc = mac(cipher, &k_mac, &self.key_object(&pk_pcd));
                let mut answer = tlv(&[0x86], &t_picc);
                if let Some(car) = &self.car {
                    answer.extend(tlv(&[0x87], car));
                }
                (None, Ok(Outcome::Done(tlv(&[0x7C], &answer), sm)))
            }
        }
    }

    /// `7F49 { 06 OID, 84 y | 86 point }` (9303-11 §9.4.4).
    fn key_object(&self, pk: &[u8]) -> Vec<u8> {
        let tag = match self.variant {
            PaceVariant::DhGm3desParam2 | PaceVariant::DhGmAes128Param0 => 0x84,
            PaceVariant::EcdhGmAes128P256 | PaceVariant::EcdhGmAes128BrainpoolP256r1 => 0x86,
        };
        let mut v = tlv(&[0x06], &self.variant.oid());
        v.extend(tlv(&[tag], pk));
        tlv(&[0x7F, 0x49], &v)
    }

    /// DH-GM: ĝ = g^s · h, h = PK_map,PCD^x.
    fn dh_map(
        &mut self,
        s: &[u8],
        pk_pcd: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<(Generator, Vec<u8>), u16> {
        let group = self.variant.dh_group();
        if pk_pcd.len() > group.p.len() || !group.is_valid_public(pk_pcd) {
            return Err(sw::WRONG_DATA);
        }
        let p = BigUint::from_bytes_be(&group.p);
        let x = dh_secret(&group, rng);
        let pk = BigUint::from_bytes_be(&group.g).modpow(&x, &p);
        let h = BigUint::from_bytes_be(pk_pcd).modpow(&x, &p);
        let g_hat =
            BigUint::from_bytes_be(&group.g).modpow(&BigUint::from_bytes_be(s), &p) * h % &p;
        Ok((Generator::Dh(g_hat), fixed(&pk, group.p.len())))
    }

    /// ECDH-GM: Ĝ = s·G + H, H = x·PK_map,PCD.
    fn ec_map(
        &mut self,
        s: &[u8],
        pk_pcd: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<(Generator, Vec<u8>), u16> {
        let peer = ec_point(pk_pcd).ok_or(sw::WRONG_DATA)?;
        let x = ec_secret(rng);
        let pk = ProjectivePoint::GENERATOR * x;
        let h = peer * x;
        let s = scalar_from(s);
        let g_hat = ProjectivePoint::GENERATOR * s + h;
        if g_hat == ProjectivePoint::IDENTITY {
            return Err(sw::WRONG_DATA);
        }
        Ok((Generator::Ec(g_hat), encode_point(&pk)))
    }
}

/// brainpoolP256r1 GM: Ĝ = s·G + x·PK_map,PCD.
fn bp_map(s: &[u8], pk_pcd: &[u8], rng: &mut dyn RngCore) -> Result<(Generator, Vec<u8>), u16> {
    let c = brainpool::Curve::p256r1();
    let peer = c.decode(pk_pcd).ok_or(sw::WRONG_DATA)?;
    let x = c.secret(rng);
    let pk = c.mul(&x, &c.generator());
    let h = c.mul(&x, &peer);
    let g_hat = c.add(&c.mul(&BigUint::from_bytes_be(s), &c.generator()), &h);
    if g_hat.is_none() {
        return Err(sw::WRONG_DATA);
    }
    Ok((Generator::Bp(g_hat), c.encode(&pk)))
}

fn bp_agree(
    g_hat: &brainpool::Point,
    pk_pcd: &[u8],
    rng: &mut dyn RngCore,
) -> Result<(Vec<u8>, Vec<u8>), u16> {
    let c = brainpool::Curve::p256r1();
    let peer = c.decode(pk_pcd).ok_or(sw::WRONG_DATA)?;
    let y = c.secret(rng);
    let pk = c.mul(&y, g_hat);
    let k = c.mul(&y, &peer).ok_or(sw::WRONG_DATA)?;
    Ok((c.encode(&pk), fixed(&k.0, 32)))
}

/// Random x in [2, q-2].
fn dh_secret(group: &DhGroup, rng: &mut dyn RngCore) -> BigUint {
    let q = BigUint::from_bytes_be(&group.q);
    let two = BigUint::from(2u8);
    loop {
        let mut buf = vec![0u8; group.q.len()];
        rng.fill_bytes(&mut buf);
        let x = BigUint::from_bytes_be(&buf);
        if x >= two && x <= &q - &two {
            return x;
        }
    }
}

fn dh_agree(
    group: &DhGroup,
    g_hat: &BigUint,
    pk_pcd: &[u8],
    rng: &mut dyn RngCore,
) -> Result<(Vec<u8>, Vec<u8>), u16> {
    if pk_pcd.len() > group.p.len() || !group.is_valid_public(pk_pcd) {
        return Err(sw::WRONG_DATA);
    }
    let p = BigUint::from_bytes_be(&group.p);
    let y = dh_secret(group, rng);
    let pk = g_hat.modpow(&y, &p);
    let k = BigUint::from_bytes_be(pk_pcd).modpow(&y, &p);
    Ok((fixed(&pk, group.p.len()), fixed(&k, group.p.len())))
}

fn ec_agree(
    g_hat: &ProjectivePoint,
    pk_pcd: &[u8],
    rng: &mut dyn RngCore,
) -> Result<(Vec<u8>, Vec<u8>), u16> {
    let peer = ec_point(pk_pcd).ok_or(sw::WRONG_DATA)?;
    let y = ec_secret(rng);
    let pk = *g_hat * y;
    let k = (peer * y).to_affine();
    let x = k.to_encoded_point(false);
    let x = x.x().ok_or(sw::WRONG_DATA)?.to_vec();
    Ok((encode_point(&pk), x))
}

/// A random non-zero P-256 scalar.
pub(crate) fn ec_secret(rng: &mut dyn RngCore) -> Scalar {
    loop {
        let mut b = FieldBytes::default();
        rng.fill_bytes(&mut b);
        let s = <Scalar as Reduce<U256>>::reduce_bytes(&b);
        if bool::from(NonZeroScalar::new(s).is_some()) {
            return s;
        }
    }
}

/// A scalar from big-endian bytes (≤ 32), reduced mod n.
pub(crate) fn scalar_from(bytes: &[u8]) -> Scalar {
    let mut b = FieldBytes::default();
    let n = bytes.len().min(32);
    b[32 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    <Scalar as Reduce<U256>>::reduce_bytes(&b)
}

/// An uncompressed point on P-256, not the identity; `None` otherwise.
pub(crate) fn ec_point(bytes: &[u8]) -> Option<ProjectivePoint> {
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return None;
    }
    let ep = EncodedPoint::from_bytes(bytes).ok()?;
    let p: Option<AffinePoint> = AffinePoint::from_encoded_point(&ep).into();
    p.map(ProjectivePoint::from)
}

/// `04 ‖ X ‖ Y`, fixed 65 bytes.
pub(crate) fn encode_point(p: &ProjectivePoint) -> Vec<u8> {
    p.to_affine().to_encoded_point(false).as_bytes().to_vec()
}
