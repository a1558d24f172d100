//! PACE v2 with Generic Mapping, DH and ECDH (ICAO 9303-11 §4.4, App. G):
//!
//! 1. MSE:Set AT `00 22 C1 A4` { `80` OID, `83` password reference, [`84` parameter ID] };
//! 2. GENERAL AUTHENTICATE (chained, CLA `10`) `7C 00` → `7C { 80 z }`; the nonce
//!    `s = D(K_π, z)` with `K_π = KDF(π, 3)`, CBC, IV 0;
//! 3. `7C { 81 PK_map }` → `7C { 82 PK_map,chip }`; `H = SK_map · PK_map,chip`, the mapped
//!    generator `Ĝ = s·G + H` (EC) or `ĝ = g^s · h mod p` (DH);
//! 4. `7C { 83 PK_eph }` → `7C { 84 PK_eph,chip }`, shared secret `K` (x coordinate, or
//!    `PK^SK mod p`), session keys `KDF(K, 1)`, `KDF(K, 2)`;
//! 5. (CLA `00`) `7C { 85 T_IFD }` → `7C { 86 T_ICC [87 CAR] [88 CAR] }`, tokens the MAC
//!    of `7F49 { 06 OID, 86 point | 84 y }` of the *other* side's key, 3DES retail MAC
//!    over padded input or AES-CMAC, 8 bytes; the chip's checked in constant time.
//!
//! Then secure messaging starts with SSC 0. One attempt per call: a refused secret is
//! returned as [`EmrtdError::WrongSecret`], never retried (chips slow down after each
//! failure, emrtd.md §1.8). Integrated Mapping and Chip Authentication Mapping are not
//! implemented ([`EmrtdError::Unsupported`]).

use super::card_access::{KeyAgreement, Mapping, PaceInfo, SecurityInfos};
use super::domain::DomainParameters;
use super::{EmrtdError, PacePassword, Randomness, SecretKind};
use crate::apdu::{ApduChannel, ApduError, Command, SHORT_MAX_DATA, SHORT_MAX_LE, Sw};
use crate::sm::cipher::pad;
use crate::sm::kdf::{self, KDF_PACE, KeyAlgorithm};
use crate::sm::{SecureChannel, SmCipher, Ssc};
use crate::tlv::{Tag, Tlv, encode_to_vec};
use cipher::block_padding::NoPadding;
use cipher::{BlockModeDecrypt, KeyIvInit};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const INS_MSE: u8 = 0x22;
const INS_GENERAL_AUTHENTICATE: u8 = 0x86;
const TAG_DYNAMIC: u32 = 0x7C;

/// Choices a caller may need to make about how PACE is framed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceConfig {
    /// Send `84 <parameter ID>` in MSE:Set AT even when the card advertises one set of
    /// domain parameters for the protocol. 9303-11 makes it conditional and the CIE logs
    /// omit it (default `false`); some passports require it (gmrtd #108).
    pub send_parameter_id: bool,
}

/// Run PACE with the configuration [`SecurityInfos::choose_pace`] picks from the card's
/// EF.CardAccess, and return the secure channel (SSC 0).
pub async fn pace_with_card_access<C: ApduChannel>(
    ch: C,
    card_access: &SecurityInfos,
    password: &PacePassword,
    rng: &dyn Randomness,
) -> Result<SecureChannel<C>, EmrtdError> {
    let info = card_access.choose_pace().ok_or_else(|| {
        EmrtdError::Unsupported("none of the card's PACE configurations".to_owned())
    })?;
    let config = PaceConfig {
        send_parameter_id: card_access.parameters_ambiguous(info.protocol),
    };
    pace(ch, info, password, rng, config).await
}

/// Run PACE as `info` describes over `ch` (the MF or eMRTD application selected) and return
/// the secure channel over `ch`, SSC 0.
pub async fn pace<C: ApduChannel>(
    ch: C,
    info: &PaceInfo,
    password: &PacePassword,
    rng: &dyn Randomness,
    config: PaceConfig,
) -> Result<SecureChannel<C>, EmrtdError> {
    let protocol = info.protocol;
    if protocol.mapping != Mapping::Generic {
        return Err(EmrtdError::Unsupported(format!(
            "PACE {:?} Mapping",
            protocol.mapping
        )));
    }
    let param_id = info
        .parameter_id
        .ok_or_else(|| EmrtdError::Unsupported("proprietary PACE domain parameters".to_owned()))?;
    let params = DomainParameters::standardized(param_id)?;
    match (protocol.agreement, params) {
        (KeyAgreement::Dh, DomainParameters::Dh(_))
        | (KeyAgreement::Ecdh, DomainParameters::Ec(_)) => {}
        _ => {
            return Err(EmrtdError::malformed(
                "PACEInfo",
                "domain parameters do not match the protocol",
            ));
        }
    }
    let kind = password.kind();
    let oid = protocol.oid();

    // 1. MSE:Set AT.
    let mut mse = encode_to_vec(Tag::new(0x80), &oid);
    mse.extend_from_slice(&[0x83, 0x01, password.key_reference()]);
    if config.send_parameter_id {
        let id = u8::try_from(param_id)
            .map_err(|_| EmrtdError::malformed("PACEInfo", "parameter ID too large"))?;
        mse.extend_from_slice(&[0x84, 0x01, id]);
    }
    let resp = ch
        .transmit(&Command::new(0x00, INS_MSE, 0xC1, 0xA4).with_data(mse))
        .await?;
    status(resp.sw, INS_MSE, kind)?;

    // 2. Encrypted nonce.
    let z = general_authenticate(&ch, true, None, 0x80, kind).await?;
    let k_pi = kdf::kdf(&password.secret(), KDF_PACE, protocol.cipher);
    let s = decrypt_nonce(&k_pi, protocol.cipher, &z)?;
    drop(k_pi);

    // 3-4. Mapping and key agreement.
    let (secret, ifd_key, icc_key, key_tag) = match params {
        DomainParameters::Ec(curve) => {
            let ops = curve.ops();
            let sk_map = ops.private_key(rng)?;
            let pk_map = ops.mul_base(&sk_map)?;
            let chip_map =
                general_authenticate(&ch, true, Some((0x81, &pk_map)), 0x82, kind).await?;
            let h = Zeroizing::new(ops.mul(&chip_map, &sk_map)?);
            drop(sk_map);
            let g_hat = ops.map(&s, &h)?;
            let sk = ops.private_key(rng)?;
            let pk = ops.mul(&g_hat, &sk)?;
            let chip_pk = general_authenticate(&ch, true, Some((0x83, &pk)), 0x84, kind).await?;
            if chip_pk == pk {
                return Err(EmrtdError::CardAuthenticationFailed);
            }
            let k = ops.shared_x(&chip_pk, &sk)?;
            (k, pk, chip_pk, 0x86u8)
        }
        DomainParameters::Dh(group) => {
            let len = group.p.len();
            let sk_map = group.private_key(rng)?;
            let pk_map = group.pow(group.g, &sk_map)?;
            let chip_map =
                general_authenticate(&ch, true, Some((0x81, &pk_map)), 0x82, kind).await?;
            group.check_public(&chip_map)?;
            let h = Zeroizing::new(group.pow(&chip_map, &sk_map)?);
            drop(sk_map);
            let g_hat = group.map(&s, &h)?;
            let sk = group.private_key(rng)?;
            let pk = group.pow(&g_hat, &sk)?;
            let chip_pk = general_authenticate(&ch, true, Some((0x83, &pk)), 0x84, kind).await?;
            group.check_public(&chip_pk)?;
            let chip_pk = left_pad(&chip_pk, len);
            if chip_pk == pk {
                return Err(EmrtdError::CardAuthenticationFailed);
            }
            let k = Zeroizing::new(group.pow(&chip_pk, &sk)?);
            (k, pk, chip_pk, 0x84u8)
        }
    };
    drop(s);

    // 5. Mutual authentication with tokens.
    let session = kdf::icao_session(&secret, protocol.cipher);
    drop(secret);
    let t_ifd = token(&*session, &oid, key_tag, &icc_key);
    let t_icc_expected = token(&*session, &oid, key_tag, &ifd_key);
    let t_icc = general_authenticate(&ch, false, Some((0x85, &t_ifd)), 0x86, kind).await?;
    if t_icc.len() != t_icc_expected.len() || !bool::from(t_icc.ct_eq(&t_icc_expected[..])) {
        return Err(EmrtdError::CardAuthenticationFailed);
    }
    let ssc = Ssc::zero(session.ssc_len())?;
    Ok(SecureChannel::new(ch, session, ssc)?)
}

/// The authentication token: MAC of `7F49 { 06 OID, tag key }`; 3DES pads (ISO 9797-1
/// method 2) before the retail MAC, AES-CMAC pads on its own.
pub fn token(session: &dyn SmCipher, oid: &[u8], key_tag: u8, key: &[u8]) -> [u8; 8] {
    let mut inner = encode_to_vec(Tag::new(0x06), oid);
    inner.extend(encode_to_vec(Tag::new(u32::from(key_tag)), key));
    let obj = encode_to_vec(Tag::new(0x7F49), &inner);
    if session.block_size() == 8 {
        session.mac(&pad(&obj, 8))
    } else {
        session.mac(&obj)
    }
}

/// `s = D(K_π, z)`: CBC with a zero IV (not the SSC-derived IV of AES secure messaging).
pub fn decrypt_nonce(
    k_pi: &[u8],
    alg: KeyAlgorithm,
    z: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EmrtdError> {
    let block = if alg == KeyAlgorithm::Tdes { 8 } else { 16 };
    if z.is_empty() || !z.len().is_multiple_of(block) {
        return Err(EmrtdError::malformed("encrypted nonce", "not whole blocks"));
    }
    let mut s = Zeroizing::new(z.to_vec());
    let bad = |_| EmrtdError::malformed("encrypted nonce", "cannot decrypt");
    match alg {
        KeyAlgorithm::Tdes => cbc_decrypt::<des::TdesEde2>(k_pi, &[0; 8], &mut s),
        KeyAlgorithm::Aes128 => cbc_decrypt::<aes::Aes128>(k_pi, &[0; 16], &mut s),
        KeyAlgorithm::Aes192 => cbc_decrypt::<aes::Aes192>(k_pi, &[0; 16], &mut s),
        KeyAlgorithm::Aes256 => cbc_decrypt::<aes::Aes256>(k_pi, &[0; 16], &mut s),
    }
    .map_err(bad)?;
    Ok(s)
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), ()>
where
    C: cipher::BlockCipherDecrypt + cipher::KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| ())?;
    dec.decrypt_padded::<NoPadding>(data).map_err(|_| ())?;
    Ok(())
}

fn left_pad(v: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.saturating_sub(v.len())];
    out.extend_from_slice(v);
    out
}

/// One GENERAL AUTHENTICATE step: send `7C { tag value }` (or `7C 00`), return the value of
/// `want` in the answer's `7C`.
async fn general_authenticate<C: ApduChannel + ?Sized>(
    ch: &C,
    chained: bool,
    data: Option<(u8, &[u8])>,
    want: u8,
    kind: SecretKind,
) -> Result<Vec<u8>, EmrtdError> {
    let inner = data
        .map(|(tag, v)| encode_to_vec(Tag::new(u32::from(tag)), v))
        .unwrap_or_default();
    let body = encode_to_vec(Tag::new(TAG_DYNAMIC), &inner);
    let limits = ch.limits();
    // The APDU layer would split long data with ISO chaining, which PACE already uses for
    // its own steps: a DH-2048 key (264 bytes) needs one extended APDU (emrtd.md §1.9).
    if body.len() > limits.max_command_data {
        return Err(ApduError::ExtendedLengthUnsupported.into());
    }
    let le = if body.len() > SHORT_MAX_DATA {
        limits.max_response_data.max(SHORT_MAX_LE)
    } else {
        SHORT_MAX_LE
    };
    let cla = if chained { 0x10 } else { 0x00 };
    let resp = ch
        .transmit(
            &Command::new(cla, INS_GENERAL_AUTHENTICATE, 0x00, 0x00)
                .with_data(body)
                .with_le(le),
        )
        .await?;
    status(resp.sw, INS_GENERAL_AUTHENTICATE, kind)?;
    let obj = Tlv::from_bytes(&resp.data)?;
    if obj.tag != Tag::new(TAG_DYNAMIC) {
        return Err(EmrtdError::malformed(
            "GENERAL AUTHENTICATE answer",
            "not 7C",
        ));
    }
    let value = obj
        .find(Tag::new(u32::from(want)))?
        .ok_or_else(|| EmrtdError::malformed("GENERAL AUTHENTICATE answer", "missing object"))?;
    Ok(value.value.to_vec())
}

/// A status word during access control: `6300`/`63Cx` is the card refusing the secret,
/// `6983` a blocked one; any other error passes through as the APDU status.
pub(crate) fn status(sw: Sw, ins: u8, kind: SecretKind) -> Result<(), EmrtdError> {
    match sw.0 {
        0x9000 => Ok(()),
        0x6300 => Err(EmrtdError::WrongSecret {
            kind,
            remaining: None,
        }),
        0x63C0..=0x63CF => Err(EmrtdError::WrongSecret {
            kind,
            remaining: Some(sw.sw2() & 0x0F),
        }),
        0x6983 => Err(EmrtdError::SecretBlocked),
        _ => Err(ApduError::Status { sw, ins }.into()),
    }
}
