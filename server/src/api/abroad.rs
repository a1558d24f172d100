//! Login for residents abroad with a PIN (issue 11; docs/abroad-pin.md), over HTTP:
//!
//! - `POST /api/v1/abroad/login {codice_fiscale, pin}` → `{pin_change_required: true}`
//!   after a right initial PIN (no session), else the session (cookie, level
//!   [`PIN_LEVEL`]) as the desktop code-back gives it.
//! - `POST /api/v1/abroad/pin {codice_fiscale, old_pin, new_pin}` → the new PIN replaces
//!   the old one (the forced change, or any later one).
//!
//! - `POST /api/v1/abroad/login/otp {code}` (cookie `cc_pin2` from a right PIN) → the
//!   level-2 session "PIN + OTP" once the account has an OTP.
//! - `POST /api/v1/abroad/otp/enrol` and `/otp/confirm {code}` (a PIN session): a TOTP
//!   seed shown as an otpauth URI, active once a right code confirms it.
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
    ApprovalCreated, CodeEnrollRequest, EnrollResponse, ErrorCode, Identity, b64, unb64,
};
use cie_core::otp::verify::{AccountState, Credential, Policy, Verdict, verify_totp};
use cie_core::otp::{Algorithm, TimeStep, base32};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::approvals::open_request;
use super::otp::{DIGITS, OtpKey, SEED_LEN, totp_uri};
use super::{
    ApiJson, AppState, SESSION_COOKIE, SESSION_SECS, SessionInfo, checked_device_key, cookie, hash,
    random_bytes, set_cookie, with_session,
};
use crate::abroad::{
    PIN_LEVEL, Pin, check_new_pin, delay_after, dummy_hash, hash_pin, login_pin, validate_cf,
    verify_pin,
};
use crate::error::Refusal;
use crate::random_id;
use crate::store::{
    AbroadAccount, Attempt, AuditEntry, CONSUME_SECS, Enrolment, NewSession, PinOtpAttempt,
    PinTicket,
};

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
/// The code step of a PIN + OTP login (cookie [`TICKET_COOKIE`]).
pub const LOGIN_OTP_PATH: &str = "/api/v1/abroad/login/otp";
/// A new OTP seed for the logged-in holder, pending confirmation.
pub const OTP_ENROL_PATH: &str = "/api/v1/abroad/otp/enrol";
/// A right code makes the pending seed the account's OTP.
pub const OTP_CONFIRM_PATH: &str = "/api/v1/abroad/otp/confirm";
/// How long a right PIN waits for its OTP code, seconds.
pub const TICKET_SECS: u64 = 300;
/// How long a shown seed waits for its confirmation, seconds.
pub const OTP_PENDING_SECS: u64 = 600;
/// Assurance level of PIN + app and PIN + OTP.
pub const SECOND_FACTOR_LEVEL: u8 = 2;
/// "This browser typed the right PIN": the ticket the code step spends.
const TICKET_COOKIE: &str = "cc_pin2";
/// The associated-data label of these seeds: a box sealed for the app's fallback token
/// (code alone, level 2) does not open as a PIN account's second factor, nor the reverse.
const OTP_PURPOSE: &str = "abroad-otp-seed";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(LOGIN_PATH, post(login))
        .route(LOGIN_OTP_PATH, post(login_otp))
        .route(PIN_PATH, post(change_pin))
        .route(ENROL_PATH, post(enrol_code))
        .route(OTP_ENROL_PATH, post(otp_enrol))
        .route(OTP_CONFIRM_PATH, post(otp_confirm))
        .route(DEVICE_BY_CODE_PATH, post(enrol_device))
}

/// `POST /api/v1/abroad/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AbroadLoginRequest {
    /// The holder's codice fiscale.
    #[schema(example = "RSSMRA80A01H501U")]
    pub codice_fiscale: String,
    /// The initial 16-character PIN or the 8-character one.
    #[schema(value_type = String, example = "ABCD2345")]
    pub pin: Pin,
}

/// Its answer: a session, the forced change first, or (an enrolled phone) its approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AbroadLoginResponse {
    /// The initial PIN was right: change it (`POST /api/v1/abroad/pin`), then log in.
    pub pin_change_required: bool,
    /// The PIN was right and the holder has an enrolled phone: no session yet; the §3
    /// request the phone must approve (number matching), polled at
    /// `GET /api/v1/approvals/{request_id}` like "Entra con l'app" (level 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalCreated>,
    /// The PIN was right and the holder has an OTP: no session yet; send the code to
    /// `POST /api/v1/abroad/login/otp` (this browser, within [`TICKET_SECS`]). With
    /// `approval` too, either completes the login.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub otp_required: bool,
    /// The session, when no change is required.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
}

/// `POST /api/v1/abroad/pin`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PinChangeRequest {
    /// The holder's codice fiscale.
    #[schema(example = "RSSMRA80A01H501U")]
    pub codice_fiscale: String,
    /// The current PIN (the initial one at the forced change).
    #[schema(value_type = String)]
    pub old_pin: Pin,
    /// The new 8-character PIN.
    #[schema(value_type = String)]
    pub new_pin: Pin,
}

/// Its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    let audit = AuditEntry::new(kind, &s.0.store.cf_key(cf), "ok", client);
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

#[utoipa::path(
    post,
    path = LOGIN_PATH,
    operation_id = "abroad_login",
    tag = "abroad",
    request_body = AbroadLoginRequest,
    responses(
        (status = 200, description = "PIN right: a session, the forced PIN change, or the second factor to complete", body = AbroadLoginResponse,
            headers(("Set-Cookie" = String, description = "`cc_session`: the desktop session (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::CodeTyped,
    )
)]
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
    let audit = AuditEntry::new("abroad_login", &s.0.store.cf_key(&cf), "ok", &client);
    // The initial PIN opens nothing (change it first); nor does the PIN alone once a second
    // factor is active: the phone's approval (§3) or the OTP code opens the level-2 session.
    let factors = if account.must_change {
        Vec::new()
    } else {
        s.0.store.account_factors(&account.identity_id).await?
    };
    let ask_phone = factors.contains(&"app");
    let ask_otp = factors.contains(&"otp");
    if account.must_change || ask_phone || ask_otp {
        let why = if account.must_change {
            "pin_change_required"
        } else {
            "second_factor_required"
        };
        let ticket = if ask_otp {
            Some(Zeroizing::new(random_bytes::<32>()?))
        } else {
            None
        };
        let stored = ticket.as_ref().map(|t| PinTicket {
            ticket_hash: b64(&hash(&**t)),
            expires: now + TICKET_SECS,
        });
        if s.0
            .store
            .abroad_success(
                &cf,
                &account.pin_hash,
                None,
                stored.as_ref(),
                &audit.with_outcome(why),
                now,
            )
            .await?
            .is_none()
        {
            return Err(wrong_pin(0));
        }
        let (approval, bind) = if ask_phone {
            let (created, bind) = open_request(&s, &headers, peer, cf).await?;
            s.0.store
                .abroad_pin_approval(&created.request_id, created.expires_at + CONSUME_SECS, now)
                .await?;
            (Some(created), bind)
        } else {
            (None, None)
        };
        let mut resp = Json(AbroadLoginResponse {
            pin_change_required: account.must_change,
            approval,
            otp_required: ask_otp,
            session: None,
        })
        .into_response();
        let ticket_cookie =
            ticket.and_then(|t| set_cookie(TICKET_COOKIE, &b64(&*t), LOGIN_OTP_PATH, TICKET_SECS));
        for c in [bind, ticket_cookie].into_iter().flatten() {
            resp.headers_mut().append(header::SET_COOKIE, c);
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
            .abroad_success(&cf, &account.pin_hash, Some(&session), None, &audit, now)
            .await?
    else {
        // Reset or changed between the check and now: that PIN is no longer valid.
        return Err(wrong_pin(0));
    };
    tracing::info!(identity = %identity.id, "PIN login (resident abroad)");
    crate::observability::login_ok(crate::observability::Flow::AbroadPin);
    let info = SessionInfo {
        identity,
        level: session.level,
        expires_at: session.expires,
    };
    let body = AbroadLoginResponse {
        pin_change_required: false,
        approval: None,
        otp_required: false,
        session: Some(info),
    };
    Ok(with_session(body, &token))
}

#[utoipa::path(
    post,
    path = PIN_PATH,
    operation_id = "abroad_change_pin",
    tag = "abroad",
    request_body = PinChangeRequest,
    responses(
        (status = 200, description = "PIN changed", body = PinChanged),
        crate::openapi::CodeTyped,
    )
)]
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
    let audit = AuditEntry::new("abroad_pin_change", &s.0.store.cf_key(&cf), "ok", &client);
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[utoipa::path(
    post,
    path = ENROL_PATH,
    operation_id = "abroad_enrol_code",
    tag = "abroad",
    responses(
        (status = 200, description = "A one-time code enrolling a phone for the logged-in holder", body = EnrolCode),
        crate::openapi::SessionBound,
    )
)]
async fn enrol_code(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<EnrolCode>, Refusal> {
    let now = s.now();
    let (identity, level) = logged_in(&s, &headers, now).await?;
    let code = b64(&random_bytes::<32>()?);
    let qr_svg = crate::page::qr_svg(&code).ok_or_else(|| Refusal::new(ErrorCode::Internal))?;
    let expires = now + ENROL_CODE_SECS;
    let audit = AuditEntry::new("abroad_enrol_code", "", "ok", &peer.ip().to_string());
    let done =
        s.0.store
            .abroad_enrol_code(
                &identity.id,
                level,
                &b64(&hash(code.as_bytes())),
                expires,
                &audit,
                now,
            )
            .await?;
    enrolment_refusal(done, now)?;
    tracing::info!(identity = %identity.id, "enrolment code issued");
    Ok(Json(EnrolCode {
        code,
        qr_svg,
        expires_at: expires,
    }))
}

/// `POST /api/v1/devices/by-code`: the phone spends the code with its device key.
#[utoipa::path(
    post,
    path = DEVICE_BY_CODE_PATH,
    operation_id = "abroad_enrol_device",
    tag = "abroad",
    request_body = CodeEnrollRequest,
    responses(
        (status = 200, description = "The device key is enrolled for the code's holder", body = EnrollResponse),
        crate::openapi::CodeTyped,
    )
)]
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

/// The identity and level of this browser's session (`cc_session`), or the refusal that
/// says to log in first.
async fn logged_in(s: &AppState, headers: &HeaderMap, now: u64) -> Result<(Identity, u8), Refusal> {
    let not_in = || {
        Refusal::with(
            ErrorCode::NotFound,
            "You are not logged in: log in with your PIN, then enrol the phone or the OTP code.",
            "Non hai effettuato l'accesso: accedi con il PIN, poi registra il telefono o il codice OTP.",
        )
    };
    let token = cookie(headers, SESSION_COOKIE)
        .and_then(|t| unb64(&t))
        .ok_or_else(not_in)?;
    let (identity, level, _) =
        s.0.store
            .session(&hash(&token), now)
            .await?
            .ok_or_else(not_in)?;
    Ok((identity, level))
}

/// `Ok` for [`Enrolment::Done`], else the refusal that says what to do.
fn enrolment_refusal(done: Enrolment, now: u64) -> Result<(), Refusal> {
    match done {
        Enrolment::Done => Ok(()),
        Enrolment::SecondFactorRequired => Err(Refusal::with(
            ErrorCode::WrongState,
            "A second factor is already active on this account: log in with PIN + app or PIN + OTP code, then enrol another one.",
            "Su questo account è già attivo un secondo fattore: accedi con PIN + app o PIN + codice OTP, poi registrane un altro.",
        )),
        Enrolment::NoAccount => Err(Refusal::with(
            ErrorCode::NotFound,
            "The OTP code as a second factor is for PIN accounts (residents abroad): log in with your PIN first.",
            "Il codice OTP come secondo fattore è per gli account con PIN (residenti all'estero): accedi prima con il PIN.",
        )),
        Enrolment::NothingPending => Err(Refusal::with(
            ErrorCode::Expired,
            "No OTP code is waiting for confirmation (or it expired): press \"Set up an OTP code\" again.",
            "Nessun codice OTP in attesa di conferma (o è scaduto): premi di nuovo \"Attiva un codice OTP\".",
        )),
        Enrolment::Refused(verdict, state) => Err(code_refusal(verdict, &state, now)),
    }
}

/// The refusal of a code the validator did not accept (wrong, replayed, throttled), with
/// the tries left before the waits start and the wait itself.
fn code_refusal(verdict: Verdict, state: &AccountState, now: u64) -> Refusal {
    match verdict {
        Verdict::Throttled { retry_after } => {
            let (en, it) = seconds(retry_after);
            let mut r = Refusal::with(
                ErrorCode::RateLimited,
                &format!("Too many wrong codes: try again in {en}."),
                &format!("Troppi codici errati: riprova tra {it}."),
            );
            r.0.retry_after = Some(retry_after);
            r
        }
        Verdict::Replayed => Refusal::with(
            ErrorCode::Replayed,
            "This code was already used: wait for the next one in your authenticator app (a new code every 30 seconds).",
            "Questo codice è già stato usato: attendi il prossimo nell'app di autenticazione (un nuovo codice ogni 30 secondi).",
        ),
        Verdict::Wrong | Verdict::Accepted { .. } => {
            let max = Policy::default().max_failures;
            let mut r = Refusal::with(
                ErrorCode::WrongCode,
                "Wrong code: type the 6 digits your authenticator app shows now.",
                "Codice errato: digita le 6 cifre che l'app di autenticazione mostra ora.",
            );
            r.0.tries_left =
                Some(u8::try_from(max.saturating_sub(state.failures)).unwrap_or(u8::MAX));
            if state.locked_until > now {
                r.0.retry_after = Some(state.locked_until - now);
            }
            r
        }
    }
}

/// The six digits typed, or the refusal (no attempt counted).
fn typed_code(code: &Pin) -> Result<Zeroizing<String>, Refusal> {
    let typed = Zeroizing::new(code.expose().trim().to_owned());
    if typed.len() != usize::from(DIGITS) || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::with(
            ErrorCode::BadRequest,
            "Type the 6 digits your authenticator app shows.",
            "Digita le 6 cifre mostrate dall'app di autenticazione.",
        ));
    }
    Ok(typed)
}

/// The validator run inside the store's transaction: the seed unsealed for its identity,
/// the code checked with drift, replay refusal and throttling (the reference policy).
fn sealed_check(
    key: OtpKey,
    code: Zeroizing<String>,
    now: u64,
) -> impl Fn(&str, &[u8], &mut AccountState) -> Option<Verdict> + Send + Sync {
    move |identity_id, sealed, state| {
        let secret = key.open_as(OTP_PURPOSE, identity_id, sealed)?;
        let cred = Credential {
            secret: &secret,
            algorithm: Algorithm::Sha1,
            digits: DIGITS,
        };
        Some(verify_totp(
            &cred,
            TimeStep::default(),
            &code,
            now,
            state,
            &Policy::default(),
        ))
    }
}

fn otp_not_offered() -> Refusal {
    Refusal::with(
        ErrorCode::NotFound,
        "This server does not offer OTP codes: enrol your phone instead.",
        "Questo server non offre codici OTP: registra invece il telefono.",
    )
}

/// A one-time code typed by the holder (`{code}`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OtpCodeRequest {
    /// Six digits, kept like a PIN: wiped on drop, `<hidden>` in Debug, and only a JSON
    /// string (a number is refused without its digits reaching a log line).
    #[schema(value_type = String)]
    pub code: Pin,
}

/// `POST /api/v1/abroad/otp/enrol` answer: the new seed, to put in an authenticator app.
/// Not `Debug` (it holds the seed); sent once, over TLS, never logged.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OtpSetup {
    /// `otpauth://totp/…` (SHA-1, 6 digits, 30 s).
    pub uri: String,
    /// The seed in base32, for typing by hand.
    pub secret: String,
    /// The URI as a QR (SVG).
    pub qr_svg: String,
    /// Confirm before this (Unix seconds).
    pub expires_at: u64,
}

/// `POST /api/v1/abroad/otp/confirm` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OtpActivated {
    /// Always true.
    pub active: bool,
    /// The account's active factors now.
    pub factors: Vec<String>,
    /// What next, in English.
    pub message: String,
    /// What next, in Italian.
    pub message_it: String,
}

/// A new TOTP seed for the logged-in PIN account: 160 bits from the OS CSPRNG, sealed
/// like the fallback tokens' seeds (own label), pending until [`otp_confirm`].
#[utoipa::path(
    post,
    path = OTP_ENROL_PATH,
    operation_id = "abroad_otp_enrol",
    tag = "abroad",
    responses(
        (status = 200, description = "A new TOTP seed to confirm", body = OtpSetup),
        crate::openapi::SessionBound,
    )
)]
async fn otp_enrol(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<OtpSetup>, Refusal> {
    let now = s.now();
    let key = s.0.otp_key.clone().ok_or_else(otp_not_offered)?;
    let (identity, level) = logged_in(&s, &headers, now).await?;
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    getrandom::fill(&mut *seed)?;
    let sealed = key
        .seal_as(OTP_PURPOSE, &identity.id, &*seed)
        .ok_or_else(|| Refusal::new(ErrorCode::Internal))?;
    let expires = now + OTP_PENDING_SECS;
    let audit = AuditEntry::new("abroad_otp_enrol", "", "ok", &peer.ip().to_string());
    let done =
        s.0.store
            .abroad_otp_begin(&identity.id, level, &sealed, expires, &audit, now)
            .await?;
    enrolment_refusal(done, now)?;
    let uri = totp_uri(&s.0.service, &identity, &*seed);
    let qr_svg = crate::page::qr_svg(&uri).ok_or_else(|| Refusal::new(ErrorCode::Internal))?;
    tracing::info!(identity = %identity.id, "OTP seed shown, pending confirmation");
    Ok(Json(OtpSetup {
        uri: uri.as_str().to_owned(),
        secret: base32::encode(&*seed).as_str().to_owned(),
        qr_svg,
        expires_at: expires,
    }))
}

/// A right current code makes the pending seed the account's OTP.
#[utoipa::path(
    post,
    path = OTP_CONFIRM_PATH,
    operation_id = "abroad_otp_confirm",
    tag = "abroad",
    request_body = OtpCodeRequest,
    responses(
        (status = 200, description = "The OTP is active", body = OtpActivated),
        crate::openapi::CodeTyped,
    )
)]
async fn otp_confirm(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<OtpCodeRequest>,
) -> Result<Json<OtpActivated>, Refusal> {
    let now = s.now();
    let key = s.0.otp_key.clone().ok_or_else(otp_not_offered)?;
    let (identity, level) = logged_in(&s, &headers, now).await?;
    let code = typed_code(&req.code)?;
    let audit = AuditEntry::new("abroad_otp_confirm", "", "ok", &peer.ip().to_string());
    let check = sealed_check(key, code, now);
    let done =
        s.0.store
            .abroad_otp_confirm(&identity.id, level, &check, &audit, now)
            .await?;
    enrolment_refusal(done, now)?;
    tracing::info!(identity = %identity.id, "OTP second factor active");
    let factors = s.0.store.account_factors(&identity.id).await?;
    Ok(Json(OtpActivated {
        active: true,
        factors: factors.into_iter().map(str::to_owned).collect(),
        message: "OTP code active: from now on a PIN login also asks for the code.".into(),
        message_it: "Codice OTP attivo: d'ora in poi l'accesso con il PIN chiede anche il codice."
            .into(),
    }))
}

/// The code step of PIN + OTP: the ticket a right PIN set on this browser, spent by a right
/// code → `cc_session` at level 2.
#[utoipa::path(
    post,
    path = LOGIN_OTP_PATH,
    operation_id = "abroad_login_otp",
    tag = "abroad",
    request_body = OtpCodeRequest,
    responses(
        (status = 200, description = "The OTP was right: the session (level 2)", body = AbroadLoginResponse,
            headers(("Set-Cookie" = String, description = "`cc_session`: the desktop session (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::CodeTyped,
    )
)]
async fn login_otp(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<OtpCodeRequest>,
) -> Result<Response, Refusal> {
    let now = s.now();
    let key = s.0.otp_key.clone().ok_or_else(otp_not_offered)?;
    let code = typed_code(&req.code)?;
    let no_ticket = || {
        Refusal::with(
            ErrorCode::NotFound,
            "Type your codice fiscale and PIN first: the code completes a PIN login (within 5 minutes).",
            "Digita prima codice fiscale e PIN: il codice completa un accesso con il PIN (entro 5 minuti).",
        )
    };
    let ticket = cookie(&headers, TICKET_COOKIE)
        .and_then(|t| unb64(&t))
        .map(Zeroizing::new)
        .ok_or_else(no_ticket)?;
    let token = Zeroizing::new(random_bytes::<32>()?);
    let session = NewSession {
        token_hash: hash(&*token),
        level: SECOND_FACTOR_LEVEL,
        kind: "desktop",
        expires: now + SESSION_SECS,
    };
    let audit = AuditEntry::new("abroad_login_otp", "", "", &peer.ip().to_string());
    let check = sealed_check(key, code, now);
    let attempt =
        s.0.store
            .abroad_otp_login(&b64(&hash(&ticket)), &check, &session, &audit, now)
            .await?;
    let identity = match attempt {
        PinOtpAttempt::Accepted(identity) => identity,
        PinOtpAttempt::NoTicket => return Err(no_ticket()),
        PinOtpAttempt::Refused(verdict, state) => return Err(code_refusal(verdict, &state, now)),
    };
    tracing::info!(identity = %identity.id, "PIN + OTP login (resident abroad)");
    crate::observability::login_ok(crate::observability::Flow::AbroadPinOtp);
    let info = SessionInfo {
        identity,
        level: session.level,
        expires_at: session.expires,
    };
    let mut resp = with_session(info, &*token);
    // The ticket is spent: the browser forgets it too.
    if let Some(c) = set_cookie(TICKET_COOKIE, "", LOGIN_OTP_PATH, 0) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}
