//! The send sequence counter (ICAO 9303-11 §9.8.2, IAS-ECC §8.6): a big-endian counter
//! of the cipher's block size, incremented before protecting every command and again before
//! verifying every response.

use super::SmError;
use std::fmt;

/// Largest SSC (AES: one 16-byte block).
const MAX_LEN: usize = 16;

/// A send sequence counter of 8 (3DES) or 16 (AES) bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Ssc {
    bytes: [u8; MAX_LEN],
    len: usize,
}

impl fmt::Debug for Ssc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not a secret (it is derived from nonces seen on the wire), and useful in logs.
        write!(f, "Ssc(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        write!(f, ")")
    }
}

impl Ssc {
    /// A counter of `len` bytes (8 or 16) at zero: the start after PACE and Chip
    /// Authentication.
    pub fn zero(len: usize) -> Result<Self, SmError> {
        Self::from_bytes(&vec![0; len])
    }

    /// A counter with the given value; 8 or 16 bytes.
    pub fn from_bytes(value: &[u8]) -> Result<Self, SmError> {
        if value.len() != 8 && value.len() != MAX_LEN {
            return Err(SmError::SscLength {
                expected: if value.len() > 8 { MAX_LEN } else { 8 },
                got: value.len(),
            });
        }
        let mut bytes = [0; MAX_LEN];
        bytes[..value.len()].copy_from_slice(value);
        Ok(Self {
            bytes,
            len: value.len(),
        })
    }

    /// The BAC and IAS seed: the last four bytes of the card's challenge followed by the
    /// last four of the terminal's (`RND.IC[4..8] ‖ RND.IFD[4..8]`, 9303-11 §9.8.2; the CIE
    /// re-seeds the same way after DAPP, cie.md §3.2 step 9.10).
    pub fn from_challenges(rnd_icc: &[u8; 8], rnd_ifd: &[u8; 8]) -> Self {
        let mut bytes = [0; MAX_LEN];
        bytes[..4].copy_from_slice(&rnd_icc[4..]);
        bytes[4..8].copy_from_slice(&rnd_ifd[4..]);
        Self { bytes, len: 8 }
    }

    /// The counter's bytes, big-endian.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Length in bytes (8 or 16).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a counter has 8 or 16 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Add one. At the all-ones value the counter is exhausted: it is left unchanged and
    /// [`SmError::SscExhausted`] returned, never wrapped to zero (a wrapped SSC would repeat
    /// MAC inputs).
    pub fn increment(&mut self) -> Result<(), SmError> {
        let counter = &mut self.bytes[..self.len];
        if counter.iter().all(|b| *b == 0xFF) {
            return Err(SmError::SscExhausted);
        }
        for b in counter.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        Ok(())
    }
}
