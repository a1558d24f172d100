//! The CNS user PIN: 5 to 8 ASCII digits, sent padded with `FF` to 8 bytes (OpenSC
//! `pkcs15-itacns.c` `itacns_add_pin`: min 5, max 8, pad `0xff`; `card-itacns.c`
//! `SC_PIN_CMD_NEED_PADDING`). Zeroized, never printed.

use super::CnsError;
use super::constants::{PIN_MAX, PIN_MIN, PIN_PAD};
use std::fmt;
use zeroize::Zeroizing;

/// A CNS PIN, already in the 8-byte form VERIFY carries.
#[derive(Clone, PartialEq, Eq)]
pub struct CnsPin(Zeroizing<[u8; PIN_MAX]>);

impl fmt::Debug for CnsPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CnsPin(********)")
    }
}

impl CnsPin {
    /// 5 to 8 ASCII digits; anything else never reaches the card.
    pub fn new(digits: &[u8]) -> Result<Self, CnsError> {
        if !(PIN_MIN..=PIN_MAX).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
            return Err(CnsError::PinFormat);
        }
        let mut out = Zeroizing::new([PIN_PAD; PIN_MAX]);
        out[..digits.len()].copy_from_slice(digits);
        Ok(Self(out))
    }

    /// The VERIFY data: the digits, then `FF` up to 8 bytes.
    pub(crate) fn padded(&self) -> &[u8] {
        &self.0[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_padded_to_eight() {
        let p = CnsPin::new(b"12345").unwrap();
        assert_eq!(p.padded(), b"12345\xFF\xFF\xFF");
        assert_eq!(CnsPin::new(b"12345678").unwrap().padded(), b"12345678");
        for bad in [&b"1234"[..], b"123456789", b"1234a", b"", b"12 45"] {
            assert_eq!(CnsPin::new(bad), Err(CnsError::PinFormat));
        }
        assert_eq!(format!("{p:?}"), "CnsPin(********)");
    }
}
