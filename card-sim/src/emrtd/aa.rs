//! Active Authentication, chip side (9303-11 §6.1): INTERNAL AUTHENTICATE `00 88 00 00`
//! with the terminal's 8-byte challenge, answered with an ISO/IEC 9796-2 digital signature
//! scheme 1 (partial message recovery, SHA-1, trailer `BC`) under the DG15 RSA key, or
//! with a plain (TR-03111 `r ‖ s`) ECDSA-SHA-256 signature under a P-256 key, the hash
//! named by DG14's ActiveAuthenticationInfo.

use num_bigint_dig::BigUint;
use rand_core::RngCore;
use rsa::RsaPrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

use super::crypto::sha1;
use crate::ias::dh::fixed;

/// Sign `challenge`: F = `6A ‖ M1 ‖ SHA-1(M1 ‖ challenge) ‖ BC` with a random M1 filling
/// the modulus, then F^d mod n as |n| bytes.
pub(crate) fn sign(key: &RsaPrivateKey, challenge: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    let k = key.size();
    let mut m1 = vec![0u8; k - 22];
    rng.fill_bytes(&mut m1);
    let mut m = m1.clone();
    m.extend_from_slice(challenge);
    let mut f = vec![0x6A];
    f.extend_from_slice(&m1);
    f.extend_from_slice(&sha1(&m));
    f.push(0xBC);
    let s = BigUint::from_bytes_be(&f).modpow(key.d(), key.n());
    fixed(&s, k)
}

/// ECDSA-SHA-256 over the challenge, `r ‖ s` (64 bytes).
pub(crate) fn sign_ecdsa(key: &p256::ecdsa::SigningKey, challenge: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    let sig: p256::ecdsa::Signature = key.sign(challenge);
    sig.to_bytes().to_vec()
}
