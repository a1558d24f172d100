//! The mutual-TLS login's one transaction (docs/protocol.md §1, mutual-TLS mode). A child
//! module of `store`, so it reuses the private identity, session and audit helpers without
//! widening the [`Store`](super::Store) trait: the mTLS listener holds the concrete
//! [`SqlStore`].

use super::{AuditEntry, NewSession, Result, SqlStore};
use crate::card::VerifiedCard;
use cie_core::flows::wire::Identity;

impl SqlStore {
    /// Mutual-TLS login, one transaction: map the card to its identity (created on first
    /// login), open the session, audit. No challenge: the TLS handshake the card signed is
    /// fresh by construction (both sides' randoms are in the transcript).
    pub async fn mtls_login(
        &self,
        card: &VerifiedCard,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Identity> {
        let mut tx = self.begin().await?;
        let identity = Self::map_identity(&mut tx, card, now).await?;
        Self::insert_session(&mut tx, &identity.id, session, now).await?;
        let done = audit.for_identity(&identity.id);
        Self::write_audit(&mut tx, &done, now).await?;
        tx.commit().await?;
        Ok(identity)
    }
}
