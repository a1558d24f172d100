//! Chip Authentication v1 (9303-11 §6.2), chip side, under the access-control SM:
//!
//! - ECDH on P-256 with AES-128: MSE:Set AT `41 A4 {80 id-CA-ECDH-AES-CBC-CMAC-128}` then
//!   GENERAL AUTHENTICATE `7C{80 PK_PCD}`, answered `7C 00`;
//! - DH on the RFC 5114 §2.3 group with 3DES (what the CIE's DG14 carries, emrtd.md §6):
//!   MSE:Set KAT `41 A6 {91 PK_PCD}`.
//!
//! The answer is still protected with the old keys; SM restarts with KDF(K) and SSC 0 from
//! the next command.

use num_bigint_dig::BigUint;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{ProjectivePoint, Scalar};

use super::crypto::Cipher;
use super::lds::{bsi_oid, der_int};
use super::pace::{ec_point, encode_point, scalar_from};
use super::sm::SmSession;
use crate::ber::{self, tlv};
use crate::ias::dh::{DhGroup, fixed};

/// The chip's static ECDH CA key (scalar; fixture of `gen-test-pki`).
const CA_KEY: &[u8; 32] = include_bytes!("../../testdata/emrtd_ca_p256_key.bin");
/// The chip's static DH CA exponent (fixture of `gen-test-pki`).
const CA_DH_KEY: &[u8; 32] = include_bytes!("../../testdata/emrtd_ca_dh_key.bin");

/// The Chip Authentication a virtual chip offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipAuth {
    /// id-CA-ECDH-AES-CBC-CMAC-128, P-256 key; Set AT + GENERAL AUTHENTICATE.
    EcdhP256Aes128,
    /// id-CA-DH-3DES-CBC-CBC, RFC 5114 §2.3 group (as the CIE); Set KAT.
    Dh3desParam2,
}

impl ChipAuth {
    /// The CA protocol OID (DER content bytes).
    pub fn oid(self) -> Vec<u8> {
        match self {
            ChipAuth::EcdhP256Aes128 => oid(),
            ChipAuth::Dh3desParam2 => bsi_oid(&[0x03, 0x01, 0x01]),
        }
    }

    /// The static public key: `04 ‖ X ‖ Y`, or y as 256 bytes.
    pub fn public_key(self) -> Vec<u8> {
        match self {
            ChipAuth::EcdhP256Aes128 => public_key(),
            ChipAuth::Dh3desParam2 => {
                let g = DhGroup::rfc5114_2048_256();
                let p = BigUint::from_bytes_be(&g.p);
                let y = BigUint::from_bytes_be(&g.g).modpow(&BigUint::from_bytes_be(CA_DH_KEY), &p);
                fixed(&y, g.p.len())
            }
        }
    }

    /// DG14 SecurityInfos for this CA.
    pub fn security_infos(self) -> Vec<u8> {
        match self {
            ChipAuth::EcdhP256Aes128 => security_infos(),
            ChipAuth::Dh3desParam2 => dh_security_infos(),
        }
    }
}

/// id-CA-ECDH-AES-CBC-CMAC-128.
pub fn oid() -> Vec<u8> {
    bsi_oid(&[0x03, 0x02, 0x02])
}

/// ChipAuthenticationInfo (v1) and ChipAuthenticationPublicKeyInfo (id-PK-DH, SPKI with
/// X9.42 `dhpublicnumber` domain parameters p, g, q and the public value as INTEGER).
fn dh_security_infos() -> Vec<u8> {
    let g = DhGroup::rfc5114_2048_256();
    let int = |v: &[u8]| {
        let v = if v.first().is_some_and(|b| b & 0x80 != 0) {
            [&[0u8][..], v].concat()
        } else {
            v.to_vec()
        };
        tlv(&[0x02], &v)
    };
    let info = tlv(
        &[0x30],
        &[tlv(&[0x06], &ChipAuth::Dh3desParam2.oid()), der_int(1)].concat(),
    );
    let alg = tlv(
        &[0x30],
        &[
            tlv(&[0x06], &[0x2A, 0x86, 0x48, 0xCE, 0x3E, 0x02, 0x01]),
            tlv(&[0x30], &[int(&g.p), int(&g.g), int(&g.q)].concat()),
        ]
        .concat(),
    );
    let mut bits = vec![0x00];
    bits.extend(int(&ChipAuth::Dh3desParam2.public_key()));
    let spki = tlv(&[0x30], &[alg, tlv(&[0x03], &bits)].concat());
    let pk_info = tlv(
        &[0x30],
        &[tlv(&[0x06], &bsi_oid(&[0x01, 0x01])), spki].concat(),
    );
    [info, pk_info].concat()
}

/// MSE:Set KAT data `91 PK_PCD [84 keyId]` → the new 3DES session.
pub(crate) fn key_agreement_dh(pk_pcd: &[u8]) -> Result<SmSession, u16> {
    let g = DhGroup::rfc5114_2048_256();
    if pk_pcd.len() > g.p.len() || !g.is_valid_public(pk_pcd) {
        return Err(0x6A80);
    }
    let p = BigUint::from_bytes_be(&g.p);
    let k = BigUint::from_bytes_be(pk_pcd).modpow(&BigUint::from_bytes_be(CA_DH_KEY), &p);
    Ok(SmSession::from_secret(Cipher::Tdes, &fixed(&k, g.p.len())))
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
