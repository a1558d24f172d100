//! App approvals with number matching (docs/protocol.md §3): the request the desktop makes
//! for a codice fiscale, the phone's signed listing and decision, the desktop's session.
//! Same rules as the rest of the store: one transaction per change, compare-and-set on the
//! state, the audit row in the same transaction.

use async_trait::async_trait;
use cie_core::flows::wire::Identity;

use super::{
    AuditEntry, Limited, NewSession, Result, Row, SqlStore, Store, StoreError, Tx,
    identity_from_row, query, small, ts, un_ts,
};

/// The tables of this module (created with the others at start).
pub(super) const SCHEMA: &[&str] = &[
    // identity_id is NULL for a codice fiscale with no account: the request looks the same
    // to the desktop, can never be listed or approved, and expires.
    "CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        identity_id TEXT REFERENCES identities (id),
        bind_hash {blob} NOT NULL,
        state TEXT NOT NULL,
        abort_reason TEXT,
        context TEXT NOT NULL,
        context_hash TEXT NOT NULL,
        number BIGINT NOT NULL,
        choices TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        client TEXT NOT NULL,
        device_id TEXT,
        decided BIGINT,
        consume_by BIGINT)",
    "CREATE INDEX IF NOT EXISTS approvals_identity ON approvals (identity_id, state)",
    "CREATE INDEX IF NOT EXISTS approvals_bind ON approvals (bind_hash, state)",
];

/// Once approved, the desktop has this long to pick the session up (its long poll is
/// normally already waiting).
pub const CONSUME_SECS: u64 = 60;

/// The states of an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalState {
    /// Waiting for the phone.
    Pending,
    /// Approved with the right number; the desktop has not picked the session up yet.
    Approved,
    /// Denied on the phone.
    Denied,
    /// Cancelled: a wrong number was picked (`wrong_number`), or the same browser asked
    /// again (`replaced`).
    Aborted,
    /// Time ran out.
    Expired,
    /// The desktop session exists.
    Consumed,
}

impl ApprovalState {
    /// Stable text (storage and `ApprovalStatus::state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Aborted => "aborted",
            Self::Expired => "expired",
            Self::Consumed => "consumed",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "aborted" => Self::Aborted,
            "expired" => Self::Expired,
            "consumed" => Self::Consumed,
            _ => return None,
        })
    }
}

/// A request as the desktop page makes it.
#[derive(Clone)]
pub struct NewApproval {
    /// Id (base64url of 16 random bytes).
    pub id: String,
    /// The codice fiscale typed (upper case). Only used to find the identity and, hashed,
    /// as the rate-limit key; never stored.
    pub codice_fiscale: String,
    /// SHA-256 of the binding cookie.
    pub bind_hash: [u8; 32],
    /// Context JSON shown on the phone.
    pub context_json: String,
    /// Its hash.
    pub context_hash: String,
    /// The number the desktop shows.
    pub number: u8,
    /// The three numbers the phone offers (shuffled, `number` among them).
    pub choices: [u8; 3],
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub expires: u64,
    /// Desktop address.
    pub client: String,
}

impl std::fmt::Debug for NewApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApproval")
            .field("id", &self.id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A stored request.
#[derive(Clone)]
pub struct ApprovalRecord {
    /// Id.
    pub id: String,
    /// Whose phone is asked (`None`: no account, never approvable).
    pub identity_id: Option<String>,
    /// SHA-256 of the binding cookie.
    pub bind_hash: Vec<u8>,
    /// State.
    pub state: ApprovalState,
    /// Why it was aborted.
    pub abort_reason: Option<String>,
    /// Context JSON.
    pub context_json: String,
    /// Context hash.
    pub context_hash: String,
    /// The desktop's number.
    pub number: u8,
    /// The phone's choices.
    pub choices: Vec<u8>,
    /// Unix seconds.
    pub created: u64,
    /// Decide before this.
    pub expires: u64,
}

impl std::fmt::Debug for ApprovalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRecord")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("abort_reason", &self.abort_reason)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A decision to record.
#[derive(Debug, Clone)]
pub struct NewDecision<'a> {
    /// Request id.
    pub id: &'a str,
    /// The deciding device's holder (must own the request).
    pub identity_id: &'a str,
    /// The device.
    pub device_id: &'a str,
    /// The transcript's `jti` (recorded: a replay fails).
    pub jti: &'a str,
    /// Until when the `jti` is remembered.
    pub jti_expires: u64,
    /// `Approved`, `Denied` or `Aborted` (wrong number).
    pub to: ApprovalState,
    /// Abort reason.
    pub reason: Option<&'a str>,
}

/// What recording a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// Recorded.
    Done,
    /// The `jti` was used before: nothing changed.
    Replayed,
    /// The request was no longer pending for this identity: nothing changed.
    WrongState,
}

/// Storage of app approvals (a part of [`super::Store`]).
#[async_trait]
pub trait ApprovalStore: Send + Sync + 'static {
    /// Insert a request within `per_minute` per codice fiscale and per client address,
    /// first aborting the pending ones of the same browser. The identity is looked up in
    /// the same transaction; an unknown codice fiscale gives a request nobody can approve.
    async fn create_approval(
        &self,
        a: &NewApproval,
        per_minute: u32,
        audit: &AuditEntry,
    ) -> Result<Limited>;
    /// A request by id (after marking it expired if its time ran out).
    async fn approval(&self, id: &str, now: u64) -> Result<Option<ApprovalRecord>>;
    /// The phone's listing, one transaction: record the single-use `nonce_key` (`None`
    /// when it was seen before), then the identity's pending, unexpired requests.
    async fn pending_approvals(
        &self,
        identity_id: &str,
        nonce_key: &str,
        nonce_expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Vec<ApprovalRecord>>>;
    /// The phone's decision, one transaction: record the `jti`, then
    /// `pending → approved | denied | aborted` (compare-and-set, unexpired, same identity).
    async fn decide_approval(
        &self,
        d: &NewDecision<'_>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<DecisionOutcome>;
    /// The desktop picks the approval up: `approved → consumed` and its session, one
    /// transaction. `None` when it was not (or no longer) approved.
    async fn consume_approval(
        &self,
        id: &str,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
}

const COLUMNS: &str = "id, identity_id, bind_hash, state, abort_reason, context, context_hash, \
    number, choices, created, expires";

/// A live request whose time ran out (`$2` = now).
const DUE: &str = "((state = 'pending' AND expires <= $2)
    OR (state = 'approved' AND consume_by <= $2))";

fn from_row(row: &Row) -> Result<ApprovalRecord> {
    let state: String = row.try_get("state")?;
    let choices: String = row.try_get("choices")?;
    let choices = choices
        .split(',')
        .map(|c| c.parse::<u8>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| StoreError::Corrupt("approval choices".into()))?;
    Ok(ApprovalRecord {
        id: row.try_get("id")?,
        identity_id: row.try_get("identity_id")?,
        bind_hash: row.try_get("bind_hash")?,
        state: ApprovalState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("approval state {state}")))?,
        abort_reason: row.try_get("abort_reason")?,
        context_json: row.try_get("context")?,
        context_hash: row.try_get("context_hash")?,
        number: small(Some(row.try_get("number")?))
            .ok_or_else(|| StoreError::Corrupt("approval number".into()))?,
        choices,
        created: un_ts(row.try_get("created")?),
        expires: un_ts(row.try_get("expires")?),
    })
}

/// The prefix of the approvals' per-codice-fiscale rate-limit bucket.
pub(super) const APPROVAL_CF: &str = "approval-cf:";

/// One more hit in `key`'s one-minute bucket; the hits so far.
async fn hit(conn: &mut Tx, key: &str, bucket: u64) -> Result<i64> {
    query(
        "INSERT INTO rate_limits (bucket_key, bucket, hits) VALUES ($1, $2, 1)
         ON CONFLICT (bucket_key, bucket) DO UPDATE SET hits = rate_limits.hits + 1
         RETURNING hits",
    )
    .bind(key)
    .bind(ts(bucket))
    .fetch_one(conn)
    .await?
    .try_get("hits")
}

/// Record a single-use key (`jti`, pending nonce); `false` if it was seen before.
pub(super) async fn spend_once(conn: &mut Tx, key: &str, expires: u64, now: u64) -> Result<bool> {
    query("DELETE FROM used_jti WHERE expires < $1")
        .bind(ts(now))
        .execute(&mut *conn)
        .await?;
    Ok(
        query("INSERT INTO used_jti (jti, expires) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(key)
            .bind(ts(expires))
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

#[async_trait]
impl ApprovalStore for SqlStore {
    async fn create_approval(
        &self,
        a: &NewApproval,
        per_minute: u32,
        audit: &AuditEntry,
    ) -> Result<Limited> {
        let now = a.created;
        let bucket = now / 60;
        let mut tx = self.begin().await?;
        // The codice fiscale only by its keyed lookup value: unknown ones are not kept in
        // clear, nor in a form one can reverse by trying codici fiscali.
        self.adopt_legacy(
            &mut tx,
            "rate_limits",
            "bucket_key",
            APPROVAL_CF,
            &a.codice_fiscale,
        )
        .await?;
        let cf_key = format!("{APPROVAL_CF}{}", self.cf_key(&a.codice_fiscale));
        let by_cf = hit(&mut tx, &cf_key, bucket).await?;
        let by_client = hit(&mut tx, &format!("approval-ip:{}", a.client), bucket).await?;
        query("DELETE FROM rate_limits WHERE bucket < $1")
            .bind(ts(bucket.saturating_sub(1)))
            .execute(&mut tx)
            .await?;
        let limit = i64::from(per_minute);
        if by_cf > limit || by_client > limit {
            let which = if by_cf > limit { "identity" } else { "address" };
            let refused = audit.with_outcome(format!("rate_limited ({which})"));
            Self::write_audit(&mut tx, &refused, now).await?;
            tx.commit().await?;
            return Ok(Limited::RetryAfter(60 - now % 60));
        }
        let identity_id: Option<String> =
            query("SELECT id FROM identities WHERE codice_fiscale = $1")
                .bind(&a.codice_fiscale)
                .fetch_optional(&mut tx)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?;
        // One request at a time per browser.
        query(
            "UPDATE approvals SET state = 'aborted', abort_reason = 'replaced'
             WHERE bind_hash = $1 AND state = 'pending'",
        )
        .bind(a.bind_hash.to_vec())
        .execute(&mut tx)
        .await?;
        let choices = a.choices.map(|c| c.to_string()).join(",");
        query(
            "INSERT INTO approvals (id, identity_id, bind_hash, state, context, context_hash,
                 number, choices, created, expires, client)
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.id)
        .bind(identity_id.clone())
        .bind(a.bind_hash.to_vec())
        .bind(&a.context_json)
        .bind(&a.context_hash)
        .bind(i64::from(a.number))
        .bind(choices)
        .bind(ts(a.created))
        .bind(ts(a.expires))
        .bind(&a.client)
        .execute(&mut tx)
        .await?;
        let entry = AuditEntry {
            subject: format!(
                "{} {}",
                audit.subject,
                identity_id.as_deref().unwrap_or("(no account)")
            ),
            ..audit.clone()
        };
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Limited::Done)
    }

    async fn approval(&self, id: &str, now: u64) -> Result<Option<ApprovalRecord>> {
        let due: Option<String> =
            query(&format!("SELECT id FROM approvals WHERE id = $1 AND {DUE}"))
                .bind(id)
                .bind(ts(now))
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?;
        if due.is_some() {
            let mut tx = self.begin().await?;
            let expired = query(&format!(
                "UPDATE approvals SET state = 'expired' WHERE id = $1 AND {DUE}"
            ))
            .bind(id)
            .bind(ts(now))
            .execute(&mut tx)
            .await?
            .rows_affected()
                == 1;
            if expired {
                let e = AuditEntry::new("approval_expire", id, "ok", "");
                Self::write_audit(&mut tx, &e, now).await?;
            }
            tx.commit().await?;
        }
        let row = query(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn pending_approvals(
        &self,
        identity_id: &str,
        nonce_key: &str,
        nonce_expires: u64,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Vec<ApprovalRecord>>> {
        let mut tx = self.begin().await?;
        if !spend_once(&mut tx, nonce_key, nonce_expires, now).await? {
            Self::write_audit(&mut tx, &audit.with_outcome("replayed"), now).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let rows = query(&format!(
            "SELECT {COLUMNS} FROM approvals
             WHERE identity_id = $1 AND state = 'pending' AND expires > $2
             ORDER BY created, id LIMIT 20"
        ))
        .bind(identity_id)
        .bind(ts(now))
        .fetch_all(&mut tx)
        .await?;
        let list = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        let entry = audit.with_outcome(format!("ok ({} pending)", list.len()));
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(list))
    }

    async fn decide_approval(
        &self,
        d: &NewDecision<'_>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<DecisionOutcome> {
        let mut tx = self.begin().await?;
        if !spend_once(&mut tx, d.jti, d.jti_expires, now).await? {
            Self::write_audit(&mut tx, &audit.with_outcome("replayed"), now).await?;
            tx.commit().await?;
            return Ok(DecisionOutcome::Replayed);
        }
        let consume_by = (d.to == ApprovalState::Approved).then_some(ts(now + CONSUME_SECS));
        let done = query(
            "UPDATE approvals SET state = $3, abort_reason = $4, device_id = $5, decided = $6,
                 consume_by = $7
             WHERE id = $1 AND identity_id = $2 AND state = 'pending' AND expires > $6",
        )
        .bind(d.id)
        .bind(d.identity_id)
        .bind(d.to.as_str())
        .bind(d.reason.map(str::to_owned))
        .bind(d.device_id)
        .bind(ts(now))
        .bind(consume_by)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            // Nothing happened: the jti stays unspent.
            tx.rollback().await?;
            Store::audit(self, &audit.with_outcome("wrong_state"), now).await?;
            return Ok(DecisionOutcome::WrongState);
        }
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(DecisionOutcome::Done)
    }

    async fn consume_approval(
        &self,
        id: &str,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        let row = query(
            "UPDATE approvals SET state = 'consumed'
             WHERE id = $1 AND state = 'approved' AND consume_by > $2
             RETURNING identity_id",
        )
        .bind(id)
        .bind(ts(now))
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            Self::write_audit(&mut tx, &audit.with_outcome("wrong_state"), now).await?;
            tx.commit().await?;
            return Ok(None);
        };
        let identity_id: Option<String> = row.try_get("identity_id")?;
        let identity_id =
            identity_id.ok_or_else(|| StoreError::Corrupt("approved without identity".into()))?;
        Self::insert_session(&mut tx, &identity_id, session, now).await?;
        super::abroad::note_pin_approval(&mut tx, id, session, now).await?;
        let identity = identity_from_row(
            &query("SELECT id, codice_fiscale, given_name, surname FROM identities WHERE id = $1")
                .bind(&identity_id)
                .fetch_one(&mut tx)
                .await?,
        )?;
        let entry = audit.for_identity(&identity.id);
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(identity))
    }
}
