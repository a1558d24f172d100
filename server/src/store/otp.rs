//! TOTP fallback (docs/protocol.md §3 "OTP fallback"): each identity's token (its seed,
//! sealed by the API layer before it gets here: this module never sees a seed in clear) and
//! the validator state (`otp::verify::AccountState`) of every codice fiscale a code was
//! typed for.
//!
//! The validator state is keyed by the codice fiscale's keyed lookup value (`cfkey`), known
//! or not, so an unknown codice fiscale, one without a token and one with a token go through
//! the same reads and writes and are throttled alike: the throttle tells nothing about
//! accounts.
//!
//! A login attempt is one transaction: the state row is read, the caller's check runs on
//! it (synchronously, inside the transaction), and the new state is written back with a
//! compare-and-set on its `version` (`UPDATE … WHERE version = $read`), together with the
//! session when the code is accepted and the audit row. SQLite's `BEGIN IMMEDIATE`
//! serialises the whole transaction; on PostgreSQL a concurrent attempt that read the same
//! version finds zero rows updated, rolls back and starts again from the read, so two
//! guesses can neither both pass nor both spend the same failure count.

use async_trait::async_trait;
use cie_core::flows::wire::Identity;
use cie_core::otp::verify::{AccountState, Verdict};

use super::approvals::spend_once;
use super::{AuditEntry, NewSession, Result, SqlStore, StoreError, identity_from_row, query, ts};

/// The tables of this module (created with the others at start).
pub(super) const SCHEMA: &[&str] = &[
    // One token per identity; `sealed_seed` is the API layer's AES-256-GCM box.
    "CREATE TABLE IF NOT EXISTS otp_tokens (
        identity_id TEXT PRIMARY KEY REFERENCES identities (id),
        sealed_seed {blob} NOT NULL,
        device_id TEXT NOT NULL,
        created BIGINT NOT NULL)",
    // Validator state per codice fiscale lookup value (`k1.` HMAC, `cfkey`), for any one.
    "CREATE TABLE IF NOT EXISTS otp_state (
        cf_key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        version BIGINT NOT NULL,
        updated BIGINT NOT NULL)",
];

/// How many times an attempt that lost a compare-and-set starts again before giving up.
const CAS_ROUNDS: usize = 8;

/// The OTP login's audit subject for a codice fiscale's lookup value (`cf:` and its first
/// characters: enough to tell attempts apart, the export and erasure find it).
pub fn otp_audit_subject(cf_key: &str) -> String {
    format!("cf:{}", cf_key.get(..15).unwrap_or(cf_key))
}

/// A new or replacement token.
#[derive(Clone)]
pub struct NewOtpToken<'a> {
    /// Holder.
    pub identity_id: &'a str,
    /// The holder's codice fiscale (its validator state is reset).
    pub codice_fiscale: &'a str,
    /// The seed, sealed.
    pub sealed_seed: &'a [u8],
    /// The enrolled device that asked.
    pub device_id: &'a str,
    /// The signed statement's single-use key.
    pub nonce_key: &'a str,
    /// Until when the nonce is remembered.
    pub nonce_expires: u64,
}

impl std::fmt::Debug for NewOtpToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOtpToken")
            .field("identity_id", &self.identity_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// What the check of one attempt sees: the holder's token, if the codice fiscale has an
/// account with one.
pub struct OtpSubject<'a> {
    /// Holder.
    pub identity_id: &'a str,
    /// Sealed seed.
    pub sealed_seed: &'a [u8],
}

/// The check run inside the attempt's transaction: it updates the state and says what
/// happened. It must do the same work whether or not there is a token. `None`: the seed
/// cannot be used (it does not unseal): nothing is written and the attempt fails.
pub type OtpCheck<'a> =
    dyn Fn(Option<&OtpSubject<'_>>, &mut AccountState) -> Option<Verdict> + Send + Sync + 'a;

/// What one login attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpAttempt {
    /// The code was right: the session is open.
    Accepted(Identity),
    /// Refused (wrong, replayed, throttled); the state after the attempt.
    Refused(Verdict, AccountState),
}

/// Storage of the TOTP fallback (a part of [`super::Store`]).
#[async_trait]
pub trait OtpStore: Send + Sync + 'static {
    /// Enrolment, one transaction: record the nonce (`false` when it was seen before,
    /// nothing else changes), create or replace the identity's token, reset the validator
    /// state of its codice fiscale, audit.
    async fn enroll_otp(&self, t: &NewOtpToken<'_>, audit: &AuditEntry, now: u64) -> Result<bool>;
    /// One login attempt (see the module doc): `check` runs on the state read in the
    /// transaction, its result is written back with a compare-and-set, with `session` when
    /// accepted and the audit row (whose outcome is filled in here).
    async fn otp_login(
        &self,
        codice_fiscale: &str,
        check: &OtpCheck<'_>,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<OtpAttempt>;
}

pub(super) fn state_json(s: &AccountState) -> Result<String> {
    serde_json::to_string(s).map_err(|e| StoreError::Corrupt(format!("otp state: {e}")))
}

pub(super) fn outcome(v: &Verdict) -> String {
    match v {
        Verdict::Accepted { drift_steps, .. } => format!("ok (drift {drift_steps})"),
        Verdict::Wrong => "wrong_code".into(),
        Verdict::Replayed => "replayed".into(),
        Verdict::Throttled { retry_after } => format!("rate_limited ({retry_after} s)"),
    }
}

#[async_trait]
impl OtpStore for SqlStore {
    async fn enroll_otp(&self, t: &NewOtpToken<'_>, audit: &AuditEntry, now: u64) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !spend_once(&mut tx, t.nonce_key, t.nonce_expires, now).await? {
            let refused = audit.with_outcome("replayed");
            Self::write_audit(&mut tx, &refused, now).await?;
            tx.commit().await?;
            return Ok(false);
        }
        let replaced = query(
            "UPDATE otp_tokens SET sealed_seed = $2, device_id = $3, created = $4
             WHERE identity_id = $1",
        )
        .bind(t.identity_id)
        .bind(t.sealed_seed.to_vec())
        .bind(t.device_id)
        .bind(ts(now))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !replaced {
            query(
                "INSERT INTO otp_tokens (identity_id, sealed_seed, device_id, created)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(t.identity_id)
            .bind(t.sealed_seed.to_vec())
            .bind(t.device_id)
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        }
        // A new seed starts with a new validator state (no last step, no failures).
        let fresh = state_json(&AccountState::default())?;
        query(
            "INSERT INTO otp_state (cf_key, state, version, updated) VALUES ($1, $2, 0, $3)
             ON CONFLICT (cf_key) DO UPDATE
             SET state = excluded.state, version = otp_state.version + 1,
                 updated = excluded.updated",
        )
        .bind(self.cf_key(t.codice_fiscale))
        .bind(fresh)
        .bind(ts(now))
        .execute(&mut tx)
        .await?;
        let entry = audit.with_outcome(if replaced { "replaced" } else { "created" });
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn otp_login(
        &self,
        codice_fiscale: &str,
        check: &OtpCheck<'_>,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<OtpAttempt> {
        let key = self.cf_key(codice_fiscale);
        let fresh = state_json(&AccountState::default())?;
        for _ in 0..CAS_ROUNDS {
            let mut tx = self.begin().await?;
            self.adopt_legacy(&mut tx, "otp_state", "cf_key", "", codice_fiscale)
                .await?;
            query(
                "INSERT INTO otp_state (cf_key, state, version, updated) VALUES ($1, $2, 0, $3)
                 ON CONFLICT (cf_key) DO NOTHING",
            )
            .bind(&key)
            .bind(&fresh)
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
            let row = query("SELECT state, version FROM otp_state WHERE cf_key = $1")
                .bind(&key)
                .fetch_one(&mut tx)
                .await?;
            let version: i64 = row.try_get("version")?;
            let text: String = row.try_get("state")?;
            let mut state: AccountState = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("otp state: {e}")))?;
            let token = query(
                "SELECT t.identity_id, t.sealed_seed FROM identities i
                 JOIN otp_tokens t ON t.identity_id = i.id WHERE i.codice_fiscale = $1",
            )
            .bind(codice_fiscale)
            .fetch_optional(&mut tx)
            .await?;
            let token: Option<(String, Vec<u8>)> = token
                .map(|r| {
                    Ok::<_, StoreError>((r.try_get("identity_id")?, r.try_get("sealed_seed")?))
                })
                .transpose()?;
            let subject = token.as_ref().map(|(id, seed)| OtpSubject {
                identity_id: id,
                sealed_seed: seed,
            });
            let Some(verdict) = check(subject.as_ref(), &mut state) else {
                tx.rollback().await?;
                return Err(StoreError::Corrupt("otp seed does not unseal".into()));
            };
            let written = query(
                "UPDATE otp_state SET state = $2, version = version + 1, updated = $4
                 WHERE cf_key = $1 AND version = $3",
            )
            .bind(&key)
            .bind(state_json(&state)?)
            .bind(version)
            .bind(ts(now))
            .execute(&mut tx)
            .await?
            .rows_affected()
                == 1;
            if !written {
                // Another attempt changed the state since it was read: read it again.
                tx.rollback().await?;
                continue;
            }
            let accepted = match (&verdict, &token) {
                (Verdict::Accepted { .. }, Some((identity_id, _))) => {
                    Self::insert_session(&mut tx, identity_id, session, now).await?;
                    let row = query(
                        "SELECT id, codice_fiscale, given_name, surname FROM identities
                         WHERE id = $1",
                    )
                    .bind(identity_id)
                    .fetch_one(&mut tx)
                    .await?;
                    Some(identity_from_row(&row)?)
                }
                _ => None,
            };
            let subject = match &accepted {
                Some(i) => format!("{} {}", audit.subject, i.id),
                None => audit.subject.clone(),
            };
            let entry = AuditEntry {
                subject,
                outcome: outcome(&verdict),
                ..audit.clone()
            };
            Self::write_audit(&mut tx, &entry, now).await?;
            tx.commit().await?;
            return Ok(match accepted {
                Some(identity) => OtpAttempt::Accepted(identity),
                // An "accepted" check with no token cannot happen (the check sees no
                // seed); were it to, it is refused.
                None if matches!(verdict, Verdict::Accepted { .. }) => {
                    OtpAttempt::Refused(Verdict::Wrong, state)
                }
                None => OtpAttempt::Refused(verdict, state),
            });
        }
        Err(StoreError::Corrupt(
            "otp state: too much contention on one codice fiscale".into(),
        ))
    }
}
