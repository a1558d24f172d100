//! Device authentication with privacy protection (IAS ECC §5.2.3; cie.md §3.2 step 9): the
//! terminal proves itself with a CV certificate under the published CA key and the
//! published DAPP key, then the chip proves itself with its own key (EF 1004).
//!
//! Signatures here are ISO 9796-2 scheme 1 with SHA-256: `6A ‖ M1 ‖ SHA-256(M) ‖ BC`,
//! raw RSA, where M1 is the part of the message that fits (message recovery).

use super::IasError;
use super::bigint::{modexp, modexp_public};
use super::constants::{
    CA_PRIVATE_EXPONENT, CPI, CV_OID, DAPP_EXPONENT, DAPP_MODULUS, DAPP_PRIVATE_EXPONENT, SN_IFD,
};
use super::dh::{CaKey, DhGroup};
use super::pubkey::RsaPublicKey;
use crate::tlv::{self, Tag};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Header and trailer of an ISO 9796-2 scheme-1 representative with SHA-256.
const ISO9796_HEADER: u8 = 0x6A;
const ISO9796_TRAILER: u8 = 0xBC;

/// CHR of the terminal: four zero bytes and SN.IFD.
pub fn terminal_chr() -> [u8; 12] {
    let mut chr = [0u8; 12];
    chr[4..].copy_from_slice(&SN_IFD);
    chr
}

/// The terminal CV certificate, `7F21{5F37 signature, 5F38 remainder, 42 CAR}`.
pub fn terminal_certificate(ca: &CaKey) -> Result<Vec<u8>, IasError> {
    let mut body = Vec::with_capacity(297);
    body.push(CPI);
    body.extend_from_slice(&ca.car);
    body.extend_from_slice(&terminal_chr());
    body.extend_from_slice(&ca.aid);
    body.push(0x01);
    body.extend_from_slice(&CV_OID);
    body.extend_from_slice(&DAPP_MODULUS);
    body.extend_from_slice(&DAPP_EXPONENT);
    let k = ca.modulus.len();
    if k < 64 || body.len() < k - 34 {
        return Err(IasError::malformed("CA key", "modulus of unexpected size"));
    }
    // As much of the body as fits next to the hash; the rest travels in clear (5F38).
    let fit = k - Sha256::output_size() - 2;
    let representative = iso9796_representative(&body[..fit], &Sha256::digest(&body));
    let signature = modexp(&representative, &CA_PRIVATE_EXPONENT, &ca.modulus)?;
    let mut inner = tlv::encode_to_vec(Tag::new(0x5F37), &signature);
    tlv::encode(Tag::new(0x5F38), &body[fit..], &mut inner);
    tlv::encode(Tag::new(0x42), &ca.car, &mut inner);
    Ok(tlv::encode_to_vec(Tag::new(0x7F21), &inner))
}

fn iso9796_representative(recoverable: &[u8], hash: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(recoverable.len() + hash.len() + 2);
    m.push(ISO9796_HEADER);
    m.extend_from_slice(recoverable);
    m.extend_from_slice(hash);
    m.push(ISO9796_TRAILER);
    m
}

/// What both sides hash in the DAPP signatures, in the order each side uses.
pub struct Transcript<'a> {
    /// The group.
    pub group: &'a DhGroup,
    /// Terminal DH public value.
    pub ifd_public: &'a [u8],
    /// Card DH public value.
    pub icc_public: &'a [u8],
}

impl Transcript<'_> {
    /// EXTERNAL AUTHENTICATE data: `SN.IFD ‖ SIG`, SIG over
    /// `PRND ‖ PuK.IFD ‖ SN.IFD ‖ RND.ICC ‖ PuK.ICC ‖ g ‖ p ‖ q` with the DAPP key.
    /// `prnd` are random bytes filling the representative (222 for a 2048-bit key).
    pub fn external_authenticate(&self, rnd_icc: &[u8], prnd: &[u8]) -> Result<Vec<u8>, IasError> {
        if prnd.len() != prnd_len() {
            return Err(IasError::malformed("random padding", "wrong length"));
        }
        let mut h = Sha256::new();
        for part in [
            prnd,
            self.ifd_public,
            &SN_IFD,
            rnd_icc,
            self.icc_public,
            &self.group.g,
            &self.group.p,
            &self.group.q,
        ] {
            h.update(part);
        }
        let representative = iso9796_representative(prnd, &h.finalize());
        let sig = modexp(&representative, &DAPP_PRIVATE_EXPONENT, &DAPP_MODULUS)?;
        let mut out = SN_IFD.to_vec();
        out.extend_from_slice(&sig);
        Ok(out)
    }

    /// Check the chip's INTERNAL AUTHENTICATE answer `SN.ICC(8) ‖ SIG` with its EF 1004
    /// key: the recovered `6A ‖ PRND2 ‖ H ‖ BC` must carry
    /// `H = SHA-256(PRND2 ‖ PuK.ICC ‖ SN.ICC ‖ RND.IFD ‖ PuK.IFD ‖ g ‖ p ‖ q)`.
    /// Returns SN.ICC. A failure means the chip is not genuine (or the link is attacked).
    pub fn check_chip(
        &self,
        chip_key: &RsaPublicKey,
        rnd_ifd: &[u8],
        answer: &[u8],
    ) -> Result<[u8; 8], IasError> {
        let forged = || IasError::NotGenuine;
        if answer.len() != 8 + chip_key.modulus.len() {
            return Err(forged());
        }
        let (sn_icc, sig) = answer.split_at(8);
        let m = modexp_public(sig, &chip_key.exponent, &chip_key.modulus)?;
        let hlen = Sha256::output_size();
        if m.len() < hlen + 2 || m[0] != ISO9796_HEADER || m[m.len() - 1] != ISO9796_TRAILER {
            return Err(forged());
        }
        let prnd2 = &m[1..m.len() - 1 - hlen];
        let got = &m[m.len() - 1 - hlen..m.len() - 1];
        let mut h = Sha256::new();
        for part in [
            prnd2,
            self.icc_public,
            sn_icc,
            rnd_ifd,
            self.ifd_public,
            &self.group.g,
            &self.group.p,
            &self.group.q,
        ] {
            h.update(part);
        }
        if !bool::from(h.finalize().as_slice().ct_eq(got)) {
            return Err(forged());
        }
        let mut sn = [0u8; 8];
        sn.copy_from_slice(sn_icc);
        Ok(sn)
    }
}

/// Random padding length for a 2048-bit DAPP key: 256 - 32 (hash) - 2.
pub fn prnd_len() -> usize {
    DAPP_MODULUS.len() - Sha256::output_size() - 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_layout_matches_the_official_middleware() {
        let ca = CaKey {
            modulus: DAPP_MODULUS.to_vec(), // any 2048-bit modulus will do for the layout
            exponent: vec![1, 0, 1],
            car: b"ITALY000".to_vec(),
            aid: vec![0xA0, 0, 0, 0, 0, 0x39],
        };
        let cert = terminal_certificate(&ca).unwrap();
        // 354 bytes, as the official client sends it (cie.md §9), chained 231 + 123 under SM.
        assert_eq!(cert.len(), 354);
        let outer = tlv::Tlv::from_bytes(&cert).unwrap();
        assert_eq!(outer.tag, Tag::new(0x7F21));
        assert_eq!(
            outer.require(Tag::new(0x5F37), "sig").unwrap().value.len(),
            256
        );
        assert_eq!(
            outer.require(Tag::new(0x5F38), "rem").unwrap().value.len(),
            297 - 222
        );
        assert_eq!(
            outer.require(Tag::new(0x42), "car").unwrap().value,
            b"ITALY000"
        );
    }
}
