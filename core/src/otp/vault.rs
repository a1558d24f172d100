//! Saved tokens, kept by the platform's [`SecretStore`]: the list of tokens (names and
//! parameters, no secrets) under [`INDEX_KEY`], each seed under its own name with
//! [`Protection::DeviceOnly`]. The core never writes a seed anywhere else, and holds it in
//! memory only while computing a code.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::clock::{ClockOffset, DriftDiagnostic};
use super::error::{OtpError, UriWarning};
use super::hotp::{Algorithm, Secret, TimeStep, hotp, totp};
use super::uri::{KeyUri, OtpKind};
use crate::flows::pairing::{Protection, SecretStore};

/// Store name of the token list.
pub const INDEX_KEY: &str = "otp/index";
/// Store name of a token's seed.
fn secret_key(id: &str) -> String {
    format!("otp/{id}/secret")
}

/// A saved token, as the UI lists it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct OtpToken {
    /// Stable name: `issuer:account` (or just `account`), what `code` takes.
    pub id: String,
    /// The service.
    pub issuer: Option<String>,
    /// The account.
    pub account: String,
    /// HMAC hash.
    #[serde(with = "alg_name")]
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP period or HOTP counter.
    #[serde(with = "kind_repr")]
    pub kind: OtpKind,
}

/// A token just added, with what the user should know about it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AddedToken {
    /// The token.
    pub token: OtpToken,
    /// Accepted oddities (short secret, issuer mismatch, missing counter).
    pub warnings: Vec<UriWarning>,
}

/// A code for the UI.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OtpCode {
    /// The digits.
    pub code: String,
    /// TOTP: seconds until it changes (1..=period). HOTP: 0.
    pub seconds_remaining: u64,
    /// TOTP: the period. HOTP: 0.
    pub period: u64,
    /// The moving factor used: TOTP step or HOTP counter.
    pub counter: u64,
}

mod alg_name {
    use super::Algorithm;
    pub fn serialize<S: serde::Serializer>(a: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.uri_name())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
        let name: String = serde::Deserialize::deserialize(d)?;
        Algorithm::from_uri_name(&name).map_err(serde::de::Error::custom)
    }
}

mod kind_repr {
    use super::OtpKind;
    use serde::{Deserialize, Serialize};
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Repr {
        Totp { period: u64, t0: u64 },
        Hotp { counter: u64 },
    }
    pub fn serialize<S: serde::Serializer>(k: &OtpKind, s: S) -> Result<S::Ok, S::Error> {
        match *k {
            OtpKind::Totp { period, t0 } => Repr::Totp { period, t0 },
            OtpKind::Hotp { counter } => Repr::Hotp { counter },
        }
        .serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<OtpKind, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Totp { period, t0 } => OtpKind::Totp { period, t0 },
            Repr::Hotp { counter } => OtpKind::Hotp { counter },
        })
    }
}

/// The code of a parsed token at `unix` (TOTP) or at its counter (HOTP).
pub fn code_for(
    secret: &Secret,
    algorithm: Algorithm,
    digits: u8,
    kind: OtpKind,
    unix: u64,
) -> Result<OtpCode, OtpError> {
    match kind {
        OtpKind::Totp { period, t0 } => {
            let step = TimeStep::new(period, t0)?;
            let code = totp(secret, unix, step, digits, algorithm)?;
            Ok(OtpCode {
                code: code.to_string(),
                seconds_remaining: step.seconds_remaining(unix),
                period,
                counter: step.counter(unix)?,
            })
        }
        OtpKind::Hotp { counter } => Ok(OtpCode {
            code: hotp(secret, counter, digits, algorithm)?.to_string(),
            seconds_remaining: 0,
            period: 0,
            counter,
        }),
    }
}

fn token_id(issuer: Option<&str>, account: &str) -> String {
    match issuer {
        Some(i) if !account.is_empty() => format!("{i}:{account}"),
        Some(i) => i.to_owned(),
        None => account.to_owned(),
    }
}

/// The saved tokens and the clock correction. One per app.
#[derive(uniffi::Object)]
pub struct OtpVault {
    store: Arc<dyn SecretStore>,
    // Serialises read-modify-write of the index (HOTP counters must never be reused).
    index_lock: Mutex<()>,
    clock: Mutex<Option<ClockOffset>>,
}

impl std::fmt::Debug for OtpVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpVault").finish_non_exhaustive()
    }
}

impl OtpVault {
    fn load_index(&self) -> Result<Vec<OtpToken>, OtpError> {
        match self.store.load(INDEX_KEY.into())? {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| OtpError::Corrupt {
                reason: e.to_string(),
            }),
        }
    }

    fn save_index(&self, index: &[OtpToken]) -> Result<(), OtpError> {
        let bytes = serde_json::to_vec(index).map_err(|e| OtpError::Internal {
            reason: e.to_string(),
        })?;
        self.store
            .save(INDEX_KEY.into(), bytes, Protection::Public)?;
        Ok(())
    }

    fn find<'a>(index: &'a [OtpToken], name: &str) -> Result<&'a OtpToken, OtpError> {
        if let Some(t) = index.iter().find(|t| t.id == name) {
            return Ok(t);
        }
        let lower = name.to_lowercase();
        let mut hits = index.iter().filter(|t| {
            t.id.to_lowercase() == lower
                || t.account.to_lowercase() == lower
                || t.issuer
                    .as_deref()
                    .is_some_and(|i| i.to_lowercase() == lower)
        });
        match (hits.next(), hits.next()) {
            (Some(t), None) => Ok(t),
            (Some(_), Some(_)) => Err(OtpError::Ambiguous {
                name: name.to_owned(),
            }),
            (None, _) => Err(OtpError::NotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// Add a parsed token (the seed goes from the parse to the keystore without another copy).
    pub(crate) fn add_parsed(&self, parsed: KeyUri) -> Result<AddedToken, OtpError> {
        let _guard = self.index_lock.lock().map_err(|_| OtpError::Internal {
            reason: "lock".into(),
        })?;
        let mut index = self.load_index()?;
        let id = token_id(parsed.issuer.as_deref(), &parsed.account);
        if index.iter().any(|t| t.id == id) {
            return Err(OtpError::Duplicate { name: id });
        }
        let token = OtpToken {
            id: id.clone(),
            issuer: parsed.issuer.clone(),
            account: parsed.account.clone(),
            algorithm: parsed.algorithm,
            digits: parsed.digits,
            kind: parsed.kind,
        };
        // Seed first: an index entry must never point at a missing seed.
        self.store.save(
            secret_key(&id),
            parsed.secret.expose().to_vec(),
            Protection::DeviceOnly,
        )?;
        index.push(token.clone());
        if let Err(e) = self.save_index(&index) {
            let _ = self.store.remove(secret_key(&id));
            return Err(e);
        }
        Ok(AddedToken {
            token,
            warnings: parsed.warnings,
        })
    }
}

#[uniffi::export]
impl OtpVault {
    /// A vault over the platform's secret store.
    #[uniffi::constructor]
    pub fn new(store: Arc<dyn SecretStore>) -> Arc<Self> {
        Arc::new(Self {
            store,
            index_lock: Mutex::new(()),
            clock: Mutex::new(None),
        })
    }

    /// Add a token from an `otpauth://` URI (typed, pasted or scanned).
    pub fn add_uri(&self, uri: String) -> Result<AddedToken, OtpError> {
        self.add_parsed(KeyUri::parse(&uri)?)
    }

    /// The saved tokens, in the order added.
    pub fn list(&self) -> Result<Vec<OtpToken>, OtpError> {
        self.load_index()
    }

    /// The current code of token `name` (its id, or an unambiguous issuer or account) at
    /// device time `device_unix`, corrected by the server clock offset when one is set.
    /// For HOTP the counter advances and is saved before the code is returned, so a code
    /// is never shown twice.
    pub fn code(&self, name: String, device_unix: u64) -> Result<OtpCode, OtpError> {
        let _guard = self.index_lock.lock().map_err(|_| OtpError::Internal {
            reason: "lock".into(),
        })?;
        let mut index = self.load_index()?;
        let token = Self::find(&index, &name)?.clone();
        let seed = self
            .store
            .load(secret_key(&token.id))?
            .ok_or_else(|| OtpError::Corrupt {
                reason: format!("the secret of \"{}\" is missing", token.id),
            })?;
        let secret = Secret::new(seed);
        let now = self.corrected(device_unix);
        let code = code_for(&secret, token.algorithm, token.digits, token.kind, now)?;
        if let OtpKind::Hotp { counter } = token.kind {
            let next = counter.checked_add(1).ok_or(OtpError::Internal {
                reason: "counter exhausted".into(),
            })?;
            if let Some(t) = index.iter_mut().find(|t| t.id == token.id) {
                t.kind = OtpKind::Hotp { counter: next };
            }
            self.save_index(&index)?;
        }
        Ok(code)
    }

    /// Forget token `name` and its seed.
    pub fn remove(&self, name: String) -> Result<(), OtpError> {
        let _guard = self.index_lock.lock().map_err(|_| OtpError::Internal {
            reason: "lock".into(),
        })?;
        let mut index = self.load_index()?;
        let id = Self::find(&index, &name)?.id.clone();
        index.retain(|t| t.id != id);
        self.save_index(&index)?;
        self.store.remove(secret_key(&id))?;
        Ok(())
    }

    /// Record the clock of a pinned server from its HTTP `Date` header, received at device
    /// time `device_unix`; returns the drift diagnostic (judged against a 30 s step).
    pub fn set_server_time(
        &self,
        http_date: String,
        device_unix: u64,
    ) -> Result<DriftDiagnostic, OtpError> {
        let offset = ClockOffset::from_http_date(&http_date, device_unix)?;
        self.set_clock_offset(offset);
        Ok(DriftDiagnostic::judge(&offset, 30))
    }

    /// Set (or clear with `None`) the clock correction directly.
    pub fn set_clock_offset_seconds(&self, offset_seconds: Option<i64>, device_unix: u64) {
        if let Ok(mut c) = self.clock.lock() {
            *c = offset_seconds.map(|o| ClockOffset {
                offset_seconds: o,
                measured_at: device_unix,
            });
        }
    }

    /// The drift diagnostic of the last server time, if any.
    pub fn clock_drift(&self) -> Option<DriftDiagnostic> {
        let c = self.clock.lock().ok()?;
        c.as_ref().map(|o| DriftDiagnostic::judge(o, 30))
    }
}

impl OtpVault {
    fn set_clock_offset(&self, offset: ClockOffset) {
        if let Ok(mut c) = self.clock.lock() {
            *c = Some(offset);
        }
    }

    fn corrected(&self, device_unix: u64) -> u64 {
        match self.clock.lock() {
            Ok(c) => c.as_ref().map_or(device_unix, |o| o.apply(device_unix)),
            Err(_) => device_unix,
        }
    }
}

/// What an otpauth URI holds, without its secret (for a confirmation screen).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OtpUriInfo {
    /// The token it would become.
    pub token: OtpToken,
    /// Accepted oddities.
    pub warnings: Vec<UriWarning>,
    /// Secret length in bits.
    pub secret_bits: u32,
}

/// Parse an otpauth URI for display (the secret stays inside the core).
#[uniffi::export]
pub fn otp_inspect_uri(uri: String) -> Result<OtpUriInfo, OtpError> {
    let k = KeyUri::parse(&uri)?;
    Ok(OtpUriInfo {
        token: OtpToken {
            id: token_id(k.issuer.as_deref(), &k.account),
            issuer: k.issuer.clone(),
            account: k.account.clone(),
            algorithm: k.algorithm,
            digits: k.digits,
            kind: k.kind,
        },
        secret_bits: u32::try_from(k.secret.bits()).unwrap_or(u32::MAX),
        warnings: k.warnings,
    })
}

/// The code for an otpauth URI at Unix time `unix`, without saving anything.
#[uniffi::export]
pub fn otp_code_for_uri(uri: String, unix: u64) -> Result<OtpCode, OtpError> {
    let k = KeyUri::parse(&uri)?;
    code_for(&k.secret, k.algorithm, k.digits, k.kind, unix)
}
