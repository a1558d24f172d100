//! The lookup key of a codice fiscale typed by anyone (docs/data.md): the OTP validator
//! state, the abroad PIN throttle, the approvals' per-codice-fiscale rate limit and the
//! audit subjects of PIN and OTP logins name a codice fiscale by `k1.` ‖ base64url
//! HMAC-SHA-256(key, codice fiscale), never by the value or an unkeyed hash of it (a
//! codice fiscale is derived from name, birth date and place: an unkeyed hash of one is
//! reversed by trying them).
//!
//! The key, 32 bytes, comes from outside the database when the server has one: HKDF-SHA-256
//! of the `--otp-key-file` key with its own label ([`CF_LOOKUP_INFO`]), so the operator
//! configures nothing new and the seed-sealing key is never used as is for anything else.
//! Without an OTP key file the store makes a random key once and keeps it in the database
//! (`store_keys`): instances sharing the database and restarts keep the same throttles, and
//! a leaked table (an audit export) names no codice fiscale, but a copy of the whole
//! database carries the key with it.
//!
//! Rows written before this release carry the unkeyed SHA-256 ([`legacy_key`]). Token
//! holders' OTP state is re-keyed when the store opens (their codice fiscale is on the
//! identity row); the other rows (throttles, unknown codici fiscali, rate-limit buckets)
//! are re-keyed by the next attempt for the same codice fiscale, so an upgrade resets no
//! throttle, or expire (24 hours, 2 minutes). Nothing writes the old form any more.

use std::sync::Arc;

use cie_core::flows::wire::{b64, ct_eq};
use ring::{hkdf, hmac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::db::{Tx, query};
use super::{Result, StoreError};

/// HKDF-SHA-256 `info` of the lookup key derived from the OTP key.
pub const CF_LOOKUP_INFO: &[u8] = b"cie-companion/cf-lookup/v1";
/// The prefix of a keyed lookup value (an unkeyed one has none).
pub const KEYED_PREFIX: &str = "k1.";
/// What the stored check value is the HMAC of.
const CHECK_LABEL: &[u8] = b"cie-companion/cf-lookup/check";

/// A 32-byte HMAC-SHA-256 key. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct CfKey(Arc<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for CfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CfKey(<redacted>)")
    }
}

/// HKDF output length marker (32 bytes).
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl CfKey {
    /// HKDF-SHA-256 (no salt) of `otp_key` with [`CF_LOOKUP_INFO`].
    pub fn derive(otp_key: &[u8; 32]) -> Self {
        let mut out = Zeroizing::new([0u8; 32]);
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(otp_key);
        // `expand` and `fill` fail only for a length over 255 × 32 bytes: 32 cannot.
        if let Ok(okm) = prk.expand(&[CF_LOOKUP_INFO], Len32) {
            let _ = okm.fill(out.as_mut_slice());
        }
        Self(Arc::new(out))
    }

    /// From 32 raw bytes (the database-held key); `None` for any other length.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Arc::new(Zeroizing::new(key))))
    }

    fn mac(&self, data: &[u8]) -> hmac::Tag {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, self.0.as_slice()), data)
    }

    /// `k1.` ‖ base64url HMAC-SHA-256(key, codice fiscale): the only form stored.
    pub fn lookup(&self, codice_fiscale: &str) -> String {
        format!(
            "{KEYED_PREFIX}{}",
            b64(self.mac(codice_fiscale.as_bytes()).as_ref())
        )
    }

    /// The value kept in `store_keys` to tell which key wrote the lookups.
    fn check(&self) -> String {
        b64(self.mac(CHECK_LABEL).as_ref())
    }

    /// Whether `stored` is this key's check value (constant time).
    fn matches(&self, stored: &str) -> bool {
        ct_eq(self.check().as_bytes(), stored.as_bytes())
    }
}

/// The form written before keyed lookups: base64url SHA-256 of the codice fiscale. Only
/// computed to find and re-key old rows.
pub fn legacy_key(codice_fiscale: &str) -> String {
    b64(&Sha256::digest(codice_fiscale.as_bytes()))
}

/// Where the lookup key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Derived from the OTP key file ([`CfKey::derive`]).
    File(CfKey),
    /// The database's own random key, created when missing.
    Database,
}

/// How a key that is not the one the database's lookups were written with is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// The server: the key in use wins (a warning is logged; old rows no longer match).
    Adopt,
    /// An operator's command: refused, so an erasure never misses rows silently.
    Refuse,
    /// A command that looks up no codice fiscale (`oidc client add`): the check is neither
    /// read nor written, so it cannot make the server's next start see a key change.
    Ignore,
}

/// The tables of this module.
pub(super) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS store_keys (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL)"];

const DB_KEY: &str = "cf-lookup-key";
const CHECK: &str = "cf-lookup-check";

async fn read(tx: &mut Tx, name: &str) -> Result<Option<String>> {
    query("SELECT value FROM store_keys WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("value"))
        .transpose()
}

async fn write(tx: &mut Tx, name: &str, value: &str) -> Result<()> {
    query(
        "INSERT INTO store_keys (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(tx)
    .await?;
    Ok(())
}

/// The key to use, checked against the one the lookups were written with (inside the
/// schema transaction, so two instances starting together agree on a database key).
pub(super) async fn resolve(tx: &mut Tx, source: &KeySource, change: KeyChange) -> Result<CfKey> {
    let key = match source {
        KeySource::File(k) => k.clone(),
        KeySource::Database => match read(tx, DB_KEY).await? {
            Some(v) => cie_core::flows::wire::unb64_array::<32>(&v)
                .map(Zeroizing::new)
                .and_then(|b| CfKey::from_bytes(b.as_slice()))
                .ok_or_else(|| StoreError::Corrupt("store_keys: cf-lookup-key".into()))?,
            None => {
                let bytes = Zeroizing::new(
                    crate::random_bytes::<32>().map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
                let encoded = Zeroizing::new(b64(bytes.as_slice()));
                write(tx, DB_KEY, &encoded).await?;
                CfKey::from_bytes(bytes.as_slice())
                    .ok_or_else(|| StoreError::Corrupt("cf lookup key".into()))?
            }
        },
    };
    if change == KeyChange::Ignore {
        return Ok(key);
    }
    match read(tx, CHECK).await? {
        Some(stored) if key.matches(&stored) => {}
        Some(_) if change == KeyChange::Refuse => return Err(StoreError::CfKeyMismatch),
        Some(_) => {
            tracing::warn!(
                "the codice fiscale lookup key changed (another --otp-key-file, or none before): \
                 OTP states, PIN throttles and rate limits written under the old key no longer apply"
            );
            write(tx, CHECK, &key.check()).await?;
        }
        None => write(tx, CHECK, &key.check()).await?,
    }
    Ok(key)
}

/// Move the row of `table` keyed by `legacy` in `column` to `keyed`, unless a row with
/// the keyed value already exists (`same` adds the columns of the primary key that must
/// match, e.g. the rate limit's minute); a legacy row left over is deleted.
pub(super) async fn adopt(
    tx: &mut Tx,
    table: &str,
    column: &str,
    same: &str,
    legacy: &str,
    keyed: &str,
) -> Result<()> {
    query(&format!(
        "UPDATE {table} SET {column} = $2 WHERE {column} = $1
         AND NOT EXISTS (SELECT 1 FROM {table} k WHERE k.{column} = $2{same})"
    ))
    .bind(legacy)
    .bind(keyed)
    .execute(&mut *tx)
    .await?;
    query(&format!("DELETE FROM {table} WHERE {column} = $1"))
        .bind(legacy)
        .execute(tx)
        .await?;
    Ok(())
}

/// SQL counting the rows still in the unkeyed form.
pub(super) const LEGACY_ROWS: &str = "SELECT
      (SELECT COUNT(*) FROM otp_state WHERE cf_key NOT LIKE 'k1.%')
    + (SELECT COUNT(*) FROM abroad_throttle WHERE cf_key NOT LIKE 'k1.%')
    + (SELECT COUNT(*) FROM rate_limits
       WHERE bucket_key LIKE 'approval-cf:%' AND bucket_key NOT LIKE 'approval-cf:k1.%') AS n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_key_is_keyed_and_distinct() {
        let a = CfKey::derive(&[7; 32]);
        let b = CfKey::derive(&[8; 32]);
        let cf = "RSSMRA80A01H501U";
        assert!(a.lookup(cf).starts_with(KEYED_PREFIX));
        assert_eq!(a.lookup(cf), CfKey::derive(&[7; 32]).lookup(cf));
        assert_ne!(a.lookup(cf), b.lookup(cf));
        assert_ne!(a.lookup(cf), legacy_key(cf));
        assert!(!a.lookup(cf).contains(&legacy_key(cf)));
        // The derived key is not the OTP key itself.
        let raw = CfKey::from_bytes(&[7; 32]).unwrap();
        assert_ne!(a.lookup(cf), raw.lookup(cf));
        assert!(a.matches(&a.check()));
        assert!(!b.matches(&a.check()));
        assert_eq!(format!("{a:?}"), "CfKey(<redacted>)");
    }

    #[test]
    fn hkdf_matches_rfc5869_construction() {
        // HKDF-SHA-256 with an empty salt: PRK = HMAC(zeros(32), IKM); OKM = HMAC(PRK, info ‖ 0x01).
        let ikm = [7u8; 32];
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]), &ikm);
        let mut msg = CF_LOOKUP_INFO.to_vec();
        msg.push(1);
        let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &msg);
        let expected = CfKey::from_bytes(okm.as_ref()).unwrap();
        let cf = "RSSMRA80A01H501U";
        assert_eq!(CfKey::derive(&ikm).lookup(cf), expected.lookup(cf));
    }
}
