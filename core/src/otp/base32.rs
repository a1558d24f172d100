//! Base32 (RFC 4648) seeds as people actually paste them: any case, grouped with spaces or
//! dashes, with or without `=` padding. Anything else is refused (a hex or Base64 seed
//! "decoded" as Base32 produces codes that never work; stefansundin/2fa-qr #1).

use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};
use zeroize::Zeroizing;

use super::OtpError;

static BASE32: LazyLock<Option<Encoding>> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    // Some generators leave non-zero bits after the last full byte; they carry no key
    // material, so accepting them loses nothing.
    spec.check_trailing_bits = false;
    spec.encoding().ok()
});

/// Decode a user- or QR-supplied Base32 seed.
pub fn decode(input: &str) -> Result<Zeroizing<Vec<u8>>, OtpError> {
    let mut clean = Zeroizing::new(String::with_capacity(input.len()));
    for c in input.chars() {
        match c {
            ' ' | '\t' | '-' => {}
            'a'..='z' => clean.push(c.to_ascii_uppercase()),
            'A'..='Z' | '2'..='7' | '=' => clean.push(c),
            _ => {
                return Err(OtpError::BadSecret {
                    reason: format!("character {c:?} is not Base32 (A–Z, 2–7)"),
                });
            }
        }
    }
    // Padding only at the end.
    let body = clean.trim_end_matches('=');
    if body.contains('=') {
        return Err(OtpError::BadSecret {
            reason: "'=' inside the secret".into(),
        });
    }
    if body.is_empty() {
        return Err(OtpError::MissingSecret);
    }
    let enc = BASE32.as_ref().ok_or(OtpError::Internal {
        reason: "Base32 table".into(),
    })?;
    enc.decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| OtpError::BadSecret {
            reason: format!("{} Base32 characters cannot encode whole bytes", body.len()),
        })
}

/// Encode without padding, as the Key URI format asks.
pub fn encode(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(data_encoding::BASE32_NOPAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC: &[u8] = b"12345678901234567890";
    const RFC_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn tolerant_forms_decode_the_same() {
        for s in [
            RFC_B32,
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "gezd-gnbv-gy3t-qojq-gezd-gnbv-gy3t-qojq",
        ] {
            assert_eq!(decode(s).unwrap().as_slice(), RFC, "{s}");
        }
        // 10 bytes: 16 chars, no padding needed; 11 bytes: needs padding "======".
        assert_eq!(
            decode("MFRGGZDFMZTWQ2LK").unwrap().as_slice(),
            b"abcdefghij"
        );
        assert_eq!(
            decode("MFRGGZDFMZTWQ2LKNM======").unwrap().as_slice(),
            b"abcdefghijk"
        );
        assert_eq!(
            decode("MFRGGZDFMZTWQ2LKNM").unwrap().as_slice(),
            b"abcdefghijk"
        );
        assert_eq!(encode(b"abcdefghijk").as_str(), "MFRGGZDFMZTWQ2LKNM");
    }

    #[test]
    fn other_alphabets_refused() {
        assert!(
            matches!(decode("GEZD0NBV"), Err(OtpError::BadSecret { .. })),
            "0 and 1 are not Base32"
        );
        assert!(matches!(
            decode("3132333435+/"),
            Err(OtpError::BadSecret { .. })
        ));
        assert!(matches!(decode("GE=ZD"), Err(OtpError::BadSecret { .. })));
        assert!(
            matches!(decode("A"), Err(OtpError::BadSecret { .. })),
            "1 char is no whole byte"
        );
        assert!(matches!(decode(" = "), Err(OtpError::MissingSecret)));
        assert!(matches!(decode("ÀÉ"), Err(OtpError::BadSecret { .. })));
    }
}
