//! `POST /oidc/token`: `private_key_jwt` client authentication, the `authorization_code`
//! grant with PKCE S256, then an ID token (RS256, `acr` = the level the session reached,
//! `at_hash`) and an RFC 9068 access token. A code is redeemed once; a second redemption
//! revokes the tokens of the first (OAuth 2.0 Security BCP).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cie_core::flows::wire::{b64, ct_eq};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::jwt::{self, OneOrMany};
use super::{
    ClientMetadata, ClientRefusal, OidcState, SKEW_SECS, TOKEN_PATH, TOKEN_SECS, USERINFO_PATH, acr,
};
use crate::store::{AuditEntry, Redeemed};

/// Longest client-assertion life accepted.
pub const ASSERTION_MAX_SECS: u64 = 3600;

/// `client_assertion_type` of `private_key_jwt`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What a code (and its access token) carries from consent to the token and UserInfo
/// endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    /// Must match the token request's when it sends one.
    pub redirect_uri: String,
    /// For the ID token.
    pub nonce: String,
    /// PKCE S256.
    pub code_challenge: String,
    /// Scopes granted.
    pub scope: Vec<String>,
    /// Claims consented.
    pub claims: Vec<String>,
    /// The level the session reached (1–3).
    pub level: u8,
    /// base64url SHA-256 of the desktop session's token (RP-initiated logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// The claims of our access tokens (RFC 9068) the endpoints read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AccessToken {
    pub iss: String,
    pub aud: OneOrMany,
    pub exp: u64,
    #[serde(default)]
    pub iat: Option<u64>,
    pub jti: String,
    pub sub: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: Option<String>,
}

pub(super) fn routes() -> Router<OidcState> {
    Router::new().route(TOKEN_PATH, post(token))
}

/// An OAuth error answer (RFC 6749 §5.2).
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = super::openapi::OAuthError {
        error: error.to_owned(),
        error_description: description.to_owned(),
    };
    let mut resp = (status, Json(body)).into_response();
    no_store(&mut resp);
    resp
}

fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Client assertion claims.
#[derive(Debug, Deserialize)]
pub struct Assertion {
    iss: String,
    sub: String,
    aud: OneOrMany,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    jti: String,
}

/// Why a client assertion is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionError {
    /// Missing, malformed, unknown client, bad signature or claims.
    Invalid(&'static str),
}

/// Check the claims of a verified assertion for `client_id` at `token_url`.
pub fn check_assertion(
    payload: &[u8],
    client_id: &str,
    token_url: &str,
    now: u64,
) -> Result<Assertion, AssertionError> {
    let a: Assertion = serde_json::from_slice(payload)
        .map_err(|_| AssertionError::Invalid("assertion claims missing or malformed"))?;
    if a.iss != client_id || a.sub != client_id {
        return Err(AssertionError::Invalid("iss and sub must be the client id"));
    }
    if !a.aud.contains(token_url) {
        return Err(AssertionError::Invalid(
            "aud must include the URL of the endpoint called",
        ));
    }
    // Generic clients (authlib) sign for an hour; the jti is remembered that long.
    if a.exp <= now || a.exp > now + ASSERTION_MAX_SECS + SKEW_SECS {
        return Err(AssertionError::Invalid(
            "assertion expired or too long-lived",
        ));
    }
    if a.iat.is_some_and(|t| t > now + SKEW_SECS) {
        return Err(AssertionError::Invalid("assertion issued in the future"));
    }
    if a.jti.is_empty() || a.jti.len() > 256 {
        return Err(AssertionError::Invalid("jti missing"));
    }
    Ok(a)
}

/// base64url(SHA-256(verifier)) == challenge, in constant time (RFC 7636 §4.6).
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed
        && ct_eq(
            b64(&Sha256::digest(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

/// `private_key_jwt` client authentication (RFC 7523 §2.2) of a request to `endpoint`
/// (the assertion's `aud` must name it): the assertion verified with the client's
/// registered (or federation-resolved) keys, its `jti` used once. `kind` names the
/// audit rows. The client id and registration, or the error answer.
pub(super) async fn authenticate_client(
    s: &OidcState,
    form: &HashMap<String, String>,
    endpoint: &str,
    kind: &'static str,
    client_ip: &str,
) -> Result<(String, ClientMetadata), Response> {
    let now = s.now();
    let f = |k: &str| form.get(k).map(String::as_str);
    let invalid_client = |d: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", d);
    let (Some(ASSERTION_TYPE), Some(assertion)) =
        (f("client_assertion_type"), f("client_assertion"))
    else {
        return Err(invalid_client(
            "private_key_jwt client authentication required",
        ));
    };
    let Ok((_, claimed)) = jwt::peek(assertion) else {
        return Err(invalid_client("malformed client assertion"));
    };
    let Some(client_id) = claimed
        .get("iss")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
    else {
        return Err(invalid_client("assertion without iss"));
    };
    if f("client_id").is_some_and(|c| c != client_id) {
        return Err(invalid_client("client_id differs from the assertion's iss"));
    }
    let client = match s.client(&client_id).await {
        Ok(c) => c,
        Err(ClientRefusal::Unknown) => return Err(invalid_client("unknown client")),
        Err(ClientRefusal::Federation(e)) => {
            tracing::info!(%client_id, error = %e, "federation refused");
            return Err(invalid_client("trust chain not valid"));
        }
        Err(ClientRefusal::Store(e)) => {
            tracing::error!(error = %e, "client lookup failed");
            return Err(unavailable());
        }
    };
    let Ok(keys) = client.jwk_set() else {
        return Err(invalid_client("client keys unusable"));
    };
    let checked = jwt::verify(assertion, &keys)
        .map_err(|_| AssertionError::Invalid("assertion signature does not verify"))
        .and_then(|payload| check_assertion(&payload, &client_id, endpoint, now));
    let a = match checked {
        Ok(a) => a,
        Err(AssertionError::Invalid(d)) => {
            s.audit(&AuditEntry::new(
                kind,
                &client_id,
                "invalid_client",
                client_ip,
            ))
            .await;
            return Err(invalid_client(d));
        }
    };
    match s
        .0
        .store
        .oidc_use_once("assertion", &format!("{client_id} {}", a.jti), a.exp, now)
        .await
    {
        Ok(true) => Ok((client_id, client)),
        Ok(false) => Err(invalid_client("assertion replayed (jti seen before)")),
        Err(e) => {
            tracing::error!(error = %e, "jti store failed");
            Err(unavailable())
        }
    }
}

/// 503 `temporarily_unavailable`.
pub(super) fn unavailable() -> Response {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "try again",
    )
}

#[utoipa::path(
    post,
    path = TOKEN_PATH,
    tag = "oidc",
    request_body(content = super::openapi::TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "ID token and access token", body = super::openapi::TokenResponse),
        (status = 400, description = "OAuth error (RFC 6749 §5.2): `invalid_request`, `invalid_grant`, `unsupported_grant_type`", body = super::openapi::OAuthError),
        (status = 401, description = "`invalid_client`: the client assertion (`private_key_jwt`) was refused", body = super::openapi::OAuthError),
        (status = 500, description = "`server_error`", body = super::openapi::OAuthError),
        (status = 503, description = "`temporarily_unavailable`: try again", body = super::openapi::OAuthError),
    )
)]
async fn token(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return super::malformed_oauth(&e),
    };
    let client_ip = peer.ip().to_string();
    let now = s.now();
    let f = |k: &str| form.get(k).map(String::as_str);
    // 1. The client, by its assertion.
    let (client_id, _) =
        match authenticate_client(&s, &form, &s.url(TOKEN_PATH), "oidc_token", &client_ip).await {
            Ok(c) => c,
            Err(resp) => return resp,
        };
    // 2. The grant.
    let bad = |e: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, e, d);
    if f("grant_type") != Some("authorization_code") {
        return bad("unsupported_grant_type", "only authorization_code");
    }
    let (Some(code), Some(verifier)) = (f("code"), f("code_verifier")) else {
        return bad("invalid_request", "code and code_verifier required");
    };
    let code_hash: [u8; 32] = Sha256::digest(code.as_bytes()).into();
    let audit = AuditEntry::new("oidc_token", &client_id, "ok", &client_ip);
    let (grant_json, identity) = match s
        .0
        .store
        .oidc_redeem_code(&code_hash, &client_id, &audit, now)
        .await
    {
        Ok(Redeemed::Fresh {
            grant_json,
            identity,
        }) => (grant_json, identity),
        Ok(Redeemed::Replayed) => {
            return bad(
                "invalid_grant",
                "code already used: the tokens it gave are revoked",
            );
        }
        Ok(Redeemed::Invalid) => return bad("invalid_grant", "code unknown or expired"),
        Err(e) => {
            tracing::error!(error = %e, "code redemption failed");
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            );
        }
    };
    let Ok(grant) = serde_json::from_str::<Grant>(&grant_json) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "grant unreadable",
        );
    };
    if f("redirect_uri").is_some_and(|r| r != grant.redirect_uri) {
        return bad(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    if !pkce_ok(verifier, &grant.code_challenge) {
        s.audit(&AuditEntry::new(
            "oidc_token",
            &client_id,
            "pkce_mismatch",
            &client_ip,
        ))
        .await;
        return bad(
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        );
    }
    // 3. The tokens.
    let Some(acr) = acr::acr_of(grant.level) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "no level",
        );
    };
    let (Ok(at_jti), Ok(id_jti)) = (crate::random_id::<16>(), crate::random_id::<16>()) else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "random");
    };
    let sub = s.subject(&client_id, &identity.id);
    let exp = now + TOKEN_SECS;
    let at_claims = json!({
        "iss": s.0.issuer,
        "sub": sub,
        "client_id": client_id,
        "aud": [s.url(USERINFO_PATH)],
        "scope": grant.scope.join(" "),
        "acr": acr,
        "iat": now,
        "exp": exp,
        "jti": at_jti,
    });
    let Ok(access_token) = s.0.key.sign(Some("at+jwt"), &at_claims) else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing");
    };
    let digest = Sha256::digest(access_token.as_bytes());
    let at_hash = b64(&digest[..16]);
    let id_claims = json!({
        "iss": s.0.issuer,
        "sub": sub,
        "aud": client_id,
        "acr": acr,
        "at_hash": at_hash,
        "nonce": grant.nonce,
        "iat": now,
        "nbf": now,
        "exp": exp,
        "jti": id_jti,
    });
    let Ok(id_token) = s.0.key.sign(None, &id_claims) else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing");
    };
    if let Err(e) =
        s.0.store
            .oidc_put_token(
                &at_jti,
                &code_hash,
                &client_id,
                &identity.id,
                &grant_json,
                grant
                    .session
                    .as_deref()
                    .and_then(cie_core::flows::wire::unb64)
                    .as_deref(),
                exp,
            )
            .await
    {
        tracing::error!(error = %e, "token not stored");
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again",
        );
    }
    let mut resp = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_SECS,
        "id_token": id_token,
    }))
    .into_response();
    no_store(&mut resp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    #[test]
    fn pkce_s256() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_ok(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_ok(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!pkce_ok(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn assertion_claims() {
        let url = "https://op.example/oidc/token";
        let ok = json!({"iss": "https://rp", "sub": "https://rp", "aud": [url], "exp": 1100, "iat": 1000, "jti": "j"});
        assert!(check_assertion(ok.to_string().as_bytes(), "https://rp", url, 1000).is_ok());
        let mut wrong_sub = ok.clone();
        wrong_sub["sub"] = json!("https://other");
        assert!(
            check_assertion(wrong_sub.to_string().as_bytes(), "https://rp", url, 1000).is_err()
        );
        let mut wrong_aud = ok.clone();
        wrong_aud["aud"] = json!("https://op.example");
        assert!(
            check_assertion(wrong_aud.to_string().as_bytes(), "https://rp", url, 1000).is_err()
        );
        assert!(check_assertion(ok.to_string().as_bytes(), "https://rp", url, 1100).is_err());
        assert!(check_assertion(b"[]", "https://rp", url, 1000).is_err());
    }
}
