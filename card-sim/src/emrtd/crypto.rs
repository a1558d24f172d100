//! Symmetric primitives of ICAO 9303-11 §9.7-§9.8, chip side: the key derivation function,
//! 3DES (two-key, CBC, retail MAC) and AES-128 (CBC, CMAC) with ISO/IEC 9797-1 padding
//! method 2. Written for the card only; the 3DES block code is the IAS applet's.

use aes::Aes128;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use cmac::{Cmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::ias::sm::{retail_mac, tdes_cbc};

/// The session cipher a protocol agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// Two-key 3DES-CBC, ISO 9797-1 MAC algorithm 3; 8-byte SSC.
    Tdes,
    /// AES-128-CBC, AES-CMAC truncated to 8 bytes; 16-byte SSC.
    Aes128,
}

impl Cipher {
    /// Block size in bytes (also the SSC length).
    pub fn block(self) -> usize {
        match self {
            Cipher::Tdes => 8,
            Cipher::Aes128 => 16,
        }
    }
}

/// `KDF(Z, c)` (9303-11 §9.7.1): SHA-1 of `Z ‖ c` (32-bit big-endian), first 16 bytes, for
/// both 3DES (K1‖K2, DES parity adjusted) and AES-128.
pub fn kdf(z: &[u8], counter: u32, cipher: Cipher) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(z);
    h.update(counter.to_be_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    if cipher == Cipher::Tdes {
        adjust_parity(&mut k);
    }
    k
}

/// Odd DES parity in every byte (DES ignores the bit; done so keys compare equal to the
/// published vectors).
pub fn adjust_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let ones = (*b >> 1).count_ones();
        *b = (*b & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// ISO/IEC 9797-1 padding method 2 to `block` bytes (always adds `80`).
pub fn pad(v: &mut Vec<u8>, block: usize) {
    v.push(0x80);
    while !v.len().is_multiple_of(block) {
        v.push(0);
    }
}

/// Remove method-2 padding; `None` when absent.
pub fn unpad(v: &mut Vec<u8>) -> Option<()> {
    let pos = v.iter().rposition(|b| *b != 0)?;
    if v[pos] != 0x80 {
        return None;
    }
    v.truncate(pos);
    Some(())
}

/// CBC over whole blocks with the given IV.
pub fn cbc(cipher: Cipher, key: &[u8; 16], iv: &[u8], input: &[u8], encrypt: bool) -> Vec<u8> {
    match cipher {
        // 9303 3DES always runs with IV 0.
        Cipher::Tdes => tdes_cbc(key, input, encrypt),
        Cipher::Aes128 => {
            let aes = Aes128::new(GenericArray::from_slice(key));
            let mut prev = [0u8; 16];
            prev.copy_from_slice(&iv[..16]);
            let mut out = Vec::with_capacity(input.len());
            for block in input.chunks_exact(16) {
                let mut b = GenericArray::clone_from_slice(block);
                if encrypt {
                    for (x, p) in b.iter_mut().zip(prev) {
                        *x ^= p;
                    }
                    aes.encrypt_block(&mut b);
                    prev.copy_from_slice(&b);
                } else {
                    aes.decrypt_block(&mut b);
                    for (x, p) in b.iter_mut().zip(prev) {
                        *x ^= p;
                    }
                    prev.copy_from_slice(block);
                }
                out.extend_from_slice(&b);
            }
            out
        }
    }
}

/// One AES block encryption (the SM IV is `E(KSenc, SSC)`).
pub fn aes_block(key: &[u8; 16], block: &[u8]) -> [u8; 16] {
    let aes = Aes128::new(GenericArray::from_slice(key));
    let mut b = GenericArray::clone_from_slice(&block[..16]);
    aes.encrypt_block(&mut b);
    let mut out = [0u8; 16];
    out.copy_from_slice(&b);
    out
}

/// The 8-byte MAC of `input`: 3DES pads (method 2) and applies the retail MAC; AES applies
/// CMAC (which pads internally) and keeps the first 8 bytes.
pub fn mac(cipher: Cipher, key: &[u8; 16], input: &[u8]) -> [u8; 8] {
    match cipher {
        Cipher::Tdes => {
            let mut v = input.to_vec();
            pad(&mut v, 8);
            retail_mac(key, &v)
        }
        Cipher::Aes128 => {
            // A 16-byte key always fits; the fallback only keeps this path panic-free.
            let Ok(mut m) = <Cmac<Aes128> as Mac>::new_from_slice(key) else {
                return [0; 8];
            };
            m.update(input);
            let tag = m.finalize().into_bytes();
            let mut out = [0u8; 8];
            out.copy_from_slice(&tag[..8]);
            out
        }
    }
}

/// SHA-256 (DG hashes of the SOD).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// SHA-1 (BAC key seed, ISO 9796-2 with trailer `BC`).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(&Sha1::digest(data));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ias::dh::hex;

    #[test]
    fn bac_kdf_vectors() {
        // 9303-11 App. D.2.
        let seed = hex("239AB9CB282DAF66231DC5A4DF6BFBAE");
        assert_eq!(
            kdf(&seed, 1, Cipher::Tdes).to_vec(),
            hex("AB94FDECF2674FDFB9B391F85D7F76F2")
        );
        assert_eq!(
            kdf(&seed, 2, Cipher::Tdes).to_vec(),
            hex("7962D9ECE03D1ACD4C76089DCE131543")
        );
    }

    #[test]
    fn aes_cmac_rfc4493() {
        // RFC 4493 example 2 (16-byte message), truncated to 8.
        let mut k = [0u8; 16];
        k.copy_from_slice(&hex("2b7e151628aed2a6abf7158809cf4f3c"));
        let m = hex("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            mac(Cipher::Aes128, &k, &m).to_vec(),
            hex("070a16b46b4d4144")
        );
    }
}
