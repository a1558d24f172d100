//! EF.SOD, the document security object (9303-10 §4.6.2, 9303-12): a CMS SignedData whose
//! content is the `LDSSecurityObject`, the hash of every data group, signed by the Document
//! Signer. Parsed with RustCrypto `cms`; the bytes the signature covers (the signed
//! attributes) are taken from the file as read, not re-encoded, so a chip whose encoder
//! sorted differently still verifies.

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::{LdsError, outer};
use crate::tlv::{Reader, Tag, Tlv};

const FILE: &str = "EF.SOD";

/// id-signedData.
pub const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-icao-mrtd-security-ldsSecurityObject.
pub const OID_LDS_SECURITY_OBJECT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.136.1.1.1");

#[derive(Sequence)]
struct DataGroupHash {
    data_group_number: u8,
    data_group_hash_value: OctetString,
}

#[derive(Sequence)]
struct LdsSecurityObject {
    _version: u8,
    hash_algorithm: AlgorithmIdentifierOwned,
    data_group_hash_values: Vec<DataGroupHash>,
    /// ldsVersionInfo (v1 only); not needed.
    #[asn1(optional = "true")]
    _lds_version_info: Option<der::Any>,
}

/// The parsed EF.SOD.
#[derive(Debug, Clone)]
pub struct SecurityObject {
    /// The SignedData.
    pub signed_data: SignedData,
    /// The encapsulated content type (must be the LDS security object).
    pub content_type: ObjectIdentifier,
    /// The encapsulated content: the DER of the LDSSecurityObject, whose hash the signed
    /// attributes carry.
    pub content: Vec<u8>,
    /// The hash algorithm of the data-group hashes.
    pub hash_algorithm: ObjectIdentifier,
    /// `(data group number, hash)` in the order listed.
    pub hashes: Vec<(u8, Vec<u8>)>,
    /// The first signer's signed attributes as signed: DER with the `SET OF` tag (`31`),
    /// taken from the file's own bytes. `None` when the signer signed the content directly.
    pub signed_attrs_der: Option<Vec<u8>>,
}

impl SecurityObject {
    /// The hash the SOD records for data group `n`.
    pub fn hash_of(&self, n: u8) -> Option<&[u8]> {
        self.hashes
            .iter()
            .find(|(d, _)| *d == n)
            .map(|(_, h)| h.as_slice())
    }
}

fn invalid(reason: impl Into<String>) -> LdsError {
    LdsError::invalid(FILE, reason)
}

/// The raw `[0] IMPLICIT SignedAttributes` of the first SignerInfo, re-tagged as `SET OF`.
pub(crate) fn raw_signed_attrs(content_info: &[u8]) -> Result<Option<Vec<u8>>, LdsError> {
    let t = LdsError::tlv(FILE);
    let ci = Tlv::from_bytes(content_info).map_err(&t)?;
    let sd_wrapper = ci.require(Tag::new(0xA0), "SignedData").map_err(&t)?;
    let sd = Tlv::from_bytes(sd_wrapper.value).map_err(&t)?;
    // signerInfos is the last SET in SignedData.
    let mut signer_infos = None;
    for child in sd.children() {
        let child = child.map_err(&t)?;
        if child.tag == Tag::new(0x31) {
            signer_infos = Some(child);
        }
    }
    let signer_infos = signer_infos.ok_or_else(|| invalid("no signerInfos"))?;
    let first = Reader::new(signer_infos.value).read_tlv().map_err(&t)?;
    match first.find(Tag::new(0xA0)).map_err(&t)? {
        Some(attrs) => Ok(Some(crate::tlv::encode_to_vec(Tag::new(0x31), attrs.value))),
        None => Ok(None),
    }
}

/// Parse EF.SOD (`77 { ContentInfo }`) or a bare ContentInfo (the CIE's IAS SOD shares the
/// shape).
pub fn parse(bytes: &[u8]) -> Result<SecurityObject, LdsError> {
    let content_info_der = match bytes.first() {
        Some(0x77) => outer(bytes, 0x77, FILE)?.value,
        _ => bytes,
    };
    let ci = ContentInfo::from_der(content_info_der)
        .map_err(|e| invalid(format!("CMS ContentInfo: {e}")))?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(invalid(format!(
            "content type {} is not signedData",
            ci.content_type
        )));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| invalid(format!("CMS SignedData: {e}")))?;
    let encap = &sd.encap_content_info;
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or_else(|| invalid("no encapsulated content"))?;
    let content = OctetString::from_der(&econtent.to_der().map_err(|e| invalid(e.to_string()))?)
        .map_err(|e| invalid(format!("encapsulated content: {e}")))?
        .into_bytes();
    let lds = LdsSecurityObject::from_der(&content)
        .map_err(|e| invalid(format!("LDSSecurityObject: {e}")))?;
    if sd.signer_infos.0.is_empty() {
        return Err(invalid("no signer"));
    }
    let signed_attrs_der = raw_signed_attrs(content_info_der)?;
    Ok(SecurityObject {
        content_type: encap.econtent_type,
        hash_algorithm: lds.hash_algorithm.oid,
        hashes: lds
            .data_group_hash_values
            .into_iter()
            .map(|h| {
                (
                    h.data_group_number,
                    h.data_group_hash_value.into_bytes().into_vec(),
                )
            })
            .collect(),
        content: content.into_vec(),
        signed_attrs_der,
        signed_data: sd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_typed() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x77, 0x02, 0x30, 0x00]).is_err());
        assert!(parse(&[0x30, 0x03, 0x06, 0x01, 0x00]).is_err());
    }
}
