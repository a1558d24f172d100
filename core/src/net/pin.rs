//! Key pinning: the app trusts its server's key, not a CA. The leaf certificate is accepted
//! only when SHA-256 of its SubjectPublicKeyInfo (DER) is in the pin set, so a mis-issued
//! or intercepting CA certificate is refused, and a self-signed server works. Names and
//! dates of the certificate are not checked (the key is the trust anchor, and phones with a
//! wrong clock must still log in); the handshake signatures are still verified, which is
//! what proves the server holds the pinned key.

use data_encoding::BASE64URL_NOPAD;
#[cfg(feature = "rustls-https")]
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
#[cfg(feature = "rustls-https")]
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
#[cfg(feature = "rustls-https")]
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
#[cfg(feature = "rustls-https")]
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// A pin: SHA-256 of a SubjectPublicKeyInfo, as `companion-server` prints it (base64url,
/// no padding, 43 characters).
pub type Pin = [u8; 32];

/// Parse a pin; `None` unless it is 32 bytes of base64url.
pub fn parse_pin(text: &str) -> Option<Pin> {
    let text = text.trim();
    let text = text.strip_prefix("sha256/").unwrap_or(text);
    BASE64URL_NOPAD
        .decode(text.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

/// The pin of a DER certificate: SHA-256 of its SubjectPublicKeyInfo. `None` when the
/// certificate does not parse.
pub fn spki_pin(cert_der: &[u8]) -> Option<Pin> {
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()?;
    Some(Sha256::digest(spki).into())
}

/// The verifier: pin check on the leaf, provider algorithms for the handshake signatures.
#[cfg(feature = "rustls-https")]
#[derive(Debug)]
pub struct PinnedVerifier {
    pins: Vec<Pin>,
    algorithms: WebPkiSupportedAlgorithms,
}

#[cfg(feature = "rustls-https")]
impl PinnedVerifier {
    /// Accept keys whose pin is in `pins`; verify handshake signatures with `algorithms`
    /// (the crypto provider's).
    pub fn new(pins: Vec<Pin>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { pins, algorithms }
    }
}

/// The error our verifier returns, recognised again in [`super::NetError`] so the app can
/// say "this is not your server" rather than "no connection".
#[cfg(feature = "rustls-https")]
pub(crate) const PIN_MISMATCH: CertificateError = CertificateError::ApplicationVerificationFailure;

#[cfg(feature = "rustls-https")]
impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pin = spki_pin(end_entity.as_ref()).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        // Pins are public: a plain comparison is fine.
        if self.pins.contains(&pin) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(PIN_MISMATCH))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_strictly() {
        let pin = [7u8; 32];
        let text = BASE64URL_NOPAD.encode(&pin);
        assert_eq!(parse_pin(&text), Some(pin));
        assert_eq!(parse_pin(&format!("sha256/{text}")), Some(pin));
        assert_eq!(parse_pin(&text[1..]), None);
        assert_eq!(parse_pin("not a pin"), None);
        assert_eq!(parse_pin(&BASE64URL_NOPAD.encode(&[1u8; 31])), None);
    }

    #[test]
    fn spki_pin_matches_the_key_not_the_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let a = rcgen::CertificateParams::new(vec!["a.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let b = rcgen::CertificateParams::new(vec!["b.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let expected: Pin =
            Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)).into();
        assert_eq!(spki_pin(a.der()), Some(expected));
        assert_eq!(spki_pin(b.der()), Some(expected));
        assert_eq!(spki_pin(b"junk"), None);
    }
}
