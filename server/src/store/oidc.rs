//! The OpenID Provider's memory (src/oidc): registered clients, pending authorization
//! requests, single-use codes (hashed), issued access tokens, used nonces and assertion
//! `jti`s, and the secret behind pairwise subjects. Same rules as the rest of the store:
//! each change one transaction, each state change a compare-and-set, audited with it.

use cie_core::flows::wire::Identity;

use super::{AuditEntry, Result, SqlStore, identity_from_row, query, ts, un_ts};

/// The tables of this module (created with the others at start).
pub(super) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS oidc_clients (
        client_id TEXT PRIMARY KEY,
        metadata TEXT NOT NULL,
        created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oidc_secrets (
        name TEXT PRIMARY KEY,
        value {blob} NOT NULL)",
    // (client_id, nonce) of request objects, ('assertion', jti) of client assertions.
    "CREATE TABLE IF NOT EXISTS oidc_used (
        scope TEXT NOT NULL,
        value TEXT NOT NULL,
        expires BIGINT NOT NULL,
        PRIMARY KEY (scope, value)) {without_rowid}",
    "CREATE INDEX IF NOT EXISTS oidc_used_expires ON oidc_used (expires)",
    "CREATE TABLE IF NOT EXISTS oidc_requests (
        id TEXT PRIMARY KEY,
        bind_hash {blob} NOT NULL,
        client_id TEXT NOT NULL,
        request TEXT NOT NULL,
        expires BIGINT NOT NULL,
        done BIGINT NOT NULL DEFAULT 0) {without_rowid}",
    "CREATE TABLE IF NOT EXISTS oidc_codes (
        code_hash {blob} PRIMARY KEY,
        client_id TEXT NOT NULL,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        grant_json TEXT NOT NULL,
        expires BIGINT NOT NULL,
        used BIGINT NOT NULL DEFAULT 0) {without_rowid}",
    "CREATE TABLE IF NOT EXISTS oidc_tokens (
        jti TEXT PRIMARY KEY,
        code_hash {blob} NOT NULL,
        client_id TEXT NOT NULL,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        grant_json TEXT NOT NULL,
        expires BIGINT NOT NULL,
        revoked BIGINT NOT NULL DEFAULT 0) {without_rowid}",
    "CREATE INDEX IF NOT EXISTS oidc_tokens_code ON oidc_tokens (code_hash)",
    // The desktop session an access token came from (RP-initiated logout revokes them).
    "CREATE TABLE IF NOT EXISTS oidc_token_sessions (
        jti TEXT PRIMARY KEY,
        session_hash {blob} NOT NULL,
        expires BIGINT NOT NULL) {without_rowid}",
    "CREATE INDEX IF NOT EXISTS oidc_token_sessions_session ON oidc_token_sessions (session_hash)",
];

/// A pending authorization request (validated), waiting for login and consent.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The client.
    pub client_id: String,
    /// The validated request, JSON (`oidc::authorize::Validated`).
    pub request_json: String,
    /// SHA-256 of the browser's binding cookie.
    pub bind_hash: Vec<u8>,
    /// Unix seconds.
    pub expires: u64,
    /// Consented or refused already.
    pub done: bool,
}

/// What a code redemption found.
#[derive(Debug, Clone)]
pub enum Redeemed {
    /// First use: the grant (JSON) and the identity.
    Fresh {
        /// The grant JSON stored with the code.
        grant_json: String,
        /// Who logged in.
        identity: Identity,
    },
    /// Used before: everything issued from it has been revoked.
    Replayed,
    /// Unknown, expired or another client's.
    Invalid,
}

impl SqlStore {
    /// Register or replace a client (metadata JSON, validated by the caller).
    pub async fn oidc_put_client(
        &self,
        client_id: &str,
        metadata: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        query(
            "INSERT INTO oidc_clients (client_id, metadata, created) VALUES ($1, $2, $3)
             ON CONFLICT (client_id) DO UPDATE SET metadata = excluded.metadata",
        )
        .bind(client_id)
        .bind(metadata)
        .bind(ts(now))
        .execute(&mut tx)
        .await?;
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await
    }

    /// A client's metadata JSON.
    pub async fn oidc_client(&self, client_id: &str) -> Result<Option<String>> {
        query("SELECT metadata FROM oidc_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("metadata"))
            .transpose()
    }

    /// The named secret, created from `fresh` the first time (the first writer wins).
    pub async fn oidc_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        let mut tx = self.begin().await?;
        query("INSERT INTO oidc_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(fresh)
            .execute(&mut tx)
            .await?;
        let v: Vec<u8> = query("SELECT value FROM oidc_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut tx)
            .await?
            .try_get("value")?;
        tx.commit().await?;
        Ok(v)
    }

    /// Record `value` under `scope` until `expires`; `false` if it was there (a replay).
    pub async fn oidc_use_once(
        &self,
        scope: &str,
        value: &str,
        expires: u64,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        query("DELETE FROM oidc_used WHERE expires < $1")
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        let done = query(
            "INSERT INTO oidc_used (scope, value, expires) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(value)
        .bind(ts(expires))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Store a pending request.
    pub async fn oidc_put_request(
        &self,
        id: &str,
        r: &PendingRequest,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        query("DELETE FROM oidc_requests WHERE expires < $1")
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        query(
            "INSERT INTO oidc_requests (id, bind_hash, client_id, request, expires)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(r.bind_hash.clone())
        .bind(&r.client_id)
        .bind(&r.request_json)
        .bind(ts(r.expires))
        .execute(&mut tx)
        .await?;
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await
    }

    /// A pending request by id.
    pub async fn oidc_request(&self, id: &str) -> Result<Option<PendingRequest>> {
        let row = query(
            "SELECT bind_hash, client_id, request, expires, done FROM oidc_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PendingRequest {
                client_id: r.try_get("client_id")?,
                request_json: r.try_get("request")?,
                bind_hash: r.try_get("bind_hash")?,
                expires: un_ts(r.try_get("expires")?),
                done: r.try_get::<i64>("done")? != 0,
            })
        })
        .transpose()
    }

    /// End a pending request (consent given or refused) and, on consent, store the code
    /// for `identity_id`; `false` if it was ended meanwhile or has expired.
    #[allow(clippy::too_many_arguments)]
    pub async fn oidc_finish_request(
        &self,
        id: &str,
        code: Option<(&[u8; 32], &str, u64)>,
        identity_id: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = query("UPDATE oidc_requests SET done = 1 WHERE id = $1 AND done = 0 AND expires > $2 RETURNING client_id")
            .bind(id)
            .bind(ts(now))
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = done else {
            Self::write_audit(&mut tx, &audit.with_outcome("missed"), now).await?;
            tx.commit().await?;
            return Ok(false);
        };
        let client_id: String = row.try_get("client_id")?;
        if let Some((hash, grant, expires)) = code {
            query(
                "INSERT INTO oidc_codes (code_hash, client_id, identity_id, grant_json, expires)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(hash.as_slice())
            .bind(&client_id)
            .bind(identity_id)
            .bind(grant)
            .bind(ts(expires))
            .execute(&mut tx)
            .await?;
        }
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Redeem a code of `client_id` once; a second redemption revokes the tokens of the
    /// first.
    pub async fn oidc_redeem_code(
        &self,
        code_hash: &[u8; 32],
        client_id: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Redeemed> {
        let mut tx = self.begin().await?;
        let fresh = query(
            "UPDATE oidc_codes SET used = 1
             WHERE code_hash = $1 AND client_id = $2 AND used = 0 AND expires > $3
             RETURNING grant_json, identity_id",
        )
        .bind(code_hash.as_slice())
        .bind(client_id)
        .bind(ts(now))
        .fetch_optional(&mut tx)
        .await?;
        if let Some(row) = fresh {
            let grant_json: String = row.try_get("grant_json")?;
            let identity_id: String = row.try_get("identity_id")?;
            let identity = query(
                "SELECT id, codice_fiscale, given_name, surname FROM identities WHERE id = $1",
            )
            .bind(&identity_id)
            .fetch_one(&mut tx)
            .await?;
            let identity = identity_from_row(&identity)?;
            Self::write_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            return Ok(Redeemed::Fresh {
                grant_json,
                identity,
            });
        }
        let used = query("SELECT used FROM oidc_codes WHERE code_hash = $1 AND client_id = $2")
            .bind(code_hash.as_slice())
            .bind(client_id)
            .fetch_optional(&mut tx)
            .await?
            .map(|r| r.try_get::<i64>("used"))
            .transpose()?;
        let outcome = if used == Some(1) {
            // OAuth 2.0 Security BCP §4.2.4: a replayed code revokes what it issued.
            query("UPDATE oidc_tokens SET revoked = 1 WHERE code_hash = $1")
                .bind(code_hash.as_slice())
                .execute(&mut tx)
                .await?;
            Redeemed::Replayed
        } else {
            Redeemed::Invalid
        };
        let word = match outcome {
            Redeemed::Replayed => "replayed",
            _ => "invalid_grant",
        };
        Self::write_audit(&mut tx, &audit.with_outcome(word), now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Record an issued access token (and the desktop session it came from).
    #[allow(clippy::too_many_arguments)]
    pub async fn oidc_put_token(
        &self,
        jti: &str,
        code_hash: &[u8; 32],
        client_id: &str,
        identity_id: &str,
        grant_json: &str,
        session_hash: Option<&[u8]>,
        expires: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if let Some(session) = session_hash {
            query(
                "INSERT INTO oidc_token_sessions (jti, session_hash, expires) VALUES ($1, $2, $3)",
            )
            .bind(jti)
            .bind(session.to_vec())
            .bind(ts(expires))
            .execute(&mut tx)
            .await?;
        }
        query(
            "INSERT INTO oidc_tokens (jti, code_hash, client_id, identity_id, grant_json, expires)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(jti)
        .bind(code_hash.as_slice())
        .bind(client_id)
        .bind(identity_id)
        .bind(grant_json)
        .bind(ts(expires))
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// A live (unrevoked, unexpired) access token: its grant JSON and identity.
    pub async fn oidc_token(&self, jti: &str, now: u64) -> Result<Option<(String, Identity)>> {
        let row = query(
            "SELECT t.grant_json, i.id, i.codice_fiscale, i.given_name, i.surname
             FROM oidc_tokens t JOIN identities i ON i.id = t.identity_id
             WHERE t.jti = $1 AND t.revoked = 0 AND t.expires > $2",
        )
        .bind(jti)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("grant_json")?, identity_from_row(&r)?)))
            .transpose()
    }

    /// When the session of a token hash was opened (for `prompt=login`).
    pub async fn oidc_session_created(&self, token_hash: &[u8; 32]) -> Result<Option<u64>> {
        query("SELECT created FROM sessions WHERE token_hash = $1")
            .bind(token_hash.as_slice())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("created").map(un_ts))
            .transpose()
    }

    /// The latest registration attributes (JSON) of an identity, if it registered.
    pub async fn oidc_registration_attributes(&self, identity_id: &str) -> Result<Option<String>> {
        query(
            "SELECT attributes FROM registrations WHERE identity_id = $1
             ORDER BY created DESC LIMIT 1",
        )
        .bind(identity_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("attributes"))
        .transpose()
    }

    /// Revoke the access token `jti` if `client_id` holds it (RFC 7009: another client's
    /// token is left alone); whether one was revoked now. Audited either way.
    pub async fn oidc_revoke_token(
        &self,
        jti: &str,
        client_id: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = query(
            "UPDATE oidc_tokens SET revoked = 1 WHERE jti = $1 AND client_id = $2 AND revoked = 0",
        )
        .bind(jti)
        .bind(client_id)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            // SPID's rule (revocation_endpoint): revoking an access token ends the single
            // sign-on session it was issued from, so the next authorization asks for a login.
            query(
                "DELETE FROM sessions WHERE token_hash IN
                   (SELECT session_hash FROM oidc_token_sessions WHERE jti = $1)",
            )
            .bind(jti)
            .execute(&mut tx)
            .await?;
        }
        let audit = if done {
            audit.clone()
        } else {
            audit.with_outcome("not_revoked")
        };
        Self::write_audit(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// RP-initiated logout: end the desktop session `session_hash` (when given) and revoke
    /// the access tokens `client_id` got from it; how many were revoked.
    pub async fn oidc_logout(
        &self,
        session_hash: &[u8; 32],
        client_id: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let revoked = query(
            "UPDATE oidc_tokens SET revoked = 1
             WHERE client_id = $1 AND revoked = 0
               AND jti IN (SELECT jti FROM oidc_token_sessions WHERE session_hash = $2)",
        )
        .bind(client_id)
        .bind(session_hash.as_slice())
        .execute(&mut tx)
        .await?
        .rows_affected();
        query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(session_hash.as_slice())
            .execute(&mut tx)
            .await?;
        query("DELETE FROM oidc_token_sessions WHERE expires < $1")
            .bind(ts(now))
            .execute(&mut tx)
            .await?;
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}
