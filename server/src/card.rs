//! Checking a CIE's authentication certificate and signature (docs/protocol.md §1): the
//! certificate chains to a configured CA, is inside its validity, is not revoked, and its
//! key signed the statement (RSA PKCS#1 v1.5 over SHA-256, the only scheme the CIE has).
//!
//! Signature checks reuse `cie_core`'s passive-authentication verifier (RSA PKCS#1 v1.5 and
//! PSS, ECDSA P-256/P-384 over the same x509-cert types), so the server and the app trust one
//! implementation. rustls-webpki would also verify the chain, but it is shaped for TLS
//! (extended-key-usage policy, no access to the subject attributes we map identities from),
//! would add a second RSA verifier and certificate parser, and the mutual-TLS mode can still
//! use it later for the handshake itself.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use cie_core::applets::emrtd::passive::verify_signature;
use cie_core::applets::ias::certificate::CieCertificate;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::ServerError;

/// sha256WithRSAEncryption: what the card's signature over a statement is.
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Revocation hook: OCSP or CRL later; a list of serials today.
pub trait Revocation: Send + Sync + 'static {
    /// Whether the certificate `serial` (upper-case hex, no leading zeros) issued by
    /// `issuer` (RFC 4514 text) is revoked.
    fn is_revoked(&self, issuer: &str, serial: &str) -> bool;
}

/// Revoked serial numbers, whatever the issuer (CIE serials are unique per CA and we trust
/// few CAs).
#[derive(Debug, Clone, Default)]
pub struct RevokedSerials(HashSet<String>);

impl RevokedSerials {
    /// From serials in hex (`0x`, colons and spaces allowed).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(serials: I) -> Self {
        Self(
            serials
                .into_iter()
                .filter_map(|s| normalise_serial(s.as_ref()))
                .collect(),
        )
    }

    /// One serial a line, hex; `#` starts a comment.
    pub fn from_file(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("--revoked {}: {e}", path.display())))?;
        let mut serials = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let serial = normalise_serial(line).ok_or_else(|| {
                ServerError::Config(format!(
                    "--revoked {} line {}: not a hex serial",
                    path.display(),
                    n + 1
                ))
            })?;
            serials.insert(serial);
        }
        Ok(Self(serials))
    }
}

impl Revocation for RevokedSerials {
    fn is_revoked(&self, _issuer: &str, serial: &str) -> bool {
        self.0.contains(serial)
    }
}

fn normalise_serial(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let hex: String = t
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.trim_start_matches('0').to_ascii_uppercase();
    Some(if hex.is_empty() { "0".into() } else { hex })
}

/// Certificates from PEM (any number of blocks) or one DER.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ServerError> {
    if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = CertificateDer::pem_slice_iter(bytes)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServerError::Config(format!("bad PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(ServerError::Config("no certificate in the PEM".into()));
        }
        Ok(certs)
    } else {
        Ok(vec![bytes.to_vec()])
    }
}

/// Why a card's certificate or signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// Not a certificate we can read (or not an RSA key).
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// Not issued by a configured CA.
    #[error("certificate not issued by a trusted CA")]
    Untrusted,
    /// Outside its validity (or its CA's).
    #[error("certificate expired or not yet valid")]
    Expired,
    /// On the revocation list.
    #[error("certificate revoked")]
    Revoked,
    /// The signature does not verify under the certificate's key.
    #[error("signature does not verify")]
    BadSignature,
    /// No codice fiscale in the subject.
    #[error("the certificate names no codice fiscale")]
    UnknownIdentity,
}

/// The holder a verified card names, and which card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCard {
    /// Codice fiscale (subject serialNumber without `TINIT-`).
    pub codice_fiscale: String,
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Certificate serial, upper-case hex.
    pub serial: String,
}

/// Trust anchors and the revocation hook.
#[derive(Clone)]
pub struct CardVerifier {
    anchors: Vec<Certificate>,
    revocation: Arc<dyn Revocation>,
}

impl std::fmt::Debug for CardVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardVerifier")
            .field("anchors", &self.anchors.len())
            .finish_non_exhaustive()
    }
}

impl CardVerifier {
    /// From DER CA certificates.
    pub fn new(ca_ders: &[Vec<u8>], revocation: Arc<dyn Revocation>) -> Result<Self, ServerError> {
        let anchors = ca_ders
            .iter()
            .map(|d| {
                Certificate::from_der(d)
                    .map_err(|e| ServerError::Config(format!("card CA certificate: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            anchors,
            revocation,
        })
    }

    /// Check `certificate` (DER) and its `signature` over `statement` at `now`.
    pub fn verify(
        &self,
        certificate: &[u8],
        statement: &[u8],
        signature: &[u8],
        now: u64,
    ) -> Result<VerifiedCard, CardError> {
        let cert = self.check_chain(certificate, now)?;
        let alg = AlgorithmIdentifierOwned {
            oid: SHA256_WITH_RSA,
            parameters: None,
        };
        let spki = cert.tbs_certificate().subject_public_key_info().clone();
        verify_signature(&spki, &alg, None, statement, signature)
            .map_err(|_| CardError::BadSignature)?;
        holder(&cert, certificate)
    }

    /// Check `certificate` (DER) alone at `now`: chain, validity, revocation, holder. For
    /// the mutual-TLS login, where the signature is the TLS handshake's (rustls checks it).
    pub fn check_certificate(
        &self,
        certificate: &[u8],
        now: u64,
    ) -> Result<VerifiedCard, CardError> {
        let cert = self.check_chain(certificate, now)?;
        holder(&cert, certificate)
    }

    fn check_chain(&self, certificate: &[u8], now: u64) -> Result<Certificate, CardError> {
        let cert =
            Certificate::from_der(certificate).map_err(|e| CardError::Malformed(e.to_string()))?;
        let tbs = cert.tbs_certificate();
        if tbs.signature() != cert.signature_algorithm() {
            return Err(CardError::Malformed("signature algorithms differ".into()));
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|e| CardError::Malformed(e.to_string()))?;
        let cert_sig = cert
            .signature()
            .as_bytes()
            .ok_or_else(|| CardError::Malformed("signature bit string".into()))?;
        let anchor = self
            .anchors
            .iter()
            .filter(|ca| ca.tbs_certificate().subject() == tbs.issuer())
            .find(|ca| {
                let spki = ca.tbs_certificate().subject_public_key_info().clone();
                verify_signature(&spki, cert.signature_algorithm(), None, &tbs_der, cert_sig)
                    .is_ok()
            })
            .ok_or(CardError::Untrusted)?;
        let within = |c: &Certificate| {
            let v = c.tbs_certificate().validity();
            let from = v.not_before.to_unix_duration().as_secs();
            let to = v.not_after.to_unix_duration().as_secs();
            (from..=to).contains(&now)
        };
        if !within(&cert) || !within(anchor) {
            return Err(CardError::Expired);
        }
        let issuer = tbs.issuer().to_string();
        let serial = normalise_serial(&hex_upper(tbs.serial_number().as_bytes()))
            .unwrap_or_else(|| "0".into());
        if self.revocation.is_revoked(&issuer, &serial) {
            return Err(CardError::Revoked);
        }
        Ok(cert)
    }
}

/// The holder a checked certificate names.
fn holder(cert: &Certificate, der: &[u8]) -> Result<VerifiedCard, CardError> {
    let tbs = cert.tbs_certificate();
    let holder = CieCertificate::from_der(der).map_err(|e| CardError::Malformed(e.to_string()))?;
    let codice_fiscale = holder.codice_fiscale.ok_or(CardError::UnknownIdentity)?;
    Ok(VerifiedCard {
        codice_fiscale,
        given_name: holder.given_name.unwrap_or_default(),
        surname: holder.surname.unwrap_or_default(),
        issuer: tbs.issuer().to_string(),
        serial: normalise_serial(&hex_upper(tbs.serial_number().as_bytes()))
            .unwrap_or_else(|| "0".into()),
    })
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_normalise() {
        assert_eq!(normalise_serial("0x00:10:03").as_deref(), Some("1003"));
        assert_eq!(normalise_serial("1003").as_deref(), Some("1003"));
        assert_eq!(normalise_serial("ab cd").as_deref(), Some("ABCD"));
        assert_eq!(normalise_serial("xyz"), None);
        assert_eq!(normalise_serial("000").as_deref(), Some("0"));
    }

    #[test]
    fn garbage_certificates_are_typed_errors() {
        let v = CardVerifier::new(&[], Arc::new(RevokedSerials::default())).unwrap();
        assert!(matches!(
            v.verify(&[0x30, 0x00], b"x", b"y", 0),
            Err(CardError::Malformed(_))
        ));
    }
}
