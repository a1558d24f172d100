//! The secrets a citizen types to open the eMRTD application: the CAN (PACE) or the MRZ
//! data (PACE and BAC). Held in zeroized buffers; `Debug` never shows them.

use super::{EmrtdError, SecretKind};
use crate::sm::kdf::mrz_secret;
use std::fmt;
use zeroize::Zeroizing;

/// The Card Access Number: the 6 digits printed on the front of the CIE (and of other ID
/// cards).
pub struct Can(Zeroizing<String>);

impl fmt::Debug for Can {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Can(<redacted>)")
    }
}

impl Can {
    /// Check and keep a CAN: exactly 6 ASCII digits (spaces around are trimmed).
    pub fn new(can: &str) -> Result<Self, EmrtdError> {
        let can = can.trim();
        if can.len() != 6 || !can.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmrtdError::InvalidInput {
                what: "CAN",
                reason: "must be 6 digits",
            });
        }
        Ok(Self(Zeroizing::new(can.to_owned())))
    }
}

/// The MRZ data BAC and PACE-MRZ use: document number, date of birth, date of expiry, each
/// with its check digit (9303-11 §9.7.2 "MRZ information").
pub struct Mrz(Zeroizing<String>);

impl fmt::Debug for Mrz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mrz(<redacted>)")
    }
}

impl Mrz {
    /// From the printed fields: document number (letters, digits, `<`; shorter than 9 is
    /// padded with `<`, longer is kept whole as TD1 cards continue it in the optional
    /// field), dates as `YYMMDD`. Check digits are computed here.
    pub fn new(document_number: &str, birth: &str, expiry: &str) -> Result<Self, EmrtdError> {
        let doc: String = document_number.trim().to_ascii_uppercase();
        if doc.is_empty()
            || doc.len() > 22
            || !doc
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'<')
        {
            return Err(EmrtdError::InvalidInput {
                what: "document number",
                reason: "letters and digits only, at most 22",
            });
        }
        let mut doc = Zeroizing::new(doc);
        while doc.len() < 9 {
            doc.push('<');
        }
        for (what, date) in [("date of birth", birth), ("date of expiry", expiry)] {
            if !is_date(date) {
                return Err(EmrtdError::InvalidInput {
                    what,
                    reason: "must be YYMMDD",
                });
            }
        }
        let mut info = Zeroizing::new(String::with_capacity(doc.len() + 15));
        for field in [doc.as_str(), birth, expiry] {
            info.push_str(field);
            info.push(char::from(b'0' + check_digit(field.as_bytes())));
        }
        Ok(Self(info))
    }

    /// From an MRZ information string as printed in worked examples
    /// (`L898902C<369080619406236`): characters checked, check digits taken as given.
    pub fn from_information(info: &str) -> Result<Self, EmrtdError> {
        if info.len() < 24
            || !info
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'<')
        {
            return Err(EmrtdError::InvalidInput {
                what: "MRZ information",
                reason: "at least 24 MRZ characters",
            });
        }
        Ok(Self(Zeroizing::new(info.to_owned())))
    }

    /// The MRZ information bytes (document number ‖ cd ‖ birth ‖ cd ‖ expiry ‖ cd).
    pub fn information(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let month = (b[2] - b'0') * 10 + (b[3] - b'0');
    let day = (b[4] - b'0') * 10 + (b[5] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// ICAO 9303-3 §4.9 check digit: weights 7, 3, 1 repeating; `0-9` → 0-9, `A-Z` → 10-35,
/// `<` → 0; sum mod 10.
pub fn check_digit(field: &[u8]) -> u8 {
    let sum: u32 = field
        .iter()
        .zip([7u32, 3, 1].iter().cycle())
        .map(|(c, w)| {
            let v = match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                b'A'..=b'Z' => u32::from(c - b'A') + 10,
                _ => 0,
            };
            v * w
        })
        .sum();
    (sum % 10) as u8
}

/// The password PACE runs with.
#[derive(Debug)]
pub enum PacePassword {
    /// Card Access Number (key reference `02`).
    Can(Can),
    /// MRZ data (key reference `01`).
    Mrz(Mrz),
}

impl PacePassword {
    /// MSE:Set AT key reference (`83`): 01 MRZ, 02 CAN (9303-11 §4.4.4.1).
    pub fn key_reference(&self) -> u8 {
        match self {
            Self::Mrz(_) => 0x01,
            Self::Can(_) => 0x02,
        }
    }

    /// Which secret, for error messages.
    pub fn kind(&self) -> SecretKind {
        match self {
            Self::Mrz(_) => SecretKind::Mrz,
            Self::Can(_) => SecretKind::Can,
        }
    }

    /// π, the input of `K_π = KDF(π, 3)`: SHA-1 of the MRZ information, or the CAN's ASCII
    /// digits as they are (9303-11 §9.7.3).
    pub fn secret(&self) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Mrz(m) => Zeroizing::new(mrz_secret(m.information()).to_vec()),
            Self::Can(c) => Zeroizing::new(c.0.as_bytes().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icao_specimen_mrz_information() {
        let m = Mrz::new("L898902C", "690806", "940623").unwrap();
        assert_eq!(m.information(), b"L898902C<369080619406236");
        // TD1 long document number (9303-11 App. D.2 / dmrtd): full number, its check digit.
        let m = Mrz::new("D23145890734", "340712", "950712").unwrap();
        assert_eq!(m.information(), b"D23145890734934071279507122");
        assert!(!format!("{m:?}").contains("D23"));
    }

    #[test]
    fn bad_inputs() {
        assert!(Mrz::new("", "690806", "940623").is_err());
        assert!(Mrz::new("L89-8902", "690806", "940623").is_err());
        assert!(Mrz::new("L898902C", "691306", "940623").is_err());
        assert!(Mrz::new("L898902C", "69080", "940623").is_err());
        assert!(Can::new("12345").is_err());
        assert!(Can::new("12345a").is_err());
        assert!(Can::new("1234567").is_err());
        let can = Can::new(" 123456 ").unwrap();
        assert_eq!(format!("{can:?}"), "Can(<redacted>)");
        let p = PacePassword::Can(can);
        assert_eq!(&p.secret()[..], b"123456");
        assert_eq!(p.key_reference(), 2);
    }

    #[test]
    fn check_digits() {
        assert_eq!(check_digit(b"L898902C<"), 3);
        assert_eq!(check_digit(b"690806"), 1);
        assert_eq!(check_digit(b"940623"), 6);
    }
}
