//! Observability: request ids and access lines in `tracing` spans, the log output format,
//! and the Prometheus metrics (docs/operations.md).
//!
//! The metrics of the server handling a request are reached through a task-local set by
//! [`layer`]'s middleware, so handlers count with one call (`observability::login_ok(…)`)
//! without carrying the registry; outside a request (unit tests, background tasks) the
//! calls do nothing.

pub mod logs;
pub mod metrics;
pub mod request_id;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument;

pub use metrics::{Approval, Flow, Metrics};

tokio::task_local! {
    static CURRENT: Arc<Metrics>;
}

/// Run `f` on the metrics of the server handling this request, if any.
fn with(f: impl FnOnce(&Metrics)) {
    let _ = CURRENT.try_with(|m| f(m));
}

/// A login succeeded.
pub fn login_ok(flow: Flow) {
    with(|m| m.login(flow, "ok"));
}

/// A login was refused with error `code` (one of the API's error codes).
pub fn login_refused(flow: Flow, code: &str) {
    with(|m| m.login(flow, code));
}

/// The phone decided an approval `secs` after it was shown.
pub fn approval_decided(kind: Approval, secs: u64) {
    with(|m| m.approval_decided(kind, secs));
}

/// A database statement failed (`sql`: the statement text, reduced to verb and table).
pub fn store_error(sql: &str) {
    with(|m| m.store_error(&metrics::sql_operation(sql)));
}

/// How logs name an id of a live request (rendezvous, approval, challenge): `#` and the
/// first 12 characters of base64url(SHA-256(id)), enough to match the audit row's subject
/// (the same function over it), useless to act on the request.
pub fn fingerprint(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    format!("#{}", &cie_core::flows::wire::b64(&digest)[..12])
}

/// The error code of a refused request, left by `Refusal`'s response for [`observe`].
#[derive(Debug, Clone)]
pub struct RefusedCode(pub String);

/// The login a refusal on this route ends (the successes are counted where the session is
/// opened: a 200 on some of these routes is a step, not a login).
fn login_flow(method: &Method, route: &str) -> Option<Flow> {
    use crate::api::{ABROAD_LOGIN_OTP_PATH, ABROAD_LOGIN_PATH};
    Some(match (method.as_str(), route) {
        ("POST", "/api/v1/card/login") => Flow::Card,
        ("POST", "/api/v1/desktop/rendezvous/{rid}/code") => Flow::DesktopQr,
        ("POST", "/api/v1/approvals") | ("GET", "/api/v1/approvals/{id}") => Flow::AppApproval,
        ("POST", "/api/v1/otp/login") => Flow::Otp,
        ("POST", r) if r == ABROAD_LOGIN_PATH => Flow::AbroadPin,
        ("POST", r) if r == ABROAD_LOGIN_OTP_PATH => Flow::AbroadPinOtp,
        _ => return None,
    })
}

/// The limiter behind a `rate_limited` or `too_many_attempts` answer on this route (each
/// limiter guards one route family); other routes by their template.
fn limiter(method: &Method, route: &str) -> String {
    use crate::api::{ABROAD_LOGIN_OTP_PATH, ABROAD_LOGIN_PATH, ABROAD_PIN_PATH};
    match (method.as_str(), route) {
        ("POST", "/api/v1/desktop/rendezvous") => "rendezvous_per_address",
        ("POST", "/api/v1/desktop/rendezvous/{rid}/code") => "desktop_code_tries",
        ("POST", "/api/v1/approvals") => "approval_create",
        ("POST", "/api/v1/otp/login") => "otp_codes",
        ("POST", r) if r == ABROAD_LOGIN_PATH || r == ABROAD_PIN_PATH => "abroad_pin",
        ("POST", r) if r == ABROAD_LOGIN_OTP_PATH => "abroad_pin_otp",
        (_, r) => return r.to_owned(),
    }
    .to_owned()
}

/// Wrap every route of `router` (added so far) in [`observe`].
pub fn layer(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(middleware::from_fn_with_state(metrics, observe))
}

/// One request: its id (the caller's when valid, else a new one) echoed in `x-request-id`,
/// a span `request{id, method, route}` around the handler, one `answered` line with the
/// status and latency. `route` is the template (`/api/v1/rendezvous/{rid}/approve`): paths
/// carry rendezvous ids and tokens, which stay out of logs and metrics alike.
async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id::from_headers(req.headers()).unwrap_or_else(request_id::generate);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str)
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut resp = CURRENT
        .scope(metrics.clone(), next.run(req).instrument(span.clone()))
        .await;
    let status = resp.status().as_u16();
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let refused = resp.extensions().get::<RefusedCode>().map(|c| c.0.clone());
    if let (Some(code), Some(flow)) = (&refused, login_flow(&method, &route)) {
        metrics.login(flow, code);
    }
    if refused
        .as_deref()
        .is_some_and(|c| c == "rate_limited" || c == "too_many_attempts")
    {
        metrics.rate_limited(&limiter(&method, &route));
    }
    metrics.request(method.as_str(), &route, status);
    span.in_scope(|| match &refused {
        Some(code) => tracing::info!(status, latency_ms, refused = %code, "answered"),
        None => tracing::info!(status, latency_ms, "answered"),
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(request_id::HEADER, v);
    }
    resp
}

/// Serve `GET /metrics` (plain HTTP: bind it to loopback or a private network, docs/operations.md)
/// until `stop` turns true.
pub(crate) async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use axum::routing::get;
    let app = Router::new().route(
        "/metrics",
        get(|State(m): State<Arc<Metrics>>| async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                )],
                m.encode(),
            )
        }),
    );
    let app = app.with_state(metrics);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "metrics listener stopped");
    }
}
