//! `POST /oidc/revocation` (RFC 7009 as the profile asks): `private_key_jwt` client
//! authentication, as at the token endpoint (the assertion's `aud` names this endpoint),
//! then the access token given is revoked if it is the client's. The answer is 200 for any
//! token once the client is authenticated (unknown, expired, another client's: that one
//! is left alone). A revoked access token is refused by UserInfo and introspected
//! inactive. No refresh tokens are issued, so none is linked to revoke.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::token::authenticate_client;
use super::{OidcState, REVOCATION_PATH};
use crate::store::AuditEntry;

pub(super) fn routes() -> Router<OidcState> {
    Router::new().route(REVOCATION_PATH, post(revocation))
}

/// The authenticated client of a revocation or introspection request to `path` (audit
/// rows `kind`) and the `token` it names, or the error answer.
pub(super) async fn client_and_token(
    s: &OidcState,
    form: &HashMap<String, String>,
    path: &str,
    kind: &'static str,
    client_ip: &str,
) -> Result<(String, String), Response> {
    let (client_id, _) = authenticate_client(s, form, &s.url(path), kind, client_ip).await?;
    match form
        .get("token")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        Some(token) => Ok((client_id, token.to_owned())),
        None => Err(super::token::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token required",
        )),
    }
}

#[utoipa::path(
    post,
    path = REVOCATION_PATH,
    tag = "oidc",
    request_body(content = super::openapi::TokenRequestOfClient, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or not a token of this client (RFC 7009 §2.2): no body"),
        (status = 400, description = "OAuth error (RFC 6749 §5.2): `invalid_request`, `invalid_grant`, `unsupported_grant_type`", body = super::openapi::OAuthError),
        (status = 401, description = "`invalid_client`: the client assertion (`private_key_jwt`) was refused", body = super::openapi::OAuthError),
        (status = 503, description = "`temporarily_unavailable`: try again", body = super::openapi::OAuthError),
    )
)]
async fn revocation(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return super::malformed_oauth(&e),
    };
    let client_ip = peer.ip().to_string();
    let (client_id, token) =
        match client_and_token(&s, &form, REVOCATION_PATH, "oidc_revocation", &client_ip).await {
            Ok(found) => found,
            Err(resp) => return resp,
        };
    // Only our access tokens can be revoked; anything else is "unknown" (still 200).
    if let Some(at) = s
        .access_token(token.trim())
        .filter(|a| a.client_id == client_id)
    {
        let audit = AuditEntry::new("oidc_revocation", &client_id, "ok", &client_ip);
        if let Err(e) =
            s.0.store
                .oidc_revoke_token(&at.jti, &client_id, &audit, s.now())
                .await
        {
            tracing::error!(error = %e, "revocation failed");
            return super::token::unavailable();
        }
    } else {
        s.audit(&AuditEntry::new(
            "oidc_revocation",
            &client_id,
            "unknown_token",
            &client_ip,
        ))
        .await;
    }
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
