//! Active Authentication (ICAO 9303-11 §6.1): the chip signs a fresh 8-byte challenge
//! with the private key whose public half is DG15 (covered by passive authentication), so
//! a chip that signs correctly is not a copy of the data on another chip.
//!
//! - RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message recovery:
//!   `F = s^e mod n = 6A ‖ M1 ‖ H(M1 ‖ challenge) ‖ trailer`, trailer `BC` (SHA-1) or
//!   `hh CC` naming the hash (emrtd.md §5);
//! - ECDSA (P-256, P-384): plain `r ‖ s` (TR-03111), the hash named by DG14's
//!   `ActiveAuthenticationInfo`; a DER signature is accepted too (Portuguese cards, gmrtd).
//!
//! A chip without DG15 does not offer AA: [`AaOutcome::NotOffered`], not an error.

use super::card_access::{SecurityInfo, SecurityInfos};
use super::passive::HashAlg;
use super::{EmrtdError, Randomness};
use crate::apdu::{ApduChannel, ApduError, Command, SHORT_MAX_LE, Sw, files};
use crate::applets::ias::bigint::{less_than, modexp_public, strip};
use crate::tlv::{Reader, Tag, Tlv};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const TAG_SEQUENCE: Tag = Tag::new(0x30);
const TAG_INTEGER: Tag = Tag::new(0x02);
const TAG_OID: Tag = Tag::new(0x06);
const TAG_DG15: Tag = Tag::new(0x6F);

/// DG15's file identifier.
pub const FID_DG15: [u8; 2] = [0x01, 0x0F];

const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// `ecdsa-with-SHA1`, and `ecdsa-with-SHA224..512` (…3D 04 03 01..04).
const OID_ECDSA_SHA1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x01];
const OID_ECDSA_SHA2: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03];

/// RSA moduli accepted: up to 4096 bits (bounds the work a hostile DG15 can ask for).
const RSA_MAX_LEN: usize = 512;

/// Why an Active Authentication signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AaError {
    /// The signature is not a number below the modulus, or has the wrong length.
    #[error("signature out of range")]
    SignatureOutOfRange,
    /// The recovered block does not start with the ISO 9796-2 partial-recovery header `6A`.
    #[error("ISO 9796-2 header invalid")]
    BadHeader,
    /// The recovered block does not end with `BC` or `xx CC`.
    #[error("ISO 9796-2 trailer invalid")]
    BadTrailer,
    /// The trailer names a hash that ISO/IEC 10118-3 numbering does not map here.
    #[error("ISO 9796-2 trailer names unknown hash {0:02X}")]
    UnknownHash(u8),
    /// The recovered block is too short for the header, digest and trailer.
    #[error("recovered message too short")]
    TooShort,
    /// The digest does not match `H(M1 ‖ challenge)`, or the ECDSA signature is invalid.
    #[error("signature does not match the challenge")]
    Mismatch,
}

/// The public key of DG15.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AaPublicKey {
    /// RSA: magnitudes without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// ECDSA on P-256: uncompressed SEC1 point.
    P256(Vec<u8>),
    /// ECDSA on P-384: uncompressed SEC1 point.
    P384(Vec<u8>),
}

/// Decode DG15 (`6F { SubjectPublicKeyInfo }`).
pub fn parse_dg15(bytes: &[u8]) -> Result<AaPublicKey, EmrtdError> {
    let mut r = Reader::new(bytes);
    let obj = r.read_tlv()?;
    if obj.tag != TAG_DG15 {
        return Err(EmrtdError::malformed("DG15", "not tag 6F"));
    }
    r.skip_padding();
    r.expect_empty("DG15")?;
    AaPublicKey::from_spki(obj.value)
}

impl AaPublicKey {
    /// Decode a DER `SubjectPublicKeyInfo`.
    pub fn from_spki(der: &[u8]) -> Result<Self, EmrtdError> {
        let bad = |reason| EmrtdError::malformed("DG15 key", reason);
        let (oid, mut a, key) = super::split_spki(der, "DG15 key")?;
        if oid == OID_RSA {
            let seq = Tlv::from_bytes(key)?;
            if seq.tag != TAG_SEQUENCE {
                return Err(bad("RSA key not a SEQUENCE"));
            }
            let mut k = Reader::new(seq.value);
            let n = strip(k.expect_tlv(TAG_INTEGER)?.value).to_vec();
            let e = strip(k.expect_tlv(TAG_INTEGER)?.value).to_vec();
            k.expect_empty("RSAPublicKey")?;
            if n.len() > RSA_MAX_LEN {
                return Err(EmrtdError::Unsupported(format!(
                    "Active Authentication RSA key of {} bits",
                    n.len() * 8
                )));
            }
            // Odd modulus of at least 512 bits, 1 < e < n.
            if n.len() < 64 || n.last().is_none_or(|b| b & 1 == 0) {
                return Err(bad("RSA modulus invalid"));
            }
            if !less_than(&[1], &e) || !less_than(&e, &n) {
                return Err(bad("RSA exponent invalid"));
            }
            Ok(Self::Rsa { n, e })
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = a.read_tlv()?;
            if curve.tag != TAG_OID {
                return Err(EmrtdError::Unsupported(
                    "Active Authentication key with explicit curve parameters".to_owned(),
                ));
            }
            match curve.value {
                OID_P256 => {
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                        .map_err(|_| bad("EC point invalid"))?;
                    Ok(Self::P256(key.to_vec()))
                }
                OID_P384 => {
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(key)
                        .map_err(|_| bad("EC point invalid"))?;
                    Ok(Self::P384(key.to_vec()))
                }
                _ => Err(EmrtdError::Unsupported(
                    "Active Authentication curve".to_owned(),
                )),
            }
        } else {
            Err(EmrtdError::Unsupported(
                "Active Authentication key algorithm".to_owned(),
            ))
        }
    }
}

/// The ECDSA hash DG14 names (`ActiveAuthenticationInfo`), if any.
pub fn ecdsa_hash(dg14: &SecurityInfos) -> Result<Option<HashAlg>, EmrtdError> {
    for info in &dg14.infos {
        if let SecurityInfo::ActiveAuthentication(aa) = info {
            let alg = aa.signature_algorithm.as_slice();
            let hash = match alg {
                OID_ECDSA_SHA1 => HashAlg::Sha1,
                [prefix @ .., last] if prefix == OID_ECDSA_SHA2 => match last {
                    1 => HashAlg::Sha224,
                    2 => HashAlg::Sha256,
                    3 => HashAlg::Sha384,
                    4 => HashAlg::Sha512,
                    _ => {
                        return Err(EmrtdError::Unsupported(
                            "Active Authentication signature algorithm".to_owned(),
                        ));
                    }
                },
                _ => {
                    return Err(EmrtdError::Unsupported(
                        "Active Authentication signature algorithm".to_owned(),
                    ));
                }
            };
            return Ok(Some(hash));
        }
    }
    Ok(None)
}

/// The hash an ISO 9796-2 trailer names (ISO/IEC 10118-3 identifiers), and its length.
fn trailer_hash(id: u8) -> Result<HashAlg, AaError> {
    Ok(match id {
        0x33 => HashAlg::Sha1,
        0x38 => HashAlg::Sha224,
        0x34 => HashAlg::Sha256,
        0x36 => HashAlg::Sha384,
        0x35 => HashAlg::Sha512,
        other => return Err(AaError::UnknownHash(other)),
    })
}

fn hash_len(h: HashAlg) -> usize {
    match h {
        HashAlg::Sha1 => 20,
        HashAlg::Sha224 => 28,
        HashAlg::Sha256 => 32,
        HashAlg::Sha384 => 48,
        HashAlg::Sha512 => 64,
    }
}

/// Check a recovered ISO 9796-2 scheme 1 block `F` (leading zero bytes allowed) against
/// `challenge`.
pub fn check_iso9796_2(f: &[u8], challenge: &[u8]) -> Result<(), AaError> {
    let f = strip(f);
    let (hash, t) = match f {
        [.., 0xBC] => (HashAlg::Sha1, 1),
        [.., id, 0xCC] => (trailer_hash(*id)?, 2),
        _ => return Err(AaError::BadTrailer),
    };
    let l = hash_len(hash);
    // Header byte, digest and trailer; M1 may be empty in principle.
    if f.len() < 1 + l + t {
        return Err(AaError::TooShort);
    }
    // 6A: partial recovery, no padding (the only form AA uses, the challenge being M2).
    if f[0] != 0x6A {
        return Err(AaError::BadHeader);
    }
    let digest_at = f.len() - t - l;
    let m1 = &f[1..digest_at];
    let mut m = Zeroizing::new(Vec::with_capacity(m1.len() + challenge.len()));
    m.extend_from_slice(m1);
    m.extend_from_slice(challenge);
    let expected = hash.digest(&m);
    if bool::from(expected.ct_eq(&f[digest_at..f.len() - t])) {
        Ok(())
    } else {
        Err(AaError::Mismatch)
    }
}

/// Verify the chip's answer `sig` to `challenge` with `key`. `ecdsa_hash` is what DG14
/// names; without it, the curve's own size (SHA-256 for P-256, SHA-384 for P-384).
pub fn verify(
    key: &AaPublicKey,
    ecdsa_hash: Option<HashAlg>,
    challenge: &[u8],
    sig: &[u8],
) -> Result<(), AaError> {
    use ecdsa::signature::hazmat::PrehashVerifier;
    match key {
        AaPublicKey::Rsa { n, e } => {
            if sig.len() > n.len() || !less_than(sig, n) {
                return Err(AaError::SignatureOutOfRange);
            }
            let f = modexp_public(sig, e, n).map_err(|_| AaError::SignatureOutOfRange)?;
            check_iso9796_2(&f, challenge)
        }
        AaPublicKey::P256(point) => {
            let k =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| AaError::Mismatch)?;
            let s = p256::ecdsa::Signature::from_slice(sig)
                .or_else(|_| p256::ecdsa::Signature::from_der(sig))
                .map_err(|_| AaError::Mismatch)?;
            let h = ecdsa_hash.unwrap_or(HashAlg::Sha256).digest(challenge);
            k.verify_prehash(&h, &s).map_err(|_| AaError::Mismatch)
        }
        AaPublicKey::P384(point) => {
            let k =
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| AaError::Mismatch)?;
            let s = p384::ecdsa::Signature::from_slice(sig)
                .or_else(|_| p384::ecdsa::Signature::from_der(sig))
                .map_err(|_| AaError::Mismatch)?;
            let h = ecdsa_hash.unwrap_or(HashAlg::Sha384).digest(challenge);
            k.verify_prehash(&h, &s).map_err(|_| AaError::Mismatch)
        }
    }
}

/// What Active Authentication concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AaOutcome {
    /// The chip signed the challenge with the DG15 key.
    Verified,
    /// The chip has no DG15: it does not offer AA (CA, if offered, proves the chip instead).
    NotOffered,
}

/// Read DG15 over `ch` (the eMRTD application selected, under SM). `Ok(None)` when the
/// chip has none (`6A82`).
pub async fn read_dg15<C: ApduChannel + ?Sized>(ch: &C) -> Result<Option<Vec<u8>>, EmrtdError> {
    match files::read_ef(ch, FID_DG15).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ApduError::Status { sw, .. }) if sw == Sw::FILE_NOT_FOUND => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Read DG15 and run Active Authentication with a random challenge. `dg14` supplies the
/// ECDSA hash. A signature that does not verify is
/// [`EmrtdError::ActiveAuthenticationFailed`]: possible clone.
pub async fn active_authentication<C: ApduChannel + ?Sized>(
    ch: &C,
    dg14: Option<&SecurityInfos>,
    rng: &dyn Randomness,
) -> Result<AaOutcome, EmrtdError> {
    let Some(dg15) = read_dg15(ch).await? else {
        return Ok(AaOutcome::NotOffered);
    };
    let key = parse_dg15(&dg15)?;
    let hash = match dg14 {
        Some(infos) => ecdsa_hash(infos)?,
        None => None,
    };
    active_authentication_with(ch, &key, hash, rng).await?;
    Ok(AaOutcome::Verified)
}

/// INTERNAL AUTHENTICATE `00 88 00 00` with an 8-byte random challenge, checked with `key`.
pub async fn active_authentication_with<C: ApduChannel + ?Sized>(
    ch: &C,
    key: &AaPublicKey,
    ecdsa_hash: Option<HashAlg>,
    rng: &dyn Randomness,
) -> Result<(), EmrtdError> {
    let mut challenge = [0u8; 8];
    rng.fill(&mut challenge)
        .map_err(|_| EmrtdError::Randomness)?;
    // RSA-4096 answers 512 bytes: extended Le when the link allows (emrtd.md §5).
    let le = match key {
        AaPublicKey::Rsa { n, .. } if n.len() > SHORT_MAX_LE => {
            ch.limits().max_response_data.max(SHORT_MAX_LE)
        }
        _ => SHORT_MAX_LE,
    };
    let resp = ch
        .transmit(
            &Command::new(0x00, 0x88, 0x00, 0x00)
                .with_data(challenge)
                .with_le(le),
        )
        .await?;
    resp.check(0x88)?;
    verify(key, ecdsa_hash, &challenge, &resp.data).map_err(EmrtdError::ActiveAuthenticationFailed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn block(m1: &[u8], challenge: &[u8]) -> Vec<u8> {
        let mut m = m1.to_vec();
        m.extend_from_slice(challenge);
        let mut f = vec![0x6A];
        f.extend_from_slice(m1);
        f.extend(HashAlg::Sha1.digest(&m));
        f.push(0xBC);
        f
    }

    #[test]
    fn iso9796_2_recovery_accepts_the_right_block() {
        let c = [1, 2, 3, 4, 5, 6, 7, 8];
        let f = block(&[0x55; 100], &c);
        assert_eq!(check_iso9796_2(&f, &c), Ok(()));
        // Leading zero bytes of a short F are not part of it.
        let mut z = vec![0, 0];
        z.extend_from_slice(&f);
        assert_eq!(check_iso9796_2(&z, &c), Ok(()));
    }

    #[test]
    fn iso9796_2_explicit_trailer_sha256() {
        let c = [9u8; 8];
        let m1 = [0x11u8; 60];
        let mut m = m1.to_vec();
        m.extend_from_slice(&c);
        let mut f = vec![0x6A];
        f.extend_from_slice(&m1);
        f.extend(HashAlg::Sha256.digest(&m));
        f.extend_from_slice(&[0x34, 0xCC]);
        assert_eq!(check_iso9796_2(&f, &c), Ok(()));
        let at = f.len() - 2;
        f[at] = 0x36;
        assert_eq!(check_iso9796_2(&f, &c), Err(AaError::Mismatch));
    }

    #[test]
    fn iso9796_2_edge_cases_are_typed() {
        let c = [1u8; 8];
        let good = block(&[0x55; 100], &c);
        let mut bad_header = good.clone();
        bad_header[0] = 0x4A;
        assert_eq!(check_iso9796_2(&bad_header, &c), Err(AaError::BadHeader));
        let mut bad_trailer = good.clone();
        *bad_trailer.last_mut().unwrap() = 0xBD;
        assert_eq!(check_iso9796_2(&bad_trailer, &c), Err(AaError::BadTrailer));
        let mut unknown = good.clone();
        let n = unknown.len();
        unknown[n - 2] = 0x99;
        unknown[n - 1] = 0xCC;
        assert_eq!(
            check_iso9796_2(&unknown, &c),
            Err(AaError::UnknownHash(0x99))
        );
        assert_eq!(
            check_iso9796_2(&[0x6A, 1, 2, 0xBC], &c),
            Err(AaError::TooShort)
        );
        assert_eq!(check_iso9796_2(&[], &c), Err(AaError::BadTrailer));
        assert_eq!(check_iso9796_2(&good, &[2u8; 8]), Err(AaError::Mismatch));
        let mut flipped = good;
        flipped[50] ^= 1;
        assert_eq!(check_iso9796_2(&flipped, &c), Err(AaError::Mismatch));
    }

    #[test]
    fn rsa_signature_must_be_below_the_modulus() {
        let key = AaPublicKey::Rsa {
            n: vec![0xC5; 64],
            e: vec![3],
        };
        assert_eq!(
            verify(&key, None, &[0; 8], &[0xFF; 64]),
            Err(AaError::SignatureOutOfRange)
        );
        assert_eq!(
            verify(&key, None, &[0; 8], &[0x01; 65]),
            Err(AaError::SignatureOutOfRange)
        );
    }

    #[test]
    fn dg15_errors_are_typed() {
        assert!(matches!(
            parse_dg15(&[0x6E, 0x00]),
            Err(EmrtdError::Malformed { .. })
        ));
        assert!(parse_dg15(&[0x6F, 0x02, 0x30, 0x00]).is_err());
    }
}
