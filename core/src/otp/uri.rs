//! `otpauth://` Key URIs (Google Authenticator Key-Uri-Format), parsed structurally first
//! and percent-decoded per part, so that:
//! - a literal `:` splits the label; `%3A` splits it only when no literal `:` does and it
//!   is not part of the `issuer` parameter's own name (pyotp #174, Aegis #1701);
//! - `+` is a plus, not a space (these are URIs, not HTML forms; pyotp #47);
//! - unknown `algorithm`/`digits`/`period` values are refused, never guessed;
//! - repeated parameters are refused (which `secret` would be the real one?).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::base32;
use super::error::{OtpError, UriWarning};
use super::hotp::{Algorithm, Secret, check_digits};

/// Below this a seed is refused (RFC 4226 R6 asks 128; 80 is what many real issuers use).
pub const MIN_SECRET_BITS: usize = 80;
/// Below this a seed is accepted with a warning.
pub const RECOMMENDED_SECRET_BITS: usize = 128;
/// Longest URI we parse (a QR code holds at most ~4 KB).
pub const MAX_URI_LEN: usize = 4096;

/// Counter- or time-based, with the moving factor's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OtpKind {
    /// RFC 6238: the step of `period` seconds since `t0`.
    Totp {
        /// Step length X in seconds.
        period: u64,
        /// T0, Unix seconds (0 in every otpauth link; kept for issuers that document one).
        t0: u64,
    },
    /// RFC 4226: an event counter, advanced after each code.
    Hotp {
        /// The next counter value to use.
        counter: u64,
    },
}

/// A parsed Key URI.
#[derive(Debug, Clone)]
pub struct KeyUri {
    /// The service ("INPS", "Aruba"), when named.
    pub issuer: Option<String>,
    /// The account at the service.
    pub account: String,
    /// The seed.
    pub secret: Secret,
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: u8,
    /// Moving factor.
    pub kind: OtpKind,
    /// Accepted oddities to show the user.
    pub warnings: Vec<UriWarning>,
}

fn invalid(reason: impl Into<String>) -> OtpError {
    OtpError::InvalidUri {
        reason: reason.into(),
    }
}

fn decode_part(part: &str, what: &str) -> Result<String, OtpError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid(format!("the {what} is not valid UTF-8 after decoding")))
}

/// Split the raw label into (issuer prefix, account), decoded.
fn split_label(
    raw: &str,
    issuer_param: Option<&str>,
) -> Result<(Option<String>, String), OtpError> {
    if let Some((issuer, account)) = raw.split_once(':') {
        return Ok((
            Some(decode_part(issuer, "label")?),
            decode_part(account, "label")?,
        ));
    }
    let decoded = decode_part(raw, "label")?;
    // No literal colon. If the label starts with the `issuer` parameter and a colon, that
    // colon is the separator, even when the issuer itself holds an encoded one.
    if let Some(rest) = issuer_param.and_then(|p| decoded.strip_prefix(p)?.strip_prefix(':')) {
        return Ok((issuer_param.map(str::to_owned), rest.to_owned()));
    }
    // Otherwise the first `%3A` is the separator, per the ABNF.
    match raw.to_ascii_lowercase().find("%3a") {
        Some(at) => Ok((
            Some(decode_part(&raw[..at], "label")?),
            decode_part(&raw[at + 3..], "label")?,
        )),
        None => Ok((None, decoded)),
    }
}

impl KeyUri {
    /// Parse an `otpauth://` URI.
    pub fn parse(uri: &str) -> Result<Self, OtpError> {
        let uri = uri.trim();
        if uri.len() > MAX_URI_LEN {
            return Err(invalid(format!("longer than {MAX_URI_LEN} characters")));
        }
        let scheme_end = uri
            .find("://")
            .ok_or_else(|| invalid("missing otpauth://"))?;
        if !uri[..scheme_end].eq_ignore_ascii_case("otpauth") {
            return Err(invalid("the link does not start with otpauth://"));
        }
        let rest = &uri[scheme_end + 3..];
        // A fragment carries nothing of ours; drop it.
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (kind_raw, after) = rest
            .split_once('/')
            .ok_or_else(|| invalid("missing the label"))?;
        let (label_raw, query) = after.split_once('?').unwrap_or((after, ""));

        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode_part(k, "parameter name")?.to_ascii_lowercase();
            if params.iter().any(|(seen, _)| *seen == key) {
                return Err(invalid(format!("parameter \"{key}\" appears twice")));
            }
            let value = if key == "secret" {
                // Never copy the secret into an error; a bad encoding is reported generically.
                percent_decode_str(v)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| OtpError::BadSecret {
                        reason: "not text".into(),
                    })?
            } else {
                decode_part(v, &format!("\"{key}\" parameter"))?
            };
            params.push((key, value));
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };

        let issuer_param = get("issuer").map(str::trim).filter(|s| !s.is_empty());
        let (label_issuer, account) = split_label(label_raw, issuer_param)?;
        let label_issuer = label_issuer
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let account = account.trim().to_owned();

        let mut warnings = Vec::new();
        let issuer = match (label_issuer, issuer_param) {
            (Some(l), Some(p)) if l != p => {
                warnings.push(UriWarning::IssuerMismatch {
                    label: l,
                    parameter: p.to_owned(),
                });
                Some(p.to_owned())
            }
            (l, p) => p.map(str::to_owned).or(l),
        };
        if account.is_empty() && issuer.is_none() {
            return Err(invalid("the link names neither a service nor an account"));
        }

        let secret_text = get("secret").ok_or(OtpError::MissingSecret)?;
        let secret = Secret::new(base32::decode(secret_text)?.to_vec());
        let bits = secret.bits();
        if bits < MIN_SECRET_BITS {
            return Err(OtpError::SecretTooShort {
                bits: u32::try_from(bits).unwrap_or(u32::MAX),
            });
        }
        if bits < RECOMMENDED_SECRET_BITS {
            warnings.push(UriWarning::ShortSecret {
                bits: u32::try_from(bits).unwrap_or(u32::MAX),
            });
        }

        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::from_uri_name(a.trim())?,
            None => Algorithm::Sha1,
        };
        let digits = match get("digits") {
            Some(d) => check_digits(
                d.trim()
                    .parse()
                    .map_err(|_| OtpError::UnsupportedDigits { digits: 0 })?,
            )?,
            None => 6,
        };

        let kind = match kind_raw.to_ascii_lowercase().as_str() {
            "totp" => {
                let period = match get("period") {
                    Some(p) => p.trim().parse::<u64>().ok().filter(|p| *p > 0).ok_or(
                        OtpError::UnsupportedPeriod {
                            period: p.trim().parse().unwrap_or(0),
                        },
                    )?,
                    None => 30,
                };
                OtpKind::Totp { period, t0: 0 }
            }
            "hotp" => {
                let counter = match get("counter") {
                    Some(c) => c
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| invalid("the counter is not a whole number"))?,
                    None => {
                        warnings.push(UriWarning::CounterMissing);
                        0
                    }
                };
                OtpKind::Hotp { counter }
            }
            other => {
                return Err(OtpError::UnsupportedType {
                    kind: other.to_owned(),
                });
            }
        };

        Ok(Self {
            issuer,
            account,
            secret,
            algorithm,
            digits,
            kind,
            warnings,
        })
    }

    /// The canonical URI (every parameter explicit, unpadded upper-case Base32, label and
    /// values percent-encoded so `:`, `&`, `+` and spaces survive any scanner).
    pub fn to_uri(&self) -> String {
        // RFC 3986 unreserved characters stay; everything else is encoded.
        const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let enc = |s: &str| utf8_percent_encode(s, ENCODE).to_string();
        let (kind, moving) = match self.kind {
            OtpKind::Totp { period, .. } => ("totp", format!("&period={period}")),
            OtpKind::Hotp { counter } => ("hotp", format!("&counter={counter}")),
        };
        let label = match &self.issuer {
            Some(i) => format!("{}:{}", enc(i), enc(&self.account)),
            // An account holding a colon (tolerated on input) gets an empty issuer prefix,
            // so its own colons are never taken for the separator (found by fuzzing).
            None if self.account.contains(':') => format!(":{}", enc(&self.account)),
            None => enc(&self.account),
        };
        let issuer = self
            .issuer
            .as_deref()
            .map(|i| format!("&issuer={}", enc(i)))
            .unwrap_or_default();
        format!(
            "otpauth://{kind}/{label}?secret={}{issuer}&algorithm={}&digits={}{moving}",
            base32::encode(self.secret.expose()).as_str(),
            self.algorithm.uri_name(),
            self.digits,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn parse(u: &str) -> Result<KeyUri, OtpError> {
        KeyUri::parse(u)
    }

    #[test]
    fn defaults() {
        let k = parse(&format!("otpauth://totp/alice@example.it?secret={S}")).unwrap();
        assert_eq!(k.issuer, None);
        assert_eq!(k.account, "alice@example.it");
        assert_eq!(k.algorithm, Algorithm::Sha1);
        assert_eq!(k.digits, 6);
        assert_eq!(k.kind, OtpKind::Totp { period: 30, t0: 0 });
        assert_eq!(k.secret.expose(), b"12345678901234567890");
        assert!(k.warnings.is_empty());
    }

    #[test]
    fn every_parameter_honoured_and_case_insensitive() {
        let k = parse(&format!(
            "OTPAUTH://TOTP/ACME:bob?SECRET={S}&Algorithm=sha512&digits=8&period=60&issuer=ACME"
        ))
        .unwrap();
        assert_eq!(k.algorithm, Algorithm::Sha512);
        assert_eq!(k.digits, 8);
        assert_eq!(k.kind, OtpKind::Totp { period: 60, t0: 0 });
        let h = parse(&format!("otpauth://hotp/x?secret={S}&counter=42")).unwrap();
        assert_eq!(h.kind, OtpKind::Hotp { counter: 42 });
    }

    #[test]
    fn literal_colon_splits_label_and_space_after_is_trimmed() {
        let k = parse(&format!("otpauth://totp/Example%20Co:%20alice?secret={S}")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("Example Co"));
        assert_eq!(k.account, "alice");
    }

    #[test]
    fn encoded_colon_is_the_separator_when_alone() {
        let k = parse(&format!("otpauth://totp/INPS%3Amario.rossi?secret={S}")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("INPS"));
        assert_eq!(k.account, "mario.rossi");
    }

    #[test]
    fn encoded_colon_inside_issuer_is_not_the_separator() {
        // pyotp #174: issuer "Foo:Bar" with a literal separator after it.
        let k = parse(&format!(
            "otpauth://totp/Foo%3ABar:alice?secret={S}&issuer=Foo%3ABar"
        ))
        .unwrap();
        assert_eq!(k.issuer.as_deref(), Some("Foo:Bar"));
        assert_eq!(k.account, "alice");
        assert!(k.warnings.is_empty(), "{:?}", k.warnings);
        // Same, with the separator encoded too: the issuer parameter disambiguates.
        let k = parse(&format!(
            "otpauth://totp/Foo%3ABar%3Aalice?secret={S}&issuer=Foo%3ABar"
        ))
        .unwrap();
        assert_eq!(k.issuer.as_deref(), Some("Foo:Bar"));
        assert_eq!(k.account, "alice");
        // Issuer with a colon only in the parameter, none in the label.
        let k = parse(&format!("otpauth://totp/alice?secret={S}&issuer=Foo%3ABar")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("Foo:Bar"));
        assert_eq!(k.account, "alice");
    }

    #[test]
    fn plus_is_a_plus() {
        let k = parse(&format!(
            "otpauth://totp/A+B:mario+tag@x.it?secret={S}&issuer=A+B"
        ))
        .unwrap();
        assert_eq!(k.issuer.as_deref(), Some("A+B"));
        assert_eq!(k.account, "mario+tag@x.it");
        let k = parse(&format!("otpauth://totp/A%20B:x?secret={S}&issuer=A%20B")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("A B"));
    }

    #[test]
    fn issuer_mismatch_warns_and_parameter_wins() {
        let k = parse(&format!("otpauth://totp/Old:alice?secret={S}&issuer=New")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("New"));
        assert_eq!(
            k.warnings,
            vec![UriWarning::IssuerMismatch {
                label: "Old".into(),
                parameter: "New".into()
            }]
        );
    }

    #[test]
    fn secret_forms() {
        for s in [
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD%20GNBV%20GY3T%20QOJQ%20GEZD%20GNBV%20GY3T%20QOJQ",
            "GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ",
        ] {
            let k = parse(&format!("otpauth://totp/a?secret={s}")).unwrap();
            assert_eq!(k.secret.expose(), b"12345678901234567890", "{s}");
        }
        // Padding, raw and percent-encoded (pass-otp #124).
        for s in [
            "MFRGGZDFMZTWQ2LKNM======",
            "MFRGGZDFMZTWQ2LKNM%3D%3D%3D%3D%3D%3D",
            "MFRGGZDFMZTWQ2LKNM",
        ] {
            let k = parse(&format!("otpauth://totp/a?secret={s}")).unwrap();
            assert_eq!(k.secret.expose(), b"abcdefghijk", "{s}");
        }
    }

    #[test]
    fn secret_length_rules() {
        // 72 bits: refused.
        let e = parse("otpauth://totp/a?secret=MFRGGZDFMZTWQ2I").unwrap_err();
        assert!(matches!(e, OtpError::SecretTooShort { bits: 72 }), "{e:?}");
        // 80 bits: accepted with a warning.
        let k = parse("otpauth://totp/a?secret=MFRGGZDFMZTWQ2LK").unwrap();
        assert_eq!(k.warnings, vec![UriWarning::ShortSecret { bits: 80 }]);
        // 128 bits: no warning.
        let k = parse("otpauth://totp/a?secret=MFRGGZDFMZTWQ2LKNNWG23TPOA").unwrap();
        assert_eq!(k.secret.bits(), 128);
        assert!(k.warnings.is_empty());
    }

    #[test]
    fn refusals_are_typed() {
        type Check = fn(&OtpError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("https://example.it/", |e| {
                matches!(e, OtpError::InvalidUri { .. })
            }),
            ("otpauth://totp", |e| {
                matches!(e, OtpError::InvalidUri { .. })
            }),
            (
                "otpauth://motp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                |e| matches!(e, OtpError::UnsupportedType { .. }),
            ),
            ("otpauth://totp/a", |e| matches!(e, OtpError::MissingSecret)),
            (
                "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=MD5",
                |e| matches!(e, OtpError::UnsupportedAlgorithm { name } if name == "MD5"),
            ),
            (
                "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=10",
                |e| matches!(e, OtpError::UnsupportedDigits { digits: 10 }),
            ),
            (
                "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=six",
                |e| matches!(e, OtpError::UnsupportedDigits { .. }),
            ),
            (
                "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&period=0",
                |e| matches!(e, OtpError::UnsupportedPeriod { period: 0 }),
            ),
            (
                "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&secret=MFRGGZDFMZTWQ2LK",
                |e| matches!(e, OtpError::InvalidUri { .. }),
            ),
            (
                "otpauth://hotp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=-1",
                |e| matches!(e, OtpError::InvalidUri { .. }),
            ),
            (
                "otpauth://totp/?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                |e| matches!(e, OtpError::InvalidUri { .. }),
            ),
            (
                "otpauth://totp/a%FF?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                |e| matches!(e, OtpError::InvalidUri { .. }),
            ),
            (
                "otpauth://totp/a?secret=3132333435363738393031323334353637383930",
                |e| matches!(e, OtpError::BadSecret { .. }),
            ),
        ];
        for (uri, check) in cases {
            let e = parse(uri).unwrap_err();
            assert!(check(&e), "{uri}: {e:?}");
            assert!(!e.to_string().contains("GEZD"), "secret leaked into {e}");
            assert!(!e.message_it().is_empty());
        }
    }

    #[test]
    fn account_with_colons_and_no_issuer_round_trips() {
        let k = parse(&format!("otpauth://totp/::a:b?secret={S}")).unwrap();
        assert_eq!((k.issuer.as_deref(), k.account.as_str()), (None, ":a:b"));
        let back = parse(&k.to_uri()).unwrap();
        assert_eq!(
            (back.issuer.as_deref(), back.account.as_str()),
            (None, ":a:b")
        );
    }

    #[test]
    fn hotp_without_counter_starts_at_zero_with_warning() {
        let k = parse(&format!("otpauth://hotp/a?secret={S}")).unwrap();
        assert_eq!(k.kind, OtpKind::Hotp { counter: 0 });
        assert_eq!(k.warnings, vec![UriWarning::CounterMissing]);
    }

    #[test]
    fn build_then_parse_round_trips_awkward_names() {
        let k = parse(&format!("otpauth://totp/x?secret={S}")).unwrap();
        let built = KeyUri {
            issuer: Some("Comune di Forlì: Servizi & Tributi+".into()),
            account: "mario.rossi+spid@example.it".into(),
            algorithm: Algorithm::Sha256,
            digits: 8,
            kind: OtpKind::Totp { period: 45, t0: 0 },
            ..k
        };
        let uri = built.to_uri();
        assert!(!uri.contains(' ') && !uri.contains("+"), "{uri}");
        let back = parse(&uri).unwrap();
        assert_eq!(back.issuer, built.issuer);
        assert_eq!(back.account, built.account);
        assert_eq!(back.algorithm, Algorithm::Sha256);
        assert_eq!(back.digits, 8);
        assert_eq!(back.kind, built.kind);
        assert_eq!(back.secret.expose(), built.secret.expose());
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    }
}
