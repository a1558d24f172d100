//! The two secure-messaging cipher suites: 3DES (BAC, PACE-3DES, the CIE IAS channel) and
//! AES (PACE/Chip Authentication with AES-128/192/256), behind one trait.
//!
//! | | 3DES | AES |
//! |---|---|---|
//! | encryption | 2-key 3DES-CBC, IV = 0 | AES-CBC, IV = AES-ECB(K_enc, SSC) |
//! | MAC | ISO 9797-1 MAC algorithm 3 (retail MAC) over single DES | AES-CMAC, first 8 bytes |
//! | block and SSC | 8 bytes | 16 bytes |
//!
//! Keys live in [`Zeroizing`] buffers and the RustCrypto key schedules built from them are
//! dropped (and, with their `zeroize` features, wiped) after each operation. `Debug` never
//! shows key bytes.

use super::{SmError, Ssc};
use cipher::block_padding::NoPadding;
use cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use cmac::Mac;
use std::fmt;
use zeroize::Zeroizing;

/// Length of the MAC carried in `DO8E` by both suites.
pub const MAC_LEN: usize = 8;

/// A secure-messaging cipher suite holding its two session keys.
pub trait SmCipher: Send + Sync + fmt::Debug {
    /// Cipher block size: 8 (3DES) or 16 (AES). Padding and the SSC use it.
    fn block_size(&self) -> usize;

    /// SSC length, equal to the block size.
    fn ssc_len(&self) -> usize {
        self.block_size()
    }

    /// Encrypt `data` in place in CBC mode with this suite's IV rule; `data` must already be
    /// padded to whole blocks. `ssc` is the counter value of the message being protected.
    fn encrypt(&self, ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError>;

    /// Decrypt `data` in place (whole blocks), IV as for [`SmCipher::encrypt`].
    fn decrypt(&self, ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError>;

    /// The 8-byte MAC of `data` with the MAC session key. Secure messaging pads its input
    /// with [`pad`] first; the 3DES MAC pads an unaligned tail with zeros (method 1) and
    /// AES-CMAC pads on its own, so other callers (PACE tokens) choose their padding.
    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN];
}

/// ISO/IEC 9797-1 padding method 2 (ISO 7816-4): append `80`, then `00` up to a whole
/// number of `block` bytes. Always adds at least one byte.
pub fn pad(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    pad_in_place(&mut out, block);
    out
}

/// [`pad`] on a buffer.
pub fn pad_in_place(buf: &mut Vec<u8>, block: usize) {
    buf.push(0x80);
    while !buf.len().is_multiple_of(block) {
        buf.push(0x00);
    }
}

/// Remove method-2 padding: the data up to the last `80`, which only `00`s may follow, within
/// the last block.
pub fn unpad(data: &[u8], block: usize) -> Result<&[u8], SmError> {
    let zeros = data.iter().rev().take_while(|b| **b == 0).count();
    let marker = data
        .len()
        .checked_sub(zeros + 1)
        .ok_or(SmError::BadPadding)?;
    if data[marker] != 0x80 || zeros >= block {
        return Err(SmError::BadPadding);
    }
    Ok(&data[..marker])
}

fn check_blocks(data: &[u8], block: usize) -> Result<(), SmError> {
    if data.len().is_multiple_of(block) {
        Ok(())
    } else {
        Err(SmError::BadObjectLength("cryptogram"))
    }
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), SmError>
where
    C: BlockCipherEncrypt + KeyInit,
{
    let enc = cbc::Encryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| SmError::InvalidKey(key.len()))?;
    let len = data.len();
    enc.encrypt_padded::<NoPadding>(data, len)
        .map_err(|_| SmError::BadObjectLength("cryptogram"))?;
    Ok(())
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), SmError>
where
    C: cipher::BlockCipherDecrypt + KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| SmError::InvalidKey(key.len()))?;
    dec.decrypt_padded::<NoPadding>(data)
        .map_err(|_| SmError::BadObjectLength("cryptogram"))?;
    Ok(())
}

/// 3DES secure messaging (two-key 3DES, K1 ‖ K2): ICAO BAC/PACE-3DES and the CIE IAS
/// channel (cie.md §3.3).
pub struct Tdes {
    k_enc: Zeroizing<[u8; 16]>,
    k_mac: Zeroizing<[u8; 16]>,
}

impl fmt::Debug for Tdes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tdes { keys: <redacted> }")
    }
}

impl Tdes {
    /// From 16-byte encryption and MAC keys (DES parity bits are ignored).
    pub fn new(k_enc: &[u8], k_mac: &[u8]) -> Result<Self, SmError> {
        Ok(Self {
            k_enc: key16(k_enc)?,
            k_mac: key16(k_mac)?,
        })
    }

    /// From keys already known to be 16 bytes.
    pub fn from_keys(k_enc: &[u8; 16], k_mac: &[u8; 16]) -> Self {
        Self {
            k_enc: Zeroizing::new(*k_enc),
            k_mac: Zeroizing::new(*k_mac),
        }
    }
}

fn key16(key: &[u8]) -> Result<Zeroizing<[u8; 16]>, SmError> {
    let mut out = Zeroizing::new([0u8; 16]);
    if key.len() != 16 {
        return Err(SmError::InvalidKey(key.len()));
    }
    out.copy_from_slice(key);
    Ok(out)
}

impl SmCipher for Tdes {
    fn block_size(&self) -> usize {
        8
    }

    fn encrypt(&self, _ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError> {
        check_blocks(data, 8)?;
        cbc_encrypt::<des::TdesEde2>(&self.k_enc[..], &[0; 8], data)
    }

    fn decrypt(&self, _ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError> {
        check_blocks(data, 8)?;
        cbc_decrypt::<des::TdesEde2>(&self.k_enc[..], &[0; 8], data)
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        // ISO 9797-1 MAC algorithm 3: single-DES CBC with K1, last block through
        // DES⁻¹(K2) and DES(K1). The key is always 16 bytes here, so this cannot fail.
        let Ok(mut mac) = retail_mac::RetailMac::<des::Des>::new_from_slice(&self.k_mac[..]) else {
            return [0; MAC_LEN];
        };
        mac.update(data);
        let tag = mac.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&tag[..MAC_LEN]);
        out
    }
}

/// AES secure messaging (PACE / Chip Authentication with AES-128, -192 or -256).
pub struct Aes {
    pub(super) k_enc: Zeroizing<Vec<u8>>,
    pub(super) k_mac: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Aes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aes{} {{ keys: <redacted> }}", self.k_enc.len() * 8)
    }
}

impl Aes {
    /// From encryption and MAC keys of 16, 24 or 32 bytes (both the same length).
    pub fn new(k_enc: &[u8], k_mac: &[u8]) -> Result<Self, SmError> {
        for key in [k_enc, k_mac] {
            if !matches!(key.len(), 16 | 24 | 32) {
                return Err(SmError::InvalidKey(key.len()));
            }
        }
        if k_enc.len() != k_mac.len() {
            return Err(SmError::InvalidKey(k_mac.len()));
        }
        Ok(Self {
            k_enc: Zeroizing::new(k_enc.to_vec()),
            k_mac: Zeroizing::new(k_mac.to_vec()),
        })
    }

    /// IV = AES-ECB(K_enc, SSC) (9303-11 §9.8.6.2).
    fn iv(&self, ssc: &Ssc) -> Result<Zeroizing<[u8; 16]>, SmError> {
        if ssc.len() != 16 {
            return Err(SmError::SscLength {
                expected: 16,
                got: ssc.len(),
            });
        }
        let mut iv = Zeroizing::new([0u8; 16]);
        iv.copy_from_slice(ssc.as_bytes());
        let block = (&mut iv[..])
            .try_into()
            .map_err(|_| SmError::InvalidKey(16))?;
        match self.k_enc.len() {
            16 => ecb::<aes::Aes128>(&self.k_enc, block),
            24 => ecb::<aes::Aes192>(&self.k_enc, block),
            _ => ecb::<aes::Aes256>(&self.k_enc, block),
        }?;
        Ok(iv)
    }
}

fn ecb<C>(key: &[u8], block: &mut cipher::Block<C>) -> Result<(), SmError>
where
    C: BlockCipherEncrypt + KeyInit,
{
    let c = C::new_from_slice(key).map_err(|_| SmError::InvalidKey(key.len()))?;
    c.encrypt_block(block);
    Ok(())
}

impl SmCipher for Aes {
    fn block_size(&self) -> usize {
        16
    }

    fn encrypt(&self, ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError> {
        check_blocks(data, 16)?;
        let iv = self.iv(ssc)?;
        match self.k_enc.len() {
            16 => cbc_encrypt::<aes::Aes128>(&self.k_enc, &iv[..], data),
            24 => cbc_encrypt::<aes::Aes192>(&self.k_enc, &iv[..], data),
            _ => cbc_encrypt::<aes::Aes256>(&self.k_enc, &iv[..], data),
        }
    }

    fn decrypt(&self, ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError> {
        check_blocks(data, 16)?;
        let iv = self.iv(ssc)?;
        match self.k_enc.len() {
            16 => cbc_decrypt::<aes::Aes128>(&self.k_enc, &iv[..], data),
            24 => cbc_decrypt::<aes::Aes192>(&self.k_enc, &iv[..], data),
            _ => cbc_decrypt::<aes::Aes256>(&self.k_enc, &iv[..], data),
        }
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let tag = match self.k_mac.len() {
            16 => cmac_of::<aes::Aes128>(&self.k_mac, data),
            24 => cmac_of::<aes::Aes192>(&self.k_mac, data),
            _ => cmac_of::<aes::Aes256>(&self.k_mac, data),
        };
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&tag[..MAC_LEN]);
        out
    }
}

/// Full 16-byte AES-CMAC (NIST SP 800-38B).
fn cmac_of<C>(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 16]>
where
    C: BlockCipherEncrypt + KeyInit + cipher::BlockSizeUser<BlockSize = cipher::consts::U16>,
    cmac::Cmac<C>: KeyInit + Mac,
{
    let mut out = Zeroizing::new([0u8; 16]);
    if let Ok(mut mac) = <cmac::Cmac<C> as KeyInit>::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    }
    out
}

/// The full 16-byte AES-CMAC of `data` under `key` (16, 24 or 32 bytes), for tests against
/// the RFC 4493 / SP 800-38B vectors and for PACE tokens.
pub fn aes_cmac(key: &[u8], data: &[u8]) -> Result<[u8; 16], SmError> {
    let tag = match key.len() {
        16 => cmac_of::<aes::Aes128>(key, data),
        24 => cmac_of::<aes::Aes192>(key, data),
        32 => cmac_of::<aes::Aes256>(key, data),
        n => return Err(SmError::InvalidKey(n)),
    };
    Ok(*tag)
}
