//! Retention (docs/data.md): a pruning pass that deletes what has outlived its purpose —
//! spent or expired rendezvous, approvals, challenges, sessions, OpenID Connect requests,
//! codes and tokens, single-use markers — and audit rows older than the configured
//! retention. The server runs it at start and every [`PRUNE_EVERY_SECS`] on its clock: a
//! separate pass rather than a statement in each write, so a login never pays for the
//! housekeeping and the audit retention is applied even on an idle server.
//!
//! Each table is pruned in its own short transaction: on SQLite the one writer is held
//! for a single `DELETE`, never for the whole pass. Two instances on one PostgreSQL may
//! prune together: deleting an expired row twice deletes it once.

use std::sync::Arc;

use super::{Result, SqlStore, query, ts};
use crate::clock::Clock;

/// How often the server prunes, in seconds of its clock.
pub const PRUNE_EVERY_SECS: u64 = 600;

/// Default audit retention: 24 months, the period for which Italian SPID identity
/// providers keep their tracking records (DPCM 24 ottobre 2014); set your own with
/// `--retention-days` after asking your DPO.
pub const DEFAULT_AUDIT_DAYS: u32 = 730;

/// How long a row stays after its last deadline, for the pages and the app that still
/// poll it (they see "expired" rather than "unknown"), in seconds.
pub const GRACE_SECS: u64 = 3600;

/// How long the OTP validator state of a codice fiscale with no OTP token is kept after its
/// last attempt, in seconds: as the abroad PIN throttle, a day (the lock lasts 15 minutes).
pub const OTP_STATE_FORGET_SECS: u64 = 24 * 3600;

/// What is kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Audit rows older than this many days are deleted (0: kept for ever).
    pub audit_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit_days: DEFAULT_AUDIT_DAYS,
        }
    }
}

/// The deadline a pruning rule compares with.
#[derive(Clone, Copy)]
enum Cutoff {
    /// Now: the row is useless the second it expires.
    Now,
    /// [`GRACE_SECS`] ago.
    Grace,
    /// The minute bucket before the current one (rate limits).
    Bucket,
    /// A day ago (the abroad PIN throttle: no delay or lock is left by then).
    Day,
    /// The audit retention.
    Audit,
}

/// (table, condition on `$1`, cutoff). Rendezvous and approvals go when every clock of
/// theirs ran out (a code or a consume window may outlive the request's own `expires`).
const RULES: &[(&str, &str, Cutoff)] = &[
    (
        "rendezvous",
        "expires < $1 AND COALESCE(claim_expires, 0) < $1 AND COALESCE(code_expires, 0) < $1",
        Cutoff::Grace,
    ),
    (
        "approvals",
        "expires < $1 AND COALESCE(consume_by, 0) < $1",
        Cutoff::Grace,
    ),
    ("challenges", "expires < $1", Cutoff::Grace),
    ("sessions", "expires < $1", Cutoff::Now),
    ("session_methods", "expires < $1", Cutoff::Now),
    ("used_jti", "expires < $1", Cutoff::Now),
    ("oidc_requests", "expires < $1", Cutoff::Grace),
    ("oidc_codes", "expires < $1", Cutoff::Grace),
    ("oidc_tokens", "expires < $1", Cutoff::Now),
    ("oidc_token_sessions", "expires < $1", Cutoff::Now),
    ("oidc_used", "expires < $1", Cutoff::Now),
    ("abroad_enrol_codes", "expires < $1", Cutoff::Now),
    ("abroad_otp_pending", "expires < $1", Cutoff::Now),
    ("abroad_pin_tickets", "expires < $1", Cutoff::Now),
    ("abroad_pin_approvals", "expires < $1", Cutoff::Now),
    ("rate_limits", "bucket < $1", Cutoff::Bucket),
    ("abroad_throttle", "updated < $1", Cutoff::Day),
    ("audit", "at < $1", Cutoff::Audit),
];

/// Rows deleted by one pass, per table (tables with none left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned(pub Vec<(&'static str, u64)>);

impl Pruned {
    /// Rows deleted from `table`.
    pub fn get(&self, table: &str) -> u64 {
        self.0
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }

    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

impl SqlStore {
    /// One pruning pass at `now` (see the module documentation).
    pub async fn prune(&self, now: u64, retention: &Retention) -> Result<Pruned> {
        let mut out = Pruned::default();
        for (table, condition, cutoff) in RULES {
            let at = match cutoff {
                Cutoff::Now => now,
                Cutoff::Grace => now.saturating_sub(GRACE_SECS),
                Cutoff::Bucket => (now / 60).saturating_sub(1),
                Cutoff::Day => now.saturating_sub(24 * 3600),
                Cutoff::Audit if retention.audit_days == 0 => continue,
                Cutoff::Audit => now.saturating_sub(u64::from(retention.audit_days) * 86_400),
            };
            let sql = format!("DELETE FROM {table} WHERE {condition}");
            let mut tx = self.begin().await?;
            let n = query(&sql).bind(ts(at)).execute(&mut tx).await?;
            tx.commit().await?;
            if n.rows_affected() > 0 {
                out.0.push((table, n.rows_affected()));
            }
        }
        let n = self.prune_otp_state(now).await?;
        if n > 0 {
            out.0.push(("otp_state", n));
        }
        // Once no row in the unkeyed form is left, attempts stop looking for one.
        self.check_legacy().await?;
        Ok(out)
    }

    /// `otp_state` is written for every codice fiscale typed at the OTP login, known or
    /// not (unknown ones must look the same). Rows a day quiet whose codice fiscale holds
    /// no OTP token go: nothing is left to protect there. The rows of token holders stay
    /// (an HOTP counter forgotten would let its old codes replay). Rows are keyed by a
    /// keyed lookup value (`cfkey`), so the holders' keys are computed here, and only when quiet rows exist.
    async fn prune_otp_state(&self, now: u64) -> Result<u64> {
        let cutoff = ts(now.saturating_sub(OTP_STATE_FORGET_SECS));
        let quiet = query("SELECT cf_key FROM otp_state WHERE updated < $1")
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
        if quiet.is_empty() {
            return Ok(0);
        }
        let mut holders = std::collections::HashSet::new();
        for r in query(
            "SELECT i.codice_fiscale FROM identities i JOIN otp_tokens t ON t.identity_id = i.id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            holders.insert(self.cf_key(&r.try_get::<String>("codice_fiscale")?));
        }
        let mut tx = self.begin().await?;
        let mut n = 0;
        for r in quiet {
            let key: String = r.try_get("cf_key")?;
            if holders.contains(&key) {
                continue;
            }
            // `updated` checked again: an attempt or a new token since the read keeps it.
            n += query("DELETE FROM otp_state WHERE cf_key = $1 AND updated < $2")
                .bind(key)
                .bind(cutoff)
                .execute(&mut tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// Prune at start and every [`PRUNE_EVERY_SECS`] of `clock` until `stop` turns true (or its
/// sender goes). Wakes every second to read the clock, so a test's manual clock moved
/// forward is seen at once.
pub async fn housekeeping(
    store: Arc<SqlStore>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut last: Option<u64> = None;
    loop {
        let now = clock.now();
        if last.is_none_or(|l| now.saturating_sub(l) >= PRUNE_EVERY_SECS) {
            last = Some(now);
            match store.prune(now, &retention).await {
                Ok(p) if p.total() > 0 => tracing::info!(rows = p.total(), "retention: pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention: pruning failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
    }
}
