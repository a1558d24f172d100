//! Basic Access Control, chip side (9303-11 §4.3, App. D): keys from the MRZ information,
//! GET CHALLENGE, then EXTERNAL AUTHENTICATE with `E_IFD ‖ M_IFD` answered by
//! `E_IC ‖ M_IC`; session keys from `K.IFD ⊕ K.IC`, SSC from the two challenges.

use subtle::ConstantTimeEq;

use super::crypto::{Cipher, cbc, kdf, mac, sha1};
use super::sm::SmSession;

/// BAC failure (wrong MRZ keys or a replayed challenge), as passports answer it.
pub(crate) const AUTH_FAILED: u16 = 0x6300;

/// `(K_enc, K_mac)` from the MRZ information: K_seed = SHA-1(info)[..16], then the KDF.
pub fn document_keys(mrz_information: &str) -> ([u8; 16], [u8; 16]) {
    let h = sha1(mrz_information.as_bytes());
    let seed = &h[..16];
    (kdf(seed, 1, Cipher::Tdes), kdf(seed, 2, Cipher::Tdes))
}

/// Check the terminal's cryptogram against `rnd_ic` and answer it with `k_ic`; returns the
/// response data and the session.
pub(crate) fn mutual_authenticate(
    keys: &([u8; 16], [u8; 16]),
    rnd_ic: &[u8; 8],
    k_ic: &[u8; 16],
    data: &[u8],
) -> Result<(Vec<u8>, SmSession), u16> {
    let (k_enc, k_mac) = keys;
    if data.len() != 40 {
        return Err(AUTH_FAILED);
    }
    let (e_ifd, m_ifd) = data.split_at(32);
    if !bool::from(mac(Cipher::Tdes, k_mac, e_ifd).ct_eq(m_ifd)) {
        return Err(AUTH_FAILED);
    }
    let s = cbc(Cipher::Tdes, k_enc, &[0; 8], e_ifd, false);
    if !bool::from(s[8..16].ct_eq(rnd_ic)) {
        return Err(AUTH_FAILED);
    }
    let rnd_ifd = &s[..8];
    let k_ifd = &s[16..32];
    let mut r = rnd_ic.to_vec();
    r.extend_from_slice(rnd_ifd);
    r.extend_from_slice(k_ic);
    let e_ic = cbc(Cipher::Tdes, k_enc, &[0; 8], &r, true);
    let m_ic = mac(Cipher::Tdes, k_mac, &e_ic);
    let seed: Vec<u8> = k_ifd.iter().zip(k_ic).map(|(a, b)| a ^ b).collect();
    let mut ssc = rnd_ic[4..].to_vec();
    ssc.extend_from_slice(&rnd_ifd[4..]);
    let sm = SmSession::new(
        Cipher::Tdes,
        kdf(&seed, 1, Cipher::Tdes),
        kdf(&seed, 2, Cipher::Tdes),
        ssc,
    );
    let mut out = e_ic;
    out.extend_from_slice(&m_ic);
    Ok((out, sm))
}
