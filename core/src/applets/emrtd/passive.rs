//! Passive authentication (ICAO 9303-11 §5.1, 9303-12): is the data on the chip what the
//! issuing State signed?
//!
//! 1. The SOD's signer (the Document Signer, DS) signed the signed attributes, whose
//!    message digest is the hash of the LDSSecurityObject;
//! 2. the DS certificate was issued by a Country Signing CA (CSCA) in the caller's trust
//!    store;
//! 3. every data group read hashes to the value in the SOD.
//!
//! Each step is reported separately, so the UI can say exactly what failed ("the photo was
//! altered" is not "this State is not in the trust list").

use cms::cert::CertificateChoices;
use cms::signed_data::SignerIdentifier;
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use subtle::ConstantTimeEq;
use x509_cert::Certificate;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::lds::File;
use super::lds::sod::{OID_LDS_SECURITY_OBJECT, SecurityObject};

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaError {
    /// The signature does not verify.
    #[error("signature invalid: {0}")]
    BadSignature(String),
    /// An algorithm we do not implement.
    #[error("unsupported algorithm {0}")]
    Unsupported(String),
    /// No usable certificate.
    #[error("certificate: {0}")]
    Certificate(String),
    /// No CSCA in the trust store issued the DS certificate.
    #[error("no trusted CSCA issued the document signer certificate ({issuer})")]
    UntrustedIssuer {
        /// The DS certificate's issuer.
        issuer: String,
    },
    /// The signed attributes are inconsistent with the content.
    #[error("signed attributes: {0}")]
    Attributes(String),
}

/// The outcome for one data group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum HashCheck {
    /// The hash matches the SOD.
    Match,
    /// The data group differs from what was signed.
    Mismatch,
    /// The SOD has no hash for it.
    NotInSod,
}

/// The full passive-authentication report.
#[derive(Debug, Clone)]
pub struct PassiveReport {
    /// The DS certificate's subject.
    pub signer: Option<String>,
    /// 1: the SOD signature.
    pub signature: Result<(), PaError>,
    /// 2: the chain to a CSCA; `Ok(csca subject)`.
    pub chain: Result<String, PaError>,
    /// 3: each data group read.
    pub data_groups: Vec<(File, HashCheck)>,
}

impl PassiveReport {
    /// Everything verified.
    pub fn is_valid(&self) -> bool {
        self.signature.is_ok()
            && self.chain.is_ok()
            && self.data_groups.iter().all(|(_, c)| *c == HashCheck::Match)
    }
}

/// What loading a master list did.
#[derive(Debug, Clone)]
pub struct MasterListInfo {
    /// CSCA certificates added.
    pub added: usize,
    /// Entries that were not readable certificates.
    pub skipped: usize,
    /// The list signer's subject.
    pub signer: Option<String>,
    /// The list's signature.
    pub signature: Result<(), PaError>,
    /// The signer is, or was issued by, a CSCA in the list.
    pub signer_chains_to_listed_csca: bool,
}

/// The CSCA certificates the caller trusts (test CSCA, the Italian CSCA, a master list).
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    cscas: Vec<Certificate>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a CSCA certificate (DER).
    pub fn add_der(&mut self, der: &[u8]) -> Result<(), PaError> {
        let c = Certificate::from_der(der).map_err(|e| PaError::Certificate(e.to_string()))?;
        self.cscas.push(c);
        Ok(())
    }

    /// Add every CSCA of an ICAO master list (`.ml`: the ICAO PKD's, Germany's
    /// `GermanMasterList`, Italy's `IT_MasterListCSCA` once unzipped): a CMS SignedData of
    /// type 2.23.136.1.1.2 holding `CscaMasterList { version, certList SET OF Certificate }`.
    /// The list's own signature is checked and reported, not required: trust in a master
    /// list comes from where it was downloaded, and some States (DE, HU) sign it directly
    /// with the CSCA rather than a list signer (emrtd.md §4).
    pub fn add_master_list(&mut self, bytes: &[u8]) -> Result<MasterListInfo, PaError> {
        let bad = |e: &dyn std::fmt::Display| PaError::Certificate(format!("master list: {e}"));
        let (sd, content) = open_signed_data(bytes, oid::CSCA_MASTER_LIST, "master list")?;
        let list = crate::tlv::Tlv::from_bytes(&content).map_err(|e| bad(&e))?;
        let set = list
            .children()
            .filter_map(Result::ok)
            .find(|c| c.tag == crate::tlv::Tag::new(0x31))
            .ok_or_else(|| bad(&"no certificate list"))?;
        let mut added = 0;
        let mut skipped = 0;
        let before = self.cscas.len();
        for item in set.children() {
            let item = item.map_err(|e| bad(&e))?;
            let mut der = Vec::new();
            crate::tlv::encode(item.tag, item.value, &mut der);
            match Certificate::from_der(&der) {
                Ok(c) => {
                    self.cscas.push(c);
                    added += 1;
                }
                // One odd certificate (explicit EC parameters, a State's encoding quirk)
                // must not cost the other States'.
                Err(_) => skipped += 1,
            }
        }
        let raw = super::lds::sod::raw_signed_attrs(bytes).map_err(|e| bad(&e))?;
        let signer_cert = signer_certificate_of(&sd);
        let signature = signer_cert.as_ref().map_err(Clone::clone).and_then(|c| {
            check_signed_data(&sd, &content, raw.as_deref(), oid::CSCA_MASTER_LIST, c)
        });
        // Does the list signer chain to a CSCA in the list itself (or is it one)?
        let listed = TrustStore {
            cscas: self.cscas[before..].to_vec(),
        };
        let signer_listed = signer_cert
            .as_ref()
            .is_ok_and(|c| listed.cscas.iter().any(|l| l == c) || check_chain(c, &listed).is_ok());
        Ok(MasterListInfo {
            added,
            skipped,
            signer: signer_cert
                .ok()
                .map(|c| c.tbs_certificate().subject().to_string()),
            signature,
            signer_chains_to_listed_csca: signer_listed,
        })
    }

    /// Add a CSCA certificate or, when the DER is not one, an ICAO master list (`Some` with
    /// what the list held). Trust files come as either.
    pub fn add_certificate_or_master_list(
        &mut self,
        der: &[u8],
    ) -> Result<Option<MasterListInfo>, PaError> {
        match self.add_der(der) {
            Ok(()) => Ok(None),
            Err(_) => self.add_master_list(der).map(Some),
        }
    }

    /// Number of CSCAs.
    pub fn len(&self) -> usize {
        self.cscas.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.cscas.is_empty()
    }
}

mod oid {
    use der::asn1::ObjectIdentifier as O;
    pub const SHA1: O = O::new_unwrap("1.3.14.3.2.26");
    pub const SHA224: O = O::new_unwrap("2.16.840.1.101.3.4.2.4");
    pub const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: O = O::new_unwrap("2.16.840.1.101.3.4.2.3");
    pub const RSA: O = O::new_unwrap("1.2.840.113549.1.1.1");
    pub const RSA_PSS: O = O::new_unwrap("1.2.840.113549.1.1.10");
    pub const SHA1_RSA: O = O::new_unwrap("1.2.840.113549.1.1.5");
    pub const SHA256_RSA: O = O::new_unwrap("1.2.840.113549.1.1.11");
    pub const SHA384_RSA: O = O::new_unwrap("1.2.840.113549.1.1.12");
    pub const SHA512_RSA: O = O::new_unwrap("1.2.840.113549.1.1.13");
    pub const SHA224_RSA: O = O::new_unwrap("1.2.840.113549.1.1.14");
    pub const ECDSA_SHA1: O = O::new_unwrap("1.2.840.10045.4.1");
    pub const ECDSA_SHA224: O = O::new_unwrap("1.2.840.10045.4.3.1");
    pub const ECDSA_SHA256: O = O::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_SHA384: O = O::new_unwrap("1.2.840.10045.4.3.3");
    pub const ECDSA_SHA512: O = O::new_unwrap("1.2.840.10045.4.3.4");
    pub const EC_PUBLIC_KEY: O = O::new_unwrap("1.2.840.10045.2.1");
    pub const P256: O = O::new_unwrap("1.2.840.10045.3.1.7");
    pub const P384: O = O::new_unwrap("1.3.132.0.34");
    pub const CONTENT_TYPE: O = O::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: O = O::new_unwrap("1.2.840.113549.1.9.4");
    pub const CSCA_MASTER_LIST: O = O::new_unwrap("2.23.136.1.1.2");
}

/// A hash function named by OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1 (old passports).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// From a digest OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Result<Self, PaError> {
        Ok(match *o {
            oid::SHA1 => Self::Sha1,
            oid::SHA224 => Self::Sha224,
            oid::SHA256 => Self::Sha256,
            oid::SHA384 => Self::Sha384,
            oid::SHA512 => Self::Sha512,
            _ => return Err(PaError::Unsupported(format!("digest {o}"))),
        })
    }

    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// PSS with the salt length read from the signature (States use 32 and 64 alike).
fn pss<D: sha2::Digest>() -> rsa::Pss<D> {
    rsa::Pss {
        blinded: false,
        digest: D::new(),
        salt_len: None,
    }
}

fn rsa_verify(
    spki: &SubjectPublicKeyInfoOwned,
    hash: HashAlg,
    use_pss: bool,
    hashed: &[u8],
    sig: &[u8],
) -> Result<(), PaError> {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::{Pkcs1v15Sign, PublicKey};
    let der = spki
        .to_der()
        .map_err(|e| PaError::Certificate(e.to_string()))?;
    let key = PublicKey::from_public_key_der(&der)
        .map_err(|e| PaError::Certificate(format!("RSA key: {e}")))?;
    let bad = |e: rsa::Error| PaError::BadSignature(e.to_string());
    match (use_pss, hash) {
        (false, HashAlg::Sha1) => key
            .verify(Pkcs1v15Sign::new::<sha1::Sha1>(), hashed, sig)
            .map_err(bad),
        (false, HashAlg::Sha224) => key
            .verify(Pkcs1v15Sign::new::<sha2::Sha224>(), hashed, sig)
            .map_err(bad),
        (false, HashAlg::Sha256) => key
            .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), hashed, sig)
            .map_err(bad),
        (false, HashAlg::Sha384) => key
            .verify(Pkcs1v15Sign::new::<sha2::Sha384>(), hashed, sig)
            .map_err(bad),
        (false, HashAlg::Sha512) => key
            .verify(Pkcs1v15Sign::new::<sha2::Sha512>(), hashed, sig)
            .map_err(bad),
        (true, HashAlg::Sha1) => key.verify(pss::<sha1::Sha1>(), hashed, sig).map_err(bad),
        (true, HashAlg::Sha224) => key.verify(pss::<sha2::Sha224>(), hashed, sig).map_err(bad),
        (true, HashAlg::Sha256) => key.verify(pss::<sha2::Sha256>(), hashed, sig).map_err(bad),
        (true, HashAlg::Sha384) => key.verify(pss::<sha2::Sha384>(), hashed, sig).map_err(bad),
        (true, HashAlg::Sha512) => key.verify(pss::<sha2::Sha512>(), hashed, sig).map_err(bad),
    }
}

fn ecdsa_verify(
    spki: &SubjectPublicKeyInfoOwned,
    hashed: &[u8],
    sig: &[u8],
) -> Result<(), PaError> {
    use ecdsa::signature::hazmat::PrehashVerifier;
    let curve: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok())
        .ok_or_else(|| PaError::Unsupported("EC key with explicit or missing parameters".into()))?;
    let point = spki.subject_public_key.raw_bytes();
    let bad = |e: ecdsa::Error| PaError::BadSignature(e.to_string());
    match curve {
        oid::P256 => {
            let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?;
            let s = p256::ecdsa::Signature::from_der(sig).map_err(bad)?;
            k.verify_prehash(hashed, &s).map_err(bad)
        }
        oid::P384 => {
            let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?;
            let s = p384::ecdsa::Signature::from_der(sig).map_err(bad)?;
            k.verify_prehash(hashed, &s).map_err(bad)
        }
        other => Err(PaError::Unsupported(format!("EC curve {other}"))),
    }
}

/// The hash named by a PSS AlgorithmIdentifier's parameters (SHA-1 when absent, RFC 4055).
fn pss_hash(alg: &AlgorithmIdentifierOwned) -> Result<HashAlg, PaError> {
    let Some(params) = alg.parameters.as_ref() else {
        return Ok(HashAlg::Sha1);
    };
    let seq = params
        .to_der()
        .map_err(|e| PaError::Unsupported(e.to_string()))?;
    // RSASSA-PSS-params: [0] hashAlgorithm, [1] maskGen, [2] saltLength, [3] trailer.
    let tlv = crate::tlv::Tlv::from_bytes(&seq).map_err(|e| PaError::Unsupported(e.to_string()))?;
    match tlv
        .find(crate::tlv::Tag::new(0xA0))
        .map_err(|e| PaError::Unsupported(e.to_string()))?
    {
        None => Ok(HashAlg::Sha1),
        Some(h) => {
            let alg = AlgorithmIdentifierOwned::from_der(h.value)
                .map_err(|e| PaError::Unsupported(e.to_string()))?;
            HashAlg::from_oid(&alg.oid)
        }
    }
}

/// The signature scheme a signature-algorithm OID names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Pkcs1,
    Pss,
    Ecdsa,
}

/// Verify `sig` over `msg` by the key in `spki` with signature algorithm `alg`.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    digest_hint: Option<HashAlg>,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PaError> {
    let (scheme, hash) = match alg.oid {
        oid::SHA1_RSA => (Scheme::Pkcs1, HashAlg::Sha1),
        oid::SHA224_RSA => (Scheme::Pkcs1, HashAlg::Sha224),
        oid::SHA256_RSA => (Scheme::Pkcs1, HashAlg::Sha256),
        oid::SHA384_RSA => (Scheme::Pkcs1, HashAlg::Sha384),
        oid::SHA512_RSA => (Scheme::Pkcs1, HashAlg::Sha512),
        // Plain rsaEncryption in a SignerInfo: the digest algorithm says which hash.
        oid::RSA => (
            Scheme::Pkcs1,
            digest_hint
                .ok_or_else(|| PaError::Unsupported("rsaEncryption without digest".into()))?,
        ),
        oid::RSA_PSS => (Scheme::Pss, pss_hash(alg)?),
        oid::ECDSA_SHA1 => (Scheme::Ecdsa, HashAlg::Sha1),
        oid::ECDSA_SHA224 => (Scheme::Ecdsa, HashAlg::Sha224),
        oid::ECDSA_SHA256 => (Scheme::Ecdsa, HashAlg::Sha256),
        oid::ECDSA_SHA384 => (Scheme::Ecdsa, HashAlg::Sha384),
        oid::ECDSA_SHA512 => (Scheme::Ecdsa, HashAlg::Sha512),
        other => return Err(PaError::Unsupported(format!("signature {other}"))),
    };
    let hashed = hash.digest(msg);
    let rsa_key = spki.algorithm.oid == oid::RSA || spki.algorithm.oid == oid::RSA_PSS;
    match scheme {
        Scheme::Ecdsa if spki.algorithm.oid == oid::EC_PUBLIC_KEY => {
            ecdsa_verify(spki, &hashed, sig)
        }
        Scheme::Pkcs1 | Scheme::Pss if rsa_key => {
            rsa_verify(spki, hash, scheme == Scheme::Pss, &hashed, sig)
        }
        _ => Err(PaError::Unsupported(format!(
            "key {} with signature {}",
            spki.algorithm.oid, alg.oid
        ))),
    }
}

fn signer_certificate(sod: &SecurityObject) -> Result<Certificate, PaError> {
    signer_certificate_of(&sod.signed_data)
}

fn signer_certificate_of(sd: &cms::signed_data::SignedData) -> Result<Certificate, PaError> {
    let signer = sd
        .signer_infos
        .0
        .get(0)
        .ok_or_else(|| PaError::Certificate("no signer".into()))?;
    let certs = sd
        .certificates
        .as_ref()
        .ok_or_else(|| PaError::Certificate("no certificate in the SOD".into()))?;
    for choice in certs.0.iter() {
        if let CertificateChoices::Certificate(c) = choice {
            let matches = match &signer.sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => {
                    ias.issuer == c.tbs_certificate().issuer().clone()
                        && ias.serial_number == c.tbs_certificate().serial_number().clone()
                }
                SignerIdentifier::SubjectKeyIdentifier(_) => true,
            };
            if matches {
                return Ok(c.clone());
            }
        }
    }
    Err(PaError::Certificate(
        "the signer's certificate is not in the SOD".into(),
    ))
}

fn check_sod_signature(sod: &SecurityObject, ds: &Certificate) -> Result<(), PaError> {
    check_signed_data(
        &sod.signed_data,
        &sod.content,
        sod.signed_attrs_der.as_deref(),
        OID_LDS_SECURITY_OBJECT,
        ds,
    )
}

/// Verify the first SignerInfo of `sd` over `content` (its signed attributes as raw DER when
/// present), with `content_type` expected in both the encapsulated content and the
/// content-type attribute, by the key of `signer`.
fn check_signed_data(
    sd: &cms::signed_data::SignedData,
    content: &[u8],
    signed_attrs_der: Option<&[u8]>,
    content_type: ObjectIdentifier,
    signer_cert: &Certificate,
) -> Result<(), PaError> {
    let signer = sd
        .signer_infos
        .0
        .get(0)
        .ok_or_else(|| PaError::Certificate("no signer".into()))?;
    if sd.encap_content_info.econtent_type != content_type {
        return Err(PaError::Attributes(format!(
            "content type {} is not {content_type}",
            sd.encap_content_info.econtent_type
        )));
    }
    let digest = HashAlg::from_oid(&signer.digest_alg.oid)?;
    let signed = match (&signer.signed_attrs, signed_attrs_der) {
        (Some(attrs), Some(raw)) => {
            let mut digest_ok = false;
            for a in attrs.iter() {
                if a.oid == oid::MESSAGE_DIGEST {
                    let v = a
                        .values
                        .iter()
                        .next()
                        .ok_or_else(|| PaError::Attributes("empty message digest".into()))?;
                    let md = der::asn1::OctetString::from_der(
                        &v.to_der().map_err(|e| PaError::Attributes(e.to_string()))?,
                    )
                    .map_err(|e| PaError::Attributes(e.to_string()))?;
                    digest_ok = bool::from(md.as_bytes().ct_eq(&digest.digest(content)));
                } else if a.oid == oid::CONTENT_TYPE {
                    let v = a
                        .values
                        .iter()
                        .next()
                        .ok_or_else(|| PaError::Attributes("empty content type".into()))?;
                    let ct = v
                        .decode_as::<ObjectIdentifier>()
                        .map_err(|e: der::Error| PaError::Attributes(e.to_string()))?;
                    if ct != content_type {
                        return Err(PaError::Attributes("content type attribute differs".into()));
                    }
                }
            }
            if !digest_ok {
                return Err(PaError::Attributes(
                    "message digest does not match the signed content".into(),
                ));
            }
            raw.to_vec()
        }
        (None, _) => content.to_vec(),
        (Some(_), None) => {
            return Err(PaError::Attributes(
                "signed attributes not found in the file".into(),
            ));
        }
    };
    let spki = signer_cert
        .tbs_certificate()
        .subject_public_key_info()
        .clone();
    verify_signature(
        &spki,
        &signer.signature_algorithm,
        Some(digest),
        &signed,
        signer.signature.as_bytes(),
    )
}

fn check_chain(ds: &Certificate, trust: &TrustStore) -> Result<String, PaError> {
    let tbs = ds.tbs_certificate();
    let tbs_der = tbs
        .to_der()
        .map_err(|e| PaError::Certificate(e.to_string()))?;
    let sig = ds.signature().raw_bytes();
    let mut last_err = None;
    for csca in &trust.cscas {
        if csca.tbs_certificate().subject() != tbs.issuer() {
            continue;
        }
        let spki = csca.tbs_certificate().subject_public_key_info().clone();
        match verify_signature(&spki, ds.signature_algorithm(), None, &tbs_der, sig) {
            Ok(()) => return Ok(csca.tbs_certificate().subject().to_string()),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or(PaError::UntrustedIssuer {
        issuer: tbs.issuer().to_string(),
    }))
}

/// `ContentInfo { signedData }` whose encapsulated content is of `content_type`: the
/// SignedData and the content's bytes (`what` names the object in errors).
fn open_signed_data(
    bytes: &[u8],
    content_type: ObjectIdentifier,
    what: &str,
) -> Result<(cms::signed_data::SignedData, Vec<u8>), PaError> {
    use cms::content_info::ContentInfo;
    let bad = |e: &dyn std::fmt::Display| PaError::Certificate(format!("{what}: {e}"));
    let ci = ContentInfo::from_der(bytes).map_err(|e| bad(&e))?;
    let sd: cms::signed_data::SignedData = ci.content.decode_as().map_err(|e| bad(&e))?;
    if sd.encap_content_info.econtent_type != content_type {
        return Err(bad(&format!(
            "content type {} is not {content_type}",
            sd.encap_content_info.econtent_type
        )));
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| bad(&"no content"))?;
    let content = der::asn1::OctetString::from_der(&econtent.to_der().map_err(|e| bad(&e))?)
        .map_err(|e| bad(&e))?
        .into_bytes()
        .into_vec();
    Ok((sd, content))
}

/// A CMS SignedData of some ICAO content type (a deviation list, 9303-12 §10), its
/// signature and its signer's chain checked against `trust`.
#[derive(Debug, Clone)]
pub struct SignedObject {
    /// The encapsulated content (DER), as signed.
    pub content: Vec<u8>,
    /// The signer certificate's subject.
    pub signer: Option<String>,
    /// The signature over the content (through the signed attributes when present).
    pub signature: Result<(), PaError>,
    /// The signer is a CSCA of `trust` or was issued by one: `Ok(csca subject)`.
    pub chain: Result<String, PaError>,
}

impl SignedObject {
    /// Signature and chain both verified.
    pub fn is_valid(&self) -> bool {
        self.signature.is_ok() && self.chain.is_ok()
    }
}

/// Open a CMS `ContentInfo { signedData }` whose encapsulated content is of
/// `content_type`, and check its first signer against `trust` (the signer certificate must
/// be in the object). Errors only when the bytes are not such an object; a bad signature or
/// an untrusted signer is reported in the result.
pub fn verify_signed_object(
    bytes: &[u8],
    content_type: ObjectIdentifier,
    trust: &TrustStore,
) -> Result<SignedObject, PaError> {
    let (sd, content) = open_signed_data(bytes, content_type, "signed object")?;
    let raw = super::lds::sod::raw_signed_attrs(bytes)
        .map_err(|e| PaError::Certificate(format!("signed object: {e}")))?;
    let signer_cert = signer_certificate_of(&sd);
    let (signature, chain) = match &signer_cert {
        Ok(c) => (
            check_signed_data(&sd, &content, raw.as_deref(), content_type, c),
            check_chain(c, trust),
        ),
        Err(e) => (Err(e.clone()), Err(e.clone())),
    };
    Ok(SignedObject {
        content,
        signer: signer_cert
            .ok()
            .map(|c| c.tbs_certificate().subject().to_string()),
        signature,
        chain,
    })
}

/// Run passive authentication over the SOD and the data groups read (`(n, whole file)`).
pub fn verify(
    sod: &SecurityObject,
    data_groups: &[(u8, &[u8])],
    trust: &TrustStore,
) -> PassiveReport {
    let ds = signer_certificate(sod);
    let signer = ds
        .as_ref()
        .ok()
        .map(|c| c.tbs_certificate().subject().to_string());
    let (signature, chain) = match &ds {
        Ok(ds) => (check_sod_signature(sod, ds), check_chain(ds, trust)),
        Err(e) => (Err(e.clone()), Err(e.clone())),
    };
    let hash = HashAlg::from_oid(&sod.hash_algorithm);
    let data_groups = data_groups
        .iter()
        .map(|(n, bytes)| {
            let check = match (sod.hash_of(*n), &hash) {
                (None, _) => HashCheck::NotInSod,
                (Some(want), Ok(h)) if bool::from(want.ct_eq(&h.digest(bytes))) => HashCheck::Match,
                _ => HashCheck::Mismatch,
            };
            (File::Dg(*n), check)
        })
        .collect();
    PassiveReport {
        signer,
        signature,
        chain,
        data_groups,
    }
}
