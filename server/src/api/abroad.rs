//! Login for residents abroad with a PIN (issue 11; docs/abroad-pin.md), over HTTP:
//!
//! - `POST /api/v1/abroad/login {codice_fiscale, pin}` → `{pin_change_required: true}`
//!   after a right initial PIN (no session), else the session (cookie, level
//!   [`PIN_LEVEL`]) as the desktop code-back gives it.
//! - `POST /api/v1/abroad/pin {codice_fiscale, old_pin, new_pin}` → the new PIN replaces
//!   the old one (the forced change, or any later one).
//!
//! Both check the PIN the same way: the attempt is counted first (client budget, account
//! delay or lock; [`crate::store::AbroadStore::abroad_attempt`]), then Argon2id verifies it
//! against the account's hash or, for an unknown codice fiscale, a dummy one: same work,
//! same answer.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cie_core::flows::wire::{
    ApprovalCreated, CodeEnrollRequest, EnrollResponse, ErrorCode, b64, unb64,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::approvals::open_request;
use super::{
    ApiJson, AppState, SESSION_COOKIE, SESSION_SECS, SessionInfo, checked_device_key, cookie, hash,
    random_bytes, set_cookie,
};
use crate::abroad::{
    PIN_LEVEL, Pin, check_new_pin, delay_after, dummy_hash, hash_pin, login_pin, validate_cf,
    verify_pin,
};
use crate::error::Refusal;
use crate::random_id;
use crate::store::{AbroadAccount, Attempt, AuditEntry, NewSession, cf_key};

/// Login path.
pub const LOGIN_PATH: &str = "/api/v1/abroad/login";
/// PIN change path.
pub const PIN_PATH: &str = "/api/v1/abroad/pin";
/// One-time enrolment code for the phone (a logged-in browser).
pub const ENROL_PATH: &str = "/api/v1/abroad/enrol";
/// The phone spends the code with its device key.
pub const DEVICE_BY_CODE_PATH: &str = "/api/v1/devices/by-code";
/// Lifetime of an enrolment code, seconds.
pub const ENROL_CODE_SECS: u64 = 120;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(LOGIN_PATH, post(login))
        .route(PIN_PATH, post(change_pin))
        .route(ENROL_PATH, post(enrol_code))
        .route(DEVICE_BY_CODE_PATH, post(enrol_device))
}

/// `POST /api/v1/abroad/login`.
#[derive(Debug, Deserialize)]
pub struct AbroadLoginRequest {
    /// The holder's codice fiscale.
    pub codice_fiscale: String,
    /// The initial 16-character PIN or the 8-character one.
    pub pin: Pin,
}

/// Its answer: a session, the forced change first, or (an enrolled phone) its approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbroadLoginResponse {
    /// The initial PIN was right: change it (`POST /api/v1/abroad/pin`), then log in.
    pub pin_change_required: bool,
    /// The PIN was right and the holder has an enrolled phone: no session yet; the §3
    /// request the phone must approve (number matching), polled at
    /// `GET /api/v1/approvals/{request_id}` like "Entra con l'app" (level 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalCreated>,
    /// The session, when no change is required.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
}

/// `POST /api/v1/abroad/pin`.
#[derive(Debug, Deserialize)]
pub struct PinChangeRequest {
    /// The holder's codice fiscale.
    pub codice_fiscale: String,
    /// The current PIN (the initial one at the forced change).
    pub old_pin: Pin,
    /// The new 8-character PIN.
    pub new_pin: Pin,
}

/// Its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinChanged {
    /// Always true.
    pub changed: bool,
    /// What next, in English.
    pub message: String,
    /// What next, in Italian.
    pub message_it: String,
}

/// "N seconds" in English and Italian.
fn seconds(n: u64) -> (String, String) {
    if n == 1 {
        ("1 second".into(), "1 secondo".into())
    } else {
        (format!("{n} seconds"), format!("{n} secondi"))
    }
}

fn wrong_pin(failures: u32) -> Refusal {
    let wait = delay_after(failures);
    let mut r = if wait == 0 {
        Refusal::with(
            ErrorCode::WrongCode,
            "Wrong codice fiscale or PIN.",
            "Codice fiscale o PIN errato.",
        )
    } else {
        let (en, it) = seconds(wait);
        Refusal::with(
            ErrorCode::WrongCode,
            &format!("Wrong codice fiscale or PIN: try again in {en}."),
            &format!("Codice fiscale o PIN errato: riprova tra {it}."),
        )
    };
    r.0.retry_after = (wait > 0).then_some(wait);
    r
}

/// The failures counted so far when the attempt may go on; else the refusal saying how long
/// to wait.
fn admitted(attempt: Attempt) -> Result<u32, Refusal> {
    let (code, en, it, secs) = match attempt {
        Attempt::Go { failures } => return Ok(failures),
        Attempt::ClientLimited { retry_after } => (
            ErrorCode::RateLimited,
            "Too many attempts from this connection: try again in",
            "Troppi tentativi da questa connessione: riprova tra",
            retry_after,
        ),
        Attempt::Wait {
            retry_after,
            locked: false,
        } => (
            ErrorCode::RateLimited,
            "Too many wrong PINs: try again in",
            "Troppi PIN errati: riprova tra",
            retry_after,
        ),
        Attempt::Wait {
            retry_after,
            locked: true,
        } => (
            ErrorCode::TooManyAttempts,
            "Access locked after too many wrong PINs (a new PIN unlocks it): try again in",
            "Accesso bloccato per troppi PIN errati (un nuovo PIN lo sblocca): riprova tra",
            retry_after,
        ),
    };
    let (n_en, n_it) = seconds(secs);
    let mut r = Refusal::with(code, &format!("{en} {n_en}."), &format!("{it} {n_it}."));
    r.0.retry_after = Some(secs);
    Err(r)
}

fn bad_pin_shape() -> Refusal {
    Refusal::with(
        ErrorCode::BadRequest,
        "The PIN has 8 characters, letters and digits (16 at the first login).",
        "Il PIN ha 8 caratteri tra lettere e cifre (16 al primo accesso).",
    )
}

fn checked_cf(input: &str) -> Result<String, Refusal> {
    validate_cf(input)
        .map_err(|e| Refusal::with(ErrorCode::BadRequest, &e.to_string(), e.message_it()))
}

/// Run an Argon2 computation (19 MiB, tens of milliseconds of CPU) on a blocking thread, at
/// most one per CPU at a time: a burst of logins queues here instead of taking a thread and
/// 19 MiB each.
async fn argon2_slot<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refusal> {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    // Neither step fails while the server runs (the semaphore is never closed; `f` does
    // not panic on any input).
    let _slot = slots
        .acquire()
        .await
        .map_err(|_| Refusal::new(ErrorCode::Internal))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Refusal::new(ErrorCode::Internal))
}

/// Count the attempt, then check `typed` against the account's hash (or the dummy's): the
/// account when right, the same refusal for an unknown codice fiscale and a wrong PIN.
async fn check_pin(
    s: &AppState,
    cf: &str,
    typed: &Pin,
    kind: &'static str,
    client: &str,
) -> Result<AbroadAccount, Refusal> {
    let pin = login_pin(typed).ok_or_else(bad_pin_shape)?;
    let audit = AuditEntry::new(kind, &cf_key(cf), "ok", client);
    let attempt =
        s.0.store
            .abroad_attempt(cf, s.0.abroad_per_minute, &audit, s.now())
            .await?;
    let failures = admitted(attempt).inspect_err(|r| {
        tracing::info!(kind, outcome = %r.code_str(), client, "PIN attempt refused");
    })?;
    let account = s.0.store.abroad_account(cf).await?;
    let phc = account
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |a| a.pin_hash.clone());
    let right = argon2_slot(move || verify_pin(&pin, &phc)).await?;
    match account {
        Some(account) if right => Ok(account),
        _ => {
            tracing::info!(kind, client, failures, "wrong codice fiscale or PIN");
            Err(wrong_pin(failures))
        }
    }
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AbroadLoginRequest>,
) -> Result<Response, Refusal> {
    let client = peer.ip().to_string();
    let cf = checked_cf(&req.codice_fiscale)?;
    let account = check_pin(&s, &cf, &req.pin, "abroad_login", &client).await?;
    let now = s.now();
    let audit = AuditEntry::new("abroad_login", &cf_key(&cf), "ok", &client);
    // The initial PIN opens nothing (change it first); nor does the PIN alone once a phone
    // is enrolled (its approval, §3, opens the level-2 session).
    let ask_phone = !account.must_change && s.0.store.has_device(&account.identity_id).await?;
    if account.must_change || ask_phone {
        let why = if ask_phone {
            "approval_required"
        } else {
            "pin_change_required"
        };
        if s.0
            .store
            .abroad_success(&cf, &account.pin_hash, None, &audit.with_outcome(why), now)
            .await?
            .is_none()
        {
            return Err(wrong_pin(0));
        }
        let (approval, bind) = if ask_phone {
            let (created, bind) = open_request(&s, &headers, peer, cf).await?;
            (Some(created), bind)
        } else {
            (None, None)
        };
        let mut resp = Json(AbroadLoginResponse {
            pin_change_required: account.must_change,
            approval,
            session: None,
        })
        .into_response();
        if let Some(c) = bind {
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
        return Ok(resp);
    }
    let token = random_bytes::<32>()?;
    let session = NewSession {
        token_hash: hash(&token),
        level: PIN_LEVEL,
        kind: "desktop",
        expires: now + SESSION_SECS,
    };
    let Some(identity) =
        s.0.store
            .abroad_success(&cf, &account.pin_hash, Some(&session), &audit, now)
            .await?
    else {
        // Reset or changed between the check and now: that PIN is no longer valid.
        return Err(wrong_pin(0));
    };
    tracing::info!(identity = %identity.id, "PIN login (resident abroad)");
    let info = SessionInfo {
        identity,
        level: session.level,
        expires_at: session.expires,
    };
    let mut resp = Json(AbroadLoginResponse {
        pin_change_required: false,
        approval: None,
        session: Some(info),
    })
    .into_response();
    if let Some(c) = set_cookie(SESSION_COOKIE, &b64(&token), "/", SESSION_SECS) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

async fn change_pin(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<PinChangeRequest>,
) -> Result<Json<PinChanged>, Refusal> {
    let client = peer.ip().to_string();
    let cf = checked_cf(&req.codice_fiscale)?;
    // The policy first: it needs no account, so a refusal here costs no attempt.
    let new_pin = check_new_pin(&req.new_pin, &req.old_pin, &cf)
        .map_err(|e| Refusal::with(ErrorCode::BadRequest, &e.to_string(), e.message_it()))?;
    let account = check_pin(&s, &cf, &req.old_pin, "abroad_pin_change", &client).await?;
    let new_hash = argon2_slot(move || hash_pin(&new_pin))
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "PIN hashing failed");
            Refusal::new(ErrorCode::Internal)
        })?;
    let audit = AuditEntry::new("abroad_pin_change", &cf_key(&cf), "ok", &client);
    if !s
        .0
        .store
        .abroad_change_pin(&cf, &account.pin_hash, &new_hash, &audit, s.now())
        .await?
    {
        return Err(wrong_pin(0));
    }
    tracing::info!(identity = %account.identity_id, "PIN changed (resident abroad)");
    Ok(Json(PinChanged {
        changed: true,
        message: "PIN changed: log in with the new PIN.".into(),
        message_it: "PIN cambiato: accedi con il nuovo PIN.".into(),
    }))
}

/// `POST /api/v1/abroad/enrol` answer: what the page shows the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolCode {
    /// The one-time code (the app reads it from the QR or it is typed).
    pub code: String,
    /// The code as a QR (SVG).
    pub qr_svg: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A one-time code that enrols a phone for the logged-in holder (`cc_session`; a resident
/// abroad has no card to vouch for the device key). Single use, [`ENROL_CODE_SECS`], only
/// its SHA-256 stored, a new one voids the previous.
async fn enrol_code(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<EnrolCode>, Refusal> {
    let now = s.now();
    let not_in = || {
        Refusal::with(
            ErrorCode::NotFound,
            "You are not logged in: log in with your PIN, then enrol the phone.",
            "Non hai effettuato l'accesso: accedi con il PIN, poi registra il telefono.",
        )
    };
    let token = cookie(&headers, SESSION_COOKIE)
        .and_then(|t| unb64(&t))
        .ok_or_else(not_in)?;
    let (identity, _, _) =
        s.0.store
            .session(&hash(&token), now)
            .await?
            .ok_or_else(not_in)?;
    let code = b64(&random_bytes::<32>()?);
    let qr_svg = crate::page::qr_svg(&code).ok_or_else(|| Refusal::new(ErrorCode::Internal))?;
    let expires = now + ENROL_CODE_SECS;
    let audit = AuditEntry::new("abroad_enrol_code", "", "ok", &peer.ip().to_string());
    s.0.store
        .abroad_enrol_code(
            &identity.id,
            &b64(&hash(code.as_bytes())),
            expires,
            &audit,
            now,
        )
        .await?;
    tracing::info!(identity = %identity.id, "enrolment code issued");
    Ok(Json(EnrolCode {
        code,
        qr_svg,
        expires_at: expires,
    }))
}

/// `POST /api/v1/devices/by-code`: the phone spends the code with its device key.
async fn enrol_device(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<CodeEnrollRequest>,
) -> Result<Json<EnrollResponse>, Refusal> {
    let key = checked_device_key(&req.device_name, &req.device_key)?;
    let device_id = random_id::<16>()?;
    let now = s.now();
    let audit = AuditEntry::new("device_enroll_code", "", "ok", &peer.ip().to_string());
    let identity =
        s.0.store
            .abroad_enrol_device(
                &b64(&hash(req.code.as_bytes())),
                &device_id,
                &key,
                &req.device_name,
                &audit,
                now,
            )
            .await?
            .ok_or_else(|| {
                Refusal::with(
                    ErrorCode::NotFound,
                    "Unknown, used or expired enrolment code: ask the page for a new one.",
                    "Codice di registrazione sconosciuto, già usato o scaduto: chiedine uno nuovo alla pagina.",
                )
            })?;
    tracing::info!(identity = %identity.id, device = %device_id, "device enrolled by code");
    Ok(Json(EnrollResponse {
        device_id,
        identity,
    }))
}
