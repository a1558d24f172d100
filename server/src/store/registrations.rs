//! Registrations with the CIE (issue 12): one row per card — its NIS and the hash of its NIS
//! key, both signed by the State in the IAS SOD — and one identity per codice fiscale. A
//! second registration of the same card is refused; a renewed card (another NIS) of a known
//! codice fiscale is linked to the identity that exists. The verified attributes, accepted
//! deviations and the evidence (no data-group contents) are kept as JSON for audit.

use async_trait::async_trait;
use cie_core::flows::wire::{ChallengePurpose, Identity};

use super::{AuditEntry, Result, SqlStore, StoreError, Tx, identity_from_row, query, ts, un_ts};

/// The table of this module (created with the others at start).
pub(super) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS registrations (
        nis TEXT NOT NULL,
        nis_key_hash TEXT NOT NULL,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        level BIGINT NOT NULL,
        attributes TEXT NOT NULL,
        deviations TEXT NOT NULL,
        evidence TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (nis, nis_key_hash))",
    "CREATE INDEX IF NOT EXISTS registrations_identity ON registrations (identity_id)",
];

/// A verified registration to store.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    /// The card's NIS.
    pub nis: String,
    /// base64url SHA-256 of its NIS public key (EF 1005).
    pub nis_key_hash: String,
    /// From DG11 (verified).
    pub codice_fiscale: String,
    /// Given names (DG1/DG11).
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// Assurance level reached.
    pub level: u8,
    /// `RegistrationAttributes` as JSON.
    pub attributes_json: String,
    /// Accepted deviations as JSON.
    pub deviations_json: String,
    /// `RegistrationEvidence` as JSON.
    pub evidence_json: String,
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// Stored; `linked` when the identity existed before (a renewed card, or a card login).
    Registered {
        /// The identity.
        identity: Identity,
        /// It existed already.
        linked: bool,
    },
    /// This card (NIS and key) was registered before: nothing changed but the challenge.
    AlreadyRegistered,
    /// The challenge was used, expired, or is not a registration challenge.
    ChallengeSpent,
}

/// Registrations.
#[async_trait]
pub trait RegistrationStore {
    /// One transaction: consume the `register` challenge, refuse a card registered before,
    /// link to the identity of the codice fiscale or create it, store the row, audit.
    async fn register(
        &self,
        challenge_id: &str,
        r: &NewRegistration,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<RegistrationOutcome>;
    /// A refused registration: its challenge is spent all the same (single use) and the
    /// refusal audited, in one transaction.
    async fn refuse_registration(
        &self,
        challenge_id: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()>;
    /// The cards registered to an identity: (NIS, level, registered at).
    async fn registrations(&self, identity_id: &str) -> Result<Vec<(String, u8, u64)>>;
}

#[async_trait]
impl RegistrationStore for SqlStore {
    async fn register(
        &self,
        challenge_id: &str,
        r: &NewRegistration,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<RegistrationOutcome> {
        let mut tx = self.begin().await?;
        if !Self::consume_challenge(&mut tx, challenge_id, ChallengePurpose::Register, None, now)
            .await?
        {
            Self::write_audit(&mut tx, &audit.with_outcome("replayed"), now).await?;
            tx.commit().await?;
            return Ok(RegistrationOutcome::ChallengeSpent);
        }
        let seen =
            query("SELECT identity_id FROM registrations WHERE nis = $1 AND nis_key_hash = $2")
                .bind(&r.nis)
                .bind(&r.nis_key_hash)
                .fetch_optional(&mut tx)
                .await?;
        if seen.is_some() {
            Self::write_audit(&mut tx, &audit.with_outcome("already_registered"), now).await?;
            tx.commit().await?;
            return Ok(RegistrationOutcome::AlreadyRegistered);
        }
        let (identity, linked) = identity_for(&mut tx, r, now).await?;
        query(
            "INSERT INTO registrations (nis, nis_key_hash, identity_id, level, attributes,
                 deviations, evidence, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.nis)
        .bind(&r.nis_key_hash)
        .bind(&identity.id)
        .bind(i64::from(r.level))
        .bind(&r.attributes_json)
        .bind(&r.deviations_json)
        .bind(&r.evidence_json)
        .bind(ts(now))
        .execute(&mut tx)
        .await?;
        let outcome = if linked { "ok linked" } else { "ok" };
        let entry = audit.with_outcome(outcome).for_identity(&identity.id);
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(RegistrationOutcome::Registered { identity, linked })
    }

    async fn refuse_registration(
        &self,
        challenge_id: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::consume_challenge(&mut tx, challenge_id, ChallengePurpose::Register, None, now)
            .await?;
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await
    }

    async fn registrations(&self, identity_id: &str) -> Result<Vec<(String, u8, u64)>> {
        let rows = query(
            "SELECT nis, level, created FROM registrations WHERE identity_id = $1
             ORDER BY created, nis",
        )
        .bind(identity_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let level: i64 = row.try_get("level")?;
                Ok((
                    row.try_get("nis")?,
                    u8::try_from(level).map_err(|_| StoreError::Corrupt("level".into()))?,
                    un_ts(row.try_get("created")?),
                ))
            })
            .collect()
    }
}

/// The identity of the codice fiscale (and whether it existed), created if new.
async fn identity_for(tx: &mut Tx, r: &NewRegistration, now: u64) -> Result<(Identity, bool)> {
    const SELECT: &str =
        "SELECT id, codice_fiscale, given_name, surname FROM identities WHERE codice_fiscale = $1";
    if let Some(row) = query(SELECT)
        .bind(&r.codice_fiscale)
        .fetch_optional(&mut *tx)
        .await?
    {
        return Ok((identity_from_row(&row)?, true));
    }
    let id = crate::random_id::<16>().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    query(
        "INSERT INTO identities (id, codice_fiscale, given_name, surname, created)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&r.codice_fiscale)
    .bind(&r.given_name)
    .bind(&r.surname)
    .bind(ts(now))
    .execute(&mut *tx)
    .await?;
    let row = query(SELECT)
        .bind(&r.codice_fiscale)
        .fetch_one(&mut *tx)
        .await?;
    Ok((identity_from_row(&row)?, false))
}
