//! `GET|POST /oidc/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! The `id_token_hint` is required and must be an ID token we signed (with a key still
//! published), of our issuer, whose `aud` is a registered or federated client (`client_id`,
//! when sent, must be that one); it may have expired. `post_logout_redirect_uri` is used
//! only if registered for that client, with `state` passed back; otherwise a page (IT/EN)
//! ends the flow. Anything invalid: the error page, never a redirect.
//!
//! The first call shows a confirmation page whose form posts back here with `confirm=1`: a
//! click on our own page, so the `SameSite=Strict` session cookie comes along (a cross-site
//! navigation from the RP does not carry it) and a third-party site cannot log the user
//! out. On confirmation, if the browser's desktop session belongs to the user the hint
//! names, it is ended (row deleted, cookie cleared) and the access tokens that client got
//! from it are revoked.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::authorize::redirect;
use super::jwt::OneOrMany;
use super::page::{error_page, logged_out_page, logout_confirm_page};
use super::{ClientMetadata, LOGOUT_PATH, OidcState, client};
use crate::store::{AuditEntry, Store};

pub(super) fn routes() -> Router<OidcState> {
    Router::new().route(LOGOUT_PATH, get(logout_get).post(logout_post))
}

/// The ID token members the hint is checked on.
#[derive(Debug, Deserialize)]
struct Hint {
    iss: String,
    sub: String,
    aud: OneOrMany,
    /// Only ID tokens carry it (not access tokens nor the UserInfo JWT).
    acr: String,
}

/// A checked logout request.
struct Checked {
    client: ClientMetadata,
    sub: String,
    /// Registered for the client.
    redirect: Option<String>,
}

#[utoipa::path(
    get,
    path = LOGOUT_PATH,
    tag = "oidc",
    params(super::openapi::LogoutParams),
    responses(
        (status = 200, description = "The confirmation page, or the page saying the session ended", content_type = "text/html", body = String),
        (status = 302, description = "Back to the registered `post_logout_redirect_uri` with `state`", headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "An HTML page saying the request cannot be accepted (unknown client, unregistered `redirect_uri`, expired or foreign request), never a redirect", content_type = "text/html", body = String),
    )
)]
async fn logout_get(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    p: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    match p {
        Ok(Query(p)) => logout(s, peer, headers, p).await,
        Err(e) => super::malformed_page(&e),
    }
}

#[utoipa::path(
    post,
    path = LOGOUT_PATH,
    tag = "oidc",
    request_body(content = super::openapi::LogoutParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page, or the page saying the session ended", content_type = "text/html", body = String),
        (status = 302, description = "Back to the registered `post_logout_redirect_uri` with `state`", headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "An HTML page saying the request cannot be accepted (unknown client, unregistered `redirect_uri`, expired or foreign request), never a redirect", content_type = "text/html", body = String),
    )
)]
async fn logout_post(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    p: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    match p {
        Ok(Form(p)) => logout(s, peer, headers, p).await,
        Err(e) => super::malformed_page(&e),
    }
}

/// The hint, client and way back, or why not (shown on the error page).
async fn check(s: &OidcState, p: &HashMap<String, String>) -> Result<Checked, &'static str> {
    let hint = p
        .get("id_token_hint")
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .ok_or("id_token_hint required")?;
    let (payload, typ) =
        s.0.key
            .verify(hint)
            .ok_or("id_token_hint not signed by us")?;
    let hint: Hint =
        serde_json::from_slice(&payload).map_err(|_| "id_token_hint not an ID token")?;
    if typ.is_some() || hint.iss != s.0.issuer || hint.acr.is_empty() {
        return Err("id_token_hint not an ID token of this provider");
    }
    let client_id = match &hint.aud {
        OneOrMany::One(c) => c.clone(),
        OneOrMany::Many(l) if l.len() == 1 => l[0].clone(),
        OneOrMany::Many(_) => return Err("id_token_hint aud must name one client"),
    };
    if p.get("client_id").is_some_and(|c| *c != client_id) {
        return Err("client_id differs from the id_token_hint aud");
    }
    let client = s
        .client(&client_id)
        .await
        .map_err(|_| "the id_token_hint's client is not registered")?;
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(u) if client.post_logout_redirect_uris.iter().any(|r| r == u) => Some(u.clone()),
        Some(_) => return Err("post_logout_redirect_uri not registered for this client"),
    };
    Ok(Checked {
        client,
        sub: hint.sub,
        redirect,
    })
}

async fn logout(
    s: OidcState,
    peer: SocketAddr,
    headers: HeaderMap,
    p: HashMap<String, String>,
) -> Response {
    let client_ip = peer.ip().to_string();
    let c = match check(&s, &p).await {
        Ok(c) => c,
        Err(reason) => {
            s.audit(&AuditEntry::new("oidc_logout", "-", "refused", &client_ip))
                .await;
            return error_page(reason);
        }
    };
    let state = p.get("state").map(String::as_str);
    if p.get("confirm").map(String::as_str) != Some("1") {
        let mut fields = Vec::new();
        for k in ["id_token_hint", "post_logout_redirect_uri", "state"] {
            if let Some(v) = p.get(k) {
                fields.push((k, v.as_str()));
            }
        }
        return logout_confirm_page(
            c.client.display_name(),
            &fields,
            c.redirect.as_deref().and_then(client::origin_of),
        );
    }
    let session = crate::api::cookie(&headers, crate::api::SESSION_COOKIE)
        .and_then(|t| cie_core::flows::wire::unb64(&t))
        .map(|t| <[u8; 32]>::from(Sha256::digest(t)));
    let mut ended = false;
    if let Some(hash) = session {
        match Store::session(&*s.0.store, &hash, s.now()).await {
            Ok(Some((identity, _, _))) if s.subject(&c.client.client_id, &identity.id) == c.sub => {
                let audit = AuditEntry::new("oidc_logout", &c.client.client_id, "ok", &client_ip)
                    .for_identity(&identity.id);
                match s
                    .0
                    .store
                    .oidc_logout(&hash, &c.client.client_id, &audit, s.now())
                    .await
                {
                    Ok(_) => ended = true,
                    Err(e) => {
                        tracing::error!(error = %e, "logout failed");
                        return error_page("temporarily unavailable");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                return error_page("temporarily unavailable");
            }
        }
    }
    if !ended {
        s.audit(&AuditEntry::new(
            "oidc_logout",
            &c.client.client_id,
            "no_session",
            &client_ip,
        ))
        .await;
    }
    let mut resp = match &c.redirect {
        Some(uri) => {
            let params: Vec<(&str, &str)> = state.map(|v| ("state", v)).into_iter().collect();
            redirect(uri, &params)
        }
        None => logged_out_page(ended),
    };
    if ended && let Some(clear) = crate::api::set_cookie(crate::api::SESSION_COOKIE, "", "/", 0) {
        resp.headers_mut().append(header::SET_COOKIE, clear);
    }
    resp
}
