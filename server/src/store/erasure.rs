//! The operator's access and erasure of one person's data (GDPR arts. 15 and 17;
//! docs/data.md): `companion-server identity export|erase --cf <CF>`.
//!
//! A person is found by codice fiscale: their identity row and everything pointing at it
//! (cards, registrations, devices, factors, sessions, OpenID Connect codes and tokens —
//! the consent records —, approvals, rendezvous), the rows kept under their codice fiscale
//! or its hash without an identity (PIN deliveries, OTP validator state, throttles, rate
//! limits), and the audit rows naming any of their identifiers. Export reads them all in one
//! transaction (a consistent snapshot) and prints no secret: seeds, PIN hashes, PIN halves
//! and token hashes are left out ("OTP active since" is the row's creation time). Erase
//! deletes them all in one transaction, then, on SQLite, checkpoints the WAL to zero bytes
//! so no older copy of a page survives (`secure_delete` zeroes the rows in the file).

use serde_json::{Map, Value};

use super::approvals::APPROVAL_CF;
use super::cfkey::legacy_key;
use super::db::{Row, Tx};
use super::otp::otp_audit_subject;
use super::{AuditEntry, Backend, Result, SqlStore, query};

/// The value a statement's `$1` takes.
#[derive(Clone, Copy)]
enum Key {
    /// The identity id.
    Id,
    /// The codice fiscale.
    Cf,
    /// The codice fiscale's lookup value (`SqlStore::cf_key`), and the unkeyed SHA-256
    /// older rows may still carry.
    CfHash,
    /// The approvals' per-codice-fiscale rate-limit bucket.
    ApprovalBucket,
}

/// What export shows: (section, SQL on `$1`, key). Secrets are not selected.
const EXPORT: &[(&str, &str, Key)] = &[
    (
        "identity",
        "SELECT id, codice_fiscale, given_name, surname, created FROM identities
         WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "cards",
        "SELECT issuer, serial, first_seen, last_seen FROM cards WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "registrations",
        "SELECT nis, nis_key_hash, level, attributes, deviations, evidence, created
         FROM registrations WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "devices",
        "SELECT id, name, public_key, created FROM devices WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "otp",
        "SELECT device_id, created AS active_since FROM otp_tokens WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "otp_validator",
        "SELECT state, updated FROM otp_state WHERE cf_key = $1",
        Key::CfHash,
    ),
    (
        "abroad_account",
        "SELECT email, address, must_change, created AS pin_set_since, updated
         FROM abroad_accounts WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "abroad_otp",
        "SELECT created AS active_since FROM abroad_otp WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_otp_pending",
        "SELECT expires FROM abroad_otp_pending WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_enrol_codes",
        "SELECT expires FROM abroad_enrol_codes WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_pin_tickets",
        "SELECT expires FROM abroad_pin_tickets WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_pin_deliveries_digital",
        "SELECT id, recipient, created FROM abroad_outbox_digital WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "abroad_pin_deliveries_postal",
        "SELECT id, recipient, created FROM abroad_outbox_postal WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "abroad_throttle",
        "SELECT failures, next_at, updated FROM abroad_throttle WHERE cf_key = $1",
        Key::CfHash,
    ),
    (
        "sessions",
        "SELECT s.kind, s.level, s.created, s.expires, m.method FROM sessions s
         LEFT JOIN session_methods m ON m.token_hash = s.token_hash
         WHERE s.identity_id = $1 ORDER BY s.created",
        Key::Id,
    ),
    (
        "oidc_consents",
        "SELECT client_id, grant_json, expires, used FROM oidc_codes WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "oidc_tokens",
        "SELECT jti, client_id, grant_json, expires, revoked FROM oidc_tokens
         WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "approvals",
        "SELECT id, state, abort_reason, context, created, expires, client, device_id, decided
         FROM approvals WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "rendezvous",
        "SELECT rid, state, context, created, expires, client, device_name, level
         FROM rendezvous WHERE identity_id = $1 OR device_id IN
             (SELECT id FROM devices WHERE identity_id = $1)",
        Key::Id,
    ),
];

/// What erase deletes, in foreign-key order: (table, SQL on `$1`, key). Rows found by
/// another row (session methods by session, token sessions by token) go before it.
const ERASE: &[(&str, &str, Key)] = &[
    (
        "session_methods",
        "DELETE FROM session_methods WHERE token_hash IN
             (SELECT token_hash FROM sessions WHERE identity_id = $1)",
        Key::Id,
    ),
    (
        "oidc_token_sessions",
        "DELETE FROM oidc_token_sessions WHERE jti IN
             (SELECT jti FROM oidc_tokens WHERE identity_id = $1)
           OR session_hash IN (SELECT token_hash FROM sessions WHERE identity_id = $1)",
        Key::Id,
    ),
    (
        "sessions",
        "DELETE FROM sessions WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "oidc_tokens",
        "DELETE FROM oidc_tokens WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "oidc_codes",
        "DELETE FROM oidc_codes WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "approvals",
        "DELETE FROM approvals WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "rendezvous",
        "DELETE FROM rendezvous WHERE identity_id = $1 OR device_id IN
             (SELECT id FROM devices WHERE identity_id = $1)",
        Key::Id,
    ),
    (
        "devices",
        "DELETE FROM devices WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "otp_tokens",
        "DELETE FROM otp_tokens WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "otp_state",
        "DELETE FROM otp_state WHERE cf_key = $1",
        Key::CfHash,
    ),
    (
        "registrations",
        "DELETE FROM registrations WHERE identity_id = $1",
        Key::Id,
    ),
    ("cards", "DELETE FROM cards WHERE identity_id = $1", Key::Id),
    (
        "abroad_accounts",
        "DELETE FROM abroad_accounts WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_accounts",
        "DELETE FROM abroad_accounts WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "abroad_otp",
        "DELETE FROM abroad_otp WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_otp_pending",
        "DELETE FROM abroad_otp_pending WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_enrol_codes",
        "DELETE FROM abroad_enrol_codes WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_pin_tickets",
        "DELETE FROM abroad_pin_tickets WHERE identity_id = $1",
        Key::Id,
    ),
    (
        "abroad_outbox_digital",
        "DELETE FROM abroad_outbox_digital WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "abroad_outbox_postal",
        "DELETE FROM abroad_outbox_postal WHERE codice_fiscale = $1",
        Key::Cf,
    ),
    (
        "abroad_throttle",
        "DELETE FROM abroad_throttle WHERE cf_key = $1",
        Key::CfHash,
    ),
    (
        "rate_limits",
        "DELETE FROM rate_limits WHERE bucket_key = $1",
        Key::ApprovalBucket,
    ),
    (
        "identities",
        "DELETE FROM identities WHERE id = $1",
        Key::Id,
    ),
];

/// Rows erased, per table, and whether the SQLite WAL was emptied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// (table, rows) for every table looked at, zeros included.
    pub rows: Vec<(&'static str, u64)>,
    /// SQLite: `Some(true)` when the WAL was checkpointed and truncated, `Some(false)`
    /// when a reader kept it from finishing (run the command again); PostgreSQL: `None`.
    pub wal_truncated: Option<bool>,
}

impl Erased {
    /// Rows erased in all.
    pub fn total(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

/// The identifiers one person's audit rows may name.
struct Subject {
    cf: String,
    id: Option<String>,
    /// The keyed lookup value and the unkeyed form of older rows.
    hashes: [String; 2],
    /// Everything an audit row's `subject` may contain: codice fiscale, its hash, the
    /// identity id, device, approval and rendezvous ids.
    needles: Vec<String>,
}

impl Subject {
    fn keys(&self, k: Key) -> Vec<String> {
        match k {
            Key::Id => self.id.iter().cloned().collect(),
            Key::Cf => vec![self.cf.clone()],
            Key::CfHash => self.hashes.to_vec(),
            Key::ApprovalBucket => self
                .hashes
                .iter()
                .map(|h| format!("{APPROVAL_CF}{h}"))
                .collect(),
        }
    }
}

impl SqlStore {
    /// Everything held about the person of `codice_fiscale`, as one JSON object (no
    /// secrets); `None` when nothing is held.
    pub async fn export_identity(&self, codice_fiscale: &str) -> Result<Option<Value>> {
        let mut tx = self.begin().await?;
        let who = self.subject(&mut tx, codice_fiscale).await?;
        let mut out = Map::new();
        let mut found = false;
        for (section, sql, key) in EXPORT {
            let keys = who.keys(*key);
            if keys.is_empty() {
                continue;
            }
            let mut rows = Vec::new();
            for k in keys {
                rows.extend(query(sql).bind(k).fetch_all(&mut tx).await?);
            }
            found |= !rows.is_empty();
            let rows: Vec<Value> = rows.iter().map(exported).collect();
            let v = if *section == "identity" {
                rows.into_iter().next().unwrap_or(Value::Null)
            } else {
                Value::Array(rows)
            };
            out.insert((*section).into(), v);
        }
        let audit = self.audit_rows(&mut tx, &who, false).await?;
        tx.rollback().await?;
        found |= !audit.is_empty();
        out.insert(
            "audit".into(),
            Value::Array(audit.iter().map(exported).collect()),
        );
        Ok(found.then_some(Value::Object(out)))
    }

    /// Delete everything held about the person of `codice_fiscale` in one transaction
    /// (idempotent: a second run finds nothing), record that an erasure happened (with
    /// no identifier), then empty the SQLite WAL.
    pub async fn erase_identity(
        &self,
        codice_fiscale: &str,
        operator: &str,
        now: u64,
    ) -> Result<Erased> {
        let mut tx = self.begin().await?;
        let who = self.subject(&mut tx, codice_fiscale).await?;
        let mut erased = Erased::default();
        let audit_rows = self.audit_rows(&mut tx, &who, true).await?.len() as u64;
        for (table, sql, key) in ERASE {
            let mut n = 0;
            for k in who.keys(*key) {
                n += query(sql).bind(k).execute(&mut tx).await?.rows_affected();
            }
            match erased.rows.iter_mut().find(|(t, _)| t == table) {
                Some((_, m)) => *m += n,
                None => erased.rows.push((table, n)),
            }
        }
        erased.rows.push(("audit", audit_rows));
        // Accountability without the person: that an erasure ran, and how much it took.
        let note = AuditEntry::new(
            "identity_erase",
            "-",
            &format!("ok rows={}", erased.total()),
            operator,
        );
        Self::write_audit(&mut tx, &note, now).await?;
        tx.commit().await?;
        erased.wal_truncated = self.pool.checkpoint_truncate().await?;
        Ok(erased)
    }

    /// Who `codice_fiscale` is: identity id and the identifiers audit rows may name.
    async fn subject(&self, tx: &mut Tx, codice_fiscale: &str) -> Result<Subject> {
        let cf = codice_fiscale.trim().to_ascii_uppercase();
        let id: Option<String> = query("SELECT id FROM identities WHERE codice_fiscale = $1")
            .bind(&cf)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?;
        let hashes = [self.cf_key(&cf), legacy_key(&cf)];
        // The OTP login's audit names the lookup value's first characters (`cf:<prefix>`);
        // rows written before keyed lookups, the unkeyed hash's first 12.
        let old_otp = format!("cf:{}", hashes[1].get(..12).unwrap_or(&hashes[1]));
        let mut needles = vec![
            cf.clone(),
            hashes[0].clone(),
            otp_audit_subject(&hashes[0]),
            hashes[1].clone(),
            old_otp,
        ];
        if let Some(id) = &id {
            needles.push(id.clone());
            let owned = query(
                "SELECT id AS v FROM devices WHERE identity_id = $1
                 UNION SELECT id AS v FROM approvals WHERE identity_id = $1
                 UNION SELECT rid AS v FROM rendezvous WHERE identity_id = $1",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            for r in owned {
                needles.push(r.try_get("v")?);
            }
        }
        Ok(Subject {
            cf,
            id,
            hashes,
            needles,
        })
    }

    /// The audit rows naming any of the person's identifiers (deleted when `delete`).
    async fn audit_rows(&self, tx: &mut Tx, who: &Subject, delete: bool) -> Result<Vec<Row>> {
        // A substring test, not LIKE: base64url ids contain `_`, LIKE's wildcard.
        let contains = match self.backend {
            Backend::Sqlite => "instr(subject, $1) > 0",
            Backend::Postgres => "strpos(subject, $1) > 0",
        };
        let mut out = Vec::new();
        for needle in &who.needles {
            let sql = if delete {
                format!("DELETE FROM audit WHERE {contains} RETURNING id")
            } else {
                format!(
                    "SELECT id, at, kind, subject, outcome, client FROM audit
                     WHERE {contains} ORDER BY id"
                )
            };
            for r in query(&sql)
                .bind(needle.as_str())
                .fetch_all(&mut *tx)
                .await?
            {
                let id: i64 = r.try_get("id")?;
                let seen = out
                    .iter()
                    .any(|o: &Row| o.try_get::<i64>("id").is_ok_and(|o| o == id));
                if !seen {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }
}

/// A row for the export: JSON columns (attributes, grants, contexts) parsed.
fn exported(row: &Row) -> Value {
    let mut v = row.to_json();
    if let Value::Object(m) = &mut v {
        for (_, field) in m.iter_mut() {
            if let Value::String(s) = field
                && (s.starts_with('{') || s.starts_with('['))
                && let Ok(parsed) = serde_json::from_str::<Value>(s)
            {
                *field = parsed;
            }
        }
    }
    v
}
