//! OpenID Provider under the Italian SPID/CIE OpenID Connect profile (issue 13), plain
//! (non-federated) registration: discovery, JWKS, the authorization endpoint with signed
//! request objects, consent, the token endpoint (`private_key_jwt`, PKCE S256), a
//! signed-then-encrypted UserInfo, revocation, introspection, RP-initiated logout and a
//! JWK set that can hold several keys (rotation); and OpenID Federation membership. Users
//! log in through the existing desktop page; the session's level gives the `acr`.

pub mod acr;
mod authorize;
pub mod claims;
pub mod client;
mod discovery;
pub mod federation;
pub mod fuzzing;
mod introspection;
pub mod jwt;
pub mod keys;
mod logout;
pub(crate) mod openapi;
mod page;
pub mod request_object;
mod revocation;
mod token;
mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::get;
use ring::hmac;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::store::{AuditEntry, SqlStore, StoreError};
pub use client::ClientMetadata;
pub use federation::{FederationConfig, FederationError};
pub use keys::{OpKey, OpKeys};
pub use token::{Assertion, AssertionError, check_assertion};

/// `GET /.well-known/openid-configuration`.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JWK set.
pub const JWKS_PATH: &str = "/oidc/jwks.json";
/// Authorization endpoint (GET or POST).
pub const AUTHORIZATION_PATH: &str = "/oidc/authorization";
/// Consent page of a pending request (`/oidc/consent/{id}`).
pub const CONSENT_PATH: &str = "/oidc/consent";
/// Token endpoint.
pub const TOKEN_PATH: &str = "/oidc/token";
/// UserInfo endpoint (GET or POST).
pub const USERINFO_PATH: &str = "/oidc/userinfo";

/// End-session endpoint (RP-initiated logout).
pub const LOGOUT_PATH: &str = "/oidc/logout";
/// Introspection endpoint (RFC 7662).
pub const INTROSPECTION_PATH: &str = "/oidc/introspection";
/// Revocation endpoint (RFC 7009).
pub const REVOCATION_PATH: &str = "/oidc/revocation";

/// Request-object and client-assertion clock skew tolerated, and their longest life.
pub const SKEW_SECS: u64 = 300;
/// A pending authorization request waits this long for login and consent.
pub const REQUEST_SECS: u64 = 600;
/// Authorization code life.
pub const CODE_SECS: u64 = 60;
/// Access and ID token life.
pub const TOKEN_SECS: u64 = 600;

/// The provider's configuration.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// The signing key.
    pub key: Arc<OpKey>,
    /// Other keys published in the JWK set and accepted on verification, never used to
    /// sign (key rotation: the next key, then the previous one).
    pub published_keys: Vec<Arc<OpKey>>,
    /// Clients registered at start (tests; the CLI writes to the store instead).
    pub clients: Vec<ClientMetadata>,
    /// Membership of an OpenID Federation (`None`: plain registration only).
    pub federation: Option<FederationConfig>,
}

impl OidcConfig {
    /// A configuration with `key` and no clients.
    pub fn new(key: OpKey) -> Self {
        Self {
            key: Arc::new(key),
            published_keys: Vec::new(),
            clients: Vec::new(),
            federation: None,
        }
    }
}

/// Shared by the provider's handlers.
#[derive(Clone)]
pub(crate) struct OidcState(Arc<Inner>);

struct Inner {
    store: Arc<SqlStore>,
    key: OpKeys,
    issuer: String,
    clock: Arc<dyn Clock>,
    /// HMAC key of pairwise subjects (kept in the store: subjects outlive signing keys).
    pairwise: hmac::Key,
    /// Federation membership, if configured.
    federation: Option<federation::Federation>,
}

/// Why a client cannot be served.
#[derive(Debug)]
pub(crate) enum ClientRefusal {
    /// Neither registered nor (without a federation) resolvable.
    Unknown,
    /// Its trust chain or federation metadata was refused.
    Federation(FederationError),
    /// The store failed.
    Store(StoreError),
}

/// `value` percent-encoded for a query component (RFC 3986 unreserved kept).
pub(crate) fn pct(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl OidcState {
    fn now(&self) -> u64 {
        self.0.clock.now()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0.issuer)
    }

    /// The pairwise `sub` of an identity for a client's sector.
    fn subject(&self, client_id: &str, identity_id: &str) -> String {
        let msg = format!("{}\n{identity_id}", client::sector(client_id));
        cie_core::flows::wire::b64(hmac::sign(&self.0.pairwise, msg.as_bytes()).as_ref())
    }

    /// A client's registration: plain (in the store), else, in a federation, the one its
    /// trust chain gives (resolved, or cached until the chain expires).
    async fn client(&self, client_id: &str) -> Result<ClientMetadata, ClientRefusal> {
        let plain = self
            .0
            .store
            .oidc_client(client_id)
            .await
            .map_err(ClientRefusal::Store)?
            .and_then(|m| serde_json::from_str::<ClientMetadata>(&m).ok())
            .filter(|c| c.client_id == client_id && c.validate().is_ok());
        if let Some(c) = plain {
            return Ok(c);
        }
        let Some(fed) = &self.0.federation else {
            return Err(ClientRefusal::Unknown);
        };
        fed.relying_party(client_id, self.now())
            .await
            .map_err(ClientRefusal::Federation)
    }

    /// An access token we issued (our signature, `typ: at+jwt`, our issuer), its claims;
    /// expiry and revocation are the caller's to check.
    fn access_token(&self, token: &str) -> Option<token::AccessToken> {
        let (payload, typ) = self.0.key.verify(token)?;
        let at = serde_json::from_slice::<token::AccessToken>(&payload).ok()?;
        (typ.as_deref() == Some("at+jwt") && at.iss == self.0.issuer).then_some(at)
    }

    async fn audit(&self, entry: &AuditEntry) {
        if let Err(e) = crate::store::Store::audit(&*self.0.store, entry, self.now()).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

/// axum's refusal of a form or query (wrong content type, a member missing or twice, bad
/// encoding) answered with the provider's own 400 page: axum's plain-text 415/422 were
/// outside the documented contract (found by tests/api/schemathesis.sh).
fn malformed_page(e: &dyn std::fmt::Display) -> Response {
    tracing::debug!(error = %e, "malformed form or query");
    page::error_page("malformed request: expected an application/x-www-form-urlencoded form")
}

/// The same for the endpoints that answer OAuth error bodies: `invalid_request`.
fn malformed_oauth(e: &dyn std::fmt::Display) -> Response {
    tracing::debug!(error = %e, "malformed form");
    token::oauth_error(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_request",
        "the body must be an application/x-www-form-urlencoded form",
    )
}

/// Register the configured clients and build the provider's routes.
pub(crate) async fn router(
    config: &OidcConfig,
    store: Arc<SqlStore>,
    issuer: String,
    clock: Arc<dyn Clock>,
) -> Result<Router, crate::ServerError> {
    let now = clock.now();
    for c in &config.clients {
        register(&store, c, "config", now).await?;
    }
    let fresh = Zeroizing::new(
        crate::random_bytes::<32>()
            .map_err(|e| crate::ServerError::Config(format!("random: {e}")))?,
    );
    let secret = Zeroizing::new(store.oidc_secret("pairwise", fresh.as_slice()).await?);
    let federation = match &config.federation {
        Some(f) => Some(
            federation::Federation::new(f.clone())
                .map_err(|e| crate::ServerError::Config(format!("federation: {e}")))?,
        ),
        None => None,
    };
    let state = OidcState(Arc::new(Inner {
        store,
        key: OpKeys::new(config.key.clone(), &config.published_keys),
        issuer,
        clock,
        pairwise: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        federation,
    }));
    Ok(Router::new()
        .route(DISCOVERY_PATH, get(discovery::configuration))
        .route(JWKS_PATH, get(discovery::jwks))
        .route(federation::WELL_KNOWN, get(discovery::entity_configuration))
        .merge(authorize::routes())
        .merge(token::routes())
        .merge(userinfo::routes())
        .merge(revocation::routes())
        .merge(introspection::routes())
        .merge(logout::routes())
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state))
}

/// Validate and store a client registration (`by`: who, for the audit).
pub async fn register(
    store: &SqlStore,
    c: &ClientMetadata,
    by: &str,
    now: u64,
) -> Result<(), crate::ServerError> {
    c.validate()
        .map_err(|e| crate::ServerError::Config(e.to_string()))?;
    let json = serde_json::to_string(c).map_err(|e| crate::ServerError::Config(e.to_string()))?;
    let audit = AuditEntry::new("oidc_client_register", &c.client_id, "ok", by);
    store
        .oidc_put_client(&c.client_id, &json, &audit, now)
        .await?;
    Ok(())
}
