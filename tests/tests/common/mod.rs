//! Helpers shared by the IAS integration tests.

use cie_core::applets::ias::IasError;
use cie_core::applets::ias::secure::Randomness;
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
