//! The server's TLS identity: a certificate and key from PEM files, or a self-signed one
//! made at start. The app pins the SHA-256 of the SubjectPublicKeyInfo, so we compute and
//! publish that pin whichever way the key came.

use std::path::Path;
use std::sync::Arc;

use cie_core::flows::wire::b64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

use crate::ServerError;

/// Certificate chain (leaf first), key, and the leaf's SPKI pin.
pub struct TlsMaterial {
    /// Leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// base64url(SHA-256(SubjectPublicKeyInfo DER)) of the leaf.
    pub spki_pin: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("certs", &self.certs.len())
            .field("spki_pin", &self.spki_pin)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Read a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, ServerError> {
        let tls = |what: &str, e: &dyn std::fmt::Display| {
            ServerError::Tls(format!("{what} {}: {e}", cert.display()))
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| tls("cannot read", &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls("bad PEM in", &e))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| ServerError::Tls(format!("cannot read key {}: {e}", key.display())))?;
        let leaf = certs
            .first()
            .ok_or_else(|| ServerError::Tls(format!("no certificate in {}", cert.display())))?;
        let spki_pin = spki_pin_of_certificate(leaf)?;
        Ok(Self {
            certs,
            key,
            spki_pin,
        })
    }

    /// A fresh self-signed certificate (ECDSA P-256) naming `hosts` (DNS names or IP
    /// addresses). It lives as long as the process: the app must pin its key anew.
    pub fn self_signed(hosts: &[String]) -> Result<Self, ServerError> {
        let err = |e: rcgen::Error| ServerError::Tls(format!("self-signed certificate: {e}"));
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "companion-server (self-signed)");
        let cert = params.self_signed(&key).map_err(err)?;
        let spki_pin = spki_pin_of_certificate(cert.der())?;
        Ok(Self {
            certs: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            spki_pin,
        })
    }

    /// The rustls configuration (ring provider, TLS 1.2 and 1.3, HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| ServerError::Tls(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl TlsMaterial {
    /// The rustls configuration of a mutual-TLS listener: the same identity, client
    /// certificates checked by `verifier`, TLS 1.2 alone when `tls12_only`.
    pub fn mtls_server_config(
        &self,
        verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
        tls12_only: bool,
    ) -> Result<Arc<rustls::ServerConfig>, ServerError> {
        crate::mtls::server_config(
            verifier,
            self.certs.clone(),
            self.key.clone_key(),
            tls12_only,
        )
    }
}

/// base64url(SHA-256(SubjectPublicKeyInfo)) of a DER certificate: the app's pin.
pub fn spki_pin_of_certificate(der: &[u8]) -> Result<String, ServerError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| ServerError::Tls(format!("TLS certificate: {e}")))?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| ServerError::Tls(format!("TLS certificate key: {e}")))?;
    Ok(b64(&Sha256::digest(spki)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pin_matches_the_certificate() {
        let m = TlsMaterial::self_signed(&["127.0.0.1".into(), "localhost".into()]).unwrap();
        assert_eq!(spki_pin_of_certificate(&m.certs[0]).unwrap(), m.spki_pin);
        assert!(m.server_config().is_ok());
        assert!(!format!("{m:?}").contains("key:"));
    }
}
