//! Chip Authentication v1 (ICAO 9303-11 §6.2): an ephemeral key agreement with the chip's
//! static key from DG14, which replaces the access-control session keys. DG14 is covered
//! by passive authentication, so a chip that then answers under the new keys holds the
//! private key the issuing State signed: it is not a clone.
//!
//! - 3DES (the CIE's `id-CA-DH-3DES-CBC-CBC`, emrtd.md §6): MSE:Set KAT `0C 22 41 A6`
//!   `{91 PK_PCD [84 keyId]}`, one step;
//! - AES: MSE:Set AT `0C 22 41 A4` `{80 OID [84 keyId]}`, then GENERAL AUTHENTICATE
//!   `7C{80 PK_PCD}`.
//!
//! Both go through the current secure channel; then `KS = KDF(K, 1/2)` with the cipher of
//! the CA OID and SM restarts with SSC 0. The chip gives no token: [`chip_authentication`]
//! confirms with one SELECT of EF.COM under the new keys, so a returned channel is proven.
//!
//! Keys: DH with explicit p, g (and q) in the SPKI (`dhpublicnumber` or PKCS#3), or ECDH on
//! a named curve of [`Curve`]. Explicit EC parameters and CA version 2 (EAC2 with
//! EF.CardSecurity) are [`EmrtdError::Unsupported`].

use super::card_access::{
    ChipAuthenticationInfo, ChipAuthenticationPublicKeyInfo, KeyAgreement, SecurityInfo,
    SecurityInfos,
};
use super::domain::Curve;
use super::{EmrtdError, Randomness};
use crate::apdu::{ApduChannel, ApduError, Command, SHORT_MAX_LE};
use crate::applets::ias::bigint::{less_than, modexp, modexp_public, strip};
use crate::sm::kdf::{self, KeyAlgorithm};
use crate::sm::{SecureChannel, SmError, Ssc};
use crate::tlv::{Reader, Tag, Tlv, encode_to_vec};
use zeroize::Zeroizing;

const TAG_SEQUENCE: Tag = Tag::new(0x30);
const TAG_INTEGER: Tag = Tag::new(0x02);
const TAG_OID: Tag = Tag::new(0x06);
const TAG_DG14: Tag = Tag::new(0x6E);

/// X9.42 `dhpublicnumber` 1.2.840.10046.2.1 (p, g, q).
const OID_DH_X942: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3E, 0x02, 0x01];
/// PKCS#3 `dhKeyAgreement` 1.2.840.113549.1.3.1 (p, g).
const OID_DH_PKCS3: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x03, 0x01];
/// `id-ecPublicKey`.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// `id-CA` 0.4.0.127.0.7.2.2.3.
const OID_CA_PREFIX: &[u8] = &[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x03];

/// DH moduli accepted from DG14: 1024 to 4096 bits (what chips use; bounds the work a
/// hostile file can ask for).
const DH_MIN_LEN: usize = 128;
const DH_MAX_LEN: usize = 512;
/// Draws before a broken generator is assumed.
const MAX_DRAWS: usize = 64;

/// Decode DG14 (`6E { SET OF SecurityInfo }`).
pub fn parse_dg14(bytes: &[u8]) -> Result<SecurityInfos, EmrtdError> {
    let mut r = Reader::new(bytes);
    let obj = r.read_tlv()?;
    if obj.tag != TAG_DG14 {
        return Err(EmrtdError::malformed("DG14", "not tag 6E"));
    }
    // Files are often padded to their allocated size.
    r.skip_padding();
    r.expect_empty("DG14")?;
    SecurityInfos::parse(obj.value)
}

/// The chip's static key agreement key, from a `ChipAuthenticationPublicKeyInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaPublicKey {
    /// DH: big-endian magnitudes without leading zeros.
    Dh {
        /// Prime modulus.
        p: Vec<u8>,
        /// Generator.
        g: Vec<u8>,
        /// Subgroup order (absent in PKCS#3 keys).
        q: Option<Vec<u8>>,
        /// The chip's public value.
        y: Vec<u8>,
    },
    /// ECDH on a named curve.
    Ec {
        /// The curve.
        curve: Curve,
        /// Uncompressed SEC1 point.
        point: Vec<u8>,
    },
}

impl CaPublicKey {
    /// Decode a DER `SubjectPublicKeyInfo`.
    pub fn from_spki(der: &[u8]) -> Result<Self, EmrtdError> {
        let bad = |reason| EmrtdError::malformed("Chip Authentication key", reason);
        let (oid, mut a, key) = super::split_spki(der, "Chip Authentication key")?;
        if oid == OID_DH_X942 || oid == OID_DH_PKCS3 {
            let params = a.expect_tlv(TAG_SEQUENCE)?;
            let mut pr = Reader::new(params.value);
            let p = strip(pr.expect_tlv(TAG_INTEGER)?.value).to_vec();
            let g = strip(pr.expect_tlv(TAG_INTEGER)?.value).to_vec();
            // X9.42 has q next; PKCS#3 an optional privateValueLength (not needed).
            let q = if oid == OID_DH_X942 {
                Some(strip(pr.expect_tlv(TAG_INTEGER)?.value).to_vec())
            } else {
                None
            };
            let y = Tlv::from_bytes(key)?;
            if y.tag != TAG_INTEGER {
                return Err(bad("DH public value not an INTEGER"));
            }
            let y = strip(y.value).to_vec();
            if !(DH_MIN_LEN..=DH_MAX_LEN).contains(&p.len()) {
                return Err(EmrtdError::Unsupported(format!(
                    "Chip Authentication DH modulus of {} bits",
                    p.len() * 8
                )));
            }
            if p.last().is_none_or(|b| b & 1 == 0) {
                return Err(bad("DH modulus even"));
            }
            if !less_than(&[1], &g) || !less_than(&g, &p) {
                return Err(bad("DH generator out of range"));
            }
            if let Some(q) = &q
                && (!less_than(&[1], q) || !less_than(q, &p))
            {
                return Err(bad("DH subgroup order out of range"));
            }
            Ok(Self::Dh { p, g, q, y })
        } else if oid == OID_EC_PUBLIC_KEY {
            let params = a.read_tlv()?;
            if params.tag != TAG_OID {
                return Err(EmrtdError::Unsupported(
                    "Chip Authentication key with explicit curve parameters".to_owned(),
                ));
            }
            let curve = named_curve(params.value)?;
            if key.first() != Some(&0x04) || key.len() != 1 + 2 * curve.field_len() {
                return Err(bad("EC point not uncompressed"));
            }
            Ok(Self::Ec {
                curve,
                point: key.to_vec(),
            })
        } else {
            Err(EmrtdError::Unsupported(
                "Chip Authentication key algorithm".to_owned(),
            ))
        }
    }

    fn agreement(&self) -> KeyAgreement {
        match self {
            Self::Dh { .. } => KeyAgreement::Dh,
            Self::Ec { .. } => KeyAgreement::Ecdh,
        }
    }
}

/// The curve named by an OID (content octets).
pub(crate) fn named_curve(oid: &[u8]) -> Result<Curve, EmrtdError> {
    const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
    const P521: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x23];
    const BP256: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07];
    const BP384: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0B];
    Ok(match oid {
        P256 => Curve::NistP256,
        P384 => Curve::NistP384,
        P521 => Curve::NistP521,
        BP256 => Curve::BrainpoolP256r1,
        BP384 => Curve::BrainpoolP384r1,
        _ => return Err(EmrtdError::Unsupported("elliptic curve".to_owned())),
    })
}

/// One Chip Authentication configuration the chip offers and this reader can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipAuthConfig {
    /// Cipher of the new session (from the CA OID; 3DES when DG14 has no
    /// `ChipAuthenticationInfo`, as 9303-11 §9.2.5 allows for a single key).
    pub cipher: KeyAlgorithm,
    /// Key reference for MSE (`84`), when the chip names one.
    pub key_id: Option<u32>,
    /// The chip's static key.
    pub public_key: CaPublicKey,
}

impl ChipAuthConfig {
    /// Pick the configuration from DG14: the first public key this reader supports, with
    /// its `ChipAuthenticationInfo` (same agreement, same key ID). `Ok(None)`: the chip
    /// does not offer CA; [`EmrtdError::Unsupported`]: it does, with nothing usable.
    pub fn from_dg14(infos: &SecurityInfos) -> Result<Option<Self>, EmrtdError> {
        let keys: Vec<&ChipAuthenticationPublicKeyInfo> = infos
            .infos
            .iter()
            .filter_map(|i| match i {
                SecurityInfo::ChipAuthenticationPublicKey(k) => Some(k),
                _ => None,
            })
            .collect();
        let cas: Vec<&ChipAuthenticationInfo> = infos
            .infos
            .iter()
            .filter_map(|i| match i {
                SecurityInfo::ChipAuthentication(c) => Some(c),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let mut last_err = None;
        for key in keys {
            let public_key = match CaPublicKey::from_spki(&key.public_key) {
                Ok(k) => k,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            if public_key.agreement() != key.agreement {
                last_err = Some(EmrtdError::malformed(
                    "ChipAuthenticationPublicKeyInfo",
                    "key does not match its protocol",
                ));
                continue;
            }
            let matching = cas.iter().find(|c| {
                c.agreement == key.agreement
                    && (c.key_id == key.key_id || c.key_id.is_none() || key.key_id.is_none())
            });
            let cipher = match matching {
                Some(c) if c.version != 1 => {
                    last_err = Some(EmrtdError::Unsupported(format!(
                        "Chip Authentication version {}",
                        c.version
                    )));
                    continue;
                }
                Some(c) => c.cipher,
                None if cas.is_empty() => KeyAlgorithm::Tdes,
                None => continue,
            };
            return Ok(Some(Self {
                cipher,
                key_id: key.key_id.or(matching.and_then(|c| c.key_id)),
                public_key,
            }));
        }
        Err(last_err.unwrap_or_else(|| EmrtdError::Unsupported("Chip Authentication".to_owned())))
    }

    /// The CA protocol OID (content octets) for MSE:Set AT.
    pub fn oid(&self) -> Vec<u8> {
        let agreement = match self.public_key.agreement() {
            KeyAgreement::Dh => 1,
            KeyAgreement::Ecdh => 2,
        };
        let cipher = match self.cipher {
            KeyAlgorithm::Tdes => 1,
            KeyAlgorithm::Aes128 => 2,
            KeyAlgorithm::Aes192 => 3,
            KeyAlgorithm::Aes256 => 4,
        };
        let mut oid = OID_CA_PREFIX.to_vec();
        oid.extend_from_slice(&[agreement, cipher]);
        oid
    }
}

/// The terminal's ephemeral public key and the shared secret `K`.
struct Agreement {
    public: Vec<u8>,
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The shared secret never goes to logs.
        f.debug_struct("Agreement").finish_non_exhaustive()
    }
}

fn agree(key: &CaPublicKey, rng: &dyn Randomness) -> Result<Agreement, EmrtdError> {
    match key {
        CaPublicKey::Dh { p, g, q, y } => {
            let bad = |_| EmrtdError::malformed("Chip Authentication key", "DH value out of range");
            // 1 < y < p-1, and y in the q-order subgroup when q is known (small-subgroup
            // values would make K guessable).
            let mut p_minus_1 = p.clone();
            if let Some(last) = p_minus_1.last_mut() {
                *last &= 0xFE;
            }
            if !less_than(&[1], y) || !less_than(y, &p_minus_1) {
                return Err(EmrtdError::malformed(
                    "Chip Authentication key",
                    "DH public value out of range",
                ));
            }
            if let Some(q) = q
                && strip(&modexp_public(y, q, p).map_err(bad)?) != [1]
            {
                return Err(EmrtdError::malformed(
                    "Chip Authentication key",
                    "DH public value not in the subgroup",
                ));
            }
            // Exponent in [2, q-1]; without q (PKCS#3), 256 random bits.
            let len = q.as_ref().map_or(32, Vec::len);
            let mut x = None;
            for _ in 0..MAX_DRAWS {
                let mut c = Zeroizing::new(vec![0u8; len]);
                rng.fill(&mut c).map_err(|_| EmrtdError::Randomness)?;
                if less_than(&[1], &c) && q.as_ref().is_none_or(|q| less_than(&c, q)) {
                    x = Some(c);
                    break;
                }
            }
            let x = x.ok_or(EmrtdError::Randomness)?;
            let public = modexp(g, &x, p).map_err(bad)?;
            let secret = Zeroizing::new(modexp(y, &x, p).map_err(bad)?);
            Ok(Agreement { public, secret })
        }
        CaPublicKey::Ec { curve, point } => {
            let ops = curve.ops();
            let sk = ops.private_key(rng)?;
            let public = ops.mul_base(&sk)?;
            let secret = ops.shared_x(point, &sk)?;
            Ok(Agreement { public, secret })
        }
    }
}

fn key_id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count().min(3);
    b[skip..].to_vec()
}

/// Run Chip Authentication as DG14 describes, over the current secure channel `sm` (the
/// eMRTD application selected), and return the new, confirmed secure channel (SSC 0) over
/// the same inner channel.
///
/// Errors: [`EmrtdError::Unsupported`] / [`EmrtdError::Malformed`] for DG14 (nothing to
/// send yet; `sm` is lost, the caller re-runs access control), the chip's refusal as
/// [`EmrtdError::ChipAuthenticationRefused`], a chip that cannot answer under the new keys
/// as [`EmrtdError::ChipAuthenticationFailed`] (possible clone).
pub async fn chip_authentication<C: ApduChannel>(
    sm: SecureChannel<C>,
    dg14: &SecurityInfos,
    rng: &dyn Randomness,
) -> Result<SecureChannel<C>, EmrtdError> {
    let config = ChipAuthConfig::from_dg14(dg14)?
        .ok_or_else(|| EmrtdError::Unsupported("no Chip Authentication key in DG14".into()))?;
    chip_authentication_with(sm, &config, rng).await
}

/// [`chip_authentication`] with an explicit configuration.
pub async fn chip_authentication_with<C: ApduChannel>(
    sm: SecureChannel<C>,
    config: &ChipAuthConfig,
    rng: &dyn Randomness,
) -> Result<SecureChannel<C>, EmrtdError> {
    let agreement = agree(&config.public_key, rng)?;
    let key_ref = config
        .key_id
        .map(|id| encode_to_vec(Tag::new(0x84), &key_id_bytes(id)))
        .unwrap_or_default();
    if config.cipher == KeyAlgorithm::Tdes {
        // v1 with 3DES: Set KAT carries the key itself (a DH key needs extended length; the
        // secure channel says when the link cannot).
        let mut data = encode_to_vec(Tag::new(0x91), &agreement.public);
        data.extend_from_slice(&key_ref);
        let resp = sm
            .transmit(&Command::new(0x00, 0x22, 0x41, 0xA6).with_data(data))
            .await?;
        refused(resp.sw.0)?;
    } else {
        let mut data = encode_to_vec(Tag::new(0x80), &config.oid());
        data.extend_from_slice(&key_ref);
        let resp = sm
            .transmit(&Command::new(0x00, 0x22, 0x41, 0xA4).with_data(data))
            .await?;
        refused(resp.sw.0)?;
        let body = encode_to_vec(
            Tag::new(0x7C),
            &encode_to_vec(Tag::new(0x80), &agreement.public),
        );
        let resp = sm
            .transmit(
                &Command::new(0x00, 0x86, 0x00, 0x00)
                    .with_data(body)
                    .with_le(SHORT_MAX_LE),
            )
            .await?;
        refused(resp.sw.0)?;
    }
    let session = kdf::icao_session(&agreement.secret, config.cipher);
    drop(agreement);
    let ssc = Ssc::zero(session.ssc_len())?;
    let next = SecureChannel::new(sm.into_inner(), session, ssc)?;
    confirm(&next).await?;
    Ok(next)
}

fn refused(sw: u16) -> Result<(), EmrtdError> {
    if sw == 0x9000 {
        Ok(())
    } else {
        Err(EmrtdError::ChipAuthenticationRefused { sw })
    }
}

/// One command under the new keys: only a chip holding the DG14 private key can MAC the
/// answer. SELECT EF.COM (in every eMRTD application, harmless to the file state).
async fn confirm<C: ApduChannel>(next: &SecureChannel<C>) -> Result<(), EmrtdError> {
    let select = Command::new(0x00, 0xA4, 0x02, 0x0C).with_data([0x01, 0x1E]);
    match next.transmit(&select).await {
        Ok(r) if r.sw.0 == 0x9000 => Ok(()),
        // The chip could not verify our MAC: it derived other keys.
        Ok(r) if r.sw.0 == 0x6987 || r.sw.0 == 0x6988 => Err(EmrtdError::ChipAuthenticationFailed),
        Ok(r) => Err(ApduError::Status {
            sw: r.sw,
            ins: 0xA4,
        }
        .into()),
        Err(ApduError::SecureMessaging(
            SmError::MacMismatch | SmError::MissingObject(_) | SmError::BadObjectLength(_),
        )) => Err(EmrtdError::ChipAuthenticationFailed),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_ids_are_minimal() {
        assert_eq!(key_id_bytes(0), vec![0]);
        assert_eq!(key_id_bytes(1), vec![1]);
        assert_eq!(key_id_bytes(0x0102), vec![1, 2]);
    }

    #[test]
    fn dg14_needs_its_tag() {
        assert!(matches!(
            parse_dg14(&[0x6F, 0x02, 0x31, 0x00]),
            Err(EmrtdError::Malformed { .. })
        ));
        assert!(
            parse_dg14(&[0x6E, 0x02, 0x31, 0x00, 0x00])
                .unwrap()
                .infos
                .is_empty()
        );
        assert_eq!(
            ChipAuthConfig::from_dg14(&SecurityInfos::default()),
            Ok(None)
        );
    }

    #[test]
    fn spki_errors_are_typed() {
        assert!(CaPublicKey::from_spki(&[0x30, 0x00]).is_err());
        // ecPublicKey with explicit parameters (a SEQUENCE): unsupported, not malformed.
        let spki = [
            0x30, 0x10, 0x30, 0x0B, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x30,
            0x00, 0x03, 0x01, 0x00,
        ];
        assert!(matches!(
            CaPublicKey::from_spki(&spki),
            Err(EmrtdError::Unsupported(_))
        ));
    }
}
