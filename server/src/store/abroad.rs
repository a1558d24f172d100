//! Accounts of residents abroad (issue 11; docs/abroad-pin.md): one per codice fiscale with
//! the Argon2id hash of its PIN and whether it is the initial one (must change); the
//! attempt throttle; and the two outboxes (digital, postal) each holding one half of an
//! issued PIN until the delivery hook acknowledges it.
//!
//! The throttle is kept per codice fiscale whether an account exists or not (by its keyed
//! lookup value, `cfkey`), so an unknown codice fiscale and a wrong PIN answer alike however
//! often they are tried. An attempt is counted before the slow hash check, in one
//! transaction that holds the throttle row (the upsert locks it on PostgreSQL; SQLite has
//! one writer), so two instances on one database never lose a count or both slip through a
//! delay.

use async_trait::async_trait;
use cie_core::flows::wire::Identity;
use cie_core::otp::verify::{AccountState, Verdict};

use super::otp::{outcome, state_json};
use super::{
    AuditEntry, NewSession, PRUNE_THROTTLE, Result, Row, SqlStore, StoreError, Tx,
    identity_from_row, query, ts, un_ts,
};
use crate::abroad::{PIN_LEVEL, Pin, delay_after};

/// Throttle rows with no attempt counted for this long are dropped (no delay or lock is
/// left by then).
const THROTTLE_FORGET_SECS: u64 = 24 * 3600;

/// How many times an OTP attempt that lost a compare-and-set starts again.
const CAS_ROUNDS: usize = 8;

/// The tables of this module (created with the others at start).
pub(super) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS abroad_accounts (
        codice_fiscale TEXT PRIMARY KEY,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        pin_hash TEXT NOT NULL,
        must_change BIGINT NOT NULL,
        email TEXT NOT NULL,
        address TEXT NOT NULL,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS abroad_throttle (
        cf_key TEXT PRIMARY KEY,
        failures BIGINT NOT NULL,
        next_at BIGINT NOT NULL,
        updated BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS abroad_throttle_updated ON abroad_throttle (updated)",
    "CREATE TABLE IF NOT EXISTS abroad_outbox_digital (
        id {serial},
        codice_fiscale TEXT NOT NULL,
        recipient TEXT NOT NULL,
        half TEXT NOT NULL,
        created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS abroad_outbox_postal (
        id {serial},
        codice_fiscale TEXT NOT NULL,
        recipient TEXT NOT NULL,
        half TEXT NOT NULL,
        created BIGINT NOT NULL)",
    // One-time codes that enrol a phone from a PIN session (no card to sign it): the
    // SHA-256 of the code, at most one live per identity.
    "CREATE TABLE IF NOT EXISTS abroad_enrol_codes (
        code_hash TEXT PRIMARY KEY,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        expires BIGINT NOT NULL)",
    // The OTP second factor of a PIN account (docs/abroad-pin.md "PIN + OTP"): the seed
    // sealed by the API layer (AES-256-GCM under the OTP key, its own purpose label), with
    // the validator's state (`otp::verify::AccountState`) and its compare-and-set version.
    "CREATE TABLE IF NOT EXISTS abroad_otp (
        identity_id TEXT PRIMARY KEY REFERENCES identities (id),
        sealed_seed {blob} NOT NULL,
        state TEXT NOT NULL,
        version BIGINT NOT NULL,
        created BIGINT NOT NULL)",
    // A seed shown but not yet confirmed by a right code: at most one per identity.
    "CREATE TABLE IF NOT EXISTS abroad_otp_pending (
        identity_id TEXT PRIMARY KEY REFERENCES identities (id),
        sealed_seed {blob} NOT NULL,
        state TEXT NOT NULL,
        version BIGINT NOT NULL,
        expires BIGINT NOT NULL)",
    // "This browser typed the right PIN a moment ago": the SHA-256 of the cookie a PIN
    // login sets when the account needs its OTP code; spent by the right code.
    "CREATE TABLE IF NOT EXISTS abroad_pin_tickets (
        ticket_hash TEXT PRIMARY KEY,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        expires BIGINT NOT NULL)",
    // The §3 requests a right PIN opened (their session is "PIN + app").
    "CREATE TABLE IF NOT EXISTS abroad_pin_approvals (
        approval_id TEXT PRIMARY KEY,
        expires BIGINT NOT NULL)",
    // How a session was opened, for the sessions whose level does not say it alone.
    "CREATE TABLE IF NOT EXISTS session_methods (
        token_hash {blob} PRIMARY KEY,
        method TEXT NOT NULL,
        expires BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS session_methods_expires ON session_methods (expires)",
];

/// The methods recorded in `session_methods`.
pub const METHOD_PIN: &str = "pin";
/// PIN, then the phone's approval.
pub const METHOD_PIN_APP: &str = "pin+app";
/// PIN, then the OTP code.
pub const METHOD_PIN_OTP: &str = "pin+otp";

/// A delivery channel, each with its own outbox table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// E-mail: the first 8 characters.
    Digital,
    /// Letter: the last 8 characters.
    Postal,
}

impl Channel {
    fn table(self) -> &'static str {
        match self {
            Channel::Digital => "abroad_outbox_digital",
            Channel::Postal => "abroad_outbox_postal",
        }
    }

    /// `digital` or `postal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Digital => "digital",
            Channel::Postal => "postal",
        }
    }

    /// From `digital` / `postal`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "digital" => Some(Channel::Digital),
            "postal" => Some(Channel::Postal),
            _ => None,
        }
    }
}

/// An issue or reset to store.
#[derive(Debug, Clone)]
pub struct AbroadIssue {
    /// Validated codice fiscale.
    pub codice_fiscale: String,
    /// For a new identity.
    pub given_name: String,
    /// For a new identity.
    pub surname: String,
    /// Digital address; `None` on reset keeps the stored one.
    pub email: Option<String>,
    /// Postal address; `None` on reset keeps the stored one.
    pub address: Option<String>,
    /// Argon2id PHC string of the whole PIN.
    pub pin_hash: String,
    /// The first half (digital outbox).
    pub digital_half: Pin,
    /// The second half (postal outbox).
    pub postal_half: Pin,
}

/// What an issue or reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    /// Stored and queued.
    Done {
        /// The holder's identity.
        identity_id: String,
    },
    /// `issue` of an existing account.
    Exists,
    /// `reset` of no account.
    Unknown,
}

/// An account as read for a login.
#[derive(Clone)]
pub struct AbroadAccount {
    /// The holder's identity.
    pub identity_id: String,
    /// Argon2id PHC string.
    pub pin_hash: String,
    /// Still the initial PIN.
    pub must_change: bool,
}

impl std::fmt::Debug for AbroadAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbroadAccount")
            .field("identity_id", &self.identity_id)
            .field("must_change", &self.must_change)
            .finish_non_exhaustive()
    }
}

/// Whether an attempt may go on to the hash check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted as a failure until it proves right (`failures` now).
    Go {
        /// The count including this attempt.
        failures: u32,
    },
    /// The account's delay or lock is running: not counted.
    Wait {
        /// Seconds left.
        retry_after: u64,
        /// A lock (after [`crate::abroad::LOCK_AFTER`] failures) rather than a delay.
        locked: bool,
    },
    /// This client address made too many attempts this minute: not counted.
    ClientLimited {
        /// Seconds to the next minute.
        retry_after: u64,
    },
}

/// One pending delivery (the half prints as `<hidden>` in Debug and is wiped on drop).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxItem {
    /// Row id (to acknowledge).
    pub id: i64,
    /// `digital` or `postal`.
    pub channel: &'static str,
    /// The holder.
    pub codice_fiscale: String,
    /// E-mail or postal address.
    pub recipient: String,
    /// Eight characters of the PIN.
    pub half: Pin,
    /// Unix seconds.
    pub created: u64,
}

/// A "PIN verified" ticket to store with a right PIN (the account needs its OTP code).
#[derive(Clone)]
pub struct PinTicket {
    /// SHA-256 of the cookie (base64url).
    pub ticket_hash: String,
    /// Unix seconds.
    pub expires: u64,
}

impl std::fmt::Debug for PinTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinTicket")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The check of one OTP code, run inside the store's transaction: the identity, its sealed
/// seed and the validator state to update. `None`: the seed does not unseal.
pub type SealedOtpCheck<'a> =
    dyn Fn(&str, &[u8], &mut AccountState) -> Option<Verdict> + Send + Sync + 'a;

/// What an enrolment step (phone code, OTP seed, OTP confirmation) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// Done (the code stored, the seed pending, the OTP active).
    Done,
    /// The identity has a second factor and the session is level 1: log in with it first.
    SecondFactorRequired,
    /// The identity has no PIN account (OTP as a second factor is for PIN accounts).
    NoAccount,
    /// Confirmation: no seed pending (never asked, expired, or voided).
    NothingPending,
    /// Confirmation: the code was refused; the state after the attempt.
    Refused(Verdict, AccountState),
}

/// What the code step of a PIN + OTP login did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOtpAttempt {
    /// No live ticket (no right PIN on this browser lately) or no OTP any more.
    NoTicket,
    /// The code was right: the level-2 session is open.
    Accepted(Identity),
    /// Refused (wrong, replayed, throttled); the state after the attempt.
    Refused(Verdict, AccountState),
}

/// Accounts of residents abroad.
#[async_trait]
pub trait AbroadStore: Send + Sync {
    /// The stored lookup value of a codice fiscale (`k1.…`, keyed: never the value or its
    /// plain hash); the throttle, the OTP state and audit subjects name codici fiscali by it.
    fn cf_key(&self, codice_fiscale: &str) -> String;
    /// Issue (`reset == false`: the account must not exist) or reset (it must) a PIN, one
    /// transaction: the account (and its identity, created if new) with the hash; on reset
    /// the old halves, the throttle and the PIN's sessions dropped; the two halves queued;
    /// audited.
    async fn abroad_issue(
        &self,
        issue: &AbroadIssue,
        reset: bool,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<IssueOutcome>;
    /// The account of a codice fiscale.
    async fn abroad_account(&self, codice_fiscale: &str) -> Result<Option<AbroadAccount>>;
    /// Count an attempt on `codice_fiscale` from `client`, one transaction: the client's
    /// per-minute budget, then the account's delay or lock, then the failure counted ahead
    /// of the check (undone by [`AbroadStore::abroad_success`]). Refusals are audited.
    async fn abroad_attempt(
        &self,
        codice_fiscale: &str,
        per_minute: u32,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Attempt>;
    /// A right PIN, one transaction: the hash is still `pin_hash` (no reset meanwhile), the
    /// failures are cleared, the session (if any, method `pin`) opened or the ticket (if
    /// any) stored, audited. `None`: the PIN changed.
    async fn abroad_success(
        &self,
        codice_fiscale: &str,
        pin_hash: &str,
        session: Option<&NewSession>,
        ticket: Option<&PinTicket>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
    /// Replace `old_hash` by `new_hash` (no longer the initial PIN), clear the failures,
    /// audit; `false` when the hash changed meanwhile.
    async fn abroad_change_pin(
        &self,
        codice_fiscale: &str,
        old_hash: &str,
        new_hash: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool>;
    /// The pending deliveries of a channel, oldest first.
    async fn abroad_outbox(&self, channel: Channel) -> Result<Vec<OutboxItem>>;
    /// The delivery hook sent row `id`: erase it. `false` when there was none.
    async fn abroad_ack(
        &self,
        channel: Channel,
        id: i64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool>;
    /// The throttle of a codice fiscale: (failures, next attempt allowed at).
    async fn abroad_throttle(&self, codice_fiscale: &str) -> Result<Option<(u32, u64)>>;
    /// A one-time enrolment code for `identity_id` (its SHA-256), replacing the identity's
    /// earlier one and dropping expired ones; audited. Refused
    /// ([`Enrolment::SecondFactorRequired`]) from a level-1 session once the identity has a
    /// second factor.
    async fn abroad_enrol_code(
        &self,
        identity_id: &str,
        session_level: u8,
        code_hash: &str,
        expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Enrolment>;
    /// Keep a new OTP seed (sealed) pending confirmation for a PIN account, replacing the
    /// identity's earlier pending one; the same refusals as [`AbroadStore::abroad_enrol_code`]
    /// and [`Enrolment::NoAccount`]; audited.
    #[allow(clippy::too_many_arguments)]
    async fn abroad_otp_begin(
        &self,
        identity_id: &str,
        session_level: u8,
        sealed_seed: &[u8],
        expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Enrolment>;
    /// One confirmation attempt, one transaction: `check` runs on the pending seed and its
    /// state, written back with a compare-and-set; a right code makes the seed the active
    /// OTP (replacing an earlier one) and voids the identity's other pending enrolments
    /// (phone codes, seeds). Audited.
    async fn abroad_otp_confirm(
        &self,
        identity_id: &str,
        session_level: u8,
        check: &SealedOtpCheck<'_>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Enrolment>;
    /// The code step of a PIN + OTP login, one transaction: the ticket names the identity,
    /// `check` runs on its OTP and state (compare-and-set), a right code spends the ticket
    /// and opens `session` (method `pin+otp`). Audited.
    async fn abroad_otp_login(
        &self,
        ticket_hash: &str,
        check: &SealedOtpCheck<'_>,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<PinOtpAttempt>;
    /// Remember that the §3 request `approval_id` followed a right PIN (its session is then
    /// "PIN + app").
    async fn abroad_pin_approval(&self, approval_id: &str, expires: u64, now: u64) -> Result<()>;
    /// The identity's active factors, in a fixed order: `cie` (a card logged in), `pin`
    /// (a PIN account), `app` (an enrolled phone), `otp` (the PIN account's OTP).
    async fn account_factors(&self, identity_id: &str) -> Result<Vec<&'static str>>;
    /// How the session of `token_hash` was opened, when recorded (PIN logins).
    async fn session_method(&self, token_hash: &[u8; 32]) -> Result<Option<String>>;
    /// Spend an enrolment code and store the device key for its identity, one transaction;
    /// `None` when the code is unknown, used or expired (audited either way).
    #[allow(clippy::too_many_arguments)]
    async fn abroad_enrol_device(
        &self,
        code_hash: &str,
        device_id: &str,
        public_key: &[u8],
        name: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
}

#[async_trait]
impl AbroadStore for SqlStore {
    fn cf_key(&self, codice_fiscale: &str) -> String {
        SqlStore::cf_key(self, codice_fiscale)
    }

    async fn abroad_issue(
        &self,
        issue: &AbroadIssue,
        reset: bool,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<IssueOutcome> {
        let cf = issue.codice_fiscale.as_str();
        let mut tx = self.begin().await?;
        let exists = query("SELECT identity_id FROM abroad_accounts WHERE codice_fiscale = $1")
            .bind(cf)
            .fetch_optional(&mut tx)
            .await?
            .is_some();
        let refusal = match (reset, exists) {
            (false, true) => Some(IssueOutcome::Exists),
            (true, false) => Some(IssueOutcome::Unknown),
            _ => None,
        };
        if let Some(outcome) = refusal {
            let why = if reset { "unknown" } else { "exists" };
            Self::write_audit(&mut tx, &audit.with_outcome(why), now).await?;
            tx.commit().await?;
            return Ok(outcome);
        }
        if reset {
            query(
                "UPDATE abroad_accounts SET pin_hash = $2, must_change = 1,
                     email = COALESCE($3, email), address = COALESCE($4, address), updated = $5
                 WHERE codice_fiscale = $1",
            )
            .bind(cf)
            .bind(&issue.pin_hash)
            .bind(issue.email.clone())
            .bind(issue.address.clone())
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
            // The old PIN's undelivered halves are void, and so is its lockout.
            for channel in [Channel::Digital, Channel::Postal] {
                query(&format!(
                    "DELETE FROM {} WHERE codice_fiscale = $1",
                    channel.table()
                ))
                .bind(cf)
                .execute(&mut tx)
                .await?;
            }
            self.adopt_legacy(&mut tx, "abroad_throttle", "cf_key", "", cf)
                .await?;
            query("DELETE FROM abroad_throttle WHERE cf_key = $1")
                .bind(self.cf_key(cf))
                .execute(&mut tx)
                .await?;
            // A reset is what a holder asks for when the PIN may be known to someone else:
            // the sessions it opened end too (only a PIN login opens sessions at its level).
            query(
                "DELETE FROM sessions WHERE level = $2 AND identity_id =
                     (SELECT identity_id FROM abroad_accounts WHERE codice_fiscale = $1)",
            )
            .bind(cf)
            .bind(i64::from(PIN_LEVEL))
            .execute(&mut tx)
            .await?;
            // So do the phone enrolment codes and OTP seeds those sessions asked for, and
            // the old PIN's tickets. The active factors (phone, OTP) stay: see
            // docs/abroad-pin.md "Reset and the factors".
            for table in [
                "abroad_enrol_codes",
                "abroad_otp_pending",
                "abroad_pin_tickets",
            ] {
                query(&format!(
                    "DELETE FROM {table} WHERE identity_id =
                         (SELECT identity_id FROM abroad_accounts WHERE codice_fiscale = $1)"
                ))
                .bind(cf)
                .execute(&mut tx)
                .await?;
            }
        } else {
            let identity_id = identity_of(&mut tx, issue, now).await?;
            query(
                "INSERT INTO abroad_accounts (codice_fiscale, identity_id, pin_hash, must_change,
                     email, address, created, updated)
                 VALUES ($1, $2, $3, 1, $4, $5, $6, $6)",
            )
            .bind(cf)
            .bind(&identity_id)
            .bind(&issue.pin_hash)
            .bind(issue.email.clone().unwrap_or_default())
            .bind(issue.address.clone().unwrap_or_default())
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        }
        let row = query(
            "SELECT identity_id, email, address FROM abroad_accounts WHERE codice_fiscale = $1",
        )
        .bind(cf)
        .fetch_one(&mut tx)
        .await?;
        let identity_id: String = row.try_get("identity_id")?;
        let halves = [
            (
                Channel::Digital,
                row.try_get::<String>("email")?,
                &issue.digital_half,
            ),
            (
                Channel::Postal,
                row.try_get::<String>("address")?,
                &issue.postal_half,
            ),
        ];
        for (channel, recipient, half) in halves {
            query(&format!(
                "INSERT INTO {} (codice_fiscale, recipient, half, created) VALUES ($1, $2, $3, $4)",
                channel.table()
            ))
            .bind(cf)
            .bind(recipient)
            .bind(half.expose())
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        }
        Self::write_audit(&mut tx, &audit.for_identity(&identity_id), now).await?;
        tx.commit().await?;
        Ok(IssueOutcome::Done { identity_id })
    }

    async fn abroad_account(&self, codice_fiscale: &str) -> Result<Option<AbroadAccount>> {
        let row = query(
            "SELECT identity_id, pin_hash, must_change FROM abroad_accounts
             WHERE codice_fiscale = $1",
        )
        .bind(codice_fiscale)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AbroadAccount {
                identity_id: row.try_get("identity_id")?,
                pin_hash: row.try_get("pin_hash")?,
                must_change: row.try_get::<i64>("must_change")? != 0,
            })
        })
        .transpose()
    }

    async fn abroad_attempt(
        &self,
        codice_fiscale: &str,
        per_minute: u32,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Attempt> {
        let mut tx = self.begin().await?;
        let hits = self
            .rate_limit_hit(&mut tx, &format!("abroad:{}", audit.client), now)
            .await?;
        if hits > i64::from(per_minute) {
            Self::write_audit(&mut tx, &audit.with_outcome("rate_limited"), now).await?;
            tx.commit().await?;
            return Ok(Attempt::ClientLimited {
                retry_after: 60 - now % 60,
            });
        }
        // Rows of codes tried without an account would pile up: a day after the last
        // counted attempt no delay or lock is left (the lock lasts 15 minutes), so the
        // count is forgotten, for any code.
        if self.prune_due(PRUNE_THROTTLE, now) {
            query("DELETE FROM abroad_throttle WHERE updated < $1")
                .bind(ts(now.saturating_sub(THROTTLE_FORGET_SECS)))
                .execute(&mut tx)
                .await?;
        }
        // A throttle counted before keyed lookups carries over (an upgrade resets none).
        self.adopt_legacy(&mut tx, "abroad_throttle", "cf_key", "", codice_fiscale)
            .await?;
        // The no-op update makes the upsert return the row and, on PostgreSQL, hold its
        // lock to the commit: a second instance's attempt waits here and then sees this count.
        let row = query(
            "INSERT INTO abroad_throttle (cf_key, failures, next_at, updated)
             VALUES ($1, 0, 0, $2)
             ON CONFLICT (cf_key) DO UPDATE SET updated = abroad_throttle.updated
             RETURNING failures, next_at",
        )
        .bind(self.cf_key(codice_fiscale))
        .bind(ts(now))
        .fetch_one(&mut tx)
        .await?;
        let failures: i64 = row.try_get("failures")?;
        let next_at = un_ts(row.try_get("next_at")?);
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        if now < next_at {
            let locked = failures >= crate::abroad::LOCK_AFTER;
            let outcome = if locked { "locked" } else { "delayed" };
            Self::write_audit(&mut tx, &audit.with_outcome(outcome), now).await?;
            tx.commit().await?;
            return Ok(Attempt::Wait {
                retry_after: next_at - now,
                locked,
            });
        }
        let counted = failures.saturating_add(1);
        let done = query(
            "UPDATE abroad_throttle SET failures = $2, next_at = $3, updated = $4
             WHERE cf_key = $1 AND failures = $5",
        )
        .bind(self.cf_key(codice_fiscale))
        .bind(i64::from(counted))
        .bind(ts(now.saturating_add(delay_after(counted))))
        .bind(ts(now))
        .bind(i64::from(failures))
        .execute(&mut tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Err(StoreError::Corrupt(
                "throttle row changed under its lock".into(),
            ));
        }
        let entry = audit.with_outcome(format!("counted failures={counted}"));
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Attempt::Go { failures: counted })
    }

    async fn abroad_success(
        &self,
        codice_fiscale: &str,
        pin_hash: &str,
        session: Option<&NewSession>,
        ticket: Option<&PinTicket>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        let row = query(
            "SELECT i.id, i.codice_fiscale, i.given_name, i.surname
             FROM abroad_accounts a JOIN identities i ON i.id = a.identity_id
             WHERE a.codice_fiscale = $1 AND a.pin_hash = $2",
        )
        .bind(codice_fiscale)
        .bind(pin_hash)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            Self::write_audit(&mut tx, &audit.with_outcome("pin_changed"), now).await?;
            tx.commit().await?;
            return Ok(None);
        };
        let identity = identity_from_row(&row)?;
        clear_throttle(&mut tx, &self.cf_key(codice_fiscale), now).await?;
        if let Some(session) = session {
            Self::insert_session(&mut tx, &identity.id, session, now).await?;
            record_method(&mut tx, session, METHOD_PIN, now).await?;
        }
        if let Some(t) = ticket {
            query("DELETE FROM abroad_pin_tickets WHERE expires <= $1")
                .bind(ts(now))
                .execute(&mut tx)
                .await?;
            query(
                "INSERT INTO abroad_pin_tickets (ticket_hash, identity_id, expires)
                 VALUES ($1, $2, $3)",
            )
            .bind(&t.ticket_hash)
            .bind(&identity.id)
            .bind(ts(t.expires))
            .execute(&mut tx)
            .await?;
        }
        Self::write_audit(&mut tx, &audit.for_identity(&identity.id), now).await?;
        tx.commit().await?;
        Ok(Some(identity))
    }

    async fn abroad_change_pin(
        &self,
        codice_fiscale: &str,
        old_hash: &str,
        new_hash: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = query(
            "UPDATE abroad_accounts SET pin_hash = $3, must_change = 0, updated = $4
             WHERE codice_fiscale = $1 AND pin_hash = $2",
        )
        .bind(codice_fiscale)
        .bind(old_hash)
        .bind(new_hash)
        .bind(ts(now))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            clear_throttle(&mut tx, &self.cf_key(codice_fiscale), now).await?;
            query(
                "DELETE FROM abroad_pin_tickets WHERE identity_id =
                     (SELECT identity_id FROM abroad_accounts WHERE codice_fiscale = $1)",
            )
            .bind(codice_fiscale)
            .execute(&mut tx)
            .await?;
        }
        Self::commit_cas(tx, done, audit, "pin_changed", now).await
    }

    async fn abroad_outbox(&self, channel: Channel) -> Result<Vec<OutboxItem>> {
        let rows = query(&format!(
            "SELECT id, codice_fiscale, recipient, half, created FROM {} ORDER BY id",
            channel.table()
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxItem {
                    id: r.try_get("id")?,
                    channel: channel.as_str(),
                    codice_fiscale: r.try_get("codice_fiscale")?,
                    recipient: r.try_get("recipient")?,
                    half: Pin::new(r.try_get::<String>("half")?),
                    created: un_ts(r.try_get("created")?),
                })
            })
            .collect()
    }

    async fn abroad_ack(
        &self,
        channel: Channel,
        id: i64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = query(&format!("DELETE FROM {} WHERE id = $1", channel.table()))
            .bind(id)
            .execute(&mut tx)
            .await?
            .rows_affected()
            == 1;
        Self::commit_cas(tx, done, audit, "not_found", now).await
    }

    async fn abroad_enrol_code(
        &self,
        identity_id: &str,
        session_level: u8,
        code_hash: &str,
        expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Enrolment> {
        let mut tx = self.begin().await?;
        if session_level < 2 && has_second_factor(&mut tx, identity_id).await? {
            let entry = audit
                .for_identity(identity_id)
                .with_outcome("second_factor_required");
            Self::write_audit(&mut tx, &entry, now).await?;
            tx.commit().await?;
            return Ok(Enrolment::SecondFactorRequired);
        }
        query("DELETE FROM abroad_enrol_codes WHERE identity_id = $1 OR expires <= $2")
            .bind(identity_id)
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        query(
            "INSERT INTO abroad_enrol_codes (code_hash, identity_id, expires) VALUES ($1, $2, $3)",
        )
        .bind(code_hash)
        .bind(identity_id)
        .bind(ts(expires))
        .execute(&mut tx)
        .await?;
        Self::write_audit(&mut tx, &audit.for_identity(identity_id), now).await?;
        tx.commit().await?;
        Ok(Enrolment::Done)
    }

    async fn abroad_enrol_device(
        &self,
        code_hash: &str,
        device_id: &str,
        public_key: &[u8],
        name: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        let row = query(
            "SELECT i.id, i.codice_fiscale, i.given_name, i.surname
             FROM abroad_enrol_codes c JOIN identities i ON i.id = c.identity_id
             WHERE c.code_hash = $1 AND c.expires > $2",
        )
        .bind(code_hash)
        .bind(ts(now))
        .fetch_optional(&mut tx)
        .await?;
        // Spent by the delete, compare-and-set: of two posts of one code only one enrols.
        let spent = row.is_some()
            && query("DELETE FROM abroad_enrol_codes WHERE code_hash = $1")
                .bind(code_hash)
                .execute(&mut tx)
                .await?
                .rows_affected()
                == 1;
        let identity = match row {
            Some(row) if spent => identity_from_row(&row)?,
            _ => {
                Self::write_audit(&mut tx, &audit.with_outcome("not_found"), now).await?;
                tx.commit().await?;
                return Ok(None);
            }
        };
        // A second factor now exists: seeds shown to a level-1 session before it are void.
        query("DELETE FROM abroad_otp_pending WHERE identity_id = $1")
            .bind(&identity.id)
            .execute(&mut tx)
            .await?;
        Self::insert_device(tx, identity, device_id, public_key, name, audit, now).await
    }

    async fn abroad_otp_begin(
        &self,
        identity_id: &str,
        session_level: u8,
        sealed_seed: &[u8],
        expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Enrolment> {
        let mut tx = self.begin().await?;
        let account = query("SELECT 1 FROM abroad_accounts WHERE identity_id = $1")
            .bind(identity_id)
            .fetch_optional(&mut tx)
            .await?
            .is_some();
        let refusal = if !account {
            Some((Enrolment::NoAccount, "no_account"))
        } else if session_level < 2 && has_second_factor(&mut tx, identity_id).await? {
            Some((Enrolment::SecondFactorRequired, "second_factor_required"))
        } else {
            None
        };
        if let Some((refused, why)) = refusal {
            let entry = audit.for_identity(identity_id).with_outcome(why);
            Self::write_audit(&mut tx, &entry, now).await?;
            tx.commit().await?;
            return Ok(refused);
        }
        query("DELETE FROM abroad_otp_pending WHERE identity_id = $1 OR expires <= $2")
            .bind(identity_id)
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        query(
            "INSERT INTO abroad_otp_pending (identity_id, sealed_seed, state, version, expires)
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(identity_id)
        .bind(sealed_seed.to_vec())
        .bind(state_json(&AccountState::default())?)
        .bind(ts(expires))
        .execute(&mut tx)
        .await?;
        Self::write_audit(&mut tx, &audit.for_identity(identity_id), now).await?;
        tx.commit().await?;
        Ok(Enrolment::Done)
    }

    async fn abroad_otp_confirm(
        &self,
        identity_id: &str,
        session_level: u8,
        check: &SealedOtpCheck<'_>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Enrolment> {
        let audit = audit.for_identity(identity_id);
        for _ in 0..CAS_ROUNDS {
            let mut tx = self.begin().await?;
            let row = query(
                "SELECT sealed_seed, state, version FROM abroad_otp_pending
                 WHERE identity_id = $1 AND expires > $2",
            )
            .bind(identity_id)
            .bind(ts(now))
            .fetch_optional(&mut tx)
            .await?;
            let Some(row) = row else {
                Self::write_audit(&mut tx, &audit.with_outcome("nothing_pending"), now).await?;
                tx.commit().await?;
                return Ok(Enrolment::NothingPending);
            };
            if session_level < 2 && has_second_factor(&mut tx, identity_id).await? {
                let entry = audit.with_outcome("second_factor_required");
                Self::write_audit(&mut tx, &entry, now).await?;
                tx.commit().await?;
                return Ok(Enrolment::SecondFactorRequired);
            }
            let sealed: Vec<u8> = row.try_get("sealed_seed")?;
            let attempt = OtpRow {
                table: "abroad_otp_pending",
                identity_id,
                sealed: &sealed,
                row: &row,
            };
            let (mut tx, state) = match attempt.check(tx, check, &audit, now).await? {
                Checked::Retry => continue,
                Checked::Refused(v, st) => return Ok(Enrolment::Refused(v, st)),
                Checked::Accepted(tx, _, st) => (tx, st),
            };
            // Active from now on, with the state that recorded the confirming step (the
            // same code cannot log in afterwards).
            let replaced = query("SELECT 1 FROM abroad_otp WHERE identity_id = $1")
                .bind(identity_id)
                .fetch_optional(&mut tx)
                .await?
                .is_some();
            query(
                "INSERT INTO abroad_otp (identity_id, sealed_seed, state, version, created)
                 VALUES ($1, $2, $3, 0, $4)
                 ON CONFLICT (identity_id) DO UPDATE
                 SET sealed_seed = excluded.sealed_seed, state = excluded.state,
                     version = abroad_otp.version + 1, created = excluded.created",
            )
            .bind(identity_id)
            .bind(sealed)
            .bind(state_json(&state)?)
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
            // What a level-1 session asked for before this factor existed is void now.
            for table in ["abroad_otp_pending", "abroad_enrol_codes"] {
                query(&format!("DELETE FROM {table} WHERE identity_id = $1"))
                    .bind(identity_id)
                    .execute(&mut tx)
                    .await?;
            }
            let what = if replaced { "replaced" } else { "activated" };
            Self::write_audit(&mut tx, &audit.with_outcome(what), now).await?;
            tx.commit().await?;
            return Ok(Enrolment::Done);
        }
        Err(StoreError::Corrupt(
            "abroad otp: too much contention on one identity".into(),
        ))
    }

    async fn abroad_otp_login(
        &self,
        ticket_hash: &str,
        check: &SealedOtpCheck<'_>,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<PinOtpAttempt> {
        for _ in 0..CAS_ROUNDS {
            let mut tx = self.begin().await?;
            let row = query(
                "SELECT o.identity_id, o.sealed_seed, o.state, o.version
                 FROM abroad_pin_tickets t JOIN abroad_otp o ON o.identity_id = t.identity_id
                 WHERE t.ticket_hash = $1 AND t.expires > $2",
            )
            .bind(ticket_hash)
            .bind(ts(now))
            .fetch_optional(&mut tx)
            .await?;
            let Some(row) = row else {
                Self::write_audit(&mut tx, &audit.with_outcome("no_ticket"), now).await?;
                tx.commit().await?;
                return Ok(PinOtpAttempt::NoTicket);
            };
            let identity_id: String = row.try_get("identity_id")?;
            let sealed: Vec<u8> = row.try_get("sealed_seed")?;
            let audit = audit.for_identity(&identity_id);
            let attempt = OtpRow {
                table: "abroad_otp",
                identity_id: &identity_id,
                sealed: &sealed,
                row: &row,
            };
            let (mut tx, verdict) = match attempt.check(tx, check, &audit, now).await? {
                Checked::Retry => continue,
                Checked::Refused(v, st) => return Ok(PinOtpAttempt::Refused(v, st)),
                Checked::Accepted(tx, v, _) => (tx, v),
            };
            // The ticket is single use (held under the OTP row's update: a concurrent
            // attempt with it waits, then finds the version moved and reads again).
            query("DELETE FROM abroad_pin_tickets WHERE ticket_hash = $1")
                .bind(ticket_hash)
                .execute(&mut tx)
                .await?;
            Self::insert_session(&mut tx, &identity_id, session, now).await?;
            record_method(&mut tx, session, METHOD_PIN_OTP, now).await?;
            let identity = identity_from_row(
                &query(
                    "SELECT id, codice_fiscale, given_name, surname FROM identities WHERE id = $1",
                )
                .bind(&identity_id)
                .fetch_one(&mut tx)
                .await?,
            )?;
            Self::write_audit(&mut tx, &audit.with_outcome(outcome(&verdict)), now).await?;
            tx.commit().await?;
            return Ok(PinOtpAttempt::Accepted(identity));
        }
        Err(StoreError::Corrupt(
            "abroad otp: too much contention on one identity".into(),
        ))
    }

    async fn abroad_pin_approval(&self, approval_id: &str, expires: u64, now: u64) -> Result<()> {
        let mut tx = self.begin().await?;
        query("DELETE FROM abroad_pin_approvals WHERE expires <= $1")
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        query("INSERT INTO abroad_pin_approvals (approval_id, expires) VALUES ($1, $2)")
            .bind(approval_id)
            .bind(ts(expires))
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn account_factors(&self, identity_id: &str) -> Result<Vec<&'static str>> {
        let row = query(
            "SELECT
                (SELECT COUNT(*) FROM cards WHERE identity_id = $1) AS cie,
                (SELECT COUNT(*) FROM abroad_accounts WHERE identity_id = $1) AS pin,
                (SELECT COUNT(*) FROM devices WHERE identity_id = $1) AS app,
                (SELECT COUNT(*) FROM abroad_otp WHERE identity_id = $1) AS otp",
        )
        .bind(identity_id)
        .fetch_one(&self.pool)
        .await?;
        let mut out = Vec::new();
        for name in ["cie", "pin", "app", "otp"] {
            if row.try_get::<i64>(name)? > 0 {
                out.push(name);
            }
        }
        Ok(out)
    }

    async fn session_method(&self, token_hash: &[u8; 32]) -> Result<Option<String>> {
        query("SELECT method FROM session_methods WHERE token_hash = $1")
            .bind(token_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("method"))
            .transpose()
    }

    async fn abroad_throttle(&self, codice_fiscale: &str) -> Result<Option<(u32, u64)>> {
        let row = query("SELECT failures, next_at FROM abroad_throttle WHERE cf_key = $1")
            .bind(self.cf_key(codice_fiscale))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let failures: i64 = r.try_get("failures")?;
            Ok((
                u32::try_from(failures).unwrap_or(u32::MAX),
                un_ts(r.try_get("next_at")?),
            ))
        })
        .transpose()
    }
}

/// Whether the identity has a second factor (an enrolled phone or an active OTP).
async fn has_second_factor(tx: &mut Tx, identity_id: &str) -> Result<bool> {
    let row = query(
        "SELECT (SELECT COUNT(*) FROM devices WHERE identity_id = $1)
              + (SELECT COUNT(*) FROM abroad_otp WHERE identity_id = $1) AS n",
    )
    .bind(identity_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.try_get::<i64>("n")? > 0)
}

/// Record how `session` was opened (and drop the records of expired sessions).
async fn record_method(tx: &mut Tx, session: &NewSession, method: &str, now: u64) -> Result<()> {
    query("DELETE FROM session_methods WHERE expires <= $1")
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
    query("INSERT INTO session_methods (token_hash, method, expires) VALUES ($1, $2, $3)")
        .bind(session.token_hash.to_vec())
        .bind(method)
        .bind(ts(session.expires))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// In the transaction that opens the session of a consumed §3 request: if a right PIN
/// opened that request, the session is "PIN + app".
pub(super) async fn note_pin_approval(
    tx: &mut Tx,
    approval_id: &str,
    session: &NewSession,
    now: u64,
) -> Result<()> {
    let asked_by_pin = query("SELECT 1 FROM abroad_pin_approvals WHERE approval_id = $1")
        .bind(approval_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if asked_by_pin {
        record_method(tx, session, METHOD_PIN_APP, now).await?;
    }
    Ok(())
}

/// One OTP attempt on a row of `table` (`state` and `version` read in `row`).
struct OtpRow<'a> {
    table: &'static str,
    identity_id: &'a str,
    sealed: &'a [u8],
    row: &'a Row,
}

/// What [`OtpRow::check`] did with the transaction.
enum Checked {
    /// Another attempt changed the state since it was read: rolled back, read again.
    Retry,
    /// Refused: the state written, the refusal audited, committed.
    Refused(Verdict, AccountState),
    /// Accepted: the state written; the transaction goes on.
    Accepted(Tx, Verdict, AccountState),
}

impl OtpRow<'_> {
    /// Run `check` on the row's seed and state and write the state back with a
    /// compare-and-set on its version.
    async fn check(
        &self,
        mut tx: Tx,
        check: &SealedOtpCheck<'_>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Checked> {
        let version: i64 = self.row.try_get("version")?;
        let text: String = self.row.try_get("state")?;
        let mut state: AccountState = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("otp state: {e}")))?;
        let verdict = check(self.identity_id, self.sealed, &mut state)
            .ok_or_else(|| StoreError::Corrupt("otp seed does not unseal".into()))?;
        let written = query(&format!(
            "UPDATE {} SET state = $2, version = version + 1
             WHERE identity_id = $1 AND version = $3",
            self.table
        ))
        .bind(self.identity_id)
        .bind(state_json(&state)?)
        .bind(version)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !written {
            tx.rollback().await?;
            return Ok(Checked::Retry);
        }
        if !matches!(verdict, Verdict::Accepted { .. }) {
            SqlStore::write_audit(&mut tx, &audit.with_outcome(outcome(&verdict)), now).await?;
            tx.commit().await?;
            return Ok(Checked::Refused(verdict, state));
        }
        Ok(Checked::Accepted(tx, verdict, state))
    }
}

async fn clear_throttle(tx: &mut Tx, cf_key: &str, now: u64) -> Result<()> {
    query("UPDATE abroad_throttle SET failures = 0, next_at = 0, updated = $2 WHERE cf_key = $1")
        .bind(cf_key)
        .bind(ts(now))
        .execute(tx)
        .await?;
    Ok(())
}

/// The identity of the codice fiscale (a card holder's, if they ever logged in with one),
/// created if new.
async fn identity_of(tx: &mut Tx, issue: &AbroadIssue, now: u64) -> Result<String> {
    let id = crate::random_id::<16>().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    query(
        "INSERT INTO identities (id, codice_fiscale, given_name, surname, created)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (codice_fiscale) DO NOTHING",
    )
    .bind(&id)
    .bind(&issue.codice_fiscale)
    .bind(&issue.given_name)
    .bind(&issue.surname)
    .bind(ts(now))
    .execute(&mut *tx)
    .await?;
    query("SELECT id FROM identities WHERE codice_fiscale = $1")
        .bind(&issue.codice_fiscale)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")
}
