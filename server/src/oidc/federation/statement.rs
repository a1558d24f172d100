//! Entity statements (entity configurations and subordinate statements): a compact JWS
//! with header `typ: entity-statement+jwt` and a `kid`, verified with a given JWK set, then
//! `iss`, `sub` and `exp` checked.

use josekit::jwk::JwkSet;
use serde_json::{Map, Value};

use super::FederationError;
use crate::oidc::jwt;

/// The `typ` of entity statements.
pub const TYP: &str = "entity-statement+jwt";
/// Longest statement accepted (bytes).
pub const MAX_LEN: usize = 64 * 1024;

/// A verified statement's claims.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Expiry.
    pub exp: u64,
    /// All claims.
    pub claims: Map<String, Value>,
}

impl Statement {
    /// The `jwks` claim as a key set.
    pub fn jwks(&self) -> Result<JwkSet, FederationError> {
        jwk_set(self.claims.get("jwks")).ok_or(FederationError::Malformed("jwks"))
    }

    /// A string claim inside `metadata.<entity_type>`.
    pub fn metadata_str(&self, entity_type: &str, name: &str) -> Option<&str> {
        self.claims
            .get("metadata")?
            .get(entity_type)?
            .get(name)?
            .as_str()
    }

    /// `authority_hints`, as strings.
    pub fn authority_hints(&self) -> Vec<&str> {
        self.claims
            .get("authority_hints")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// A JWK set from a JSON value (`{"keys":[…]}`).
pub fn jwk_set(v: Option<&Value>) -> Option<JwkSet> {
    let bytes = serde_json::to_vec(v?).ok()?;
    let set = JwkSet::from_bytes(bytes).ok()?;
    (!set.keys().is_empty()).then_some(set)
}

/// The unverified claims of a statement: only to find the keys that verify it.
pub fn peek(token: &str) -> Result<Map<String, Value>, FederationError> {
    if token.len() > MAX_LEN {
        return Err(FederationError::Malformed("statement too long"));
    }
    match jwt::peek(token) {
        Ok((_, Value::Object(m))) => Ok(m),
        _ => Err(FederationError::Malformed("not a compact JWS")),
    }
}

/// Verify `token` with `keys`, its `typ`, `iss`/`sub` (when given) and `exp`.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    iss: Option<&str>,
    sub: Option<&str>,
    now: u64,
) -> Result<Statement, FederationError> {
    if token.len() > MAX_LEN {
        return Err(FederationError::Malformed("statement too long"));
    }
    let (header, _) = jwt::peek(token).map_err(|_| FederationError::Malformed("not a JWS"))?;
    if header.typ.as_deref() != Some(TYP) {
        return Err(FederationError::Malformed(
            "typ is not entity-statement+jwt",
        ));
    }
    let payload = jwt::verify(token, keys).map_err(|_| FederationError::Signature)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| FederationError::Malformed("claims"))?;
    let text = |k: &'static str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(FederationError::Malformed(k))
    };
    let (got_iss, got_sub) = (text("iss")?, text("sub")?);
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(FederationError::Malformed("exp"))?;
    if iss.is_some_and(|i| i != got_iss) || sub.is_some_and(|s| s != got_sub) {
        return Err(FederationError::Mismatch);
    }
    if exp <= now {
        return Err(FederationError::Expired);
    }
    if claims
        .get("iat")
        .and_then(Value::as_u64)
        .is_some_and(|iat| iat > now + crate::oidc::SKEW_SECS)
    {
        return Err(FederationError::Malformed("iat in the future"));
    }
    Ok(Statement {
        iss: got_iss,
        sub: got_sub,
        exp,
        claims,
    })
}

/// A self-signed entity configuration of `entity_id`: verified with its own `jwks`.
pub fn self_signed(token: &str, entity_id: &str, now: u64) -> Result<Statement, FederationError> {
    let claims = peek(token)?;
    let keys = jwk_set(claims.get("jwks")).ok_or(FederationError::Malformed("jwks"))?;
    verify(token, &keys, Some(entity_id), Some(entity_id), now)
}
