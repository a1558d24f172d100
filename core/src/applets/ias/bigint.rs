//! Modular exponentiation for the IAS key agreement and raw RSA, on constant-time big
//! integers (the DH exponent is a session secret).

use super::IasError;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};

/// `base^exp mod modulus`, big-endian, left-padded to the modulus length. Fails on an even
/// or zero modulus, or a base not below the modulus (never reduced silently: a card value
/// out of range is an attack or a bug).
pub fn modexp(base: &[u8], exp: &[u8], modulus: &[u8]) -> Result<Vec<u8>, IasError> {
    modexp_with(base, exp, modulus, false)
}

/// [`modexp`] for a public exponent (an RSA public key's `e`, a group order): the time
/// depends on the exponent's bit length, so `e = 65537` costs 17 squarings instead of a
/// whole limb's worth, and a verification with `e = 1` almost nothing. Never for a secret.
pub fn modexp_public(base: &[u8], exp: &[u8], modulus: &[u8]) -> Result<Vec<u8>, IasError> {
    modexp_with(base, exp, modulus, true)
}

fn modexp_with(
    base: &[u8],
    exp: &[u8],
    modulus: &[u8],
    public_exponent: bool,
) -> Result<Vec<u8>, IasError> {
    let modulus = strip(modulus);
    if modulus.is_empty() {
        return Err(IasError::malformed("modulus", "zero"));
    }
    let len = modulus.len();
    let bits = bits_for(len);
    let n = BoxedUint::from_be_slice(modulus, bits)
        .map_err(|_| IasError::malformed("modulus", "does not fit"))?;
    let n = Odd::new(n)
        .into_option()
        .ok_or_else(|| IasError::malformed("modulus", "even"))?;
    let base = strip(base);
    if base.len() > len || (base.len() == len && base >= modulus) {
        return Err(IasError::malformed("big integer", "not below the modulus"));
    }
    let b = BoxedUint::from_be_slice(base, bits)
        .map_err(|_| IasError::malformed("big integer", "does not fit"))?;
    let exp = strip(exp);
    let e = BoxedUint::from_be_slice(exp, bits_for(exp.len().max(1)))
        .map_err(|_| IasError::malformed("exponent", "does not fit"))?;
    let params = BoxedMontyParams::new(n);
    let form = BoxedMontyForm::new(b, &params);
    let r = if public_exponent {
        form.pow_bounded_exp(&e, e.bit_width()).retrieve()
    } else {
        form.pow(&e).retrieve()
    };
    let bytes = r.to_be_bytes();
    // Limb-aligned: cut to the modulus length (the value is below the modulus).
    Ok(bytes[bytes.len() - len..].to_vec())
}

/// `a < b` for big-endian magnitudes of any lengths.
pub fn less_than(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (strip(a), strip(b));
    a.len() < b.len() || (a.len() == b.len() && a < b)
}

/// Without leading zero bytes.
pub fn strip(v: &[u8]) -> &[u8] {
    let skip = v.iter().take_while(|b| **b == 0).count();
    &v[skip..]
}

fn bits_for(bytes: usize) -> u32 {
    // Whole 64-bit limbs, as the boxed integers store them.
    u32::try_from(bytes.div_ceil(8) * 64).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_padded() {
        assert_eq!(modexp(&[3], &[5], &[7]).unwrap(), vec![5]);
        assert_eq!(
            modexp(&[0, 3], &[0, 5], &[0, 0, 0x01, 0x01]).unwrap(),
            vec![0x00, 0xF3]
        );
        // 2^10 mod 1009 = 1024 - 1009 = 15, padded to 2 bytes.
        assert_eq!(
            modexp(&[2], &[10], &[0x03, 0xF1]).unwrap(),
            vec![0x00, 0x0F]
        );
    }

    #[test]
    fn public_exponent_gives_the_same_values() {
        // 2^10 mod 1009, 3^5 mod 7, e = 1 and e = 0 (x^0 = 1), a 1024-bit modulus with e = 65537.
        let n: Vec<u8> = std::iter::repeat_n(0xFF, 127).chain([0xF1]).collect();
        let x: Vec<u8> = (1..=100u8).collect();
        for (b, e, m) in [
            (&[2u8][..], &[10u8][..], &[0x03u8, 0xF1][..]),
            (&[3], &[5], &[7]),
            (&x[..], &[1], &n[..]),
            (&x[..], &[0], &n[..]),
            (&x[..], &[0x01, 0x00, 0x01], &n[..]),
        ] {
            assert_eq!(modexp_public(b, e, m).unwrap(), modexp(b, e, m).unwrap());
        }
        assert!(modexp_public(&[3], &[5], &[8]).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(modexp(&[3], &[5], &[8]).is_err());
        assert!(modexp(&[3], &[5], &[]).is_err());
        assert!(modexp(&[7], &[5], &[7]).is_err());
        assert!(modexp(&[1, 0], &[5], &[0xFF]).is_err());
    }

    #[test]
    fn rsa_round_trip_with_the_published_dapp_key() {
        // cie.md Appendix A: (m^e)^d = m for the DAPP pair, e = 65537.
        use crate::applets::ias::constants::{DAPP_EXPONENT, DAPP_MODULUS, DAPP_PRIVATE_EXPONENT};
        let m = [0x42u8; 200];
        let c = modexp(&m, &DAPP_EXPONENT, &DAPP_MODULUS).unwrap();
        let back = modexp(&c, &DAPP_PRIVATE_EXPONENT, &DAPP_MODULUS).unwrap();
        assert_eq!(strip(&back), &m[..]);
    }

    #[test]
    fn comparison() {
        assert!(less_than(&[0, 1], &[2]));
        assert!(!less_than(&[2], &[0, 2]));
        assert!(less_than(&[1, 0], &[1, 1]));
    }
}
