//! OpenID Federation as the SPID/CIE profile uses it (issue 13): our entity configuration
//! at `/.well-known/openid-federation`, and automatic registration of relying parties —
//! a `client_id` that is not plainly registered is resolved as an entity id through its
//! trust chain up to the configured Trust Anchor (whose keys are pinned), the superiors'
//! metadata policies are applied, and the resulting `openid_relying_party` metadata is
//! used as the client's registration until the chain expires.

pub mod fetch;
pub mod policy;
pub mod statement;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use josekit::jwk::JwkSet;
use serde_json::{Map, Value, json};

use super::client::ClientMetadata;
use super::keys::OpKey;
pub use fetch::{FetchError, Fetcher, HttpFetcher};
use statement::Statement;

/// Where every entity publishes its configuration (appended to the entity id's path).
pub const WELL_KNOWN: &str = "/.well-known/openid-federation";
/// Media type of entity statements.
pub const CONTENT_TYPE: &str = "application/entity-statement+jwt";
/// Life of our entity configuration.
pub const STATEMENT_SECS: u64 = 24 * 3600;
/// Authority hints followed per entity (the reference implementation's cap).
pub const MAX_AUTHORITY_HINTS: usize = 2;
/// Intermediates allowed when the Trust Anchor sets no `max_path_length`.
pub const DEFAULT_MAX_PATH_LENGTH: u64 = 1;
/// Resolved relying parties kept in memory.
const CACHE_ENTRIES: usize = 1024;
/// Resolutions under way at once (each is a few bounded fetches to the outside: an
/// unauthenticated authorization request starts one, so their number is capped).
const CONCURRENT_RESOLUTIONS: usize = 4;

/// Why a relying party's trust chain or metadata is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// A statement could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A statement is not what the profile describes (the part named).
    #[error("malformed entity statement: {0}")]
    Malformed(&'static str),
    /// A signature does not verify with the keys its superior (or itself) gives.
    #[error("entity statement signature does not verify")]
    Signature,
    /// `iss` or `sub` are not the expected entities.
    #[error("entity statement about another entity")]
    Mismatch,
    /// A statement of the chain has expired.
    #[error("trust chain expired")]
    Expired,
    /// No authority hint leads to our Trust Anchor within the allowed path length.
    #[error("no trust chain to our trust anchor")]
    ForeignTrustAnchor,
    /// The entity id is not a URL we fetch (https, or loopback http when allowed).
    #[error("entity id is not an https URL")]
    EntityId,
    /// A required trust mark is missing or invalid.
    #[error("required trust mark missing or invalid")]
    TrustMark,
    /// The metadata policy is malformed or violated.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// The resulting relying-party metadata cannot be used.
    #[error("relying party metadata: {0}")]
    Metadata(String),
}

impl FederationError {
    /// The profile's error code ("Errori" of the federation): a chain that cannot be
    /// established is `invalid_client`, metadata the federation's policy or our needs
    /// refuse is `unauthorized_client`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Policy(_) | Self::Metadata(_) | Self::TrustMark => "unauthorized_client",
            _ => "invalid_client",
        }
    }
}

/// The federation part of the provider's configuration.
#[derive(Clone)]
pub struct FederationConfig {
    /// Signs our entity configuration (distinct from the OpenID signing key).
    pub key: Arc<OpKey>,
    /// The Trust Anchor's entity id.
    pub trust_anchor: String,
    /// The Trust Anchor's federation keys, obtained out of band (pinned).
    pub trust_anchor_jwks: Value,
    /// Our superiors (default: the Trust Anchor).
    pub authority_hints: Vec<String>,
    /// Trust marks to publish (`[{"id": …, "trust_mark": JWT}]`, as the TA issued them).
    pub trust_marks: Vec<Value>,
    /// Trust mark ids a relying party must show, signed by the Trust Anchor.
    pub required_trust_marks: Vec<String>,
    /// `federation_entity.organization_name`.
    pub organization_name: String,
    /// Federation contacts (`federation_entity.contacts`).
    pub contacts: Vec<String>,
    /// Fetches statements.
    pub fetcher: Arc<dyn Fetcher>,
    /// Accept `http://127.0.0.1…`/`http://localhost…` entity ids and endpoints (tests
    /// against the reference software on loopback only).
    pub allow_loopback_http: bool,
}

impl std::fmt::Debug for FederationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationConfig")
            .field("key", &self.key)
            .field("trust_anchor", &self.trust_anchor)
            .field("authority_hints", &self.authority_hints)
            .field("required_trust_marks", &self.required_trust_marks)
            .field("allow_loopback_http", &self.allow_loopback_http)
            .finish_non_exhaustive()
    }
}

impl FederationConfig {
    /// Under `trust_anchor` (keys `trust_anchor_jwks`), fetching over HTTP(S).
    pub fn new(
        key: OpKey,
        trust_anchor: &str,
        trust_anchor_jwks: Value,
        fetcher: Arc<dyn Fetcher>,
    ) -> Self {
        Self {
            key: Arc::new(key),
            trust_anchor: trust_anchor.to_owned(),
            trust_anchor_jwks,
            authority_hints: vec![trust_anchor.to_owned()],
            trust_marks: Vec::new(),
            required_trust_marks: Vec::new(),
            organization_name: "cie-companion".into(),
            contacts: Vec::new(),
            fetcher,
            allow_loopback_http: false,
        }
    }

    /// Check what the server relies on later.
    pub fn validate(&self) -> Result<(), String> {
        if !entity_id_ok(&self.trust_anchor, self.allow_loopback_http) {
            return Err("trust anchor: not an https URL".into());
        }
        if statement::jwk_set(Some(&self.trust_anchor_jwks)).is_none() {
            return Err("trust anchor JWKS: not a non-empty JWK set".into());
        }
        if let Some(bad) = self
            .authority_hints
            .iter()
            .find(|h| !entity_id_ok(h, self.allow_loopback_http))
        {
            return Err(format!("authority hint {bad}: not an https URL"));
        }
        if self.trust_marks.iter().any(|t| {
            trust_mark_id(t).is_none() || t.get("trust_mark").and_then(Value::as_str).is_none()
        }) {
            return Err("trust marks: each needs an id and a trust_mark JWT".into());
        }
        Ok(())
    }
}

/// An https URL, or (when allowed) an http URL on the loopback interface.
pub fn entity_id_ok(u: &str, allow_loopback_http: bool) -> bool {
    if super::client::is_https_url(u) {
        return true;
    }
    allow_loopback_http && is_loopback_http(u)
}

/// `http://127.0.0.1[:port]…`, `http://[::1]…` or `http://localhost…`, no fragment.
pub fn is_loopback_http(u: &str) -> bool {
    let Some(rest) = u.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split(['/', '?']).next().unwrap_or("");
    let host = if host_port.starts_with("[::1]") {
        "[::1]"
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        && !u.contains('#')
        && !u.chars().any(char::is_whitespace)
}

/// The id of a trust-mark entry or JWT, under any of the drafts' names.
fn trust_mark_id(v: &Value) -> Option<&str> {
    ["trust_mark_type", "trust_mark_id", "id"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
}

/// `entity_id` + the well-known path (path-appended, as OpenID Federation says).
pub fn configuration_url(entity_id: &str) -> String {
    format!("{}{WELL_KNOWN}", entity_id.trim_end_matches('/'))
}

/// `endpoint?sub=…` (or `&sub=…`).
fn fetch_url(endpoint: &str, sub: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}sub={}", super::pct(sub))
}

/// A resolved relying party.
#[derive(Debug, Clone)]
struct Resolved {
    client: ClientMetadata,
    exp: u64,
}

/// Federation state shared by the handlers: the configuration, the Trust Anchor's
/// configuration and the resolved relying parties (each until its chain's `exp`).
pub(crate) struct Federation {
    config: FederationConfig,
    anchor_keys: JwkSet,
    anchor: Mutex<Option<Statement>>,
    cache: Mutex<HashMap<String, Resolved>>,
    resolving: tokio::sync::Semaphore,
}

impl Federation {
    pub(crate) fn new(config: FederationConfig) -> Result<Self, String> {
        config.validate()?;
        let anchor_keys = statement::jwk_set(Some(&config.trust_anchor_jwks))
            .ok_or("trust anchor JWKS: not a JWK set")?;
        Ok(Self {
            config,
            anchor_keys,
            anchor: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            resolving: tokio::sync::Semaphore::new(CONCURRENT_RESOLUTIONS),
        })
    }

    /// `federation_entity.organization_name`.
    pub(crate) fn organization_name(&self) -> &str {
        &self.config.organization_name
    }

    /// Our entity configuration, signed, with `openid_provider` = `provider`.
    pub(crate) fn entity_configuration(
        &self,
        issuer: &str,
        provider: Value,
        now: u64,
    ) -> Result<String, super::keys::KeyError> {
        let c = &self.config;
        let mut federation_entity = json!({
            "organization_name": c.organization_name,
            "homepage_uri": issuer,
        });
        if !c.contacts.is_empty() {
            federation_entity["contacts"] = json!(c.contacts);
        }
        let mut claims = json!({
            "iss": issuer,
            "sub": issuer,
            "iat": now,
            "exp": now + STATEMENT_SECS,
            "jwks": c.key.jwks(),
            "authority_hints": c.authority_hints,
            "metadata": {
                "federation_entity": federation_entity,
                "openid_provider": provider,
            },
        });
        if !c.trust_marks.is_empty() {
            claims["trust_marks"] = json!(c.trust_marks);
        }
        c.key.sign(Some(statement::TYP), &claims)
    }

    /// The registration of the relying party `client_id`, from cache or by resolving its
    /// trust chain.
    pub(crate) async fn relying_party(
        &self,
        client_id: &str,
        now: u64,
    ) -> Result<ClientMetadata, FederationError> {
        if let Some(r) = self.cached(client_id, now) {
            return Ok(r);
        }
        let _permit = self
            .resolving
            .acquire()
            .await
            .map_err(|_| FederationError::Fetch(FetchError("shutting down".into())))?;
        // Another request may have resolved it meanwhile.
        if let Some(r) = self.cached(client_id, now) {
            return Ok(r);
        }
        let resolved = self.resolve(client_id, now).await?;
        let client = resolved.client.clone();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, r| r.exp > now);
            }
            if cache.len() < CACHE_ENTRIES {
                cache.insert(client_id.to_owned(), resolved);
            }
        }
        Ok(client)
    }

    fn cached(&self, client_id: &str, now: u64) -> Option<ClientMetadata> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(client_id)
            .filter(|r| r.exp > now)
            .map(|r| r.client.clone())
    }

    /// The Trust Anchor's configuration, verified with the pinned keys.
    async fn anchor(&self, now: u64) -> Result<Statement, FederationError> {
        if let Some(s) = self
            .anchor
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .filter(|s| s.exp > now)
        {
            return Ok(s);
        }
        let ta = &self.config.trust_anchor;
        let token = self.config.fetcher.get(&configuration_url(ta)).await?;
        let s = statement::verify(&token, &self.anchor_keys, Some(ta), Some(ta), now)?;
        if let Ok(mut a) = self.anchor.lock() {
            *a = Some(s.clone());
        }
        Ok(s)
    }

    /// A superior's statement about `sub`, from the superior's fetch endpoint, verified
    /// with `superior_keys`.
    async fn subordinate(
        &self,
        superior: &Statement,
        superior_keys: &JwkSet,
        sub: &str,
        now: u64,
    ) -> Result<Statement, FederationError> {
        let endpoint = superior
            .metadata_str("federation_entity", "federation_fetch_endpoint")
            .ok_or(FederationError::Malformed("federation_fetch_endpoint"))?;
        if !entity_id_ok(endpoint, self.config.allow_loopback_http) {
            return Err(FederationError::EntityId);
        }
        let token = self.config.fetcher.get(&fetch_url(endpoint, sub)).await?;
        statement::verify(&token, superior_keys, Some(&superior.sub), Some(sub), now)
    }

    /// The superiors' statements about `entity` (whose configuration is `ec_token`), the
    /// first about `entity`, the last issued by the Trust Anchor; `entity`'s configuration
    /// verified with the keys its superior gives. Depth-first over the authority hints.
    fn chain_up<'a>(
        &'a self,
        ec: &'a Statement,
        ec_token: &'a str,
        intermediates: u64,
        max_intermediates: u64,
        now: u64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<Statement>, FederationError>> + Send + 'a>,
    > {
        Box::pin(async move {
            let mut last = FederationError::ForeignTrustAnchor;
            for hint in ec.authority_hints().into_iter().take(MAX_AUTHORITY_HINTS) {
                let attempt = async {
                    if hint == self.config.trust_anchor {
                        let ta = self.anchor(now).await?;
                        let about = self
                            .subordinate(&ta, &self.anchor_keys, &ec.sub, now)
                            .await?;
                        statement::verify(ec_token, &about.jwks()?, None, None, now)?;
                        return Ok(vec![about]);
                    }
                    if intermediates >= max_intermediates {
                        return Err(FederationError::ForeignTrustAnchor);
                    }
                    if !entity_id_ok(hint, self.config.allow_loopback_http) || hint == ec.sub {
                        return Err(FederationError::EntityId);
                    }
                    let sup_token = self.config.fetcher.get(&configuration_url(hint)).await?;
                    let sup = statement::self_signed(&sup_token, hint, now)?;
                    let about = self.subordinate(&sup, &sup.jwks()?, &ec.sub, now).await?;
                    statement::verify(ec_token, &about.jwks()?, None, None, now)?;
                    let mut rest = self
                        .chain_up(&sup, &sup_token, intermediates + 1, max_intermediates, now)
                        .await?;
                    rest.insert(0, about);
                    Ok::<_, FederationError>(rest)
                };
                match attempt.await {
                    Ok(chain) => return Ok(chain),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
    }

    /// Resolve `client_id` as a relying party of our federation.
    async fn resolve(&self, client_id: &str, now: u64) -> Result<Resolved, FederationError> {
        let loopback = self.config.allow_loopback_http;
        if !entity_id_ok(client_id, loopback) {
            return Err(FederationError::EntityId);
        }
        let ec_token = self
            .config
            .fetcher
            .get(&configuration_url(client_id))
            .await?;
        let ec = statement::self_signed(&ec_token, client_id, now)?;
        // Trust marks before any further outbound request (anti-DoS, profile §seccons).
        // The reference Trust Anchor hands them out in its statement about the entity,
        // which not every member copies into its configuration: without them there, only
        // a direct Trust Anchor hint is followed (no host the entity names is fetched) and
        // the marks must be in the Trust Anchor's statement.
        let required = &self.config.required_trust_marks;
        let marked = required
            .iter()
            .all(|id| self.check_trust_mark(&ec.claims, &ec.sub, id, now).is_ok());
        let ta = self.anchor(now).await?;
        let max = if marked {
            ta.claims
                .get("constraints")
                .and_then(|c| c.get("max_path_length"))
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_MAX_PATH_LENGTH)
                .min(2)
        } else {
            0
        };
        let chain = self.chain_up(&ec, &ec_token, 0, max, now).await?;
        if !marked {
            let about = chain.first().ok_or(FederationError::TrustMark)?;
            for id in required {
                self.check_trust_mark(&about.claims, &ec.sub, id, now)?;
            }
        }
        let exp = chain
            .iter()
            .map(|s| s.exp)
            .chain([ec.exp, ta.exp])
            .min()
            .unwrap_or(now);
        let mut metadata = ec
            .claims
            .get("metadata")
            .and_then(|m| m.get("openid_relying_party"))
            .and_then(Value::as_object)
            .cloned()
            .ok_or(FederationError::Metadata(
                "no openid_relying_party metadata".into(),
            ))?;
        // Top-down: the Trust Anchor's statement first.
        for s in chain.iter().rev() {
            if let Some(Value::Object(fixed)) = s
                .claims
                .get("metadata")
                .and_then(|m| m.get("openid_relying_party"))
            {
                for (k, v) in fixed {
                    metadata.insert(k.clone(), v.clone());
                }
            }
            if let Some(p) = s
                .claims
                .get("metadata_policy")
                .and_then(|m| m.get("openid_relying_party"))
            {
                policy::apply(&mut metadata, p)?;
            }
        }
        let organization = ec
            .claims
            .get("metadata")
            .and_then(|m| m.get("federation_entity"))
            .and_then(|f| f.get("organization_name"))
            .and_then(Value::as_str);
        let client = relying_party_client(client_id, &metadata, organization, loopback)?;
        Ok(Resolved { client, exp })
    }

    /// A trust mark `id` among the `trust_marks` of `claims`, signed by the Trust Anchor,
    /// about `sub`, not expired (a missing `exp` is accepted: the reference Trust Anchor
    /// issues none).
    fn check_trust_mark(
        &self,
        claims: &Map<String, Value>,
        sub: &str,
        id: &str,
        now: u64,
    ) -> Result<(), FederationError> {
        let marks = claims
            .get("trust_marks")
            .and_then(Value::as_array)
            .ok_or(FederationError::TrustMark)?;
        let ok = marks
            .iter()
            .filter(|m| trust_mark_id(m) == Some(id))
            .filter_map(|m| m.get("trust_mark").and_then(Value::as_str))
            .any(|jwt| {
                super::jwt::verify(jwt, &self.anchor_keys)
                    .ok()
                    .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
                    .is_some_and(|c| {
                        trust_mark_id(&c) == Some(id)
                            && c.get("sub").and_then(Value::as_str) == Some(sub)
                            && c.get("exp").and_then(Value::as_u64).is_none_or(|e| e > now)
                    })
            });
        ok.then_some(()).ok_or(FederationError::TrustMark)
    }
}

/// The registration a relying party's final metadata gives.
fn relying_party_client(
    client_id: &str,
    md: &Map<String, Value>,
    organization: Option<&str>,
    loopback: bool,
) -> Result<ClientMetadata, FederationError> {
    let bad = |m: &str| FederationError::Metadata(m.to_owned());
    let strings = |k: &str| -> Option<Vec<&str>> {
        md.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
    };
    if md
        .get("client_id")
        .and_then(Value::as_str)
        .is_some_and(|c| c != client_id)
    {
        return Err(bad("client_id differs from the entity id"));
    }
    if strings("client_registration_types").is_some_and(|t| !t.contains(&"automatic")) {
        return Err(bad("client_registration_types must include automatic"));
    }
    if strings("response_types").is_some_and(|t| !t.contains(&"code")) {
        return Err(bad("response_types must include code"));
    }
    if md
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .is_some_and(|m| m != "private_key_jwt")
    {
        return Err(bad("token_endpoint_auth_method must be private_key_jwt"));
    }
    let redirect_uris: Vec<String> = strings("redirect_uris")
        .ok_or_else(|| bad("redirect_uris missing"))?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let jwks = md
        .get("jwks")
        .cloned()
        .ok_or_else(|| bad("jwks missing (signed_jwks_uri is not supported)"))?;
    let mut client = ClientMetadata::new(client_id, redirect_uris, jwks);
    client.post_logout_redirect_uris = strings("post_logout_redirect_uris")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    client.client_name = md
        .get("client_name")
        .and_then(Value::as_str)
        .or(organization)
        .map(str::to_owned);
    let text = |k: &str| md.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(a) = text("id_token_signed_response_alg") {
        client.id_token_signed_response_alg = a;
    }
    if let Some(a) = text("userinfo_encrypted_response_alg") {
        client.userinfo_encrypted_response_alg = a;
    }
    if let Some(e) = text("userinfo_encrypted_response_enc") {
        client.userinfo_encrypted_response_enc = e;
    }
    client
        .validate_with(loopback)
        .map_err(|e| FederationError::Metadata(e.0))?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            configuration_url("https://rp.example/oidc/rp/"),
            "https://rp.example/oidc/rp/.well-known/openid-federation"
        );
        assert_eq!(
            fetch_url("https://ta/fetch", "https://rp/x?y"),
            "https://ta/fetch?sub=https%3A%2F%2Frp%2Fx%3Fy"
        );
        assert!(is_loopback_http("http://127.0.0.1:8000/"));
        assert!(is_loopback_http("http://[::1]:8000/x"));
        assert!(is_loopback_http("http://localhost"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.example/"));
        assert!(!is_loopback_http("http://example.org/"));
        assert!(!entity_id_ok("http://127.0.0.1:8000/", false));
        assert!(entity_id_ok("http://127.0.0.1:8000/", true));
        assert!(entity_id_ok("https://ta.example", false));
    }

    #[test]
    fn metadata_needs() {
        let md = |v: Value| v.as_object().cloned().unwrap_or_default();
        let keys = json!({"keys": [
            {"kty": "RSA", "kid": "s", "use": "sig", "e": "AQAB", "n": "sXch"},
            {"kty": "RSA", "kid": "e", "use": "enc", "e": "AQAB", "n": "sXch"}]});
        let good = json!({"redirect_uris": ["https://rp/cb"], "jwks": keys,
            "client_registration_types": ["automatic"], "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt", "client_name": "RP"});
        let c = relying_party_client("https://rp", &md(good.clone()), None, false).unwrap();
        assert_eq!(c.display_name(), "RP");
        assert!(c.post_logout_redirect_uris.is_empty());
        let mut with_logout = md(good.clone());
        with_logout.insert(
            "post_logout_redirect_uris".into(),
            json!(["https://rp/bye"]),
        );
        let c = relying_party_client("https://rp", &with_logout, None, false).unwrap();
        assert_eq!(c.post_logout_redirect_uris, ["https://rp/bye"]);
        with_logout.insert("post_logout_redirect_uris".into(), json!(["/bye"]));
        assert!(relying_party_client("https://rp", &with_logout, None, false).is_err());
        for (k, v) in [
            ("client_registration_types", json!(["explicit"])),
            ("response_types", json!(["id_token"])),
            ("token_endpoint_auth_method", json!("client_secret_basic")),
            ("redirect_uris", Value::Null),
            ("jwks", Value::Null),
            ("client_id", json!("https://other")),
            ("id_token_signed_response_alg", json!("HS256")),
        ] {
            let mut m = md(good.clone());
            if v.is_null() {
                m.remove(k);
            } else {
                m.insert(k.into(), v);
            }
            assert!(
                matches!(
                    relying_party_client("https://rp", &m, None, false),
                    Err(FederationError::Metadata(_))
                ),
                "{k}"
            );
        }
        // Loopback http only when allowed.
        let mut m = md(good);
        m.insert("redirect_uris".into(), json!(["http://127.0.0.1:8001/cb"]));
        assert!(relying_party_client("http://127.0.0.1:8001/rp/", &m, None, false).is_err());
        assert!(relying_party_client("http://127.0.0.1:8001/rp/", &m, None, true).is_ok());
    }
}
