//! The CIE authentication certificate (EF 1003), parsed with RustCrypto's `x509-cert`:
//! who it names (codice fiscale, given name, surname), who issued it, and when it is valid.

use super::IasError;
use super::pubkey::RsaPublicKey;
use x509_cert::Certificate;
use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::name::Name;

/// OIDs of the subject attributes we read (RFC 5280 / X.520).
mod oid {
    use x509_cert::der::asn1::ObjectIdentifier as Oid;
    pub const CN: Oid = Oid::new_unwrap("2.5.4.3");
    pub const SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
    pub const SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
    pub const GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
    pub const ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
}

/// What the app shows and the server checks about a CIE certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CieCertificate {
    /// The certificate DER.
    pub der: Vec<u8>,
    /// Holder's codice fiscale, when the subject carries one.
    pub codice_fiscale: Option<String>,
    /// Holder's given name.
    pub given_name: Option<String>,
    /// Holder's surname.
    pub surname: Option<String>,
    /// Subject common name.
    pub common_name: Option<String>,
    /// Issuer common name (or organisation when there is no CN).
    pub issuer: String,
    /// Validity start, seconds since the Unix epoch.
    pub not_before: u64,
    /// Validity end, seconds since the Unix epoch.
    pub not_after: u64,
    /// The subject's RSA public key.
    pub public_key: RsaPublicKey,
}

impl CieCertificate {
    /// Parse a DER certificate (exactly one, no trailing bytes).
    pub fn from_der(der: &[u8]) -> Result<Self, IasError> {
        let bad = |e: &dyn std::fmt::Display| IasError::malformed("certificate", e.to_string());
        let cert = Certificate::from_der(der).map_err(|e| bad(&e))?;
        let tbs = cert.tbs_certificate();
        let subject = tbs.subject();
        let spki = tbs.subject_public_key_info();
        if spki.algorithm.oid != oid::RSA_ENCRYPTION {
            return Err(IasError::malformed("certificate", "the key is not RSA"));
        }
        let key_der = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| IasError::malformed("certificate", "key bit string not whole bytes"))?;
        let public_key = RsaPublicKey::from_pkcs1_der(key_der)?;
        let serial = attribute(subject, &oid::SERIAL_NUMBER);
        let common_name = attribute(subject, &oid::CN);
        let codice_fiscale = [serial.as_deref(), common_name.as_deref()]
            .into_iter()
            .flatten()
            .find_map(find_codice_fiscale);
        let issuer = attribute(tbs.issuer(), &oid::CN)
            .or_else(|| attribute(tbs.issuer(), &oid::ORGANIZATION))
            .unwrap_or_default();
        let validity = tbs.validity();
        Ok(Self {
            der: der.to_vec(),
            codice_fiscale,
            given_name: attribute(subject, &oid::GIVEN_NAME),
            surname: attribute(subject, &oid::SURNAME),
            common_name,
            issuer,
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            public_key,
        })
    }

    /// Whether `unix_time` falls inside the validity period.
    pub fn is_valid_at(&self, unix_time: u64) -> bool {
        (self.not_before..=self.not_after).contains(&unix_time)
    }
}

/// The first value of attribute `oid` in `name`, as text.
fn attribute(name: &Name, oid: &x509_cert::der::asn1::ObjectIdentifier) -> Option<String> {
    name.iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .filter(|atv| atv.oid == *oid)
        .find_map(|atv| {
            let any = &atv.value;
            match any.tag() {
                Tag::Utf8String => any
                    .decode_as::<Utf8StringRef<'_>>()
                    .ok()
                    .map(|s| s.to_string()),
                Tag::PrintableString => any
                    .decode_as::<PrintableStringRef<'_>>()
                    .ok()
                    .map(|s| s.to_string()),
                // IA5String and other ASCII-compatible string types.
                _ => std::str::from_utf8(any.value()).ok().map(str::to_owned),
            }
        })
}

/// A codice fiscale inside `text` (e.g. `TINIT-RSSMRA80A01H501U` or a CN): 16 characters,
/// letters and digits where the format puts them (omocodia letters accepted for digits).
pub fn find_codice_fiscale(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    bytes.windows(16).find_map(|w| {
        let ok = w.iter().enumerate().all(|(i, &c)| match i {
            0..=5 | 8 | 11 | 15 => c.is_ascii_uppercase(),
            _ => c.is_ascii_digit() || b"LMNPQRSTUV".contains(&c),
        });
        ok.then(|| String::from_utf8_lossy(w).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codice_fiscale_shapes() {
        assert_eq!(
            find_codice_fiscale("TINIT-RSSMRA80A01H501U").as_deref(),
            Some("RSSMRA80A01H501U")
        );
        assert_eq!(
            find_codice_fiscale("RSSMRA80A01H50MU").as_deref(),
            Some("RSSMRA80A01H50MU")
        );
        assert_eq!(find_codice_fiscale("RSSMRA80A01H501"), None);
        assert_eq!(find_codice_fiscale("rssmra80a01h501u"), None);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(CieCertificate::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(CieCertificate::from_der(&[]).is_err());
    }
}
