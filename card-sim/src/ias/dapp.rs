//! Card-side checks of the DAPP ("device authentication with privacy protection",
//! IAS-ECC §5.2.3, cie.md §3.2 step 9): the terminal's CV certificate (ISO 9796-2 scheme 1
//! with SHA-256, message recovery), its EXTERNAL AUTHENTICATE signature, and the chip's own
//! INTERNAL AUTHENTICATE answer.

use num_bigint_dig::BigUint;
use rand_core::RngCore;
use rsa::RsaPrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::ber;
use crate::ias::dh::fixed;

/// CV certificate profile indicator.
pub(crate) const CPI: u8 = 0x8A;
/// The CV certificate's algorithm OID bytes: IAS "RSA SHA-256" (`…04 01` ‖ `04`).
pub(crate) const CV_OID: [u8; 9] = [0x2A, 0x81, 0x22, 0xF4, 0x2A, 0x02, 0x04, 0x01, 0x04];
const SHA256_LEN: usize = 32;

/// A raw RSA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawPublicKey {
    pub n: BigUint,
    pub e: BigUint,
}

impl RawPublicKey {
    /// Modulus length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.n.bits().div_ceil(8)
    }

    /// `s^e mod n` as |n| bytes; `None` if `s` is not below n.
    pub(crate) fn apply(&self, s: &[u8]) -> Option<Vec<u8>> {
        let s = BigUint::from_bytes_be(s);
        if s >= self.n {
            return None;
        }
        Some(fixed(&s.modpow(&self.e, &self.n), self.len()))
    }
}

/// The terminal's CV certificate after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TerminalCert {
    /// Certificate holder reference (12 bytes: `00000000 ‖ SN.IFD`).
    pub chr: Vec<u8>,
    /// The terminal's (DAPP) public key.
    pub key: RawPublicKey,
}

/// ISO 9796-2 scheme 1 (SHA-256) recovery: `m = 6A ‖ recovered ‖ H ‖ BC`. Returns
/// `(recovered, H)`.
fn open_9796(m: &[u8]) -> Option<(&[u8], &[u8])> {
    if m.len() < SHA256_LEN + 2 || m[0] != 0x6A || m[m.len() - 1] != 0xBC {
        return None;
    }
    let split = m.len() - 1 - SHA256_LEN;
    Some((&m[1..split], &m[split..m.len() - 1]))
}

/// Verify PSO VERIFY CERTIFICATE data `7F21{5F37 sig, 5F38 PKrem, 42 CAR}` with the CA key.
/// The body is `CPI ‖ CAR(8) ‖ CHR(12) ‖ CHA(|aid|+1) ‖ OID(9) ‖ n ‖ e(4)`.
pub(crate) fn verify_cv_certificate(
    ca: &RawPublicKey,
    ca_car: &[u8],
    ca_aid: &[u8],
    data: &[u8],
) -> Result<TerminalCert, u16> {
    const WRONG_DATA: u16 = 0x6A80;
    const NOT_FOUND: u16 = 0x6A88;
    let outer = ber::parse_all(data).ok_or(WRONG_DATA)?;
    let [cert] = outer.as_slice() else {
        return Err(WRONG_DATA);
    };
    if cert.tag != [0x7F, 0x21] {
        return Err(WRONG_DATA);
    }
    let inner = ber::parse_all(cert.value).ok_or(WRONG_DATA)?;
    let sig = ber::find(&inner, &[0x5F, 0x37]).ok_or(WRONG_DATA)?;
    let rem = ber::find(&inner, &[0x5F, 0x38]).ok_or(WRONG_DATA)?;
    let car = ber::find(&inner, &[0x42]).ok_or(WRONG_DATA)?;
    if car != ca_car {
        return Err(NOT_FOUND);
    }
    if sig.len() != ca.len() {
        return Err(WRONG_DATA);
    }
    let m = ca.apply(sig).ok_or(WRONG_DATA)?;
    let (recovered, hash) = open_9796(&m).ok_or(WRONG_DATA)?;
    let mut body = recovered.to_vec();
    body.extend_from_slice(rem);
    if Sha256::digest(&body).as_slice() != hash {
        return Err(WRONG_DATA);
    }
    // Parse the body.
    let cha_len = ca_aid.len() + 1;
    let fixed_len = 1 + 8 + 12 + cha_len + CV_OID.len();
    if body.len() <= fixed_len + 4 {
        return Err(WRONG_DATA);
    }
    let (head, key) = body.split_at(fixed_len);
    let (cpi, rest) = head.split_at(1);
    let (car_in, rest) = rest.split_at(8);
    let (chr, rest) = rest.split_at(12);
    let (cha, oid) = rest.split_at(cha_len);
    if cpi != [CPI] || car_in != ca_car || !cha.starts_with(ca_aid) || oid != CV_OID {
        return Err(WRONG_DATA);
    }
    let (n, e) = key.split_at(key.len() - 4);
    let key = RawPublicKey {
        n: BigUint::from_bytes_be(n),
        e: BigUint::from_bytes_be(e),
    };
    if key.len() < 64 || key.e < BigUint::from(3u8) {
        return Err(WRONG_DATA);
    }
    Ok(TerminalCert {
        chr: chr.to_vec(),
        key,
    })
}

/// Everything the DAPP signatures hash besides PRND and the challenges.
#[derive(Debug, Clone)]
pub(crate) struct Transcript<'a> {
    pub puk_ifd: &'a [u8],
    pub puk_icc: &'a [u8],
    pub g: &'a [u8],
    pub p: &'a [u8],
    pub q: &'a [u8],
}

/// Check EXTERNAL AUTHENTICATE data `SN.IFD ‖ SIG` (cie.md step 9.7): `SIG^e = 6A ‖ PRND ‖
/// SHA256(PRND ‖ PuK.IFD ‖ SN.IFD ‖ RND.ICC ‖ PuK.ICC ‖ g ‖ p ‖ q) ‖ BC`.
pub(crate) fn verify_external_auth(
    terminal: &TerminalCert,
    t: &Transcript<'_>,
    rnd_icc: &[u8],
    data: &[u8],
) -> bool {
    let Some((sn_ifd, sig)) = data.split_at_checked(8) else {
        return false;
    };
    if sn_ifd != &terminal.chr[4..] || sig.len() != terminal.key.len() {
        return false;
    }
    let Some(m) = terminal.key.apply(sig) else {
        return false;
    };
    let Some((prnd, hash)) = open_9796(&m) else {
        return false;
    };
    let mut h = Sha256::new();
    for part in [prnd, t.puk_ifd, sn_ifd, rnd_icc, t.puk_icc, t.g, t.p, t.q] {
        h.update(part);
    }
    h.finalize().as_slice() == hash
}

/// The chip's INTERNAL AUTHENTICATE answer (step 9.9): `SN.ICC ‖ SIG.ICC` with
/// `SIG.ICC = (6A ‖ PRND2 ‖ SHA256(PRND2 ‖ PuK.ICC ‖ SN.ICC ‖ RND.IFD ‖ PuK.IFD ‖ g ‖ p ‖ q)
/// ‖ BC)^d` under the 1004 key.
pub(crate) fn internal_auth_answer(
    key: &RsaPrivateKey,
    sn_icc: &[u8; 8],
    t: &Transcript<'_>,
    rnd_ifd: &[u8],
    rng: &mut dyn RngCore,
) -> Vec<u8> {
    let k = key.size();
    let mut prnd = vec![0u8; k - SHA256_LEN - 2];
    rng.fill_bytes(&mut prnd);
    let mut h = Sha256::new();
    for part in [
        &prnd[..],
        t.puk_icc,
        &sn_icc[..],
        rnd_ifd,
        t.puk_ifd,
        t.g,
        t.p,
        t.q,
    ] {
        h.update(part);
    }
    let mut m = vec![0x6A];
    m.extend_from_slice(&prnd);
    m.extend_from_slice(&h.finalize());
    m.push(0xBC);
    let mut out = sn_icc.to_vec();
    out.extend(raw_private(key, &m));
    out
}

/// Raw RSA private operation `m^d mod n` (CRT), |n| bytes.
pub(crate) fn raw_private(key: &RsaPrivateKey, m: &[u8]) -> Vec<u8> {
    let c = BigUint::from_bytes_be(m);
    let s = rsa::hazmat::rsa_decrypt_and_check::<rand_chacha::ChaCha20Rng>(key, None, &c)
        .map(|s| s.to_bytes_be())
        .unwrap_or_default();
    let mut out = vec![0u8; key.size().saturating_sub(s.len())];
    out.extend_from_slice(&s);
    out
}
