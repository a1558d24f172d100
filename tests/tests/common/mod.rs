//! Helpers shared by the integration tests (each test file uses a subset).

#![allow(dead_code)]

use cie_core::applets::ias::IasError;
use cie_core::applets::ias::secure::Randomness;
use cie_core::flows::pairing::{Protection, SecretStore, StoreError};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Deterministic randomness (SHA-256 of a counter) so failures reproduce exactly. Never
/// used by the app, which draws from the OS.
pub struct Counter(pub AtomicU64);

impl Counter {
    /// Start the counter at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }
}

impl Randomness for Counter {
    fn fill(&self, buf: &mut [u8]) -> Result<(), IasError> {
        for chunk in buf.chunks_mut(32) {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            chunk.copy_from_slice(&Sha256::digest(n.to_be_bytes())[..chunk.len()]);
        }
        Ok(())
    }
}

/// The RSA key of a DER certificate, parsed with RustCrypto's crates (independently of the
/// core's own certificate parser).
pub fn cert_public_key(der: &[u8]) -> rsa::RsaPublicKey {
    use rsa::pkcs8::DecodePublicKey;
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).expect("certificate DER");
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("SPKI DER");
    rsa::RsaPublicKey::from_public_key_der(&spki).expect("RSA key")
}

/// The platform keystore, in memory: records the protection asked for each value.
#[derive(Default)]
pub struct MemoryStore(
    pub std::sync::Mutex<std::collections::HashMap<String, (Vec<u8>, Protection)>>,
);

impl SecretStore for MemoryStore {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().unwrap().get(&name).map(|(v, _)| v.clone()))
    }
    fn save(&self, name: String, value: Vec<u8>, protection: Protection) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(name, (value, protection));
        Ok(())
    }
    fn remove(&self, name: String) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(&name);
        Ok(())
    }
}
