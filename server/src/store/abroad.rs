//! Accounts of residents abroad (issue 11; docs/abroad-pin.md): one per codice fiscale with
//! the Argon2id hash of its PIN and whether it is the initial one (must change); the
//! attempt throttle; and the two outboxes (digital, postal) each holding one half of an
//! issued PIN until the delivery hook acknowledges it.
//!
//! The throttle is kept per codice fiscale whether an account exists or not (keyed by its
//! SHA-256), so an unknown codice fiscale and a wrong PIN answer alike however often they
//! are tried. An attempt is
//! counted before the slow hash check, in one transaction that holds the throttle row (the
//! upsert locks it on PostgreSQL; SQLite has one writer), so two instances on one database
//! never lose a count or both slip through a delay.

use async_trait::async_trait;
use cie_core::flows::wire::{Identity, b64};
use sha2::{Digest, Sha256};

use super::{
    AuditEntry, NewSession, PRUNE_THROTTLE, Result, SqlStore, StoreError, Tx, identity_from_row,
    query, ts, un_ts,
};
use crate::abroad::{PIN_LEVEL, Pin, delay_after};

/// Throttle rows with no attempt counted for this long are dropped (no delay or lock is
/// left by then).
const THROTTLE_FORGET_SECS: u64 = 24 * 3600;

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
];

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

/// Accounts of residents abroad.
#[async_trait]
pub trait AbroadStore: Send + Sync {
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
    /// failures are cleared, the session (if any) opened, audited. `None`: the PIN changed.
    async fn abroad_success(
        &self,
        codice_fiscale: &str,
        pin_hash: &str,
        session: Option<&NewSession>,
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
    /// earlier one and dropping expired ones; audited.
    async fn abroad_enrol_code(
        &self,
        identity_id: &str,
        code_hash: &str,
        expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()>;
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
    /// Whether the identity has an enrolled device (then a PIN alone opens no session).
    async fn has_device(&self, identity_id: &str) -> Result<bool>;
}

#[async_trait]
impl AbroadStore for SqlStore {
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
            query("DELETE FROM abroad_throttle WHERE cf_key = $1")
                .bind(cf_key(cf))
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
            // So do the phone enrolment codes those sessions asked for.
            query(
                "DELETE FROM abroad_enrol_codes WHERE identity_id =
                     (SELECT identity_id FROM abroad_accounts WHERE codice_fiscale = $1)",
            )
            .bind(cf)
            .execute(&mut tx)
            .await?;
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
        // The no-op update makes the upsert return the row and, on PostgreSQL, hold its
        // lock to the commit: a second instance's attempt waits here and then sees this count.
        let row = query(
            "INSERT INTO abroad_throttle (cf_key, failures, next_at, updated)
             VALUES ($1, 0, 0, $2)
             ON CONFLICT (cf_key) DO UPDATE SET updated = abroad_throttle.updated
             RETURNING failures, next_at",
        )
        .bind(cf_key(codice_fiscale))
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
        .bind(cf_key(codice_fiscale))
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
        clear_throttle(&mut tx, codice_fiscale, now).await?;
        if let Some(session) = session {
            Self::insert_session(&mut tx, &identity.id, session, now).await?;
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
            clear_throttle(&mut tx, codice_fiscale, now).await?;
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
        code_hash: &str,
        expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
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
        Ok(())
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
        Self::insert_device(tx, identity, device_id, public_key, name, audit, now).await
    }

    async fn has_device(&self, identity_id: &str) -> Result<bool> {
        Ok(
            query("SELECT 1 FROM devices WHERE identity_id = $1 LIMIT 1")
                .bind(identity_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    async fn abroad_throttle(&self, codice_fiscale: &str) -> Result<Option<(u32, u64)>> {
        let row = query("SELECT failures, next_at FROM abroad_throttle WHERE cf_key = $1")
            .bind(cf_key(codice_fiscale))
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

/// The throttle's and the login audit's key of a codice fiscale: its SHA-256, so codes typed
/// without an account are not kept in clear.
pub fn cf_key(codice_fiscale: &str) -> String {
    b64(&Sha256::digest(codice_fiscale.as_bytes()))
}

async fn clear_throttle(tx: &mut Tx, codice_fiscale: &str, now: u64) -> Result<()> {
    query("UPDATE abroad_throttle SET failures = 0, next_at = 0, updated = $2 WHERE cf_key = $1")
        .bind(cf_key(codice_fiscale))
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
