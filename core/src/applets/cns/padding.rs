//! Host-side encodings for the card's raw RSA (OpenSC declares CNS keys
//! `SC_ALGORITHM_RSA_RAW`, so its PKCS#11 layer pads in software; `card-itacns.c`
//! `itacns_init`): PKCS#1 v1.5 type 1 (RFC 8017 §9.2), EMSA-PSS (§9.1.1) with MGF1, and the
//! left-zero-padded block of `CKM_RSA_X_509`. Every function returns exactly one
//! modulus-length block, below the modulus, or a typed error.

use super::CnsError;
use crate::applets::ias::digest_info::DigestAlgorithm;
use sha2::Digest;

/// The hash of `data`.
pub fn hash(alg: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    match alg {
        DigestAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        DigestAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
        DigestAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
        DigestAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

/// `00 01 FF…FF 00 ‖ data` of `k` bytes; `data` is usually a DigestInfo.
pub fn pkcs1_v15(data: &[u8], k: usize) -> Result<Vec<u8>, CnsError> {
    if data.is_empty() || data.len() + 11 > k {
        return Err(CnsError::InputLength { modulus_len: k });
    }
    let mut out = vec![0xFF; k];
    out[0] = 0x00;
    out[1] = 0x01;
    out[k - data.len() - 1] = 0x00;
    out[k - data.len()..].copy_from_slice(data);
    Ok(out)
}

/// `CKM_RSA_X_509`: `data` left-padded with zeros to the modulus length, refused unless it
/// is numerically below the modulus.
pub fn raw(data: &[u8], modulus: &[u8]) -> Result<Vec<u8>, CnsError> {
    let k = modulus.len();
    if data.is_empty() || data.len() > k {
        return Err(CnsError::InputLength { modulus_len: k });
    }
    let mut out = vec![0u8; k];
    out[k - data.len()..].copy_from_slice(data);
    if out.as_slice() >= modulus {
        return Err(CnsError::InputLength { modulus_len: k });
    }
    Ok(out)
}

/// EMSA-PSS of the message hash `m_hash` with `salt`, for a modulus of `modulus_bits` bits,
/// as a block of the modulus length (a leading zero byte when `modulus_bits - 1` is a
/// multiple of 8).
pub fn pss(
    m_hash: &[u8],
    hash_alg: DigestAlgorithm,
    mgf_alg: DigestAlgorithm,
    salt: &[u8],
    modulus_bits: usize,
) -> Result<Vec<u8>, CnsError> {
    let k = modulus_bits.div_ceil(8);
    let em_bits = modulus_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    let h_len = hash_alg.digest_len();
    if m_hash.len() != h_len || em_len < h_len + salt.len() + 2 {
        return Err(CnsError::InputLength { modulus_len: k });
    }
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(m_hash);
    m_prime.extend_from_slice(salt);
    let h = hash(hash_alg, &m_prime);
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - salt.len() - 1] = 0x01;
    db[db_len - salt.len()..].copy_from_slice(salt);
    for (d, m) in db.iter_mut().zip(mgf1(mgf_alg, &h, db_len)) {
        *d ^= m;
    }
    // Clear the bits above emBits.
    db[0] &= 0xFFu8 >> (8 * em_len - em_bits);
    let mut out = vec![0u8; k - em_len];
    out.extend(db);
    out.extend(h);
    out.push(0xBC);
    Ok(out)
}

/// MGF1 (RFC 8017 B.2.1).
fn mgf1(alg: DigestAlgorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + alg.digest_len());
    let mut counter = 0u32;
    while out.len() < len {
        let mut input = seed.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend(hash(alg, &input));
        counter += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_layout() {
        let b = pkcs1_v15(&[0xAA; 19], 128).unwrap();
        assert_eq!(&b[..3], &[0x00, 0x01, 0xFF]);
        assert_eq!(b[128 - 20], 0x00);
        assert_eq!(b.len(), 128);
        assert!(pkcs1_v15(&[0; 118], 128).is_err());
        assert!(pkcs1_v15(&[], 128).is_err());
    }

    #[test]
    fn raw_must_stay_below_the_modulus() {
        let n = [0x80, 0x00, 0x01];
        assert_eq!(raw(&[0x01], &n).unwrap(), vec![0, 0, 1]);
        assert!(raw(&[0x80, 0x00, 0x01], &n).is_err());
        assert!(raw(&[0x00, 0x80, 0x00, 0x01], &n).is_err());
    }

    /// EMSA-PSS-VERIFY (RFC 8017 §9.1.2), written from the RFC for this test only; the
    /// pkcs11 tests check real signatures with RustCrypto's `rsa`.
    fn pss_verify(em: &[u8], m_hash: &[u8], alg: DigestAlgorithm, s_len: usize, bits: usize) {
        let em_bits = bits - 1;
        let em_len = em_bits.div_ceil(8);
        let em = &em[em.len() - em_len..];
        let h_len = alg.digest_len();
        assert_eq!(em[em_len - 1], 0xBC);
        let (masked, h) = em[..em_len - 1].split_at(em_len - h_len - 1);
        let mut db: Vec<u8> = masked
            .iter()
            .zip(mgf1(alg, h, masked.len()))
            .map(|(a, b)| a ^ b)
            .collect();
        db[0] &= 0xFF >> (8 * em_len - em_bits);
        let ps = db.len() - s_len - 1;
        assert!(db[..ps].iter().all(|b| *b == 0));
        assert_eq!(db[ps], 0x01);
        let mut m_prime = vec![0u8; 8];
        m_prime.extend_from_slice(m_hash);
        m_prime.extend_from_slice(&db[ps + 1..]);
        assert_eq!(hash(alg, &m_prime), h);
    }

    #[test]
    fn pss_round_trips_for_odd_and_even_sizes() {
        for bits in [1024usize, 2048, 2047, 1025] {
            for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
                let m_hash = hash(alg, b"message");
                let salt = [0x5A; 32];
                let em = pss(&m_hash, alg, alg, &salt, bits).unwrap();
                assert_eq!(em.len(), bits.div_ceil(8));
                pss_verify(&em, &m_hash, alg, salt.len(), bits);
            }
        }
        let m_hash = hash(DigestAlgorithm::Sha512, b"m");
        assert!(
            pss(
                &m_hash,
                DigestAlgorithm::Sha512,
                DigestAlgorithm::Sha512,
                &[0; 64],
                1024
            )
            .is_err()
        );
    }
}
