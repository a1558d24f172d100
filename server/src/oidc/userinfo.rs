//! `GET|POST /oidc/userinfo`: the bearer access token (ours, RFC 9068, unrevoked) gives the
//! claims consented, as a JWT signed by us (RS256) then encrypted to the client's `enc`
//! key with its registered `alg`/`enc` (default RSA-OAEP + A128CBC-HS256), served as
//! `application/jwt`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use josekit::jwe::{JweHeader, RSA_OAEP, RSA_OAEP_256};
use serde_json::{Value, json};

use super::token::Grant;
use super::{OidcState, TOKEN_SECS, USERINFO_PATH, claims};

pub(super) fn routes() -> Router<OidcState> {
    Router::new().route(USERINFO_PATH, get(userinfo).post(userinfo))
}

/// RFC 6750 §3: 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
fn invalid_token() -> Response {
    let mut resp = StatusCode::UNAUTHORIZED.into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    resp
}

fn server_error() -> Response {
    super::token::oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "try again",
    )
}

#[utoipa::path(
    method(get, post),
    path = USERINFO_PATH,
    tag = "oidc",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The claims, signed then encrypted to the client (JWE)", content_type = "application/jwt", body = String),
        (status = 401, description = "No valid access token (no body)", headers(("WWW-Authenticate" = String, description = "`Bearer error=\"invalid_token\"`"))),
        (status = 500, description = "`server_error`", body = super::openapi::OAuthError),
    )
)]
async fn userinfo(State(s): State<OidcState>, headers: HeaderMap) -> Response {
    let now = s.now();
    let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return invalid_token();
    };
    let Some(at) = s.access_token(bearer.trim()) else {
        return invalid_token();
    };
    if !at.aud.contains(&s.url(USERINFO_PATH)) || at.exp <= now {
        return invalid_token();
    }
    let (grant_json, identity) = match s.0.store.oidc_token(&at.jti, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return invalid_token(),
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            return server_error();
        }
    };
    let Ok(grant) = serde_json::from_str::<Grant>(&grant_json) else {
        return server_error();
    };
    let client = match s.client(&at.client_id).await {
        Ok(c) => c,
        Err(_) => return invalid_token(),
    };
    let registration = match s.0.store.oidc_registration_attributes(&identity.id).await {
        Ok(r) => r.and_then(|j| serde_json::from_str::<Value>(&j).ok()),
        Err(e) => {
            tracing::error!(error = %e, "registration lookup failed");
            return server_error();
        }
    };
    let mut body = claims::values(&identity, registration.as_ref(), &grant.claims);
    body.insert("iss".into(), json!(s.0.issuer));
    body.insert("sub".into(), json!(at.sub));
    body.insert("aud".into(), json!(client.client_id));
    body.insert("iat".into(), json!(now));
    body.insert("exp".into(), json!(now + TOKEN_SECS));
    let Ok(signed) = s.0.key.sign(Some("JWT"), &Value::Object(body)) else {
        return server_error();
    };
    let Some(key) = client.encryption_key() else {
        return server_error();
    };
    let encrypter = match client.userinfo_encrypted_response_alg.as_str() {
        "RSA-OAEP" => RSA_OAEP.encrypter_from_jwk(&key),
        "RSA-OAEP-256" => RSA_OAEP_256.encrypter_from_jwk(&key),
        _ => return server_error(),
    };
    let Ok(encrypter) = encrypter else {
        return server_error();
    };
    let mut header = JweHeader::new();
    header.set_content_encryption(&client.userinfo_encrypted_response_enc);
    header.set_content_type("JWT");
    if let Some(kid) = key.key_id() {
        header.set_key_id(kid);
    }
    let Ok(jwe) = josekit::jwe::serialize_compact(signed.as_bytes(), &header, &encrypter) else {
        return server_error();
    };
    let mut resp = jwe.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwt"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
