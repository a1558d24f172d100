//! Login for residents abroad who hold no Italian identity document (issue 11, the INPS PIN
//! model; docs/abroad-pin.md): the codice fiscale check, the PINs (the 16-character initial
//! PIN from the OS CSPRNG, the 8-character PIN the holder chooses and its policy), their
//! Argon2id hashes, the throttling numbers, and the operator's issue/reset.
//!
//! The PIN never leaves this module but as an Argon2id PHC string, or as one half in one
//! outbox row; [`Pin`] wipes itself and prints as `<hidden>`.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::store::{AbroadIssue, AbroadStore, AuditEntry, IssueOutcome, StoreError};

/// Alphabet of the initial PIN: digits and capitals without the look-alikes 0/O, 1/I/L
/// (the holder copies it from an e-mail and a letter). 31 symbols, 16 of them ≈ 79 bits.
pub const INITIAL_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Length of the initial PIN (8 characters by each channel).
pub const INITIAL_LEN: usize = 16;
/// Length of the PIN the holder chooses.
pub const PIN_LEN: usize = 8;
/// Wrong attempts answered at once; from the next on a delay applies.
pub const FREE_FAILURES: u32 = 3;
/// Longest growing delay, seconds.
pub const MAX_DELAY_SECS: u64 = 64;
/// Failures that lock the account.
pub const LOCK_AFTER: u32 = 10;
/// How long a lock lasts, seconds (then the next attempt is allowed: never permanent).
pub const LOCK_SECS: u64 = 15 * 60;
/// Login and PIN-change attempts per minute per client address.
pub const DEFAULT_PER_MINUTE: u32 = 20;
/// Assurance level of a PIN session (card: 3, enrolled phone: 2).
pub const PIN_LEVEL: u8 = 1;

/// The wait after `failures` consecutive wrong attempts: none for the first
/// [`FREE_FAILURES`], then 2^(n−3) s capped at [`MAX_DELAY_SECS`], and [`LOCK_SECS`] from
/// [`LOCK_AFTER`] on.
pub fn delay_after(failures: u32) -> u64 {
    if failures >= LOCK_AFTER {
        LOCK_SECS
    } else if failures >= FREE_FAILURES {
        (1u64 << (failures - FREE_FAILURES).min(16)).min(MAX_DELAY_SECS)
    } else {
        0
    }
}

/// A PIN as typed or generated: wiped on drop, `<hidden>` in Debug. It serialises as its
/// characters for one use only: an outbox row printed for the delivery hook.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Pin(String);

/// Only a JSON string is a PIN. Anything else is refused with a fixed message: serde's own
/// would quote the value (`invalid type: integer 12345678`), and refusals are logged.
impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Pin;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a PIN as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Pin, E> {
                Ok(Pin(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Pin, E> {
                Err(E::custom("a PIN must be a string"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Pin, E> {
                Err(E::custom("a PIN must be a string"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Pin, E> {
                Err(E::custom("a PIN must be a string"))
            }
        }
        // `deserialize_any`: with `deserialize_str` serde_json refuses a number itself, quoting it.
        d.deserialize_any(Visitor)
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

impl Pin {
    /// Wrap a PIN.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The characters (to hash, or to put one half in an outbox).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Letters as capitals, surrounding blanks dropped: PINs are case-insensitive.
    fn normalized(&self) -> Pin {
        Pin(self.0.trim().to_ascii_uppercase())
    }
}

/// Why a codice fiscale is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CfError {
    /// Not 16 characters of the right kinds in the right places.
    #[error(
        "The codice fiscale has 16 characters (letters and digits): check that you typed it in full."
    )]
    Format,
    /// The last letter does not match the other fifteen.
    #[error("The codice fiscale's last letter does not match: check that you typed it correctly.")]
    Check,
}

impl CfError {
    /// The message in Italian.
    pub fn message_it(self) -> &'static str {
        match self {
            CfError::Format => {
                "Il codice fiscale ha 16 caratteri (lettere e cifre): controlla di averlo scritto per intero."
            }
            CfError::Check => {
                "L'ultima lettera del codice fiscale non corrisponde: controlla di averlo digitato correttamente."
            }
        }
    }
}

/// Omocodia: a digit replaced (to tell apart two people with the same code) by one of these.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Month letters, January to December.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// Values of the characters in odd places (1st, 3rd…) for the check letter; A–J share the
/// values of 0–9.
const ODD: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// The digit a position holds, through omocodia.
fn cf_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        _ => OMOCODIA
            .iter()
            .position(|&o| o == c)
            .and_then(|p| u8::try_from(p).ok()),
    }
}

/// A codice fiscale, normalised (blanks dropped, capitals), format and check letter
/// verified. Temporary codes (11 digits) are not accepted: the accounts are for persons.
pub fn validate_cf(input: &str) -> Result<String, CfError> {
    let cf: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = cf.as_bytes();
    if b.len() != 16 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return Err(CfError::Format);
    }
    let letters = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_uppercase);
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(|&c| cf_digit(c).is_some());
    let number = |r: std::ops::Range<usize>| {
        b[r].iter()
            .try_fold(0u32, |n, &c| cf_digit(c).map(|d| n * 10 + u32::from(d)))
    };
    let day = number(9..11).unwrap_or(0);
    let shaped = letters(0..6)
        && digits(6..8)
        && MONTHS.contains(&b[8])
        && digits(9..11)
        && ((1..=31).contains(&day) || (41..=71).contains(&day))
        && b[11].is_ascii_uppercase()
        && digits(12..15)
        && b[15].is_ascii_uppercase();
    if !shaped {
        return Err(CfError::Format);
    }
    let sum: u32 = b[..15]
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let idx = if c.is_ascii_digit() {
                c - b'0'
            } else {
                c - b'A'
            };
            u32::from(if i % 2 == 0 {
                ODD[usize::from(idx)]
            } else {
                idx
            })
        })
        .sum();
    let expected = b'A' + u8::try_from(sum % 26).unwrap_or(0);
    if b[15] != expected {
        return Err(CfError::Check);
    }
    Ok(cf)
}

/// Why a new PIN is refused (each says the rule; docs/abroad-pin.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Length or characters.
    #[error("The new PIN has exactly 8 characters, letters A–Z and digits only.")]
    Shape,
    /// No letter or no digit.
    #[error("The new PIN needs at least one letter and at least one digit.")]
    Mix,
    /// A run such as 1234, ABCD, 4321 or AAAA.
    #[error(
        "The new PIN must not contain 4 equal or consecutive characters in a row (such as AAAA, 1234, DCBA)."
    )]
    Run,
    /// Three characters in a row of the codice fiscale.
    #[error("The new PIN must not contain 3 characters in a row of your codice fiscale.")]
    FromCf,
    /// The PIN it replaces.
    #[error("The new PIN must differ from the current one.")]
    Same,
}

impl PolicyError {
    /// The message in Italian.
    pub fn message_it(self) -> &'static str {
        match self {
            PolicyError::Shape => {
                "Il nuovo PIN ha esattamente 8 caratteri, solo lettere A–Z e cifre."
            }
            PolicyError::Mix => {
                "Il nuovo PIN deve contenere almeno una lettera e almeno una cifra."
            }
            PolicyError::Run => {
                "Il nuovo PIN non deve contenere 4 caratteri uguali o consecutivi di seguito (come AAAA, 1234, DCBA)."
            }
            PolicyError::FromCf => {
                "Il nuovo PIN non deve contenere 3 caratteri consecutivi del tuo codice fiscale."
            }
            PolicyError::Same => "Il nuovo PIN deve essere diverso da quello attuale.",
        }
    }
}

/// The policy for the PIN the holder chooses; `Ok` is the PIN as it is hashed (capitals).
pub fn check_new_pin(new: &Pin, old: &Pin, cf: &str) -> Result<Pin, PolicyError> {
    let pin = new.normalized();
    let b = pin.expose().as_bytes();
    if b.len() != PIN_LEN || !b.iter().all(u8::is_ascii_alphanumeric) {
        return Err(PolicyError::Shape);
    }
    if !b.iter().any(u8::is_ascii_uppercase) || !b.iter().any(u8::is_ascii_digit) {
        return Err(PolicyError::Mix);
    }
    let run = b.windows(4).any(|w| {
        let steps: Vec<i16> = w
            .windows(2)
            .map(|p| i16::from(p[1]) - i16::from(p[0]))
            .collect();
        [0, 1, -1].iter().any(|s| steps.iter().all(|d| d == s))
    });
    if run {
        return Err(PolicyError::Run);
    }
    let cf = cf.as_bytes();
    if b.windows(3).any(|w| cf.windows(3).any(|c| c == w)) {
        return Err(PolicyError::FromCf);
    }
    if pin == old.normalized() {
        return Err(PolicyError::Same);
    }
    Ok(pin)
}

/// The shape of a PIN at login: 8 or 16 letters and digits (normalised), or `None`.
pub fn login_pin(typed: &Pin) -> Option<Pin> {
    let pin = typed.normalized();
    let b = pin.expose().as_bytes();
    ((b.len() == PIN_LEN || b.len() == INITIAL_LEN) && b.iter().all(u8::is_ascii_alphanumeric))
        .then_some(pin)
}

/// A fresh initial PIN: [`INITIAL_LEN`] symbols of [`INITIAL_ALPHABET`], uniform
/// (rejection sampling over bytes from the OS CSPRNG).
pub fn initial_pin() -> Result<Pin, getrandom::Error> {
    let n = INITIAL_ALPHABET.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(INITIAL_LEN);
    while out.len() < INITIAL_LEN {
        let mut bytes = crate::random_bytes::<32>()?;
        for &x in bytes.iter().filter(|&&x| usize::from(x) < limit) {
            if out.len() < INITIAL_LEN {
                out.push(char::from(INITIAL_ALPHABET[usize::from(x) % n]));
            }
        }
        bytes.zeroize();
    }
    Ok(Pin(out))
}

/// Failures of hashing (a bad stored hash, no randomness).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The OS CSPRNG.
    #[error("randomness: {0}")]
    Random(String),
    /// Argon2.
    #[error("argon2: {0}")]
    Argon2(String),
}

impl From<getrandom::Error> for HashError {
    fn from(e: getrandom::Error) -> Self {
        HashError::Random(e.to_string())
    }
}

/// Argon2id, v19, 19 MiB, 2 passes, 1 lane (OWASP's first recommended set).
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The PHC string of `pin` (normalised first), with a fresh 16-byte salt.
pub fn hash_pin(pin: &Pin) -> Result<String, HashError> {
    let salt = crate::random_bytes::<16>()?;
    argon2()
        .hash_password_with_salt(pin.normalized().expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Whether `pin` matches the PHC string (Argon2's own constant-time comparison). A hash
/// that does not parse never matches.
pub fn verify_pin(pin: &Pin, phc: &str) -> bool {
    argon2()
        .verify_password(pin.normalized().expose().as_bytes(), phc)
        .is_ok()
}

/// The hash an unknown codice fiscale is checked against, so it costs the same as a known
/// one (a random PIN nobody knows, hashed once per process).
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        initial_pin()
            .ok()
            .and_then(|p| hash_pin(&p).ok())
            // No randomness at all: any well-formed hash costs the same to check.
            .unwrap_or_else(|| {
                "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$\
                 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                    .into()
            })
    })
}

/// Failures of the operator's commands.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// A codice fiscale refused.
    #[error("{0}")]
    Cf(#[from] CfError),
    /// `issue` for an account that exists (use `reset`).
    #[error("an account for this codice fiscale exists: use `pin reset`")]
    Exists,
    /// `reset` for no account (use `issue`).
    #[error("no account for this codice fiscale: use `pin issue`")]
    Unknown,
    /// `issue` without an address for one of the channels.
    #[error("both --email and --address are needed to issue a PIN")]
    MissingAddress,
    /// Hashing.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the operator gives to issue or reset a PIN.
#[derive(Debug, Clone, Default)]
pub struct IssueRequest {
    /// The holder.
    pub codice_fiscale: String,
    /// Digital channel (the first 8 characters); a reset may keep the stored one.
    pub email: Option<String>,
    /// Postal address (the last 8 characters); a reset may keep the stored one.
    pub address: Option<String>,
    /// Given names, for the identity created with the account.
    pub given_name: String,
    /// Surname.
    pub surname: String,
}

/// Issue (`reset == false`) or reset a PIN: a fresh 16-character PIN, its hash stored, its
/// halves queued one per outbox, the old PIN, pending halves and lockout voided (reset).
/// Returns the holder's identity id; the PIN itself goes nowhere else.
pub async fn issue_pin(
    store: &dyn AbroadStore,
    req: &IssueRequest,
    reset: bool,
    operator: &str,
    now: u64,
) -> Result<String, OperatorError> {
    let cf = validate_cf(&req.codice_fiscale)?;
    if !reset && (req.email.is_none() || req.address.is_none()) {
        return Err(OperatorError::MissingAddress);
    }
    let pin = initial_pin().map_err(HashError::from)?;
    let pin_hash = hash_pin(&pin)?;
    let (first, second) = pin.expose().split_at(INITIAL_LEN / 2);
    let issue = AbroadIssue {
        codice_fiscale: cf.clone(),
        given_name: req.given_name.clone(),
        surname: req.surname.clone(),
        email: req.email.clone(),
        address: req.address.clone(),
        pin_hash,
        digital_half: Pin::new(first),
        postal_half: Pin::new(second),
    };
    let kind = if reset {
        "abroad_pin_reset"
    } else {
        "abroad_pin_issue"
    };
    // The codice fiscale only as its keyed lookup value, as the PIN login's audit rows
    // name it.
    let audit = AuditEntry::new(kind, &store.cf_key(&cf), "ok", operator);
    match store.abroad_issue(&issue, reset, &audit, now).await? {
        IssueOutcome::Done { identity_id } => Ok(identity_id),
        IssueOutcome::Exists => Err(OperatorError::Exists),
        IssueOutcome::Unknown => Err(OperatorError::Unknown),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codice_fiscale_format_check_letter_and_omocodia() {
        assert_eq!(validate_cf("RSSMRA80A01H501U").unwrap(), "RSSMRA80A01H501U");
        // Lower case and blanks are normalised.
        assert_eq!(
            validate_cf(" rssmra 80a01 h501u ").unwrap(),
            "RSSMRA80A01H501U"
        );
        // A woman: day + 40.
        assert_eq!(validate_cf("BNCGVN75L41F205W").unwrap(), "BNCGVN75L41F205W");
        // Omocodia: the last digit 1 written M changes the check letter.
        assert_eq!(validate_cf("RSSMRA80A01H50MM").unwrap(), "RSSMRA80A01H50MM");
        assert_eq!(validate_cf("RSSMRA80A01H50MU"), Err(CfError::Check));
        // Every digit replaced (year, day, municipality): still a valid code.
        assert_eq!(validate_cf("RSSMRAULALMHRLMD").unwrap(), "RSSMRAULALMHRLMD");
        // An omocodia day beyond 71 (V = 9: day 99) is not a day.
        assert_eq!(validate_cf("RSSMRA80AVVH501U"), Err(CfError::Format));
        assert_eq!(validate_cf("RSSMRA80A01H501A"), Err(CfError::Check));
        // The test card's codice fiscale is made up: its check letter does not match.
        assert_eq!(validate_cf("TSTTST80A01H501X"), Err(CfError::Check));
        for bad in [
            "",
            "RSSMRA80A01H501",
            "RSSMRA80A01H501UU",
            "RSSMRA80Z01H501U", // no month Z
            "RSSMRA80A32H501U", // day 32
            "RSSMRA80A00H501U", // day 0
            "RSSMR480A01H501U", // a digit among the name letters
            "RSSMRA8WA01H501U", // W is no omocodia letter
            "RSSMRA80A01H501-",
            "12345678901",
            "RSSMRA80A01H501È",
        ] {
            assert_eq!(validate_cf(bad), Err(CfError::Format), "{bad}");
        }
        assert!(CfError::Check.message_it().contains("codice fiscale"));
    }

    #[test]
    fn new_pin_policy() {
        let cf = "RSSMRA80A01H501U";
        let old = Pin::new("ABCDEFGH23456789");
        let ok = |s: &str| check_new_pin(&Pin::new(s), &old, cf);
        assert_eq!(ok("k7w9x2qz").unwrap().expose(), "K7W9X2QZ");
        assert_eq!(ok("K7W9X2Q").unwrap_err(), PolicyError::Shape);
        assert_eq!(ok("K7W9X2QZ1").unwrap_err(), PolicyError::Shape);
        assert_eq!(ok("K7W9X2Q!").unwrap_err(), PolicyError::Shape);
        assert_eq!(ok("KWWXQZAB").unwrap_err(), PolicyError::Mix);
        assert_eq!(ok("73952846").unwrap_err(), PolicyError::Mix);
        assert_eq!(ok("X1234QZW").unwrap_err(), PolicyError::Run);
        assert_eq!(ok("X9DCBAQ7").unwrap_err(), PolicyError::Run);
        assert_eq!(ok("X7QQQQZW").unwrap_err(), PolicyError::Run);
        assert_eq!(ok("SMR7W9QZ").unwrap_err(), PolicyError::FromCf);
        assert_eq!(ok("K7W9H501").unwrap_err(), PolicyError::FromCf);
        let old8 = Pin::new("K7W9X2QZ");
        assert_eq!(
            check_new_pin(&Pin::new("k7w9x2qz"), &old8, cf).unwrap_err(),
            PolicyError::Same
        );
        assert!(PolicyError::Run.message_it().contains("PIN"));
    }

    #[test]
    fn initial_pins_use_the_alphabet_and_hash_verifies() {
        let a = initial_pin().unwrap();
        let b = initial_pin().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), INITIAL_LEN);
        assert!(a.expose().bytes().all(|c| INITIAL_ALPHABET.contains(&c)));
        assert_eq!(format!("{a:?}"), "<hidden>");
        let h = hash_pin(&a).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_pin(&Pin::new(a.expose().to_ascii_lowercase()), &h));
        assert!(!verify_pin(&b, &h));
        assert!(!verify_pin(&a, "not a hash"));
        assert!(!verify_pin(&a, dummy_hash()));
        // The dummy costs what a real check costs: the same parameters.
        assert_eq!(
            dummy_hash().rsplitn(3, '$').nth(2),
            h.rsplitn(3, '$').nth(2)
        );
    }

    #[test]
    fn delays_grow_then_lock_for_a_bounded_time() {
        let d: Vec<u64> = (0..=12).map(delay_after).collect();
        assert_eq!(d, [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 900, 900, 900]);
        assert_eq!(delay_after(u32::MAX), LOCK_SECS);
    }

    #[test]
    fn login_pin_shapes() {
        assert!(login_pin(&Pin::new(" k7w9x2qz ")).is_some());
        assert!(login_pin(&Pin::new("ABCDEFGH23456789")).is_some());
        assert!(login_pin(&Pin::new("ABC")).is_none());
        assert!(login_pin(&Pin::new("ABCDEFG!")).is_none());
    }
}
