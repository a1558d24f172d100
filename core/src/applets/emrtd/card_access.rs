//! EF.CardAccess, and the same `SecurityInfos` structure in DG14 and EF.CardSecurity
//! (ICAO 9303-11 §9.2): `SET OF SecurityInfo`, each `SEQUENCE { protocol OID, requiredData,
//! optionalData OPTIONAL }`.
//!
//! Known infos are decoded (PACE, PACE domain parameters, Chip Authentication and its public
//! key, Active Authentication, Terminal Authentication); unknown protocols are skipped, as
//! 9303-11 §9.2 asks. Every length goes through [`crate::tlv::Reader`]; nothing panics.

use super::EmrtdError;
use crate::sm::KeyAlgorithm;
use crate::tlv::{Reader, Tag, Tlv};

const TAG_SET: Tag = Tag::new(0x31);
const TAG_SEQUENCE: Tag = Tag::new(0x30);
const TAG_OID: Tag = Tag::new(0x06);
const TAG_INTEGER: Tag = Tag::new(0x02);

/// `bsi-de 2 2` (0.4.0.127.0.7.2.2): the arc of every PACE, CA, TA and PK OID.
const BSI_PROTOCOLS: [u8; 7] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02];
/// `aaProtocolObject` 2.23.136.1.1.5 (ActiveAuthenticationInfo).
const AA_PROTOCOL: [u8; 6] = [0x67, 0x81, 0x08, 0x01, 0x01, 0x05];

/// Arc after [`BSI_PROTOCOLS`].
const ARC_PK: u8 = 1;
const ARC_TA: u8 = 2;
const ARC_CA: u8 = 3;
const ARC_PACE: u8 = 4;

/// Diffie-Hellman flavour of a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAgreement {
    /// Finite-field (MODP) Diffie-Hellman.
    Dh,
    /// Elliptic-curve Diffie-Hellman.
    Ecdh,
}

/// How PACE maps the nonce onto the domain parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Generic Mapping (9303-11 §4.4.3.3.1).
    Generic,
    /// Integrated Mapping (§4.4.3.3.2).
    Integrated,
    /// Chip Authentication Mapping (§4.4.3.3.3, ECDH only).
    ChipAuthentication,
}

/// A PACE protocol: mapping × key agreement × cipher, i.e. one `id-PACE-*` OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceProtocol {
    /// Nonce mapping.
    pub mapping: Mapping,
    /// DH or ECDH.
    pub agreement: KeyAgreement,
    /// Secure-messaging cipher and KDF (3DES-CBC/retail MAC or AES-CBC/CMAC).
    pub cipher: KeyAlgorithm,
}

fn cipher_arc(c: KeyAlgorithm) -> u8 {
    match c {
        KeyAlgorithm::Tdes => 1,
        KeyAlgorithm::Aes128 => 2,
        KeyAlgorithm::Aes192 => 3,
        KeyAlgorithm::Aes256 => 4,
    }
}

fn cipher_from_arc(arc: u8) -> Option<KeyAlgorithm> {
    Some(match arc {
        1 => KeyAlgorithm::Tdes,
        2 => KeyAlgorithm::Aes128,
        3 => KeyAlgorithm::Aes192,
        4 => KeyAlgorithm::Aes256,
        _ => return None,
    })
}

impl PaceProtocol {
    /// Decode an `id-PACE-*` OID (content octets, without tag and length).
    pub fn from_oid(oid: &[u8]) -> Option<Self> {
        let [mapping, cipher] = bsi_arcs(oid, ARC_PACE)?;
        let (mapping, agreement) = match mapping {
            1 => (Mapping::Generic, KeyAgreement::Dh),
            2 => (Mapping::Generic, KeyAgreement::Ecdh),
            3 => (Mapping::Integrated, KeyAgreement::Dh),
            4 => (Mapping::Integrated, KeyAgreement::Ecdh),
            // id-PACE-ECDH-CAM has no 3DES variant.
            6 if cipher != 1 => (Mapping::ChipAuthentication, KeyAgreement::Ecdh),
            _ => return None,
        };
        Some(Self {
            mapping,
            agreement,
            cipher: cipher_from_arc(cipher)?,
        })
    }

    /// The OID's content octets (what MSE:Set AT sends in `80` and tokens in `06`).
    pub fn oid(&self) -> Vec<u8> {
        let mapping = match (self.mapping, self.agreement) {
            (Mapping::Generic, KeyAgreement::Dh) => 1,
            (Mapping::Generic, KeyAgreement::Ecdh) => 2,
            (Mapping::Integrated, KeyAgreement::Dh) => 3,
            (Mapping::Integrated, KeyAgreement::Ecdh) => 4,
            (Mapping::ChipAuthentication, _) => 6,
        };
        let mut oid = BSI_PROTOCOLS.to_vec();
        oid.extend_from_slice(&[ARC_PACE, mapping, cipher_arc(self.cipher)]);
        oid
    }
}

/// `[a, b]` when `oid` is `bsi-de 2 2 <arc> a b`.
fn bsi_arcs(oid: &[u8], arc: u8) -> Option<[u8; 2]> {
    match oid.strip_prefix(&BSI_PROTOCOLS[..])? {
        [x, a, b] if *x == arc => Some([*a, *b]),
        _ => None,
    }
}

/// `PACEInfo`: a PACE protocol the chip supports, with standardized domain parameters
/// (`parameter_id` 0-31) or proprietary ones described by a [`PaceDomainParameterInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceInfo {
    /// The protocol.
    pub protocol: PaceProtocol,
    /// Protocol version (2 for ICAO PACE).
    pub version: u32,
    /// Domain parameter reference.
    pub parameter_id: Option<u32>,
}

/// `PACEDomainParameterInfo`: proprietary domain parameters (kept raw; not used for PACE
/// by this reader, see [`super::domain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceDomainParameterInfo {
    /// The protocol they are for.
    pub protocol: PaceProtocol,
    /// The DER `AlgorithmIdentifier` as on the card.
    pub domain_parameter: Vec<u8>,
    /// The reference a `PACEInfo` uses to point here.
    pub parameter_id: Option<u32>,
}

/// `ChipAuthenticationInfo` (DG14, EF.CardSecurity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipAuthenticationInfo {
    /// DH or ECDH.
    pub agreement: KeyAgreement,
    /// The cipher of the new session.
    pub cipher: KeyAlgorithm,
    /// Version 1 or 2.
    pub version: u32,
    /// Which key, when the chip has several.
    pub key_id: Option<u32>,
}

/// `ChipAuthenticationPublicKeyInfo` (DG14, EF.CardSecurity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipAuthenticationPublicKeyInfo {
    /// `id-PK-DH` or `id-PK-ECDH`.
    pub agreement: KeyAgreement,
    /// The DER `SubjectPublicKeyInfo` as on the card (hash-relevant bytes kept raw).
    pub public_key: Vec<u8>,
    /// Which key.
    pub key_id: Option<u32>,
}

/// `ActiveAuthenticationInfo` (DG14): the signature algorithm of ECDSA Active
/// Authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAuthenticationInfo {
    /// Version (1).
    pub version: u32,
    /// Signature algorithm OID content octets.
    pub signature_algorithm: Vec<u8>,
}

/// One decoded `SecurityInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityInfo {
    /// `PACEInfo`.
    Pace(PaceInfo),
    /// `PACEDomainParameterInfo`.
    PaceDomainParameter(PaceDomainParameterInfo),
    /// `ChipAuthenticationInfo`.
    ChipAuthentication(ChipAuthenticationInfo),
    /// `ChipAuthenticationPublicKeyInfo`.
    ChipAuthenticationPublicKey(ChipAuthenticationPublicKeyInfo),
    /// `ActiveAuthenticationInfo`.
    ActiveAuthentication(ActiveAuthenticationInfo),
    /// `TerminalAuthenticationInfo` (version only; TA itself is out of scope).
    TerminalAuthentication {
        /// Version.
        version: u32,
    },
}

/// The decoded `SecurityInfos` of EF.CardAccess, DG14 or EF.CardSecurity's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityInfos {
    /// Known infos, in card order.
    pub infos: Vec<SecurityInfo>,
    /// How many infos had a protocol this reader does not know (skipped).
    pub unknown: usize,
}

impl SecurityInfos {
    /// Decode DER `SET OF SecurityInfo`. Files are often padded to their allocated size, so
    /// `00`/`FF` after the set are accepted; anything else after it is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, EmrtdError> {
        let mut r = Reader::new(bytes);
        let set = r.expect_tlv(TAG_SET)?;
        r.skip_padding();
        r.expect_empty("SecurityInfos")?;
        let mut out = Self::default();
        for item in set.children() {
            let item = item?;
            if item.tag != TAG_SEQUENCE {
                return Err(EmrtdError::malformed(
                    "SecurityInfos",
                    "element not a SEQUENCE",
                ));
            }
            match parse_info(&item)? {
                Some(info) => out.infos.push(info),
                None => out.unknown += 1,
            }
        }
        Ok(out)
    }

    /// Every `PACEInfo`, in card order.
    pub fn pace_infos(&self) -> impl Iterator<Item = &PaceInfo> {
        self.infos.iter().filter_map(|i| match i {
            SecurityInfo::Pace(p) => Some(p),
            _ => None,
        })
    }

    /// The PACE configuration to run, among what the card advertises and this reader
    /// supports (Generic Mapping, version 2, standardized domain parameters we implement).
    ///
    /// Rule: ECDH before DH (faster on the chip, shorter APDUs), then the strongest cipher
    /// (AES-256, -192, -128, then 3DES); ties keep the card's order. `None` when nothing
    /// usable is offered (then BAC with the MRZ is the only way in).
    pub fn choose_pace(&self) -> Option<&PaceInfo> {
        let rank = |p: &PaceInfo| {
            let agreement = match p.protocol.agreement {
                KeyAgreement::Ecdh => 0,
                KeyAgreement::Dh => 1,
            };
            let cipher = 4 - cipher_arc(p.protocol.cipher);
            (agreement, cipher)
        };
        self.pace_infos()
            .filter(|p| {
                p.protocol.mapping == Mapping::Generic
                    && p.version == 2
                    && p.parameter_id
                        .is_some_and(|id| super::domain::DomainParameters::standardized(id).is_ok())
            })
            // `min_by_key` keeps the first of equal keys: the card's order breaks ties.
            .min_by_key(|p| rank(p))
    }

    /// Whether more than one `PACEInfo` uses `protocol` (then MSE:Set AT must name the
    /// domain parameters, 9303-11 §4.4.4.1).
    pub fn parameters_ambiguous(&self, protocol: PaceProtocol) -> bool {
        self.pace_infos().filter(|p| p.protocol == protocol).count() > 1
    }
}

fn parse_info(seq: &Tlv<'_>) -> Result<Option<SecurityInfo>, EmrtdError> {
    let mut r = Reader::new(seq.value);
    let oid = r.expect_tlv(TAG_OID)?.value;
    let info = if let Some(protocol) = PaceProtocol::from_oid(oid) {
        // PACEInfo has an INTEGER version; PACEDomainParameterInfo an AlgorithmIdentifier.
        let next = r.read_tlv()?;
        if next.tag == TAG_INTEGER {
            let version = integer(&next)?;
            let parameter_id = optional_integer(&mut r)?;
            SecurityInfo::Pace(PaceInfo {
                protocol,
                version,
                parameter_id,
            })
        } else if next.tag == TAG_SEQUENCE {
            SecurityInfo::PaceDomainParameter(PaceDomainParameterInfo {
                protocol,
                domain_parameter: crate::tlv::encode_to_vec(next.tag, next.value),
                parameter_id: optional_integer(&mut r)?,
            })
        } else {
            return Err(EmrtdError::malformed("PACEInfo", "unexpected element"));
        }
    } else if let Some([agreement, cipher]) = bsi_arcs(oid, ARC_CA) {
        let (Some(agreement), Some(cipher)) =
            (agreement_from_arc(agreement), cipher_from_arc(cipher))
        else {
            return Ok(None);
        };
        let version = integer(&r.expect_tlv(TAG_INTEGER)?)?;
        SecurityInfo::ChipAuthentication(ChipAuthenticationInfo {
            agreement,
            cipher,
            version,
            key_id: optional_integer(&mut r)?,
        })
    } else if let Some(agreement) = pk_arc(oid) {
        let key = r.expect_tlv(TAG_SEQUENCE)?;
        SecurityInfo::ChipAuthenticationPublicKey(ChipAuthenticationPublicKeyInfo {
            agreement,
            public_key: crate::tlv::encode_to_vec(key.tag, key.value),
            key_id: optional_integer(&mut r)?,
        })
    } else if oid == BSI_TA {
        let version = integer(&r.expect_tlv(TAG_INTEGER)?)?;
        // TerminalAuthenticationInfo may carry an optional file ID; not needed.
        let _ = r.rest();
        SecurityInfo::TerminalAuthentication { version }
    } else if oid == AA_PROTOCOL {
        let version = integer(&r.expect_tlv(TAG_INTEGER)?)?;
        let alg = r.expect_tlv(TAG_OID)?;
        SecurityInfo::ActiveAuthentication(ActiveAuthenticationInfo {
            version,
            signature_algorithm: alg.value.to_vec(),
        })
    } else {
        return Ok(None);
    };
    r.expect_empty("SecurityInfo")?;
    Ok(Some(info))
}

/// `id-TA` 0.4.0.127.0.7.2.2.2.
const BSI_TA: [u8; 8] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, ARC_TA];

fn agreement_from_arc(arc: u8) -> Option<KeyAgreement> {
    match arc {
        1 => Some(KeyAgreement::Dh),
        2 => Some(KeyAgreement::Ecdh),
        _ => None,
    }
}

/// `id-PK-DH` / `id-PK-ECDH`: `bsi-de 2 2 1 {1,2}`.
fn pk_arc(oid: &[u8]) -> Option<KeyAgreement> {
    match oid.strip_prefix(&BSI_PROTOCOLS[..])? {
        [ARC_PK, a] => agreement_from_arc(*a),
        _ => None,
    }
}

fn optional_integer(r: &mut Reader<'_>) -> Result<Option<u32>, EmrtdError> {
    if r.is_empty() {
        return Ok(None);
    }
    let t = r.expect_tlv(TAG_INTEGER)?;
    Ok(Some(integer(&t)?))
}

/// A small non-negative DER INTEGER (versions, parameter and key IDs).
fn integer(t: &Tlv<'_>) -> Result<u32, EmrtdError> {
    let v = t.value;
    let bad = || EmrtdError::malformed("SecurityInfo", "INTEGER out of range");
    match v.first() {
        None => Err(bad()),
        Some(b) if b & 0x80 != 0 => Err(bad()),
        _ => {
            let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
            if v.len() > 4 {
                return Err(bad());
            }
            Ok(v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// The CIE's EF.CardAccess (cie.md §4; OpenSC #2486 npa-tool log).
    const CIE: &str = "31 14 30 12 06 0A 04 00 7F 00 07 02 02 04 01 01 02 01 02 02 01 02";

    #[test]
    fn cie_card_access() {
        let infos = SecurityInfos::parse(&h(CIE)).unwrap();
        let pace = infos.choose_pace().unwrap();
        assert_eq!(
            pace.protocol,
            PaceProtocol {
                mapping: Mapping::Generic,
                agreement: KeyAgreement::Dh,
                cipher: KeyAlgorithm::Tdes
            }
        );
        assert_eq!(pace.version, 2);
        assert_eq!(pace.parameter_id, Some(2));
        assert_eq!(pace.protocol.oid(), h("04007F00070202040101"));
        assert!(!infos.parameters_ambiguous(pace.protocol));
    }

    #[test]
    fn icao_g1_card_access() {
        let infos =
            SecurityInfos::parse(&h("31143012060A04007F0007020204020202010202010D")).unwrap();
        let pace = infos.choose_pace().unwrap();
        assert_eq!(pace.protocol.agreement, KeyAgreement::Ecdh);
        assert_eq!(pace.protocol.cipher, KeyAlgorithm::Aes128);
        assert_eq!(pace.parameter_id, Some(13));
    }

    fn pace_info(mapping: u8, cipher: u8, param: u8) -> String {
        format!("3012 060A 04007F00070202 04{mapping:02X}{cipher:02X} 020102 0201{param:02X}")
    }

    #[test]
    fn preference_ecdh_then_strongest_cipher() {
        // DH AES-256, ECDH 3DES, ECDH AES-128, ECDH IM AES-256 (IM not supported), unknown.
        let body = [
            pace_info(1, 4, 2),
            pace_info(2, 1, 13),
            pace_info(2, 2, 12),
            pace_info(4, 4, 13),
            "3005 0603 2A0304".to_string(),
        ]
        .concat();
        let bytes = h(&body);
        let mut all = vec![0x31, bytes.len() as u8];
        all.extend_from_slice(&bytes);
        let infos = SecurityInfos::parse(&all).unwrap();
        assert_eq!(infos.unknown, 1);
        assert_eq!(infos.pace_infos().count(), 4);
        let pace = infos.choose_pace().unwrap();
        assert_eq!(pace.protocol.agreement, KeyAgreement::Ecdh);
        assert_eq!(pace.protocol.cipher, KeyAlgorithm::Aes128);
        assert_eq!(pace.parameter_id, Some(12));
    }

    #[test]
    fn unsupported_curve_is_not_chosen() {
        // ECDH-GM AES-128 on brainpoolP320r1 (14) only: nothing usable.
        let body = h(&pace_info(2, 2, 14));
        let mut all = vec![0x31, body.len() as u8];
        all.extend_from_slice(&body);
        let infos = SecurityInfos::parse(&all).unwrap();
        assert!(infos.choose_pace().is_none());
    }

    #[test]
    fn dg14_style_infos() {
        // ChipAuthenticationInfo (ECDH AES-128 v1 keyId 1), PK info with a tiny SPKI,
        // ActiveAuthenticationInfo (ecdsa-with-SHA256), TA info v1.
        let body = h("300F 060A 04007F00070202030202 020101 \
                      3013 0609 04007F000702020102 3003060100 020101 \
                      3015 0606 678108010105 020101 0608 2A8648CE3D040302 \
                      300D 0608 04007F0007020202 020101");
        let mut all = vec![0x31, body.len() as u8];
        all.extend_from_slice(&body);
        let infos = SecurityInfos::parse(&all);
        let infos = match infos {
            Ok(i) => i,
            Err(e) => panic!("{e:?}"),
        };
        assert!(matches!(
            infos.infos[0],
            SecurityInfo::ChipAuthentication(ChipAuthenticationInfo {
                agreement: KeyAgreement::Ecdh,
                cipher: KeyAlgorithm::Aes128,
                version: 1,
                key_id: None
            })
        ));
        assert!(matches!(
            &infos.infos[1],
            SecurityInfo::ChipAuthenticationPublicKey(ChipAuthenticationPublicKeyInfo {
                agreement: KeyAgreement::Ecdh,
                key_id: Some(1),
                ..
            })
        ));
        assert!(matches!(&infos.infos[2], SecurityInfo::ActiveAuthentication(a) if a.version == 1));
        assert!(matches!(
            infos.infos[3],
            SecurityInfo::TerminalAuthentication { version: 1 }
        ));
    }

    #[test]
    fn padding_after_the_set_is_accepted() {
        let mut bytes = h(CIE);
        bytes.extend_from_slice(&[0, 0, 0xFF]);
        assert!(SecurityInfos::parse(&bytes).is_ok());
        bytes.push(0x42);
        assert!(SecurityInfos::parse(&bytes).is_err());
    }

    #[test]
    fn malformed_and_truncated_inputs_are_typed_errors() {
        let full = h(CIE);
        for cut in 0..full.len() {
            let err = SecurityInfos::parse(&full[..cut]).unwrap_err();
            assert!(
                matches!(err, EmrtdError::Apdu(_) | EmrtdError::Malformed { .. }),
                "cut {cut}: {err:?}"
            );
        }
        for bad in [
            "30 00",                                                       // not a SET
            "31 02 02 00",                                                 // element not a SEQUENCE
            "31 04 30 02 02 00",                                           // no OID first
            "31 10 30 0E 06 0A 04007F00070202040101 02 00",                // empty INTEGER
            "31 14 30 12 06 0A 04007F00070202040101 02 01 02 02 01 FF",    // negative id
            "31 15 30 13 06 0A 04007F00070202040101 02 01 02 02 01 02 05", // trailing byte
            "31 80 30 00 00 00",                                           // indefinite length
        ] {
            assert!(SecurityInfos::parse(&h(bad)).is_err(), "{bad}");
        }
    }
}
