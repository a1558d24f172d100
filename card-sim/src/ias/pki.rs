//! The virtual CIE's keys and certificates: fixtures under `card-sim/testdata/`, made once
//! by `cargo run -p card-sim --bin gen-test-pki --release` and committed. **All test
//! material**: a test CA ("cie-companion TEST CA — not a real authority"), a test CSCA and
//! Document Signer, synthetic holder names and codice fiscale. No real person's data.
//!
//! The ext-auth CA key is special: the terminal signs its CV certificate with the CA
//! private exponent published in every open CIE reader (cie.md Appendix A), and the card
//! returns the modulus. The real card's modulus is not in any public source we found, so the
//! generator makes a modulus for which the published exponent is a valid private exponent
//! (random 1024-bit primes p, q with gcd(d, λ(n)) = 1, then e = d⁻¹ mod λ(n)). The public
//! exponent is therefore about 2048 bits long rather than 65537.

use num_bigint_dig::BigUint;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

use crate::ias::dapp::RawPublicKey;

/// The ext-auth CA modulus the virtual card returns (256 bytes).
pub const CA_EXTAUTH_MODULUS: &[u8] = include_bytes!("../../testdata/ca_extauth_modulus.bin");
/// Its public exponent (the inverse of the published private exponent mod λ(n)).
pub const CA_EXTAUTH_PUBLIC_EXPONENT: &[u8] =
    include_bytes!("../../testdata/ca_extauth_pubexp.bin");
/// Chip internal-authentication key (DAPP, key ref `82`), PKCS#8 DER.
const ICC_KEY: &[u8] = include_bytes!("../../testdata/icc_intauth_key.pk8.der");
/// NIS internal-authentication key (key ref `83`), PKCS#8 DER.
const NIS_KEY: &[u8] = include_bytes!("../../testdata/nis_intauth_key.pk8.der");
/// Authentication/signing key (key ref `81`), PKCS#8 DER.
const AUTH_KEY: &[u8] = include_bytes!("../../testdata/auth_key.pk8.der");

/// The card's authentication certificate (EF 1003 before padding), DER.
pub const AUTH_CERT_DER: &[u8] = include_bytes!("../../testdata/auth_cert.der");
/// The test CA that issued [`AUTH_CERT_DER`], DER.
pub const TEST_CA_CERT_DER: &[u8] = include_bytes!("../../testdata/test_ca_cert.der");
/// The test CSCA that issued [`DS_CERT_DER`], DER.
pub const TEST_CSCA_CERT_DER: &[u8] = include_bytes!("../../testdata/test_csca_cert.der");
/// The test Document Signer that signed [`SOD_DER`], DER.
pub const DS_CERT_DER: &[u8] = include_bytes!("../../testdata/ds_cert.der");
/// EF 1004 contents: PKCS#1 `RSAPublicKey` of the chip key.
pub const EF_1004: &[u8] = include_bytes!("../../testdata/ef_1004.der");
/// EF 1005 contents: PKCS#1 `RSAPublicKey` of the NIS key.
pub const EF_1005: &[u8] = include_bytes!("../../testdata/ef_1005.der");
/// EF D004 (EF.DH) contents: `SEQUENCE { p, g, q }` of the card's DH group. The real file's
/// layout is not public [I].
pub const EF_D004: &[u8] = include_bytes!("../../testdata/ef_d004.der");
/// EF 1006: CMS SignedData (eContentType 2.23.136.1.1.1) over the hashes of EF 1001 (A1),
/// 1002 (A2), 1003 (A3), 1004 (A4), 1005 (A5) and D004 (1B), SHA-256 with RSA PKCS#1 v1.5,
/// signed by the test Document Signer.
pub const SOD_DER: &[u8] = include_bytes!("../../testdata/sod_ias.der");

/// The renewed card's NIS key (ref `83`), PKCS#8 DER ([`CieCard::Renewed`]).
const RENEWED_NIS_KEY: &[u8] = include_bytes!("../../testdata/renewed_nis_intauth_key.pk8.der");
/// The renewed card's authentication key (ref `81`), PKCS#8 DER.
const RENEWED_AUTH_KEY: &[u8] = include_bytes!("../../testdata/renewed_auth_key.pk8.der");
/// The renewed card's authentication certificate (same holder, serial 0x2003), DER.
pub const RENEWED_AUTH_CERT_DER: &[u8] = include_bytes!("../../testdata/renewed_auth_cert.der");
/// The renewed card's EF 1005.
pub const RENEWED_EF_1005: &[u8] = include_bytes!("../../testdata/renewed_ef_1005.der");
/// The renewed card's EF 1006 (same Document Signer).
pub const RENEWED_SOD_DER: &[u8] = include_bytes!("../../testdata/renewed_sod_ias.der");

/// Which of the test holder's two cards: the one every test uses, or its renewal (another
/// NIS, serial, NIS and authentication keys and certificate; same holder, same chip key and
/// eMRTD data), for registration's "a renewed card is linked to the identity".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CieCard {
    /// NIS `000011112222`, serial `CA00000AA`.
    #[default]
    First,
    /// NIS `000033334444`, serial `CA00001BB`.
    Renewed,
}

impl CieCard {
    /// EF 1001 (NIS).
    pub fn nis(self) -> &'static [u8] {
        match self {
            Self::First => crate::cie::SYNTHETIC_NIS,
            Self::Renewed => crate::cie::RENEWED_NIS,
        }
    }
    /// EF 1002 (serial).
    pub fn serial(self) -> &'static [u8] {
        match self {
            Self::First => crate::cie::SYNTHETIC_SERIAL,
            Self::Renewed => crate::cie::RENEWED_SERIAL,
        }
    }
    /// The authentication certificate (EF 1003 before padding).
    pub fn auth_cert_der(self) -> &'static [u8] {
        match self {
            Self::First => AUTH_CERT_DER,
            Self::Renewed => RENEWED_AUTH_CERT_DER,
        }
    }
    /// EF 1005 (NIS public key).
    pub fn ef_1005(self) -> &'static [u8] {
        match self {
            Self::First => EF_1005,
            Self::Renewed => RENEWED_EF_1005,
        }
    }
    /// EF 1006 (IAS SOD, CMS DER).
    pub fn sod(self) -> &'static [u8] {
        match self {
            Self::First => SOD_DER,
            Self::Renewed => RENEWED_SOD_DER,
        }
    }
}

/// The synthetic PIN of the virtual CIE (8 ASCII digits).
pub const TEST_PIN: &[u8; 8] = b"12345678";
/// The synthetic PUK of the virtual CIE.
pub const TEST_PUK: &[u8; 8] = b"87654321";

/// The card's private keys, parsed from the fixtures.
#[derive(Debug, Clone)]
pub(crate) struct CardKeys {
    pub icc: RsaPrivateKey,
    pub nis: RsaPrivateKey,
    pub auth: RsaPrivateKey,
    pub ca: RawPublicKey,
}

impl CardKeys {
    pub(crate) fn load(card: CieCard) -> Self {
        // The fixtures are checked in and tested; a broken one is a build defect.
        let key = |der: &[u8]| {
            #[allow(clippy::expect_used)]
            RsaPrivateKey::from_pkcs8_der(der).expect("valid PKCS#8 fixture")
        };
        Self {
            icc: key(ICC_KEY),
            nis: key(match card {
                CieCard::First => NIS_KEY,
                CieCard::Renewed => RENEWED_NIS_KEY,
            }),
            auth: key(match card {
                CieCard::First => AUTH_KEY,
                CieCard::Renewed => RENEWED_AUTH_KEY,
            }),
            ca: RawPublicKey {
                n: BigUint::from_bytes_be(CA_EXTAUTH_MODULUS),
                e: BigUint::from_bytes_be(CA_EXTAUTH_PUBLIC_EXPONENT),
            },
        }
    }
}
