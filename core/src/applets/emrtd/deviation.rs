//! ICAO deviation lists (9303-12 §10): a State's signed statement that some of its
//! documents deviate from the specification in a known way, e.g. the 346 275 CIE 3.0 of
//! 2017-10 … 2018-02 whose DG12 does not hash to the value in their EF.SOD (emrtd.md §6,
//! `IT_CIE_DeviationList`). A verifier may then accept that one defect for exactly those
//! documents.
//!
//! ```text
//! DeviationList ::= SEQUENCE { version INTEGER (0), digestAlgorithm AlgorithmIdentifier
//!                              OPTIONAL, deviations SET OF Deviation }
//! Deviation ::= SEQUENCE { documents DeviationDocuments, descriptions SET OF
//!                          DeviationDescription }
//! DeviationDescription ::= SEQUENCE { description PrintableString OPTIONAL,
//!     deviationType OBJECT IDENTIFIER, parameters [0] ANY OPTIONAL, nationalUse [1] ANY
//!     OPTIONAL }
//! DeviationDocuments ::= SEQUENCE { documentType [0] PrintableString OPTIONAL,
//!     dscIdentifier DocumentSignerIdentifier OPTIONAL ([1] | [2] | [3]),
//!     issuingDate [4] IssuancePeriod OPTIONAL, documentNumbers [5] SET OF PrintableString
//!     OPTIONAL }
//! ```
//!
//! The module is `IMPLICIT TAGS`; `parameters` is an `ANY`, so its `[0]` is explicit. The
//! list travels as CMS SignedData of content type `id-icao-DeviationList`
//! (2.23.136.1.1.7): [`verify`] checks the signature and that the signer is, or was issued
//! by, a trusted CSCA, then parses the content with [`parse_content`].

use der::asn1::ObjectIdentifier;

use super::passive::{PaError, SignedObject, TrustStore, verify_signed_object};
use crate::tlv::{Reader, Tag, Tlv};

/// id-icao-DeviationList.
pub const OID_DEVIATION_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.7");
/// id-Deviation-LDS-DGHashWrong: `parameters` is the data group number.
pub const OID_DG_HASH_WRONG: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.7.2.2");
/// id-Deviation-LDS-DGMalformed: `parameters` is the data group number.
pub const OID_DG_MALFORMED: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.7.2.1");

/// Entries this parser keeps at most (the real Italian list has one deviation listing
/// many numbers; a hostile list must not make us allocate without bound).
const MAX_ENTRIES: usize = 2_000_000;

/// Why a deviation list was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviationError {
    /// Not a deviation list, or not well formed.
    #[error("deviation list: {0}")]
    Malformed(String),
    /// Its signature does not verify or its signer does not chain to a trusted CSCA.
    #[error("deviation list not trusted: {0}")]
    Untrusted(PaError),
}

impl DeviationError {
    /// The message in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::Malformed(r) => format!("lista delle deviazioni non valida: {r}"),
            Self::Untrusted(e) => format!("lista delle deviazioni non attendibile: {e}"),
        }
    }
}

fn malformed(reason: impl Into<String>) -> DeviationError {
    DeviationError::Malformed(reason.into())
}

/// One described deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviationDescription {
    /// Free text, when given.
    pub description: Option<String>,
    /// What deviates (e.g. [`OID_DG_HASH_WRONG`]).
    pub kind: ObjectIdentifier,
    /// For the LDS deviations: the data group concerned (`parameters` INTEGER).
    pub data_group: Option<u8>,
}

/// Documents that share deviations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    /// Document type (2 characters), when given.
    pub document_type: Option<String>,
    /// Whether the entry names its documents by Document Signer (not by number).
    pub by_signer: bool,
    /// Issuing period `(first, last)` as GeneralizedTime text, when given.
    pub issuing_period: Option<(String, String)>,
    /// The document numbers listed.
    pub document_numbers: Vec<String>,
    /// What deviates.
    pub descriptions: Vec<DeviationDescription>,
}

/// A parsed deviation list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviationList {
    /// Its entries.
    pub deviations: Vec<Deviation>,
}

/// A deviation that matched a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedDeviation {
    /// The deviation type.
    pub kind: ObjectIdentifier,
    /// The data group concerned.
    pub data_group: Option<u8>,
    /// The list's description text.
    pub description: Option<String>,
}

impl DeviationList {
    /// The entry saying that data group `dg` of document `document_number` does not hash
    /// to its SOD value. Only entries that list the document by number count: an entry by
    /// Document Signer or issuing period alone would cover documents of other people.
    pub fn dg_hash_wrong(&self, document_number: &str, dg: u8) -> Option<MatchedDeviation> {
        let number = document_number.trim_end_matches('<');
        if number.is_empty() {
            return None;
        }
        self.deviations
            .iter()
            .filter(|d| d.document_numbers.iter().any(|n| n == number))
            .flat_map(|d| d.descriptions.iter())
            .find(|desc| desc.kind == OID_DG_HASH_WRONG && desc.data_group == Some(dg))
            .map(|desc| MatchedDeviation {
                kind: desc.kind,
                data_group: desc.data_group,
                description: desc.description.clone(),
            })
    }

    /// Entries plus listed document numbers, for logs.
    pub fn document_count(&self) -> usize {
        self.deviations
            .iter()
            .map(|d| d.document_numbers.len())
            .sum()
    }
}

/// A deviation list whose signature and signer chain verified.
#[derive(Debug, Clone)]
pub struct VerifiedDeviationList {
    /// The list.
    pub list: DeviationList,
    /// The signer's subject.
    pub signer: Option<String>,
    /// The CSCA the signer chains to.
    pub csca: String,
}

/// Check a signed deviation list (CMS `ContentInfo`, DER) against `trust` and parse it.
pub fn verify(bytes: &[u8], trust: &TrustStore) -> Result<VerifiedDeviationList, DeviationError> {
    let SignedObject {
        content,
        signer,
        signature,
        chain,
    } = verify_signed_object(bytes, OID_DEVIATION_LIST, trust)
        .map_err(|e| malformed(e.to_string()))?;
    signature.map_err(DeviationError::Untrusted)?;
    let csca = chain.map_err(DeviationError::Untrusted)?;
    Ok(VerifiedDeviationList {
        list: parse_content(&content)?,
        signer,
        csca,
    })
}

fn tlv_err(e: crate::tlv::DecodeError) -> DeviationError {
    malformed(e.to_string())
}

fn printable(value: &[u8], what: &str) -> Result<String, DeviationError> {
    if value.len() > 256 || !value.iter().all(|b| (0x20..0x7F).contains(b)) {
        return Err(malformed(format!("{what} is not printable text")));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

fn small_int(value: &[u8]) -> Option<u8> {
    match value {
        [v] if *v < 0x80 => Some(*v),
        [0, v] if *v >= 0x80 => Some(*v),
        _ => None,
    }
}

/// Parse the `DeviationList` (the signed content, DER).
pub fn parse_content(content: &[u8]) -> Result<DeviationList, DeviationError> {
    let mut outer = Reader::new(content);
    let list = outer.expect_tlv(Tag::new(0x30)).map_err(tlv_err)?;
    if !outer.is_empty() {
        return Err(malformed("bytes after the list"));
    }
    let mut r = Reader::new(list.value);
    let version = r.expect_tlv(Tag::new(0x02)).map_err(tlv_err)?;
    if version.value != [0] {
        return Err(malformed("version is not 0"));
    }
    let mut next = r.read_tlv().map_err(tlv_err)?;
    if next.tag == Tag::new(0x30) {
        // digestAlgorithm: not needed (the numbers are listed in clear).
        next = r.read_tlv().map_err(tlv_err)?;
    }
    if next.tag != Tag::new(0x31) {
        return Err(malformed("no SET OF Deviation"));
    }
    if !r.is_empty() {
        return Err(malformed("bytes after the deviations"));
    }
    let mut deviations = Vec::new();
    let mut entries = 0usize;
    for d in next.children() {
        let d = d.map_err(tlv_err)?;
        let deviation = parse_deviation(&d)?;
        entries = entries.saturating_add(deviation.document_numbers.len() + 1);
        if entries > MAX_ENTRIES {
            return Err(malformed("too many entries"));
        }
        deviations.push(deviation);
    }
    Ok(DeviationList { deviations })
}

fn parse_deviation(d: &Tlv<'_>) -> Result<Deviation, DeviationError> {
    if d.tag != Tag::new(0x30) {
        return Err(malformed("a Deviation is not a SEQUENCE"));
    }
    let mut r = Reader::new(d.value);
    let docs = r.expect_tlv(Tag::new(0x30)).map_err(tlv_err)?;
    let descs = r.expect_tlv(Tag::new(0x31)).map_err(tlv_err)?;
    if !r.is_empty() {
        return Err(malformed("bytes after a Deviation"));
    }
    let mut out = Deviation {
        document_type: None,
        by_signer: false,
        issuing_period: None,
        document_numbers: Vec::new(),
        descriptions: Vec::new(),
    };
    for field in docs.children() {
        let field = field.map_err(tlv_err)?;
        match field.tag {
            t if t == Tag::new(0x80) => {
                out.document_type = Some(printable(field.value, "document type")?);
            }
            // dscIdentifier: [1] IssuerAndSerialNumber, [2] SKI, [3] digest.
            t if t == Tag::new(0xA1) || t == Tag::new(0x82) || t == Tag::new(0x83) => {
                out.by_signer = true;
            }
            t if t == Tag::new(0xA4) => {
                let mut p = Reader::new(field.value);
                let first = p.expect_tlv(Tag::new(0x18)).map_err(tlv_err)?;
                let last = p.expect_tlv(Tag::new(0x18)).map_err(tlv_err)?;
                out.issuing_period = Some((
                    printable(first.value, "first issuing date")?,
                    printable(last.value, "last issuing date")?,
                ));
            }
            t if t == Tag::new(0xA5) => {
                for n in field.children() {
                    let n = n.map_err(tlv_err)?;
                    if n.tag != Tag::new(0x13) {
                        return Err(malformed("a document number is not a PrintableString"));
                    }
                    out.document_numbers
                        .push(printable(n.value, "document number")?);
                }
            }
            other => return Err(malformed(format!("unexpected field {other} in documents"))),
        }
    }
    for desc in descs.children() {
        let desc = desc.map_err(tlv_err)?;
        if desc.tag != Tag::new(0x30) {
            return Err(malformed("a description is not a SEQUENCE"));
        }
        let mut dr = Reader::new(desc.value);
        let mut item = dr.read_tlv().map_err(tlv_err)?;
        let description = if item.tag == Tag::new(0x13) {
            let text = printable(item.value, "description")?;
            item = dr.read_tlv().map_err(tlv_err)?;
            Some(text)
        } else {
            None
        };
        if item.tag != Tag::new(0x06) {
            return Err(malformed("no deviation type"));
        }
        let kind = ObjectIdentifier::from_bytes(item.value)
            .map_err(|e| malformed(format!("deviation type: {e}")))?;
        let mut data_group = None;
        while !dr.is_empty() {
            let extra = dr.read_tlv().map_err(tlv_err)?;
            if extra.tag == Tag::new(0xA0) {
                // parameters [0] EXPLICIT ANY: an INTEGER for the LDS deviations.
                let inner = Tlv::from_bytes(extra.value).map_err(tlv_err)?;
                if inner.tag == Tag::new(0x02) {
                    data_group = small_int(inner.value);
                }
            }
        }
        out.descriptions.push(DeviationDescription {
            description,
            kind,
            data_group,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::encode_to_vec as tlv;

    fn t(tag: u8, v: &[u8]) -> Vec<u8> {
        tlv(Tag::new(u32::from(tag)), v)
    }

    fn list(numbers: &[&str], dg: u8) -> Vec<u8> {
        let nums: Vec<u8> = numbers.iter().flat_map(|n| t(0x13, n.as_bytes())).collect();
        let docs = t(0x30, &[t(0x80, b"C<"), t(0xA5, &nums)].concat());
        let oid = OID_DG_HASH_WRONG.as_bytes().to_vec();
        let desc = t(
            0x30,
            &[
                t(0x13, b"DG12 hash wrong"),
                t(0x06, &oid),
                t(0xA0, &t(0x02, &[dg])),
            ]
            .concat(),
        );
        let dev = t(0x30, &[docs, t(0x31, &desc)].concat());
        t(0x30, &[t(0x02, &[0]), t(0x31, &dev)].concat())
    }

    #[test]
    fn finds_a_listed_document_and_only_it() {
        let l = parse_content(&list(&["CA00000AA", "CA11111BB"], 12)).unwrap();
        assert_eq!(l.document_count(), 2);
        let m = l.dg_hash_wrong("CA00000AA", 12).unwrap();
        assert_eq!(m.data_group, Some(12));
        assert_eq!(m.description.as_deref(), Some("DG12 hash wrong"));
        assert!(l.dg_hash_wrong("CA22222CC", 12).is_none());
        assert!(l.dg_hash_wrong("CA00000AA", 11).is_none());
        assert!(l.dg_hash_wrong("", 12).is_none());
    }

    #[test]
    fn garbage_is_typed() {
        assert!(parse_content(&[]).is_err());
        assert!(parse_content(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        let mut good = list(&["X"], 12);
        good.push(0);
        assert!(parse_content(&good).is_err());
        assert!(verify(&[0x30, 0x00], &TrustStore::new()).is_err());
    }
}
