//! docs/protocol.md §3: app approval with number matching. The desktop asks for a codice
//! fiscale and shows a two-digit number; the enrolled phone lists its pending requests
//! (device-signed statement, nonce once) and signs its decision (an `ApprovalTranscript`
//! of kind `approval`); the desktop's long poll picks the session up.
//!
//! The desktop's reply is the same whether the codice fiscale has an account, a device or
//! neither: a request is always made, and one with no account can never be listed or
//! approved, so it expires.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cie_core::flows::wire::{
    ApprovalCreate, ApprovalCreated, ApprovalStatus, DEVICE_LEVEL, Decision, DecisionRequest,
    ErrorCode, LoginContext, PendingApproval, PendingRequest, TranscriptKind, b64, ct_eq,
    pending_statement, unb64_array,
};

use super::{
    ApiJson, AppState, Expected, IAT_SKEW, PollQuery, SESSION_COOKIE, SESSION_SECS, bad_field,
    bad_query, check_iat, cookie, desktop_context, hash, long_poll, set_cookie,
    verify_device_signature, verify_transcript,
};
use crate::error::Refusal;
use crate::store::{
    ApprovalRecord, ApprovalState, AuditEntry, DecisionOutcome, Limited, NewApproval, NewDecision,
    NewSession,
};
use crate::{random_bytes, random_id};

/// Life of a request (docs/protocol.md §4).
pub const APPROVAL_SECS: u64 = 60;
/// Requests per minute per codice fiscale, and per client address.
pub const APPROVALS_PER_MINUTE: u32 = 5;

/// The desktop's binding cookie for approvals (like `cc_bind` for rendezvous, whose path
/// does not cover these endpoints).
const BIND_COOKIE: &str = "cc_abind";
const BIND_PATH: &str = "/api/v1/approvals";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/approvals", post(create))
        .route("/api/v1/approvals/pending", post(pending))
        .route("/api/v1/approvals/{id}", get(status))
        .route("/api/v1/approvals/{id}/decision", post(decision))
}

/// Long-poll wake-up key (rendezvous use their bare id).
fn waiter_key(id: &str) -> String {
    format!("approval:{id}")
}

/// 16 letters and digits, upper-cased (omocodia letters included); `None` otherwise.
pub(super) fn normalise_cf(text: &str) -> Option<String> {
    let cf = text.trim().to_ascii_uppercase();
    (cf.len() == 16 && cf.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(cf)
}

/// Uniform in `0..n` from the OS CSPRNG (rejection sampling over one byte).
fn uniform_below(n: u8) -> Result<u8, getrandom::Error> {
    let n16 = u16::from(n.max(1));
    let limit = 256 - 256 % n16;
    loop {
        let b = u16::from(random_bytes::<1>()?[0]);
        if b < limit {
            return Ok(u8::try_from(b % n16).unwrap_or(0));
        }
    }
}

/// The desktop's number (10–99) and the phone's three choices: it and two distinct decoys,
/// shuffled (Fisher–Yates).
fn number_and_choices() -> Result<(u8, [u8; 3]), getrandom::Error> {
    let number = 10 + uniform_below(90)?;
    let mut choices = [number, 0, 0];
    for i in 1..3 {
        loop {
            let d = 10 + uniform_below(90)?;
            if !choices[..i].contains(&d) {
                choices[i] = d;
                break;
            }
        }
    }
    for i in (1..3u8).rev() {
        let j = uniform_below(i + 1)?;
        choices.swap(usize::from(i), usize::from(j));
    }
    Ok((number, choices))
}

/// Request ids and device ids are 16 random bytes: anything else is not ours (and is not
/// written to the audit trail).
pub(super) fn check_id(id: &str, field: &str) -> Result<(), Refusal> {
    if unb64_array::<16>(id).is_some() {
        Ok(())
    } else if field == "id" {
        Err(Refusal::new(ErrorCode::NotFound))
    } else {
        Err(bad_field(field))
    }
}

/// The signed fields of a device-signed request (the pending list, OTP enrolment).
pub(super) struct DeviceSigned<'a> {
    pub(super) device_id: &'a str,
    pub(super) iat: u64,
    pub(super) nonce: &'a str,
    pub(super) signature: &'a str,
}

/// A device-signed request: the device id and nonce well formed, `statement` (built by the
/// caller from these fields) signed by that enrolled device, `iat` fresh. The holder, or the
/// refusal (audited under `kind` once the device id is well formed).
pub(super) async fn verify_device_request(
    s: &AppState,
    kind: &'static str,
    req: &DeviceSigned<'_>,
    statement: &[u8],
    client: &str,
    now: u64,
) -> Result<cie_core::flows::wire::Identity, Refusal> {
    check_id(req.device_id, "device_id")?;
    let checked = async {
        if unb64_array::<16>(req.nonce).is_none() {
            return Err(bad_field("nonce"));
        }
        let identity = verify_device_signature(s, req.device_id, statement, req.signature).await?;
        check_iat(req.iat, now)?;
        Ok(identity)
    }
    .await;
    match checked {
        Ok(identity) => Ok(identity),
        Err(r) => Err(s.refuse(kind, req.device_id, client, r).await),
    }
}

fn status_body(state: ApprovalState) -> ApprovalStatus {
    ApprovalStatus {
        state: state.as_str().into(),
    }
}

/// The refusal that describes a request no longer pending.
fn state_refusal(rec: &ApprovalRecord) -> Refusal {
    match (rec.state, rec.abort_reason.as_deref()) {
        (ApprovalState::Expired, _) => Refusal::new(ErrorCode::Expired),
        (ApprovalState::Aborted, Some("wrong_number")) => Refusal::with(
            ErrorCode::WrongState,
            "This request was cancelled after a wrong number: start again from the computer.",
            "Questa richiesta è stata annullata dopo un numero errato: ricomincia dal computer.",
        ),
        _ => Refusal::new(ErrorCode::WrongState),
    }
}

/// `POST /api/v1/approvals {codice_fiscale}` (desktop page).
#[utoipa::path(
    post,
    path = "/api/v1/approvals",
    operation_id = "approval_create",
    tag = "approvals",
    request_body = ApprovalCreate,
    responses(
        (status = 200, description = "The request exists; sets `cc_abind` binding it to this browser", body = ApprovalCreated,
            headers(("Set-Cookie" = String, description = "`cc_abind` (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::Limited,
    )
)]
async fn create(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ApprovalCreate>,
) -> Result<Response, Refusal> {
    let Some(codice_fiscale) = normalise_cf(&req.codice_fiscale) else {
        return Err(Refusal::with(
            ErrorCode::BadRequest,
            "Type your codice fiscale: 16 letters and digits.",
            "Digita il tuo codice fiscale: 16 lettere e cifre.",
        ));
    };
    let (body, bind) = open_request(&s, &headers, peer, codice_fiscale).await?;
    let mut resp = Json(body).into_response();
    if let Some(c) = bind {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// A §3 request for `codice_fiscale` from this browser (rate-limited), and the binding
/// cookie to set; also what a right PIN of an account with a phone leads to.
pub(super) async fn open_request(
    s: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    codice_fiscale: String,
) -> Result<(ApprovalCreated, Option<HeaderValue>), Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    // The same browser keeps its cookie, so a new request replaces its pending one.
    let bind = cookie(headers, BIND_COOKIE)
        .filter(|v| unb64_array::<32>(v).is_some())
        .map_or_else(random_id::<32>, Ok)?;
    let id = random_id::<16>()?;
    let (number, choices) = number_and_choices()?;
    // Answered in the app with the phone's key: the level that key reaches.
    let ctx = desktop_context(s, headers, peer, DEVICE_LEVEL, now);
    let context_json =
        serde_json::to_string(&ctx).map_err(|_| Refusal::new(ErrorCode::Internal))?;
    let new = NewApproval {
        id: id.clone(),
        codice_fiscale,
        bind_hash: hash(bind.as_bytes()),
        context_json,
        context_hash: ctx.hash(),
        number,
        choices,
        created: now,
        expires: now + APPROVAL_SECS,
        client: client.clone(),
    };
    let audit = AuditEntry::new("approval_create", &id, "ok", &client);
    if let Limited::RetryAfter(secs) =
        s.0.store
            .create_approval(&new, APPROVALS_PER_MINUTE, &audit)
            .await?
    {
        return Err(Refusal::rate_limited(secs));
    }
    let body = ApprovalCreated {
        request_id: id,
        number,
        expires_at: new.expires,
    };
    Ok((body, set_cookie(BIND_COOKIE, &bind, BIND_PATH, 3600)))
}

/// `POST /api/v1/approvals/pending` (phone, device-signed): a bare JSON array.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/pending",
    operation_id = "approval_pending",
    tag = "approvals",
    request_body = PendingRequest,
    responses(
        (status = 200, description = "The approvals waiting for this device", body = Vec<PendingApproval>),
        crate::openapi::Signed,
    )
)]
async fn pending(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<PendingRequest>,
) -> Result<Json<Vec<PendingApproval>>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let statement = pending_statement(&s.0.origin, &req.device_id, req.iat, &req.nonce);
    let signed = DeviceSigned {
        device_id: &req.device_id,
        iat: req.iat,
        nonce: &req.nonce,
        signature: &req.signature,
    };
    let identity =
        verify_device_request(&s, "approval_pending", &signed, &statement, &client, now).await?;
    // Remembered for as long as the same iat could still be accepted.
    let nonce_key = format!("pending:{}:{}", req.device_id, req.nonce);
    let audit = AuditEntry::new("approval_pending", &req.device_id, "ok", &client);
    let Some(list) =
        s.0.store
            .pending_approvals(&identity.id, &nonce_key, now + 2 * IAT_SKEW, &audit, now)
            .await?
    else {
        return Err(Refusal::new(ErrorCode::Replayed));
    };
    let list = list
        .into_iter()
        .map(|rec| {
            let context: LoginContext = serde_json::from_str(&rec.context_json)
                .map_err(|_| Refusal::new(ErrorCode::Internal))?;
            Ok(PendingApproval {
                request_id: rec.id,
                context,
                context_hash: rec.context_hash,
                choices: rec.choices,
                expires_at: rec.expires,
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    Ok(Json(list))
}

/// `POST /api/v1/approvals/{id}/decision` (phone): a signed `ApprovalTranscript`.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/decision",
    operation_id = "approval_decision",
    tag = "approvals",
    params(("id" = String, Path, description = "Request id")),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "The decision was recorded", body = ApprovalStatus),
        crate::openapi::Signed,
    )
)]
async fn decision(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<ApprovalStatus>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    check_id(&id, "id")?;
    let checked = async {
        let rec =
            s.0.store
                .approval(&id, now)
                .await?
                .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
        let ctx: LoginContext = serde_json::from_str(&rec.context_json)
            .map_err(|_| Refusal::new(ErrorCode::Internal))?;
        let want = Expected {
            kind: TranscriptKind::Approval,
            id: &id,
            service: &ctx.service,
            level: ctx.level,
            context_hash: &rec.context_hash,
        };
        let (t, identity) =
            verify_transcript(&s, &req.transcript, &req.signature, &want, now).await?;
        // The device must belong to the person asked (a request for a codice fiscale with
        // no account belongs to nobody).
        let owner = rec
            .identity_id
            .as_deref()
            .is_some_and(|owner| ct_eq(owner.as_bytes(), identity.id.as_bytes()));
        if !owner {
            return Err(Refusal::new(ErrorCode::WrongDevice));
        }
        // Whether the request is still pending is the compare-and-set's to say, after the
        // jti is recorded: a replay reads `replayed` whatever the state.
        let to = match t.decision {
            Decision::Deny => ApprovalState::Denied,
            Decision::Approve if t.number.is_some_and(|n| ct_eq(&[n], &[rec.number])) => {
                ApprovalState::Approved
            }
            Decision::Approve => ApprovalState::Aborted,
        };
        Ok((t, identity, to, rec.created))
    }
    .await;
    let (t, identity, to, shown) = match checked {
        Ok(v) => v,
        Err(r) => return Err(s.refuse("approval_decision", &id, &client, r).await),
    };
    let reason = (to == ApprovalState::Aborted).then_some("wrong_number");
    let outcome = match to {
        ApprovalState::Aborted => "aborted wrong_number".to_owned(),
        other => format!("{} {}", other.as_str(), t.device_id),
    };
    let audit = AuditEntry::new("approval_decision", &id, &outcome, &client);
    let d = NewDecision {
        id: &id,
        identity_id: &identity.id,
        device_id: &t.device_id,
        jti: &t.jti,
        jti_expires: now + 2 * IAT_SKEW,
        to,
        reason,
    };
    match s.0.store.decide_approval(&d, &audit, now).await? {
        DecisionOutcome::Done => {
            s.0.waiters.wake(&waiter_key(&id));
            crate::observability::approval_decided(
                crate::observability::Approval::Push,
                now.saturating_sub(shown),
            );
            if to == ApprovalState::Aborted {
                tracing::warn!(request = %crate::observability::fingerprint(&id), "wrong number picked: approval request aborted");
                return Err(Refusal::with(
                    ErrorCode::WrongNumber,
                    "Wrong number: the request is cancelled. If you were not logging in, someone else may be: deny any further request.",
                    "Numero errato: la richiesta è stata annullata. Se non stavi accedendo tu, qualcun altro potrebbe provarci: nega ogni altra richiesta.",
                ));
            }
            tracing::info!(request = %crate::observability::fingerprint(&id), state = to.as_str(), "approval decided");
            Ok(Json(status_body(to)))
        }
        DecisionOutcome::Replayed => Err(Refusal::new(ErrorCode::Replayed)),
        DecisionOutcome::WrongState => Err(match s.0.store.approval(&id, now).await? {
            Some(rec) => state_refusal(&rec),
            None => Refusal::new(ErrorCode::NotFound),
        }),
    }
}

/// The request, if this browser made it.
async fn bound(s: &AppState, id: &str, headers: &HeaderMap) -> Result<ApprovalRecord, Refusal> {
    check_id(id, "id")?;
    let rec =
        s.0.store
            .approval(id, s.now())
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
    let ours =
        cookie(headers, BIND_COOKIE).is_some_and(|c| ct_eq(&hash(c.as_bytes()), &rec.bind_hash));
    if ours {
        Ok(rec)
    } else {
        Err(Refusal::new(ErrorCode::NotThisBrowser))
    }
}

/// `GET /api/v1/approvals/{id}[?after=STATE]` (desktop, cookie-bound, long poll). The first
/// read that finds it approved consumes it and sets `cc_session` (level 2) on this browser.
#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}",
    operation_id = "approval_status",
    tag = "approvals",
    params(("id" = String, Path, description = "Request id"), ("after" = Option<String>, Query, description = "Long poll: answer once the state is no longer this one (at most 25 s)")),
    responses(
        (status = 200, description = "The request state (cookie-bound long poll); once approved, the desktop session", body = ApprovalStatus,
            headers(("Set-Cookie" = String, description = "`cc_session`: the desktop session (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::Polled,
    )
)]
async fn status(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    q: Result<Query<PollQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let Query(q) = q.map_err(bad_query)?;
    let client = peer.ip().to_string();
    let rec = match bound(&s, &id, &headers).await {
        Ok(rec) => rec,
        Err(r) => return Err(s.refuse("approval_poll", &id, &client, r).await),
    };
    let rec = match q.after {
        None => rec,
        Some(after) => {
            let after = ApprovalState::parse(&after).ok_or_else(|| bad_field("after"))?;
            let changed = |r: &ApprovalRecord| r.state != after;
            long_poll(&s, &waiter_key(&id), rec, changed, || async {
                s.0.store
                    .approval(&id, s.now())
                    .await?
                    .ok_or_else(|| Refusal::new(ErrorCode::NotFound))
            })
            .await?
        }
    };
    if rec.state != ApprovalState::Approved {
        return Ok(Json(status_body(rec.state)).into_response());
    }
    let now = s.now();
    let token = random_bytes::<32>()?;
    let session = NewSession {
        token_hash: hash(&token),
        level: 2,
        kind: "desktop",
        expires: now + SESSION_SECS,
    };
    let audit = AuditEntry::new("approval_consume", &id, "ok", &client);
    let Some(identity) =
        s.0.store
            .consume_approval(&id, &session, &audit, now)
            .await?
    else {
        // Another read of this browser took it, or its time ran out: say what it is now.
        let rec =
            s.0.store
                .approval(&id, now)
                .await?
                .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
        return Ok(Json(status_body(rec.state)).into_response());
    };
    s.0.waiters.wake(&waiter_key(&id));
    tracing::info!(identity = %identity.id, "desktop login by app approval");
    crate::observability::login_ok(crate::observability::Flow::AppApproval);
    let mut resp = Json(status_body(ApprovalState::Consumed)).into_response();
    if let Some(c) = set_cookie(SESSION_COOKIE, &b64(&token), "/", SESSION_SECS) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_choices() {
        for _ in 0..500 {
            let (n, c) = number_and_choices().unwrap();
            assert!((10..=99).contains(&n));
            assert!(c.contains(&n));
            assert!(c.iter().all(|x| (10..=99).contains(x)));
            assert!(c[0] != c[1] && c[1] != c[2] && c[0] != c[2], "{c:?}");
        }
        // The number is not always in the same place.
        let places: std::collections::HashSet<usize> = (0..200)
            .map(|_| {
                let (n, c) = number_and_choices().unwrap();
                c.iter().position(|x| *x == n).unwrap()
            })
            .collect();
        assert_eq!(places.len(), 3);
    }

    #[test]
    fn codici_fiscali_are_normalised() {
        assert_eq!(
            normalise_cf(" tsttst80a01h501x ").as_deref(),
            Some("TSTTST80A01H501X")
        );
        for bad in [
            "",
            "TSTTST80A01H501",
            "TSTTST80A01H501XX",
            "TSTTST80A01H50-X",
            "TSTTST80A01H501è",
        ] {
            assert_eq!(normalise_cf(bad), None, "{bad}");
        }
    }
}
