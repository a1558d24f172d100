//! Chip Authentication v1 with ECDH on P-256 and AES-128 (9303-11 §6.2), chip side:
//! MSE:Set AT `41 A4 {80 id-CA-ECDH-AES-CBC-CMAC-128}` then GENERAL AUTHENTICATE
//! `7C{80 PK_PCD}` under the access-control SM. The answer `7C 00` is still protected with
//! the old keys; SM restarts with KDF(K) and SSC 0 from the next command.

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{ProjectivePoint, Scalar};

use super::crypto::Cipher;
use super::lds::{bsi_oid, der_int};
use super::pace::{ec_point, encode_point, scalar_from};
use super::sm::SmSession;
use crate::ber::{self, tlv};

/// The chip's static CA key (scalar; fixture of `gen-test-pki`).
const CA_KEY: &[u8; 32] = include_bytes!("../../testdata/emrtd_ca_p256_key.bin");

/// id-CA-ECDH-AES-CBC-CMAC-128.
pub fn oid() -> Vec<u8> {
    bsi_oid(&[0x03, 0x02, 0x02])
}

fn secret() -> Scalar {
    scalar_from(CA_KEY)
}

/// The static public key, `04 ‖ X ‖ Y`.
pub fn public_key() -> Vec<u8> {
    encode_point(&(ProjectivePoint::GENERATOR * secret()))
}

/// DG14 SecurityInfos for CA: ChipAuthenticationInfo (v1) and
/// ChipAuthenticationPublicKeyInfo (id-PK-ECDH, SPKI on the named curve prime256v1; real
/// CSCA-era chips often use explicit parameters instead).
pub fn security_infos() -> Vec<u8> {
    let info = tlv(&[0x30], &[tlv(&[0x06], &oid()), der_int(1)].concat());
    let alg = tlv(
        &[0x30],
        &[
            tlv(&[0x06], &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]),
            tlv(&[0x06], &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]),
        ]
        .concat(),
    );
    let mut bits = vec![0x00];
    bits.extend(public_key());
    let spki = tlv(&[0x30], &[alg, tlv(&[0x03], &bits)].concat());
    let pk_info = tlv(
        &[0x30],
        &[tlv(&[0x06], &bsi_oid(&[0x01, 0x02])), spki].concat(),
    );
    [info, pk_info].concat()
}

/// GENERAL AUTHENTICATE data `7C{80 PK_PCD}` → (`7C 00`, the new session).
pub(crate) fn authenticate(data: &[u8]) -> Result<(Vec<u8>, SmSession), u16> {
    let objs = match ber::parse_one(data) {
        Some((t, rest)) if t.tag == [0x7C] && rest.is_empty() => {
            ber::parse_all(t.value).ok_or(0x6A80u16)?
        }
        _ => return Err(0x6A80),
    };
    let pk = ber::find(&objs, &[0x80]).ok_or(0x6A80u16)?;
    let peer = ec_point(pk).ok_or(0x6A80u16)?;
    let k = (peer * secret()).to_affine().to_encoded_point(false);
    let x = k.x().ok_or(0x6A80u16)?.to_vec();
    Ok((
        tlv(&[0x7C], &[]),
        SmSession::from_secret(Cipher::Aes128, &x),
    ))
}
