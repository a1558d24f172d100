//! Plainly registered clients (relying parties outside a federation): their metadata, as
//! the operator registers it (`companion-server oidc client add`) and as the profile
//! names it (`client_id` an HTTPS URL, `redirect_uris`, public `jwks`, per-client JOSE).

use josekit::jwk::{Jwk, JwkSet};
use serde::{Deserialize, Serialize};

/// The UserInfo key-encryption algorithms we produce (profile MUST set).
pub const USERINFO_ENC_ALGS: &[&str] = &["RSA-OAEP", "RSA-OAEP-256"];
/// The UserInfo content-encryption algorithms we produce (profile MUST set).
pub const USERINFO_ENC_ENCS: &[&str] = &["A128CBC-HS256", "A256CBC-HS512"];
/// The scopes a client may be allowed.
pub const SCOPES: &[&str] = &["openid", "profile"];

/// Why metadata is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client metadata: {0}")]
pub struct ClientError(pub String);

/// A client's registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// An HTTPS URL (the RP's entity id in a federation).
    pub client_id: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Public keys (`{"keys":[…]}`): `use: sig` for request objects and assertions,
    /// `use: enc` (RSA) for UserInfo.
    pub jwks: serde_json::Value,
    /// Name shown on the consent page (default: the client id).
    #[serde(default)]
    pub client_name: Option<String>,
    /// Scopes it may ask.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claims it may receive (empty: all we support).
    #[serde(default)]
    pub claims: Vec<String>,
    /// ID token signature (we sign RS256 only).
    #[serde(default = "default_sig")]
    pub id_token_signed_response_alg: String,
    /// UserInfo JWE `alg`.
    #[serde(default = "default_enc_alg")]
    pub userinfo_encrypted_response_alg: String,
    /// UserInfo JWE `enc`.
    #[serde(default = "default_enc_enc")]
    pub userinfo_encrypted_response_enc: String,
    /// Exact URIs RP-initiated logout may return to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    SCOPES.iter().map(|s| (*s).to_owned()).collect()
}
fn default_sig() -> String {
    "RS256".into()
}
fn default_enc_alg() -> String {
    "RSA-OAEP".into()
}
fn default_enc_enc() -> String {
    "A128CBC-HS256".into()
}

impl ClientMetadata {
    /// Defaults for all but the id, redirect URIs and keys.
    pub fn new(client_id: &str, redirect_uris: Vec<String>, jwks: serde_json::Value) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uris,
            jwks,
            client_name: None,
            scopes: default_scopes(),
            claims: Vec::new(),
            id_token_signed_response_alg: default_sig(),
            userinfo_encrypted_response_alg: default_enc_alg(),
            userinfo_encrypted_response_enc: default_enc_enc(),
            post_logout_redirect_uris: Vec::new(),
        }
    }

    /// Check everything the provider relies on later.
    pub fn validate(&self) -> Result<(), ClientError> {
        self.validate_with(false)
    }

    /// [`Self::validate`], also accepting an `http://` loopback `client_id` when
    /// `loopback_http` (federation tests against the reference software on loopback).
    pub fn validate_with(&self, loopback_http: bool) -> Result<(), ClientError> {
        let err = |m: &str| Err(ClientError(m.to_owned()));
        if !super::federation::entity_id_ok(&self.client_id, loopback_http) {
            return err("client_id must be an https:// URL without fragment");
        }
        if self.redirect_uris.is_empty() {
            return err("at least one redirect URI");
        }
        if !self.redirect_uris.iter().all(|u| is_redirect_uri(u)) {
            return err("redirect URIs must be absolute, without fragment or spaces");
        }
        if !self
            .post_logout_redirect_uris
            .iter()
            .all(|u| is_redirect_uri(u))
        {
            return err("post-logout redirect URIs must be absolute, without fragment or spaces");
        }
        if self.id_token_signed_response_alg != "RS256" {
            return err("id_token_signed_response_alg: only RS256 is offered");
        }
        if !USERINFO_ENC_ALGS.contains(&self.userinfo_encrypted_response_alg.as_str())
            || !USERINFO_ENC_ENCS.contains(&self.userinfo_encrypted_response_enc.as_str())
        {
            return err("userinfo_encrypted_response_alg/enc not in the profile's list");
        }
        if !self.scopes.iter().all(|s| SCOPES.contains(&s.as_str())) {
            return err("unknown scope");
        }
        let set = self.jwk_set()?;
        if !set
            .keys()
            .iter()
            .any(|k| k.key_use().is_none_or(|u| u == "sig"))
        {
            return err("jwks: no signing key");
        }
        if self.encryption_key().is_none() {
            return err("jwks: no RSA encryption key: mark one `use: enc` (with a kid)");
        }
        if set.keys().iter().any(|k| k.key_id().is_none()) {
            return err("jwks: every key needs a kid");
        }
        Ok(())
    }

    /// The registered keys.
    pub fn jwk_set(&self) -> Result<JwkSet, ClientError> {
        let bytes = serde_json::to_vec(&self.jwks).map_err(|e| ClientError(e.to_string()))?;
        JwkSet::from_bytes(bytes).map_err(|_| ClientError("jwks: not a JWK set".into()))
    }

    /// The RSA key UserInfo is encrypted to: the first with `use: enc`, else the only RSA
    /// key without `use` (with two such keys, which one decrypts is not said: none).
    pub fn encryption_key(&self) -> Option<Jwk> {
        let set = self.jwk_set().ok()?;
        let rsa: Vec<&Jwk> = set
            .keys()
            .into_iter()
            .filter(|k| k.key_type() == "RSA" && k.key_id().is_some())
            .collect();
        if let Some(k) = rsa.iter().find(|k| k.key_use() == Some("enc")) {
            return Some((*k).clone());
        }
        let unmarked: Vec<&&Jwk> = rsa.iter().filter(|k| k.key_use().is_none()).collect();
        match unmarked.as_slice() {
            [only] => Some((**only).clone()),
            _ => None,
        }
    }

    /// The name to show.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }
}

/// `https://host…`, no fragment, no whitespace.
pub fn is_https_url(u: &str) -> bool {
    u.strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !u.contains('#')
        && !u.chars().any(char::is_whitespace)
}

/// An absolute URI (any scheme: apps register custom ones), no fragment, no whitespace.
fn is_redirect_uri(u: &str) -> bool {
    u.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
    }) && !u.contains('#')
        && !u.chars().any(char::is_whitespace)
}

/// The origin (`scheme://host[:port]`) of an absolute URL, for the consent page's
/// `form-action`; `None` for what a CSP source cannot name safely.
pub fn origin_of(u: &str) -> Option<&str> {
    let (scheme, rest) = u.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = rest.get(..end)?;
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    ok.then(|| u.get(..scheme.len() + 3 + end)).flatten()
}

/// The sector of pairwise subjects: the client id's host.
pub fn sector(client_id: &str) -> &str {
    let rest = client_id
        .strip_prefix("https://")
        .or_else(|| client_id.strip_prefix("http://"))
        .unwrap_or(client_id);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_https_url("https://rp.example/oidc/rp"));
        assert!(!is_https_url("http://rp.example"));
        assert!(!is_https_url("https://"));
        assert!(!is_https_url("https://rp.example/#x"));
        assert!(is_redirect_uri("it.app:/cb"));
        assert!(!is_redirect_uri("/cb"));
        assert_eq!(
            origin_of("https://rp.example:8443/cb?x=1"),
            Some("https://rp.example:8443")
        );
        assert_eq!(origin_of("https://a b/"), None);
        assert_eq!(sector("https://rp.example:8443/oidc/rp"), "rp.example:8443");
    }

    /// UserInfo goes to the `use: enc` key; two unmarked RSA keys name none.
    #[test]
    fn encryption_key_is_never_guessed() {
        let key = |kid: &str, use_: Option<&str>| {
            let mut k = serde_json::json!({"kty": "RSA", "kid": kid, "e": "AQAB", "n": "sXch"});
            if let Some(u) = use_ {
                k["use"] = serde_json::json!(u);
            }
            k
        };
        let client = |keys: Vec<serde_json::Value>| {
            ClientMetadata::new(
                "https://rp",
                vec!["https://rp/cb".into()],
                serde_json::json!({"keys": keys}),
            )
        };
        let kid = |c: ClientMetadata| {
            c.encryption_key()
                .and_then(|k| k.key_id().map(str::to_owned))
        };
        assert_eq!(
            kid(client(vec![key("s", Some("sig")), key("e", Some("enc"))])).as_deref(),
            Some("e")
        );
        assert_eq!(
            kid(client(vec![key("s", Some("sig")), key("u", None)])).as_deref(),
            Some("u")
        );
        assert_eq!(kid(client(vec![key("a", None), key("b", None)])), None);
        assert!(
            client(vec![key("a", None), key("b", None)])
                .validate()
                .is_err()
        );
    }
}
