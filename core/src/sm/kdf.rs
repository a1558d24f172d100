//! Session-key derivation.
//!
//! - ICAO 9303-11 §9.7.1: `KDF(K, c) = H(K ‖ c)` with `c` a 32-bit big-endian counter
//!   ([`KDF_ENC`] 1, [`KDF_MAC`] 2, [`KDF_PACE`] 3); SHA-1 for 3DES and AES-128, SHA-256
//!   for AES-192/256; 3DES keys get odd DES parity.
//! - The CIE IAS channel (cie.md §3.3): `SHA-256(secret ‖ 00000001)[0..16]` and
//!   `‖ 00000002`, used as 2-key 3DES keys as they are.
//! - BAC (9303-11 §9.7.2): `K_seed = SHA-1(MRZ information)[0..16]`, then the ICAO KDF.

use super::SmCipher;
use super::cipher::{Aes, Tdes};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Counter for the encryption key.
pub const KDF_ENC: u32 = 1;
/// Counter for the MAC key.
pub const KDF_MAC: u32 = 2;
/// Counter for the PACE password key K_π.
pub const KDF_PACE: u32 = 3;

/// The cipher a derived key is for (the last arc of the PACE/CA OID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Two-key 3DES (16 bytes, SHA-1, parity adjusted).
    Tdes,
    /// AES-128 (SHA-1, first 16 bytes).
    Aes128,
    /// AES-192 (SHA-256, first 24 bytes).
    Aes192,
    /// AES-256 (SHA-256).
    Aes256,
}

impl KeyAlgorithm {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Tdes | Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }
}

/// ICAO 9303-11 §9.7.1 `KDF(secret, counter)` for `alg`.
pub fn kdf(secret: &[u8], counter: u32, alg: KeyAlgorithm) -> Zeroizing<Vec<u8>> {
    let c = counter.to_be_bytes();
    let digest: Zeroizing<Vec<u8>> = match alg {
        KeyAlgorithm::Tdes | KeyAlgorithm::Aes128 => Zeroizing::new(
            Sha1::new()
                .chain_update(secret)
                .chain_update(c)
                .finalize()
                .to_vec(),
        ),
        KeyAlgorithm::Aes192 | KeyAlgorithm::Aes256 => Zeroizing::new(
            Sha256::new()
                .chain_update(secret)
                .chain_update(c)
                .finalize()
                .to_vec(),
        ),
    };
    let mut key = Zeroizing::new(digest[..alg.key_len()].to_vec());
    if alg == KeyAlgorithm::Tdes {
        adjust_parity(&mut key);
    }
    key
}

/// Set each byte's low bit so the byte has odd parity (the DES key convention). DES
/// ignores these bits; the adjustment only makes keys equal the published ones.
pub fn adjust_parity(key: &mut [u8]) {
    for b in key {
        let high = *b & 0xFE;
        *b = high | u8::from(high.count_ones() % 2 == 0);
    }
}

/// The CIE IAS key derivation (cie.md §3.3): `SHA-256(secret ‖ counter)[0..16]`, counter 1
/// for K_enc and 2 for K_mac, `secret` the DH shared secret at the full length of p.
pub fn ias_kdf(secret: &[u8], counter: u32) -> Zeroizing<[u8; 16]> {
    let digest = Zeroizing::new(
        Sha256::new()
            .chain_update(secret)
            .chain_update(counter.to_be_bytes())
            .finalize(),
    );
    let mut key = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&digest[..16]);
    key
}

/// The 3DES suite of the CIE IAS channel, keyed from the DH shared secret.
pub fn ias_session(secret: &[u8]) -> Tdes {
    let k_enc = ias_kdf(secret, KDF_ENC);
    let k_mac = ias_kdf(secret, KDF_MAC);
    Tdes::from_keys(&k_enc, &k_mac)
}

/// The ICAO session suite for `alg`, keyed from a shared secret (PACE, Chip
/// Authentication) or a BAC key seed: `KDF(secret, 1)` and `KDF(secret, 2)`.
pub fn icao_session(secret: &[u8], alg: KeyAlgorithm) -> Box<dyn SmCipher> {
    let k_enc = kdf(secret, KDF_ENC, alg);
    let k_mac = kdf(secret, KDF_MAC, alg);
    match alg {
        KeyAlgorithm::Tdes => {
            let mut enc = Zeroizing::new([0u8; 16]);
            let mut mac = Zeroizing::new([0u8; 16]);
            enc.copy_from_slice(&k_enc);
            mac.copy_from_slice(&k_mac);
            Box::new(Tdes::from_keys(&enc, &mac))
        }
        // KDF output has exactly the key length of its algorithm.
        _ => Box::new(Aes { k_enc, k_mac }),
    }
}

/// BAC `K_seed = SHA-1(MRZ information)[0..16]`, where the MRZ information is document
/// number ‖ check digit ‖ date of birth ‖ check digit ‖ date of expiry ‖ check digit, as
/// printed (`<` fillers kept), e.g. `L898902C<369080619406236`.
pub fn bac_key_seed(mrz_information: &[u8]) -> Zeroizing<[u8; 16]> {
    let digest = mrz_secret(mrz_information);
    let mut seed = Zeroizing::new([0u8; 16]);
    seed.copy_from_slice(&digest[..16]);
    seed
}

/// The PACE MRZ password `K = SHA-1(MRZ information)` (9303-11 §9.7.3), all 20 bytes;
/// `K_π = kdf(K, KDF_PACE, alg)`.
pub fn mrz_secret(mrz_information: &[u8]) -> Zeroizing<[u8; 20]> {
    let mut out = Zeroizing::new([0u8; 20]);
    out.copy_from_slice(&Sha1::digest(mrz_information));
    out
}
