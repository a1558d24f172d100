//! PKCS#1 v1.5 DigestInfo: what the CIE's INTERNAL AUTHENTICATE signs with algorithm `02`
//! (the card adds only the type-01 padding; cie.md §3.2 step 12).

use super::IasError;

/// Hash functions a relying party may ask the card to sign for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DigestAlgorithm {
    /// SHA-1 (legacy TLS 1.2 peers only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// The DER prefix before the digest (RFC 8017 §9.2 note 1; the same bytes in the
    /// official SDKs, cie.md §3.2).
    pub fn prefix(self) -> &'static [u8] {
        match self {
            Self::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04,
                0x14,
            ],
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// `DigestInfo` for `digest`, whose length must match the algorithm.
pub fn digest_info(alg: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, IasError> {
    if digest.len() != alg.digest_len() {
        return Err(IasError::malformed(
            "digest",
            format!(
                "{} bytes for a {}-byte hash",
                digest.len(),
                alg.digest_len()
            ),
        ));
    }
    let mut out = alg.prefix().to_vec();
    out.extend_from_slice(digest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::Tlv;

    #[test]
    fn prefixes_are_well_formed_der_announcing_the_digest_length() {
        for alg in [
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            let di = digest_info(alg, &vec![0xAB; alg.digest_len()]).unwrap();
            let seq = Tlv::from_bytes(&di).unwrap();
            let octets = seq.find(crate::tlv::Tag::new(0x04)).unwrap().unwrap();
            assert_eq!(octets.value.len(), alg.digest_len());
            assert!(digest_info(alg, &[0; 3]).is_err());
        }
    }
}
