//! JWTs that come from clients (request objects, client assertions): the unverified peek
//! that names the client, and verification with the client's registered keys. Only the
//! profile's signature algorithms are accepted (never `none` nor HMAC).

use cie_core::flows::wire::unb64;
use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::JwsVerifier;
use serde::Deserialize;

/// Signature algorithms accepted from clients (profile, "Algoritmi crittografici").
pub const CLIENT_SIGNING_ALGS: &[&str] = &["RS256", "RS512", "PS256", "PS512", "ES256", "ES512"];

/// Why a client JWT is refused (never carries key material or the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts with JSON header and payload.
    #[error("malformed JWT")]
    Malformed,
    /// `alg` is not one of [`CLIENT_SIGNING_ALGS`].
    #[error("signature algorithm not allowed")]
    Algorithm,
    /// No key of the client has that `kid` (or `kid` is missing).
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
}

/// The JOSE header members we look at.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// Algorithm.
    pub alg: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Type (`entity-statement+jwt` for federation statements).
    #[serde(default)]
    pub typ: Option<String>,
}

/// A string or an array of strings (`aud`, `acr_values` as senders write them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Many.
    Many(Vec<String>),
}

impl OneOrMany {
    /// Whether `v` is (one of) the value(s).
    pub fn contains(&self, v: &str) -> bool {
        match self {
            Self::One(s) => s == v,
            Self::Many(l) => l.iter().any(|s| s == v),
        }
    }

    /// The values; a single string is split at spaces (`acr_values`).
    pub fn words(&self) -> Vec<&str> {
        match self {
            Self::One(s) => s.split_whitespace().collect(),
            Self::Many(l) => l.iter().flat_map(|s| s.split_whitespace()).collect(),
        }
    }
}

/// Header and payload, unverified: only to find the client and its keys.
pub fn peek(token: &str) -> Result<(Header, serde_json::Value), JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header = unb64(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let payload: serde_json::Value = unb64(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(serde_json::Value::is_object)
        .ok_or(JwtError::Malformed)?;
    Ok((header, payload))
}

/// Verify `token` with the key of `jwks` named by its `kid`; the payload bytes.
pub fn verify(token: &str, jwks: &JwkSet) -> Result<Vec<u8>, JwtError> {
    let (header, _) = peek(token)?;
    if !CLIENT_SIGNING_ALGS.contains(&header.alg.as_str()) {
        return Err(JwtError::Algorithm);
    }
    let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let jwk = jwks
        .get(kid)
        .into_iter()
        .find(|k| k.key_use().is_none_or(|u| u == "sig"))
        .ok_or(JwtError::UnknownKey)?;
    let verifier = verifier(&header.alg, jwk).ok_or(JwtError::UnknownKey)?;
    josekit::jws::deserialize_compact(token, verifier.as_ref())
        .map(|(payload, _)| payload)
        .map_err(|_| JwtError::Signature)
}

fn verifier(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    use josekit::jws::{ES256, ES512, PS256, PS512, RS256, RS512};
    Some(match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "RS512" => Box::new(RS512.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "PS512" => Box::new(PS512.verifier_from_jwk(jwk).ok()?),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES512" => Box::new(ES512.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_refuses_what_is_not_a_compact_jws() {
        for bad in ["", "a.b", "a.b.c.d", "e30.e30", "!!.e30.x", "e30.W10.x"] {
            assert!(peek(bad).is_err(), "{bad}");
        }
        // {"alg":"none"} . {} . (empty)
        let (h, p) = peek("eyJhbGciOiJub25lIn0.e30.").unwrap();
        assert_eq!(h.alg, "none");
        assert!(p.as_object().unwrap().is_empty());
        let empty = JwkSet::new();
        assert_eq!(
            verify("eyJhbGciOiJub25lIn0.e30.", &empty),
            Err(JwtError::Algorithm)
        );
    }

    #[test]
    fn one_or_many() {
        let one: OneOrMany = serde_json::from_str(r#""a b""#).unwrap();
        assert!(one.contains("a b"));
        assert_eq!(one.words(), ["a", "b"]);
        let many: OneOrMany = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(many.contains("b") && !many.contains("c"));
    }
}
