//! `POST /oidc/introspection` (RFC 7662 as the profile asks): `private_key_jwt` client
//! authentication (the assertion's `aud` names this endpoint), then `{"active": false}`
//! for a token that is not one of our live access tokens of that client (unknown,
//! expired, revoked, another client's), else `active` with the members the SPID profile
//! lists: `scope`, `exp`, `sub`, `client_id`, `iss`, `aud` (and `iat`, `token_type`).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::revocation::client_and_token;
use super::{INTROSPECTION_PATH, OidcState};
use crate::store::AuditEntry;

pub(super) fn routes() -> Router<OidcState> {
    Router::new().route(INTROSPECTION_PATH, post(introspection))
}

#[utoipa::path(
    post,
    path = INTROSPECTION_PATH,
    tag = "oidc",
    request_body(content = super::openapi::TokenRequestOfClient, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active and, if so, its claims (RFC 7662)", body = super::openapi::Introspection),
        (status = 400, description = "OAuth error (RFC 6749 §5.2): `invalid_request`, `invalid_grant`, `unsupported_grant_type`", body = super::openapi::OAuthError),
        (status = 401, description = "`invalid_client`: the client assertion (`private_key_jwt`) was refused", body = super::openapi::OAuthError),
        (status = 503, description = "`temporarily_unavailable`: try again", body = super::openapi::OAuthError),
    )
)]
async fn introspection(
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
    let (client_id, token) = match client_and_token(
        &s,
        &form,
        INTROSPECTION_PATH,
        "oidc_introspection",
        &client_ip,
    )
    .await
    {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let at = s
        .access_token(token.trim())
        .filter(|a| a.client_id == client_id && a.exp > now);
    let body = match at {
        None => json!({"active": false}),
        Some(at) => match s.0.store.oidc_token(&at.jti, now).await {
            Ok(Some(_)) => json!({
                "active": true,
                "scope": at.scope,
                "client_id": at.client_id,
                "sub": at.sub,
                "iss": at.iss,
                "aud": at.aud,
                "iat": at.iat,
                "exp": at.exp,
                "token_type": "Bearer",
            }),
            // Revoked (or expired meanwhile).
            Ok(None) => json!({"active": false}),
            Err(e) => {
                tracing::error!(error = %e, "token lookup failed");
                return super::token::unavailable();
            }
        },
    };
    let outcome = if body["active"] == Value::Bool(true) {
        "active"
    } else {
        "inactive"
    };
    s.audit(&AuditEntry::new(
        "oidc_introspection",
        &client_id,
        outcome,
        &client_ip,
    ))
    .await;
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
