//! RSA public keys as the CIE stores them (PKCS#1 `RSAPublicKey` DER, possibly padded).

use super::IasError;
use crate::tlv::{Reader, Tag};
use std::fmt;

/// An RSA public key: big-endian modulus and exponent, without leading zeros.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// Modulus n.
    pub modulus: Vec<u8>,
    /// Public exponent e.
    pub exponent: Vec<u8>,
    /// The DER it was read from (hashed by the SOD).
    pub der: Vec<u8>,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}

impl RsaPublicKey {
    /// Parse `SEQUENCE { INTEGER n, INTEGER e }`; trailing file padding must already be cut.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, IasError> {
        let mut outer = Reader::new(der);
        let seq = outer.expect_tlv(Tag::new(0x30))?;
        outer.expect_empty("RSAPublicKey")?;
        let mut r = Reader::new(seq.value);
        let n = r.expect_tlv(Tag::new(0x02))?;
        let e = r.expect_tlv(Tag::new(0x02))?;
        r.expect_empty("RSAPublicKey fields")?;
        let modulus = unsigned(n.value);
        let exponent = unsigned(e.value);
        if modulus.len() < 128 || exponent.is_empty() || modulus[modulus.len() - 1] & 1 == 0 {
            return Err(IasError::malformed(
                "RSA public key",
                "implausible modulus or exponent",
            ));
        }
        Ok(Self {
            modulus,
            exponent,
            der: der.to_vec(),
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let lead = self
            .modulus
            .first()
            .map_or(0, |b| 8 - b.leading_zeros() as usize);
        (self.modulus.len().saturating_sub(1)) * 8 + lead
    }
}

/// An INTEGER's content as an unsigned magnitude (the DER sign byte stripped).
fn unsigned(v: &[u8]) -> Vec<u8> {
    let skip = v.iter().take_while(|b| **b == 0).count();
    v[skip..].to_vec()
}
