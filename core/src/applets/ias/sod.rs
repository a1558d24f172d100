//! EF.SOD of the IAS side: a CMS SignedData whose content is an LDS-style security object
//! mapping file tags (`A1` NIS, `A2` serial, `A3` certificate, `A4`/`A5` public keys,
//! `1B` EF.DH) to hashes (cie.md §2.2). This module extracts the hash table and the digest
//! algorithm; signature and certificate-chain checks come with passive authentication.

use super::IasError;
use crate::tlv::{Reader, Tag, Tlv};

/// OID 1.2.840.113549.1.7.2 (signedData), DER content bytes.
const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];

/// The parsed security object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sod {
    /// The DER of the whole file object (tag `77`).
    pub der: Vec<u8>,
    /// DER content bytes of the hash algorithm OID (e.g. SHA-512 `60 86 48 01 65 03 04 02 03`).
    pub digest_algorithm: Vec<u8>,
    /// Entries `(file tag, hash)` in the order the card lists them.
    pub hashes: Vec<(u8, Vec<u8>)>,
}

impl Sod {
    /// Parse `77 { ContentInfo { signedData, [0] SignedData { …, encapContentInfo { …,
    /// [0] OCTET STRING { SecurityObject } } … } } }`.
    pub fn parse(der: Vec<u8>) -> Result<Self, IasError> {
        let (digest_algorithm, hashes) =
            parse_inner(&der).map_err(|e| IasError::malformed("SOD", e))?;
        Ok(Self {
            der,
            digest_algorithm,
            hashes,
        })
    }

    /// The hash recorded for file tag `tag`.
    pub fn hash_of(&self, tag: u8) -> Option<&[u8]> {
        self.hashes
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, h)| h.as_slice())
    }
}

type Parsed = (Vec<u8>, Vec<(u8, Vec<u8>)>);

fn parse_inner(der: &[u8]) -> Result<Parsed, String> {
    let wrapper = Tlv::from_bytes(der).map_err(|e| e.to_string())?;
    if wrapper.tag != Tag::new(0x77) {
        return Err(format!("outer tag {} is not 77", wrapper.tag));
    }
    let mut r = Reader::new(wrapper.value);
    let content_info = r.expect_tlv(Tag::new(0x30)).map_err(|e| e.to_string())?;
    let mut ci = Reader::new(content_info.value);
    let oid = ci.expect_tlv(Tag::new(0x06)).map_err(|e| e.to_string())?;
    if oid.value != OID_SIGNED_DATA {
        return Err("content type is not signedData".into());
    }
    let explicit = ci.expect_tlv(Tag::new(0xA0)).map_err(|e| e.to_string())?;
    let signed_data = Tlv::from_bytes(explicit.value).map_err(|e| e.to_string())?;
    let mut sd = Reader::new(signed_data.value);
    sd.expect_tlv(Tag::new(0x02)).map_err(|e| e.to_string())?; // version
    sd.expect_tlv(Tag::new(0x31)).map_err(|e| e.to_string())?; // digestAlgorithms
    let encap = sd.expect_tlv(Tag::new(0x30)).map_err(|e| e.to_string())?;
    let mut ec = Reader::new(encap.value);
    ec.expect_tlv(Tag::new(0x06)).map_err(|e| e.to_string())?; // eContentType
    let econtent = ec.expect_tlv(Tag::new(0xA0)).map_err(|e| e.to_string())?;
    let octets = Tlv::from_bytes(econtent.value).map_err(|e| e.to_string())?;
    if octets.tag != Tag::new(0x04) {
        return Err("eContent is not an OCTET STRING".into());
    }
    // SecurityObject ::= SEQUENCE { version INTEGER, hashAlgorithm AlgorithmIdentifier,
    //                               hashValues SEQUENCE OF SEQUENCE { INTEGER, OCTET STRING } }
    let so = Tlv::from_bytes(octets.value).map_err(|e| e.to_string())?;
    let mut s = Reader::new(so.value);
    s.expect_tlv(Tag::new(0x02)).map_err(|e| e.to_string())?;
    let alg = s.expect_tlv(Tag::new(0x30)).map_err(|e| e.to_string())?;
    let alg_oid = Reader::new(alg.value)
        .expect_tlv(Tag::new(0x06))
        .map_err(|e| e.to_string())?
        .value
        .to_vec();
    let values = s.expect_tlv(Tag::new(0x30)).map_err(|e| e.to_string())?;
    let mut hashes = Vec::new();
    for entry in values.children() {
        let entry = entry.map_err(|e| e.to_string())?;
        let mut er = Reader::new(entry.value);
        let num = er.expect_tlv(Tag::new(0x02)).map_err(|e| e.to_string())?;
        let hash = er.expect_tlv(Tag::new(0x04)).map_err(|e| e.to_string())?;
        let tag = match num.value {
            [t] => *t,
            // A positive INTEGER above 7F carries a 00 sign byte (A1..A5).
            [0, t] => *t,
            _ => return Err("file tag is not one byte".into()),
        };
        hashes.push((tag, hash.value.to_vec()));
    }
    Ok((alg_oid, hashes))
}
