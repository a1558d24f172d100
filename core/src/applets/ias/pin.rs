//! The CIE PIN and PUK: 8 ASCII digits, kept zeroized and out of logs.

use std::fmt;
use zeroize::Zeroizing;

/// An 8-digit CIE PIN (or PUK). The first 4 digits come with the receipt at the registry
/// office, the last 4 with the card (cie.md §3.4).
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<[u8; 8]>);

// Never print a PIN, not even its length pattern.
impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(********)")
    }
}

/// Why a PIN was refused before reaching the card (no try is spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinFormatError {
    /// Not exactly 8 digits.
    #[error("the PIN is 8 digits")]
    NotEightDigits,
    /// Not exactly 4 digits for a half.
    #[error("type the 4 digits")]
    NotFourDigits,
    /// A new PIN equal to the old one.
    #[error("the new PIN must differ from the current one")]
    SameAsOld,
    /// A new PIN of one repeated digit.
    #[error("the new PIN cannot repeat a single digit")]
    RepeatedDigit,
    /// A new PIN of consecutive digits.
    #[error("the new PIN cannot be an ascending or descending sequence")]
    Sequence,
    /// The new PIN and its repetition differ.
    #[error("the new PIN and its repetition differ")]
    Mismatch,
}

impl PinFormatError {
    /// The message in Italian.
    pub fn message_it(self) -> &'static str {
        match self {
            Self::NotEightDigits => "Il PIN è di 8 cifre.",
            Self::NotFourDigits => "Inserisci le 4 cifre.",
            Self::SameAsOld => "Il nuovo PIN deve essere diverso da quello attuale.",
            Self::RepeatedDigit => "Il nuovo PIN non può ripetere la stessa cifra.",
            Self::Sequence => "Il nuovo PIN non può essere una sequenza crescente o decrescente.",
            Self::Mismatch => {
                "Il nuovo PIN e la sua ripetizione non coincidono: digitali di nuovo."
            }
        }
    }
}

impl Pin {
    /// Exactly 8 ASCII digits.
    pub fn new(digits: &str) -> Result<Self, PinFormatError> {
        let bytes = digits.as_bytes();
        if bytes.len() != 8 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(PinFormatError::NotEightDigits);
        }
        let mut out = Zeroizing::new([0u8; 8]);
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The PIN from its stored first half and the 4 digits the user just typed (the paired
    /// "last 4 digits" login).
    pub fn from_halves(first: &str, last: &str) -> Result<Self, PinFormatError> {
        let ok = |h: &str| h.len() == 4 && h.bytes().all(|b| b.is_ascii_digit());
        if !ok(first) || !ok(last) {
            return Err(PinFormatError::NotFourDigits);
        }
        let mut joined = Zeroizing::new(String::with_capacity(8));
        joined.push_str(first);
        joined.push_str(last);
        Self::new(&joined)
    }

    /// The first 4 digits, for the platform keystore at pairing.
    pub fn first_half(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0[..4].iter().map(|b| char::from(*b)).collect())
    }

    /// The bytes VERIFY sends.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// Check the rules the official apps apply to a new PIN (cie.md §3.4): different from
    /// the old one, not one repeated digit, not an ascending or descending run.
    pub fn check_new(&self, old: &Pin) -> Result<(), PinFormatError> {
        if self.0[..] == old.0[..] {
            return Err(PinFormatError::SameAsOld);
        }
        self.check_rules()
    }

    /// The rules of a new PIN that need no old one (a PIN set with the PUK): not one repeated
    /// digit, not an ascending or descending run.
    pub fn check_rules(&self) -> Result<(), PinFormatError> {
        let d = &self.0;
        if d.iter().all(|b| *b == d[0]) {
            return Err(PinFormatError::RepeatedDigit);
        }
        let steps: Vec<i16> = d
            .windows(2)
            .map(|w| i16::from(w[1]) - i16::from(w[0]))
            .collect();
        if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
            return Err(PinFormatError::Sequence);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_rules() {
        assert!(Pin::new("12345678").is_ok());
        assert_eq!(Pin::new("1234567"), Err(PinFormatError::NotEightDigits));
        assert_eq!(Pin::new("1234567a"), Err(PinFormatError::NotEightDigits));
        assert_eq!(Pin::new("١٢٣٤٥٦٧٨"), Err(PinFormatError::NotEightDigits));
        let p = Pin::from_halves("1234", "9876").unwrap();
        assert_eq!(p.bytes(), b"12349876");
        assert_eq!(&*p.first_half(), "1234");
        assert_eq!(
            Pin::from_halves("123", "98765"),
            Err(PinFormatError::NotFourDigits)
        );
        assert_eq!(format!("{p:?}"), "Pin(********)");
    }

    #[test]
    fn new_pin_rules() {
        let old = Pin::new("13572468").unwrap();
        assert_eq!(
            Pin::new("13572468").unwrap().check_new(&old),
            Err(PinFormatError::SameAsOld)
        );
        assert_eq!(
            Pin::new("55555555").unwrap().check_new(&old),
            Err(PinFormatError::RepeatedDigit)
        );
        assert_eq!(
            Pin::new("12345678").unwrap().check_new(&old),
            Err(PinFormatError::Sequence)
        );
        assert_eq!(
            Pin::new("98765432").unwrap().check_new(&old),
            Err(PinFormatError::Sequence)
        );
        assert!(Pin::new("24681357").unwrap().check_new(&old).is_ok());
    }
}
