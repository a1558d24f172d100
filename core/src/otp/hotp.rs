//! HOTP (RFC 4226) and TOTP (RFC 6238) code generation on RustCrypto `hmac`.
//!
//! Why hand-written on `hmac` rather than a TOTP crate: the surveyed crates either fix the
//! digits/period, refuse times beyond 2^32 s, or keep the seed in a plain `Vec`; the whole
//! algorithm is one HMAC plus dynamic truncation (RFC 4226 §5.3), checked here against
//! every RFC 4226 App. D and RFC 6238 App. B value (tests/tests/otp_vectors.rs).

use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

use super::OtpError;

/// The HMAC hash of a token (`algorithm=` in an otpauth URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, uniffi::Enum)]
pub enum Algorithm {
    /// HMAC-SHA-1, the default and what nearly every issuer uses.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in otpauth URIs.
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parse an otpauth `algorithm` value, case-insensitively; `SHA-256` style is accepted.
    /// Anything else (MD5, SHA224, typos) is refused, never guessed: a wrong guess yields
    /// codes that look right and never work.
    pub fn from_uri_name(name: &str) -> Result<Self, OtpError> {
        match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(OtpError::UnsupportedAlgorithm {
                name: name.to_owned(),
            }),
        }
    }
}

/// A shared secret (seed). Zeroized on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wrap raw seed bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw bytes (for HMAC and for the keystore only).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bits.
    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bits, redacted)", self.bits())
    }
}

/// Smallest and largest code length we generate. RFC 4226 requires at least 6; 31-bit
/// truncation cannot fill more than 9 digits, and no issuer uses 9 or more.
pub const MIN_DIGITS: u8 = 6;
/// See [`MIN_DIGITS`].
pub const MAX_DIGITS: u8 = 8;

/// Check a digit count, refusing what we would have to guess at.
pub fn check_digits(digits: u32) -> Result<u8, OtpError> {
    match u8::try_from(digits) {
        Ok(d) if (MIN_DIGITS..=MAX_DIGITS).contains(&d) => Ok(d),
        _ => Err(OtpError::UnsupportedDigits { digits }),
    }
}

fn mac(alg: Algorithm, key: &[u8], msg: &[u8]) -> Zeroizing<Vec<u8>> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; map the impossible
    // error to an empty tag rather than panic (an empty tag then fails truncation cleanly).
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Zeroizing<Vec<u8>> {
        match <M as KeyInit>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(msg);
                Zeroizing::new(m.finalize().into_bytes().to_vec())
            }
            Err(_) => Zeroizing::new(Vec::new()),
        }
    }
    match alg {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 §5.3 dynamic truncation: the 31-bit value at the offset given by the low
/// nibble of the last byte.
pub fn truncate(tag: &[u8]) -> Option<u32> {
    let offset = usize::from(*tag.last()? & 0x0f);
    let bytes: [u8; 4] = tag.get(offset..offset + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes) & 0x7fff_ffff)
}

/// The HOTP value for `counter`, as a zero-padded decimal string of `digits` digits.
pub fn hotp(
    secret: &Secret,
    counter: u64,
    digits: u8,
    alg: Algorithm,
) -> Result<Zeroizing<String>, OtpError> {
    let digits = check_digits(u32::from(digits))?;
    let tag = mac(alg, secret.expose(), &counter.to_be_bytes());
    let value = truncate(&tag).ok_or(OtpError::Internal {
        reason: "HMAC output too short".into(),
    })?;
    let code = value % 10u32.pow(u32::from(digits));
    Ok(Zeroizing::new(format!(
        "{code:0width$}",
        width = usize::from(digits)
    )))
}

/// TOTP time parameters (RFC 6238 §4.1): step length X and epoch T0, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeStep {
    /// X, the period; 30 by default.
    pub period: u64,
    /// T0, the Unix time when counting starts; 0 by default.
    pub t0: u64,
}

impl Default for TimeStep {
    fn default() -> Self {
        Self { period: 30, t0: 0 }
    }
}

impl TimeStep {
    /// A step definition; a zero period is refused.
    pub fn new(period: u64, t0: u64) -> Result<Self, OtpError> {
        if period == 0 {
            return Err(OtpError::UnsupportedPeriod { period });
        }
        Ok(Self { period, t0 })
    }

    /// The counter T for Unix time `unix` (u64 seconds: the year-2038 limit of 32-bit time
    /// does not apply; RFC 6238 App. B's 20000000000 is a vector).
    pub fn counter(&self, unix: u64) -> Result<u64, OtpError> {
        if self.period == 0 {
            return Err(OtpError::UnsupportedPeriod { period: 0 });
        }
        unix.checked_sub(self.t0)
            .map(|t| t / self.period)
            .ok_or(OtpError::ClockBeforeEpoch { unix, t0: self.t0 })
    }

    /// Seconds until the step containing `unix` ends (1..=period).
    pub fn seconds_remaining(&self, unix: u64) -> u64 {
        match unix.checked_sub(self.t0) {
            Some(t) if self.period > 0 => self.period - t % self.period,
            _ => self.period,
        }
    }
}

/// The TOTP value at Unix time `unix`.
pub fn totp(
    secret: &Secret,
    unix: u64,
    step: TimeStep,
    digits: u8,
    alg: Algorithm,
) -> Result<Zeroizing<String>, OtpError> {
    hotp(secret, step.counter(unix)?, digits, alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_rfc4226_example() {
        // RFC 4226 §5.4 worked example.
        let tag = hex::decode("1f8698690e02ca16618550ef7f19da8e945b555a").unwrap();
        assert_eq!(truncate(&tag), Some(0x50ef7f19));
        assert_eq!(truncate(&[]), None);
        assert_eq!(
            truncate(&[0x0f; 4]),
            None,
            "offset past the end must not panic"
        );
    }

    #[test]
    fn digits_outside_6_to_8_refused() {
        for d in [0, 5, 9, 10, 300] {
            assert!(
                matches!(check_digits(d), Err(OtpError::UnsupportedDigits { .. })),
                "{d}"
            );
        }
        let s = Secret::new(b"12345678901234567890".to_vec());
        assert!(hotp(&s, 0, 5, Algorithm::Sha1).is_err());
    }

    #[test]
    fn time_before_t0_and_zero_period() {
        let step = TimeStep::new(30, 100).unwrap();
        assert!(matches!(
            step.counter(99),
            Err(OtpError::ClockBeforeEpoch { .. })
        ));
        assert_eq!(step.counter(100).unwrap(), 0);
        assert_eq!(step.seconds_remaining(100), 30);
        assert_eq!(step.seconds_remaining(129), 1);
        assert!(TimeStep::new(0, 0).is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(b"12345678901234567890".to_vec());
        let d = format!("{s:?}");
        assert!(!d.contains("3132") && !d.contains("1234"), "{d}");
    }
}
