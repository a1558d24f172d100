//! `GET|POST /oidc/authorization` → `GET /oidc/consent/{id}` → `POST /oidc/consent/{id}`.
//!
//! The authorization endpoint validates the request and keeps it pending (bound to the
//! browser by a cookie scoped to its consent path), then sends the browser to the consent
//! page. There the desktop session (`cc_session`) must reach the level `acr_values` asks,
//! else the browser goes to the login page with a way back. Consent issues a single-use
//! code (hashed at rest); refusal answers `access_denied`. Either is audited.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cie_core::flows::wire::{Identity, b64, ct_eq};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::page::{Consent, consent_page, error_page};
use super::request_object::{HttpParams, Located, Refused, Validated, locate, validate};
use super::token::Grant;
use super::{
    AUTHORIZATION_PATH, CODE_SECS, CONSENT_PATH, ClientRefusal, OidcState, REQUEST_SECS, client,
    pct,
};
use crate::store::{AuditEntry, PendingRequest, Store};

const BIND_COOKIE: &str = "cc_oidc";

pub(super) fn routes() -> axum::Router<OidcState> {
    Router::new()
        .route(
            AUTHORIZATION_PATH,
            get(authorization_get).post(authorization_post),
        )
        .route(
            &format!("{CONSENT_PATH}/{{id}}"),
            get(consent_get).post(consent_post),
        )
}

/// 302 to `redirect_uri` with `params` added to its query.
pub(super) fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&pct(v));
        sep = '&';
    }
    let mut resp = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(&url) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => error_page("redirect_uri"),
    }
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error redirect (profile: `error`, `error_description`, `state`, `iss`).
fn error_redirect(s: &OidcState, redirect_uri: &str, state: Option<&str>, r: &Refused) -> Response {
    crate::observability::login_refused(crate::observability::Flow::OidcAuthorization, r.error);
    let mut params = vec![("error", r.error), ("error_description", r.description)];
    if let Some(st) = state {
        params.push(("state", st));
    }
    params.push(("iss", &s.0.issuer));
    redirect(redirect_uri, &params)
}

#[utoipa::path(
    get,
    path = super::AUTHORIZATION_PATH,
    tag = "oidc",
    params(crate::oidc::request_object::HttpParams),
    responses(
        (status = 302, description = "To the client's `redirect_uri` with `error`, `error_description`, `state`, `iss` (RFC 6749 §4.1.2.1)", headers(("Location" = String, description = "Where to go"))),
        (status = 303, description = "To the login page, then the consent page", headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "An HTML page saying the request cannot be accepted (unknown client, unregistered `redirect_uri`, expired or foreign request), never a redirect", content_type = "text/html", body = String),
    )
)]
async fn authorization_get(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    p: Result<Query<HttpParams>, QueryRejection>,
) -> Response {
    match p {
        Ok(Query(p)) => authorization(s, peer, p).await,
        Err(e) => super::malformed_page(&e),
    }
}

#[utoipa::path(
    post,
    path = super::AUTHORIZATION_PATH,
    tag = "oidc",
    request_body(content = crate::oidc::request_object::HttpParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 302, description = "To the client's `redirect_uri` with `error`, `error_description`, `state`, `iss` (RFC 6749 §4.1.2.1)", headers(("Location" = String, description = "Where to go"))),
        (status = 303, description = "To the login page, then the consent page", headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "An HTML page saying the request cannot be accepted (unknown client, unregistered `redirect_uri`, expired or foreign request), never a redirect", content_type = "text/html", body = String),
    )
)]
async fn authorization_post(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    p: Result<Form<HttpParams>, FormRejection>,
) -> Response {
    match p {
        Ok(Form(p)) => authorization(s, peer, p).await,
        Err(e) => super::malformed_page(&e),
    }
}

async fn authorization(s: OidcState, peer: SocketAddr, p: HttpParams) -> Response {
    let client_ip = peer.ip().to_string();
    let now = s.now();
    let located: Located = match locate(&p) {
        Ok(l) => l,
        Err(reason) => return error_page(reason),
    };
    let client = match s.client(&located.client_id).await {
        Ok(c) => c,
        Err(ClientRefusal::Unknown) => {
            s.audit(&AuditEntry::new(
                "oidc_authorize",
                &located.client_id,
                "unknown_client",
                &client_ip,
            ))
            .await;
            return error_page("unknown client_id");
        }
        Err(ClientRefusal::Federation(e)) => {
            // Without a valid chain the redirect URIs are unknown: a page, not a redirect.
            tracing::info!(client_id = %located.client_id, error = %e, "federation refused");
            let outcome = format!("{}: {e}", e.code());
            s.audit(&AuditEntry::new(
                "oidc_authorize",
                &located.client_id,
                &outcome,
                &client_ip,
            ))
            .await;
            return error_page(&outcome);
        }
        Err(ClientRefusal::Store(e)) => {
            tracing::error!(error = %e, "client lookup failed");
            return error_page("temporarily unavailable");
        }
    };
    if !client.redirect_uris.contains(&located.redirect_uri) {
        s.audit(&AuditEntry::new(
            "oidc_authorize",
            &client.client_id,
            "redirect_uri_not_registered",
            &client_ip,
        ))
        .await;
        return error_page("redirect_uri not registered for this client");
    }
    let refuse = |r: Refused| {
        let audit = AuditEntry::new("oidc_authorize", &client.client_id, r.error, &client_ip);
        let resp = error_redirect(&s, &located.redirect_uri, located.state.as_deref(), &r);
        let st = s.clone();
        async move {
            st.audit(&audit).await;
            resp
        }
    };
    let v = match validate(&p, &located, &client, &s.0.issuer, now) {
        Ok(v) => v,
        Err(r) => return refuse(r).await,
    };
    // (client_id, nonce) once: a replayed request object is refused.
    match s
        .0
        .store
        .oidc_use_once(&v.client_id, &v.nonce, v.exp, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return refuse(Refused {
                error: "invalid_request_object",
                description: "request object replayed (nonce seen before)",
            })
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "nonce store failed");
            return refuse(Refused {
                error: "server_error",
                description: "try again",
            })
            .await;
        }
    }
    let stored = async {
        let id = crate::random_id::<16>().map_err(|e| e.to_string())?;
        let bind = crate::random_id::<32>().map_err(|e| e.to_string())?;
        let json = serde_json::to_string(&v).map_err(|e| e.to_string())?;
        let pending = PendingRequest {
            client_id: v.client_id.clone(),
            request_json: json,
            bind_hash: Sha256::digest(bind.as_bytes()).to_vec(),
            expires: now + super::REQUEST_SECS,
            done: false,
        };
        let subject = format!("{id} {}", v.client_id);
        let audit = AuditEntry::new("oidc_authorize", &subject, "ok", &client_ip);
        s.0.store
            .oidc_put_request(&id, &pending, &audit, now)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((id, bind))
    }
    .await;
    let (id, bind) = match stored {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "pending request not stored");
            return refuse(Refused {
                error: "server_error",
                description: "try again",
            })
            .await;
        }
    };
    let path = format!("{CONSENT_PATH}/{id}");
    let mut resp = see_other(&path);
    if let Some(c) = crate::api::set_cookie(BIND_COOKIE, &bind, &path, REQUEST_SECS) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// The pending request `id` if it is still open, with its validated content.
async fn pending(s: &OidcState, id: &str) -> Result<(PendingRequest, Validated), Response> {
    let now = s.now();
    let p = match s.0.store.oidc_request(id).await {
        Ok(Some(p)) if !p.done && p.expires > now => p,
        Ok(_) => {
            return Err(error_page(
                "this login request has expired or was completed",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "pending request lookup failed");
            return Err(error_page("temporarily unavailable"));
        }
    };
    let v: Validated =
        serde_json::from_str(&p.request_json).map_err(|_| error_page("temporarily unavailable"))?;
    Ok((p, v))
}

/// The browser's desktop session, if it serves `v`: the session's identity and level, or
/// the way to the login page (none, `prompt=login` and the login is older than the
/// request, or a session from before the request below the level: a step up). A login made
/// after the request that still falls short of the level (level 3 asked, level 2 done) is a
/// downgrade: the request is finished and the client gets `access_denied`, never a code.
async fn session(
    s: &OidcState,
    headers: &HeaderMap,
    id: &str,
    (p, v): (&PendingRequest, &Validated),
    client_ip: &str,
) -> Result<(Identity, u8, [u8; 32]), Response> {
    let fresh = v.prompt.iter().any(|p| p == "login");
    let login = || to_login(id, v.level, fresh);
    let token = crate::api::cookie(headers, crate::api::SESSION_COOKIE)
        .and_then(|t| cie_core::flows::wire::unb64(&t))
        .ok_or_else(login)?;
    let hash: [u8; 32] = Sha256::digest(token).into();
    let found = async {
        let Some((identity, level, _)) = Store::session(&*s.0.store, &hash, s.now()).await? else {
            return Ok(None);
        };
        // A login in a later second than the request.
        let after_request =
            s.0.store
                .oidc_session_created(&hash)
                .await?
                .is_some_and(|c| c > v.received);
        Ok::<_, crate::store::StoreError>(Some((identity, level, after_request)))
    };
    match found.await {
        Ok(Some((identity, level, after))) if level >= v.level && (after || !fresh) => {
            Ok((identity, level, hash))
        }
        Ok(Some((identity, level, true))) => {
            if !bound(headers, p) {
                return Err(error_page(
                    "this login request was started in another browser",
                ));
            }
            Err(downgrade(s, id, v, &identity, level, client_ip).await)
        }
        Ok(_) => Err(login()),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(error_page("temporarily unavailable"))
        }
    }
}

/// Whether this browser started the pending request `p` (its `cc_oidc` cookie).
fn bound(headers: &HeaderMap, p: &PendingRequest) -> bool {
    crate::api::cookie(headers, BIND_COOKIE)
        .is_some_and(|c| ct_eq(&Sha256::digest(c.as_bytes()), &p.bind_hash))
}

/// The login made for this request reached `level`, below the one asked: the request is
/// finished (audited) and the client told `access_denied`.
async fn downgrade(
    s: &OidcState,
    id: &str,
    v: &Validated,
    identity: &Identity,
    level: u8,
    client_ip: &str,
) -> Response {
    let subject = format!("{id} {}", v.client_id);
    let outcome = format!("level_not_reached {level} < {}", v.level);
    let audit =
        AuditEntry::new("oidc_consent", &subject, &outcome, client_ip).for_identity(&identity.id);
    match s
        .0
        .store
        .oidc_finish_request(id, None, &identity.id, &audit, s.now())
        .await
    {
        Ok(true) => error_redirect(
            s,
            &v.redirect_uri,
            Some(&v.state),
            &Refused {
                error: "access_denied",
                description: "the authentication level asked was not reached",
            },
        ),
        Ok(false) => error_page("this login request has expired or was completed"),
        Err(e) => {
            tracing::error!(error = %e, "downgrade not stored");
            error_page("temporarily unavailable")
        }
    }
}

/// To the login page, coming back to the consent page after. `level` lets the page go
/// straight back when the browser's session already reaches it (the session cookie is
/// `SameSite=Strict`: it was not sent on the navigation that came from the client's site),
/// unless `fresh` (`prompt=login`) asks for a new login.
fn to_login(id: &str, level: u8, fresh: bool) -> Response {
    let fresh = if fresh { "&fresh=1" } else { "" };
    see_other(&format!(
        "/?return={}&level={level}{fresh}",
        pct(&format!("{CONSENT_PATH}/{id}"))
    ))
}

#[utoipa::path(
    get,
    path = "/oidc/consent/{id}",
    tag = "oidc",
    params(("id" = String, Path, description = "The pending authorization request")),
    responses(
        (status = 200, description = "The consent page", content_type = "text/html", body = String),
        (status = 302, description = "An error back to the client (the session is below the level asked)", headers(("Location" = String, description = "Where to go"))),
        (status = 303, description = "To the login page first", headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "An HTML page saying the request cannot be accepted (unknown client, unregistered `redirect_uri`, expired or foreign request), never a redirect", content_type = "text/html", body = String),
    )
)]
async fn consent_get(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (p, v) = match pending(&s, &id).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let ip = peer.ip().to_string();
    let (identity, _, _) = match session(&s, &headers, &id, (&p, &v), &ip).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let client = match s.client(&v.client_id).await {
        Ok(c) => c,
        Err(_) => return error_page("unknown client_id"),
    };
    let user = format!("{} {}", identity.given_name, identity.surname);
    consent_page(&Consent {
        id: &id,
        service: client.display_name(),
        user: &user,
        claims: &v.claims,
        redirect_origin: client::origin_of(&v.redirect_uri),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ConsentForm {
    /// `approve` or `deny`.
    decision: String,
}

#[utoipa::path(
    post,
    path = "/oidc/consent/{id}",
    tag = "oidc",
    params(("id" = String, Path, description = "The pending authorization request")),
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 302, description = "Back to the client with `code` (or `error=access_denied`), `state`, `iss`", headers(("Location" = String, description = "Where to go"))),
        (status = 303, description = "To the login page first", headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "An HTML page saying the request cannot be accepted (unknown client, unregistered `redirect_uri`, expired or foreign request), never a redirect", content_type = "text/html", body = String),
    )
)]
async fn consent_post(
    State(s): State<OidcState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        // No `decision`: the same page as an unknown one below.
        return error_page("decision");
    };
    let client_ip = peer.ip().to_string();
    let now = s.now();
    let (p, v) = match pending(&s, &id).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    if !bound(&headers, &p) {
        s.audit(&AuditEntry::new(
            "oidc_consent",
            &id,
            "not_this_browser",
            &client_ip,
        ))
        .await;
        return error_page("this login request was started in another browser");
    }
    let (identity, level, session_hash) =
        match session(&s, &headers, &id, (&p, &v), &client_ip).await {
            Ok(found) => found,
            Err(resp) => return resp,
        };
    let accept = match form.decision.as_str() {
        "accept" => true,
        "refuse" => false,
        _ => return error_page("decision"),
    };
    let subject = format!("{id} {}", v.client_id);
    if !accept {
        let audit = AuditEntry::new("oidc_consent", &subject, "refused", &client_ip)
            .for_identity(&identity.id);
        return match s
            .0
            .store
            .oidc_finish_request(&id, None, &identity.id, &audit, now)
            .await
        {
            Ok(true) => error_redirect(
                &s,
                &v.redirect_uri,
                Some(&v.state),
                &Refused {
                    error: "access_denied",
                    description: "the user refused",
                },
            ),
            Ok(false) => error_page("this login request has expired or was completed"),
            Err(e) => {
                tracing::error!(error = %e, "consent not stored");
                error_page("temporarily unavailable")
            }
        };
    }
    let issued = async {
        let code = crate::random_bytes::<32>().map_err(|e| e.to_string())?;
        let code = b64(&code);
        let hash: [u8; 32] = Sha256::digest(code.as_bytes()).into();
        let grant = Grant {
            redirect_uri: v.redirect_uri.clone(),
            nonce: v.nonce.clone(),
            code_challenge: v.code_challenge.clone(),
            scope: v.scope.clone(),
            claims: v.claims.clone(),
            level: level.min(3),
            session: Some(b64(&session_hash)),
        };
        let grant = serde_json::to_string(&grant).map_err(|e| e.to_string())?;
        // The release, by claim name (never values).
        let outcome = format!("ok level {} claims [{}]", level.min(3), v.claims.join(" "));
        let audit = AuditEntry::new("oidc_consent", &subject, &outcome, &client_ip)
            .for_identity(&identity.id);
        let done =
            s.0.store
                .oidc_finish_request(
                    &id,
                    Some((&hash, &grant, now + CODE_SECS)),
                    &identity.id,
                    &audit,
                    now,
                )
                .await
                .map_err(|e| e.to_string())?;
        Ok::<_, String>(done.then_some(code))
    }
    .await;
    match issued {
        Ok(Some(code)) => {
            crate::observability::login_ok(crate::observability::Flow::OidcAuthorization);
            redirect(
                &v.redirect_uri,
                &[("code", &code), ("state", &v.state), ("iss", &s.0.issuer)],
            )
        }
        Ok(None) => error_page("this login request has expired or was completed"),
        Err(e) => {
            tracing::error!(error = %e, "code not issued");
            error_page("temporarily unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(pct("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(pct("AZaz09-._~"), "AZaz09-._~");
    }
}
