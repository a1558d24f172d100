//! The codice fiscale as EF_DatiPersonali carries it: 16 characters with a check letter
//! (DM 23/12/1976, the odd/even tables below), or the 11-digit provisional number.

use std::fmt;

/// A codice fiscale whose shape and check character are right.
#[derive(Clone, PartialEq, Eq)]
pub struct CodiceFiscale(String);

// It identifies a person: Debug shows only its last 4 characters.
impl fmt::Debug for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.get(self.0.len().saturating_sub(4)..).unwrap_or("");
        write!(f, "CodiceFiscale(…{tail})")
    }
}

/// Why a codice fiscale was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodiceFiscaleError {
    /// Not 16 characters in the letters/digits pattern, nor 11 digits.
    #[error("not a codice fiscale (16 letters and digits, or 11 digits)")]
    Shape,
    /// The last character does not match the others.
    #[error("the check character is wrong")]
    CheckCharacter,
}

impl CodiceFiscale {
    /// Check shape and check character. Omocodia letters (`LMNPQRSTUV` for digits) pass.
    pub fn parse(text: &str) -> Result<Self, CodiceFiscaleError> {
        let b = text.as_bytes();
        if b.len() == 11 && b.iter().all(u8::is_ascii_digit) {
            return Ok(Self(text.to_owned()));
        }
        if b.len() != 16 {
            return Err(CodiceFiscaleError::Shape);
        }
        let shape_ok = b.iter().enumerate().all(|(i, &c)| match i {
            0..=5 | 8 | 11 | 15 => c.is_ascii_uppercase(),
            _ => c.is_ascii_digit() || b"LMNPQRSTUV".contains(&c),
        });
        if !shape_ok {
            return Err(CodiceFiscaleError::Shape);
        }
        if check_character(&b[..15]) != Some(b[15]) {
            return Err(CodiceFiscaleError::CheckCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    /// The 16 (or 11) characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check letter of the first 15 characters (uppercase letters and digits).
pub fn check_character(first15: &[u8]) -> Option<u8> {
    // Values of 0-9 then A-Z at odd positions (1st, 3rd, … counting from 1).
    const ODD: [u8; 36] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3,
        6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
    ];
    if first15.len() != 15 {
        return None;
    }
    let mut sum = 0u32;
    for (i, &c) in first15.iter().enumerate() {
        let idx = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        // Even positions count digits as 0-9 and letters as 0-25.
        let even = if idx < 10 { idx } else { idx - 10 };
        sum += u32::from(if i % 2 == 0 {
            ODD[usize::from(idx)]
        } else {
            even
        });
    }
    Some(b'A' + (sum % 26) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_letters() {
        // The textbook example (Mario Rossi, Rome, 1 Jan 1980).
        assert!(CodiceFiscale::parse("RSSMRA80A01H501U").is_ok());
        assert_eq!(
            CodiceFiscale::parse("RSSMRA80A01H501A"),
            Err(CodiceFiscaleError::CheckCharacter)
        );
        assert_eq!(
            CodiceFiscale::parse("RSSMRA80A01H501"),
            Err(CodiceFiscaleError::Shape)
        );
        assert_eq!(
            CodiceFiscale::parse("rssmra80a01h501u"),
            Err(CodiceFiscaleError::Shape)
        );
        assert!(CodiceFiscale::parse("01234567890").is_ok());
        let cf = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
        assert_eq!(format!("{cf:?}"), "CodiceFiscale(…501U)");
    }
}
