//! Basic Access Control (ICAO 9303-11 §4.3, App. D.3): GET CHALLENGE, then EXTERNAL
//! AUTHENTICATE with `E_IFD ‖ M_IFD`, where `E_IFD = 3DES-CBC(K_enc, RND.IFD ‖ RND.IC ‖
//! K.IFD)` and `M_IFD` its retail MAC; the card answers `E_IC ‖ M_IC`. Session keys from
//! `K.IFD ⊕ K.IC`, SSC `RND.IC[4..8] ‖ RND.IFD[4..8]`. One attempt per call.

use super::pace::status;
use super::{EmrtdError, Mrz, Randomness, SecretKind};
use crate::apdu::{ApduChannel, Command};
use crate::sm::cipher::pad;
use crate::sm::kdf::{self, KDF_ENC, KDF_MAC, KeyAlgorithm};
use crate::sm::{SecureChannel, SmCipher, Ssc, Tdes};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const INS_GET_CHALLENGE: u8 = 0x84;
const INS_EXTERNAL_AUTHENTICATE: u8 = 0x82;

/// Run BAC with `mrz` over `ch` (eMRTD application selected) and return the secure channel.
pub async fn bac<C: ApduChannel>(
    ch: C,
    mrz: &Mrz,
    rng: &dyn Randomness,
) -> Result<SecureChannel<C>, EmrtdError> {
    let seed = kdf::bac_key_seed(mrz.information());
    let k_enc = kdf::kdf(&seed[..], KDF_ENC, KeyAlgorithm::Tdes);
    let k_mac = kdf::kdf(&seed[..], KDF_MAC, KeyAlgorithm::Tdes);
    drop(seed);
    let keys = Tdes::new(&k_enc, &k_mac)?;
    // 3DES CBC ignores the SSC (IV 0); the trait asks for one.
    let no_ssc = Ssc::zero(8)?;

    let resp = ch
        .transmit(&Command::new(0x00, INS_GET_CHALLENGE, 0x00, 0x00).with_le(8))
        .await?;
    status(resp.sw, INS_GET_CHALLENGE, SecretKind::Mrz)?;
    let rnd_icc: [u8; 8] = resp
        .data
        .as_slice()
        .try_into()
        .map_err(|_| EmrtdError::malformed("GET CHALLENGE answer", "not 8 bytes"))?;

    let mut rnd_ifd = [0u8; 8];
    rng.fill(&mut rnd_ifd).map_err(|_| EmrtdError::Randomness)?;
    let mut k_ifd = Zeroizing::new([0u8; 16]);
    rng.fill(&mut k_ifd[..])
        .map_err(|_| EmrtdError::Randomness)?;

    let mut cryptogram = Zeroizing::new(Vec::with_capacity(40));
    cryptogram.extend_from_slice(&rnd_ifd);
    cryptogram.extend_from_slice(&rnd_icc);
    cryptogram.extend_from_slice(&k_ifd[..]);
    keys.encrypt(&no_ssc, &mut cryptogram)?;
    let m_ifd = keys.mac(&pad(&cryptogram, 8));
    cryptogram.extend_from_slice(&m_ifd);

    let resp = ch
        .transmit(
            &Command::new(0x00, INS_EXTERNAL_AUTHENTICATE, 0x00, 0x00)
                .with_data(cryptogram.to_vec())
                .with_le(40),
        )
        .await?;
    status(resp.sw, INS_EXTERNAL_AUTHENTICATE, SecretKind::Mrz)?;
    if resp.data.len() != 40 {
        return Err(EmrtdError::malformed(
            "EXTERNAL AUTHENTICATE answer",
            "not 40 bytes",
        ));
    }
    let (e_ic, m_ic) = resp.data.split_at(32);
    if !bool::from(keys.mac(&pad(e_ic, 8)).ct_eq(m_ic)) {
        return Err(EmrtdError::CardAuthenticationFailed);
    }
    let mut r = Zeroizing::new(e_ic.to_vec());
    keys.decrypt(&no_ssc, &mut r)?;
    // R = RND.IC ‖ RND.IFD ‖ K.IC: the card must echo both challenges.
    let echoed = r[..8].ct_eq(&rnd_icc) & r[8..16].ct_eq(&rnd_ifd);
    if !bool::from(echoed) {
        return Err(EmrtdError::CardAuthenticationFailed);
    }
    let mut session_seed = Zeroizing::new([0u8; 16]);
    for (i, out) in session_seed.iter_mut().enumerate() {
        *out = k_ifd[i] ^ r[16 + i];
    }
    let session = kdf::icao_session(&session_seed[..], KeyAlgorithm::Tdes);
    let ssc = Ssc::from_challenges(&rnd_icc, &rnd_ifd);
    Ok(SecureChannel::new(ch, session, ssc)?)
}
