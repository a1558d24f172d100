//! The authorization request: HTTP parameters plus the signed request object, validated
//! per the profile (§ "Authorization endpoint"). Two stages: first what names the client
//! and where errors may be sent (a failure there is a 400 page, never a redirect), then
//! everything else (a failure is an error redirect to the registered URI).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::ClientMetadata;
use super::jwt::{self, OneOrMany};
use super::{SKEW_SECS, acr, claims};

/// Shortest `state` and `nonce` (profile: at least 32 characters).
pub const MIN_RANDOM_LEN: usize = 32;
/// Longest `state`, `nonce` and other echoed strings we keep.
pub const MAX_LEN: usize = 512;

/// The HTTP parameters (GET query or POST form).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct HttpParams {
    /// Client id (SPID: MUST; CIE: SHOULD).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Must be `code` when present.
    #[serde(default)]
    pub response_type: Option<String>,
    /// Must equal the object's.
    #[serde(default)]
    pub scope: Option<String>,
    /// The signed request object.
    #[serde(default)]
    pub request: Option<String>,
    /// Must equal the object's when present.
    #[serde(default)]
    pub code_challenge: Option<String>,
    /// Must be `S256` when present.
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    /// Must equal the object's when present.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// `request_uri` is not supported.
    #[serde(default)]
    pub request_uri: Option<String>,
}

/// Where the request comes from and where its errors go (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The client id claimed.
    pub client_id: String,
    /// The redirect URI asked.
    pub redirect_uri: String,
    /// The `state` to echo (from the unverified object: echoing it is harmless).
    pub state: Option<String>,
}

/// A refusal: the OAuth error code and a description (no secrets, no echo of input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `invalid_request`, `invalid_request_object`, …
    pub error: &'static str,
    /// For the client's developers.
    pub description: &'static str,
}

fn refused(error: &'static str, description: &'static str) -> Refused {
    Refused { error, description }
}

/// Stage 1: the client and the redirect URI, from the HTTP parameters or the unverified
/// object. `Err` = answer with a 400 page.
pub fn locate(p: &HttpParams) -> Result<Located, &'static str> {
    let peeked = p.request.as_deref().and_then(|r| jwt::peek(r).ok());
    let object = peeked.as_ref().map(|(_, payload)| payload);
    let from_object = |k: &str| {
        object
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let client_id = p
        .client_id
        .clone()
        .or_else(|| from_object("client_id"))
        .or_else(|| from_object("iss"))
        .ok_or("client_id missing")?;
    let redirect_uri = match (p.redirect_uri.clone(), from_object("redirect_uri")) {
        (Some(a), Some(b)) if a != b => {
            return Err("redirect_uri differs from the request object's");
        }
        (a, b) => a.or(b).ok_or("redirect_uri missing")?,
    };
    let state = from_object("state").filter(|s| s.len() <= MAX_LEN);
    Ok(Located {
        client_id,
        redirect_uri,
        state,
    })
}

/// The request object's claims.
#[derive(Debug, Clone, Deserialize)]
struct Claims {
    iss: String,
    aud: OneOrMany,
    iat: u64,
    exp: u64,
    client_id: String,
    response_type: String,
    scope: String,
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
    acr_values: OneOrMany,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    claims: Option<Value>,
}

/// A request that passed every check: what the rest of the flow needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validated {
    /// Client.
    pub client_id: String,
    /// Exact registered redirect URI.
    pub redirect_uri: String,
    /// Echoed to the client.
    pub state: String,
    /// Put in the ID token.
    pub nonce: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Scopes asked.
    pub scope: Vec<String>,
    /// The least level (1–3) the `acr_values` accept.
    pub level: u8,
    /// Claims to release, if the user consents.
    pub claims: Vec<String>,
    /// `consent`, `login`.
    pub prompt: Vec<String>,
    /// The object's `exp` (its nonce is remembered until then).
    pub exp: u64,
    /// When we received it: with `prompt=login`, only a login after this counts.
    pub received: u64,
}

fn words(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
    v.sort();
    v.dedup();
    v
}

/// Stage 2: verify the object with the client's keys and check every claim against the
/// HTTP parameters, the registration and the clock. `issuer` is ours.
pub fn validate(
    p: &HttpParams,
    located: &Located,
    client: &ClientMetadata,
    issuer: &str,
    now: u64,
) -> Result<Validated, Refused> {
    let bad_object = |d| refused("invalid_request_object", d);
    if p.request_uri.is_some() {
        return Err(refused(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    let Some(request) = p.request.as_deref() else {
        return Err(refused(
            "invalid_request",
            "a signed request object is required",
        ));
    };
    if p.response_type.as_deref().is_some_and(|t| t != "code") {
        return Err(refused(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let keys = client
        .jwk_set()
        .map_err(|_| refused("server_error", "client keys unusable"))?;
    let payload = jwt::verify(request, &keys).map_err(|e| match e {
        jwt::JwtError::Malformed => bad_object("malformed request object"),
        jwt::JwtError::Algorithm => bad_object("request object signature algorithm not allowed"),
        jwt::JwtError::UnknownKey => bad_object("request object kid not among the client's keys"),
        jwt::JwtError::Signature => bad_object("request object signature does not verify"),
    })?;
    let c: Claims = serde_json::from_slice(&payload)
        .map_err(|_| bad_object("request object claims missing or malformed"))?;
    if c.iss != client.client_id
        || c.client_id != client.client_id
        || located.client_id != client.client_id
    {
        return Err(bad_object("iss and client_id must be the client id"));
    }
    if !c.aud.contains(issuer) {
        return Err(bad_object("aud must include the issuer"));
    }
    if c.exp <= now {
        return Err(bad_object("request object expired"));
    }
    if c.iat > now + SKEW_SECS || c.iat + SKEW_SECS < now || c.exp > c.iat + 2 * SKEW_SECS {
        return Err(bad_object("request object iat or exp out of range"));
    }
    if c.response_type != "code" {
        return Err(refused(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if c.redirect_uri != located.redirect_uri || !client.redirect_uris.contains(&c.redirect_uri) {
        return Err(bad_object("redirect_uri not registered"));
    }
    let scope = words(&c.scope);
    match p.scope.as_deref() {
        Some(s) if words(s) == scope => {}
        _ => {
            return Err(refused(
                "invalid_request",
                "scope must equal the request object's",
            ));
        }
    }
    if !scope.iter().any(|s| s == "openid") {
        return Err(refused("invalid_scope", "scope must include openid"));
    }
    if !scope.iter().all(|s| client.scopes.contains(s)) {
        return Err(refused(
            "invalid_scope",
            "scope not allowed for this client",
        ));
    }
    let ok_random = |s: &str| (MIN_RANDOM_LEN..=MAX_LEN).contains(&s.chars().count());
    if !ok_random(&c.state) || !ok_random(&c.nonce) {
        return Err(refused(
            "invalid_request",
            "state and nonce need at least 32 characters",
        ));
    }
    if c.code_challenge_method != "S256"
        || p.code_challenge_method
            .as_deref()
            .is_some_and(|m| m != "S256")
    {
        return Err(refused(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if c.code_challenge.len() != 43
        || cie_core::flows::wire::unb64(&c.code_challenge).is_none()
        || p.code_challenge
            .as_deref()
            .is_some_and(|h| h != c.code_challenge)
    {
        return Err(refused(
            "invalid_request",
            "code_challenge must be a base64url SHA-256",
        ));
    }
    let prompt = words(c.prompt.as_deref().unwrap_or("consent"));
    if prompt.is_empty() || !prompt.iter().all(|w| w == "consent" || w == "login") {
        return Err(refused(
            "invalid_request",
            "prompt must be consent or consent login",
        ));
    }
    let level = acr::required_level(c.acr_values.words()).ok_or(refused(
        "invalid_request",
        "acr_values must name a SpidL level",
    ))?;
    if c.claims.as_ref().is_some_and(|v| !v.is_object()) {
        return Err(refused("invalid_request", "claims must be an object"));
    }
    let released = claims::requested(&scope, c.claims.as_ref(), &client.claims);
    Ok(Validated {
        client_id: c.client_id,
        redirect_uri: c.redirect_uri,
        state: c.state,
        nonce: c.nonce,
        code_challenge: c.code_challenge,
        scope,
        level,
        claims: released,
        prompt,
        exp: c.exp,
        received: now,
    })
}
