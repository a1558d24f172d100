//! The HTTP API of docs/protocol.md §1–3 (§3, app approvals, in `api/approvals.rs`) and the
//! desktop page.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cie_core::flows::wire::{
    ApprovalTranscript, ApproveRequest, ApproveResponse, CardLoginRequest, CardStatement,
    ChallengePurpose, ChallengeRequest, ChallengeResponse, ClaimRequest, ClaimResponse,
    CodeRequest, CreateRendezvous, DEVICE_LEVEL, Decision, DenyRequest, DesktopQr, EnrollRequest,
    EnrollResponse, ErrorCode, Identity, LoginContext, LoginResponse, Origin, RendezvousCreated,
    RendezvousState, RendezvousStatus, TranscriptKind, b64, claim_proof, ct_eq, unb64, unb64_array,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::card::{CardVerifier, VerifiedCard};
use crate::clock::Clock;
use crate::error::Refusal;
use crate::store::{
    AuditEntry, ChallengeRecord, Claim, DeviceApproval, IssuedCode, Limited, NewRendezvous,
    NewSession, RendezvousRecord, Store,
};
use crate::{context, page, random_bytes, random_id};

mod abroad;
mod approvals;
mod otp;
mod registration;
pub use abroad::{
    AbroadLoginRequest, AbroadLoginResponse, LOGIN_OTP_PATH as ABROAD_LOGIN_OTP_PATH,
    LOGIN_PATH as ABROAD_LOGIN_PATH, OTP_CONFIRM_PATH as ABROAD_OTP_CONFIRM_PATH,
    OTP_ENROL_PATH as ABROAD_OTP_ENROL_PATH, OtpActivated, PIN_PATH as ABROAD_PIN_PATH,
    PinChangeRequest, PinChanged,
};
pub use approvals::{APPROVAL_SECS, APPROVALS_PER_MINUTE};
pub use otp::OtpKey;

/// Challenge life (docs/protocol.md §4).
pub const CHALLENGE_SECS: u64 = 120;
/// QR rotation.
pub const ROTATE_SECS: u64 = 30;
/// Rendezvous life until approval.
pub const RENDEZVOUS_SECS: u64 = 120;
/// Approval window after the claim.
pub const CLAIM_SECS: u64 = 90;
/// Code-back life.
pub const CODE_SECS: u64 = 120;
/// Code guesses.
pub const CODE_TRIES: u8 = 3;
/// Longest long poll.
pub const LONG_POLL: Duration = Duration::from_secs(25);
/// How often a long poll re-reads the database even without a local wake-up (a change made
/// by another instance, or time running out).
pub const POLL_FALLBACK: Duration = Duration::from_secs(1);
/// Session life.
pub const SESSION_SECS: u64 = 8 * 3600;

const BIND_COOKIE: &str = "cc_bind";
pub(crate) const SESSION_COOKIE: &str = "cc_session";

/// `GET /api/v1/session` and the desktop's successful code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// Who.
    pub identity: Identity,
    /// Level reached.
    pub level: u8,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `GET /api/v1/session`: the session, how it was opened and the account's factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Who, level, until when.
    #[serde(flatten)]
    pub info: SessionInfo,
    /// How: `cie` (3), `app` (2: the phone's approval or its code), `pin` (1), `pin+app`,
    /// `pin+otp` (2).
    pub method: String,
    /// The account's active factors: `cie`, `pin`, `app`, `otp` (docs/abroad-pin.md).
    pub factors: Vec<String>,
}

/// Long-poll wake-ups, one `Notify` per rendezvous someone is waiting on. Only a cache:
/// waiters also re-read the database every [`POLL_FALLBACK`].
#[derive(Default)]
struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, rid: &str) -> Arc<Notify> {
        self.lock().entry(rid.to_owned()).or_default().clone()
    }

    fn wake(&self, rid: &str) {
        if let Some(n) = self.lock().get(rid) {
            n.notify_waiters();
        }
    }

    fn release(&self, rid: &str, n: Arc<Notify>) {
        drop(n);
        let mut map = self.lock();
        if map.get(rid).is_some_and(|n| Arc::strong_count(n) == 1) {
            map.remove(rid);
        }
    }
}

/// Shared by all handlers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    verifier: CardVerifier,
    origin: Origin,
    service: String,
    clock: Arc<dyn Clock>,
    per_minute: u32,
    /// PIN attempts (residents abroad) per minute per client address.
    abroad_per_minute: u32,
    waiters: Waiters,
    otp_key: Option<OtpKey>,
    /// CSCAs and deviation lists for registration with the CIE; `None`: not offered.
    registration: Option<Arc<crate::registration::RegistrationTrust>>,
}

impl AppState {
    /// Bundle the pieces: the store, the card verifier and the origin the server answers
    /// as, with the rest from `config`.
    pub fn new(
        store: Arc<dyn Store>,
        verifier: CardVerifier,
        origin: Origin,
        config: &crate::Config,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            verifier,
            origin,
            service: config.service_name.clone(),
            clock: config.clock.clone(),
            per_minute: config.rendezvous_per_minute,
            abroad_per_minute: config.abroad_per_minute,
            waiters: Waiters::default(),
            otp_key: config.otp_key.clone(),
            registration: config.registration.clone(),
        }))
    }

    fn now(&self) -> u64 {
        self.0.clock.now()
    }

    /// Audit a refusal (best effort: the refusal stands even if the audit write fails)
    /// and return it.
    async fn refuse(&self, kind: &'static str, subject: &str, client: &str, r: Refusal) -> Refusal {
        let entry = AuditEntry::new(kind, subject, &r.code_str(), client);
        if let Err(e) = self.0.store.audit(&entry, self.now()).await {
            tracing::error!(error = %e, "audit write failed");
        }
        // The subject (a rendezvous or challenge id) by its fingerprint: ids of live
        // requests stay out of logs, the audit row has it for whoever correlates.
        let subject = crate::observability::fingerprint(subject);
        tracing::info!(kind, %subject, outcome = %entry.outcome, client, "refused");
        r
    }

    async fn rendezvous(&self, rid: &str) -> Result<Option<RendezvousRecord>, Refusal> {
        Ok(self.0.store.rendezvous(rid, self.now()).await?)
    }
}

/// The routes.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/card/challenge", post(card_challenge))
        .route("/api/v1/card/login", post(card_login))
        .route("/api/v1/desktop/rendezvous", post(create_rendezvous))
        .route("/api/v1/desktop/rendezvous/{rid}", get(rendezvous_status))
        .route("/api/v1/desktop/rendezvous/{rid}/code", post(submit_code))
        .route("/api/v1/rendezvous/claim", post(claim))
        .route("/api/v1/rendezvous/{rid}/approve", post(approve))
        .route("/api/v1/rendezvous/{rid}/deny", post(deny))
        .route("/api/v1/session", get(session))
        .route("/api/v1/devices", post(enroll_device))
        .merge(approvals::routes())
        .merge(otp::routes())
        .merge(registration::routes())
        .merge(abroad::routes())
        .fallback(|| async { Refusal::new(ErrorCode::NotFound) })
        .layer(middleware::from_fn(no_store));
    Router::new()
        .merge(page::routes())
        .merge(api)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// API answers are per-user and short-lived: never cached.
async fn no_store(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// JSON body whose rejection is an `ApiError`, not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(|e| {
                // Not serde's message: it quotes the offending value (a PIN sent as a
                // number, a code), and logs keep no secret. The kind and status only.
                use axum::extract::rejection::JsonRejection as J;
                let kind = match &e {
                    J::JsonDataError(_) => "data",
                    J::JsonSyntaxError(_) => "syntax",
                    J::MissingJsonContentType(_) => "content type",
                    J::BytesRejection(_) => "body",
                    _ => "other",
                };
                tracing::debug!(kind, status = %e.status(), "bad JSON body");
                Refusal::new(ErrorCode::BadRequest)
            })
    }
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; Secure; SameSite=Strict; Path={path}; Max-Age={max_age}"
    ))
    .ok()
}

/// `body` as JSON with the `cc_session` cookie of `token` (a new desktop session).
pub(crate) fn with_session(body: impl Serialize, token: &[u8]) -> Response {
    let mut resp = Json(body).into_response();
    if let Some(c) = set_cookie(SESSION_COOKIE, &b64(token), "/", SESSION_SECS) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn bad_field(field: &str) -> Refusal {
    Refusal::with(
        ErrorCode::BadRequest,
        &format!("Malformed field `{field}`: update the app and try again."),
        &format!("Campo `{field}` non valido: aggiorna l'app e riprova."),
    )
}

/// The refusal that describes a rendezvous no longer in the expected state.
fn state_refusal(rec: &RendezvousRecord) -> Refusal {
    match (rec.state, rec.abort_reason.as_deref()) {
        (RendezvousState::Expired, _) => Refusal::new(ErrorCode::Expired),
        (RendezvousState::Aborted, Some("second_claim")) => Refusal::new(ErrorCode::AlreadyClaimed),
        (RendezvousState::Aborted, Some("too_many_codes")) => {
            Refusal::new(ErrorCode::TooManyAttempts)
        }
        _ => Refusal::new(ErrorCode::WrongState),
    }
}

/// The claim token belongs to this rendezvous: its hash, compared in constant time.
fn check_claim_token(rec: &RendezvousRecord, token: &str) -> Result<[u8; 32], Refusal> {
    let raw = unb64(token).ok_or_else(|| bad_field("claim_token"))?;
    let h = hash(&raw);
    match &rec.claim_token_hash {
        Some(stored) if ct_eq(stored, &h) => Ok(h),
        _ => Err(Refusal::with(
            ErrorCode::BadSignature,
            "This phone did not scan this code: scan it again.",
            "Questo telefono non ha inquadrato questo codice: inquadralo di nuovo.",
        )),
    }
}

/// A challenge usable for `purpose` (and `rid`) now, or the refusal saying why not.
fn check_challenge(
    c: Option<ChallengeRecord>,
    purpose: ChallengePurpose,
    rid: Option<&str>,
    now: u64,
) -> Result<ChallengeRecord, Refusal> {
    let c = c.ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
    if c.purpose != purpose || c.rid.as_deref() != rid {
        return Err(Refusal::new(ErrorCode::WrongState));
    }
    if c.used {
        return Err(Refusal::new(ErrorCode::Replayed));
    }
    if c.expires <= now {
        return Err(Refusal::new(ErrorCode::Expired));
    }
    Ok(c)
}

/// Certificate and signature, decoded and checked.
fn verify_card(
    s: &AppState,
    certificate: &str,
    signature: &str,
    statement: &[u8],
    now: u64,
) -> Result<VerifiedCard, Refusal> {
    let cert = unb64(certificate).ok_or_else(|| bad_field("certificate"))?;
    let sig = unb64(signature).ok_or_else(|| bad_field("signature"))?;
    Ok(s.0.verifier.verify(&cert, statement, &sig, now)?)
}

/// 4 decimal digits, uniform (rejection sampling over u32).
fn four_digit_code() -> Result<String, getrandom::Error> {
    const LIMIT: u32 = u32::MAX - u32::MAX % 10_000;
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>()?);
        if n < LIMIT {
            return Ok(format!("{:04}", n % 10_000));
        }
    }
}

fn code_hash(rid: &str, code: &str) -> [u8; 32] {
    hash(format!("{rid}:{code}").as_bytes())
}

// ---------------------------------------------------------------------------------------
// §1 Card login

#[utoipa::path(
    post,
    path = "/api/v1/card/challenge",
    tag = "card",
    request_body = ChallengeRequest,
    responses(
        (status = 200, description = "A single-use challenge", body = ChallengeResponse),
        crate::openapi::Signed,
    )
)]
async fn card_challenge(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> Result<Json<ChallengeResponse>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let rid = match req.purpose {
        ChallengePurpose::Login | ChallengePurpose::DeviceEnroll => None,
        // Issued by /api/v1/registration/challenge only (and only when it is offered).
        ChallengePurpose::Register => return Err(bad_field("purpose")),
        ChallengePurpose::DesktopApprove => {
            let (Some(rid), Some(token)) = (req.rid.as_deref(), req.claim_token.as_deref()) else {
                return Err(bad_field("rid"));
            };
            let Some(rec) = s.rendezvous(rid).await? else {
                return Err(Refusal::new(ErrorCode::NotFound));
            };
            if rec.state != RendezvousState::Claimed {
                let r = state_refusal(&rec);
                return Err(s.refuse("challenge", rid, &client, r).await);
            }
            if let Err(r) = check_claim_token(&rec, token) {
                return Err(s.refuse("challenge", rid, &client, r).await);
            }
            Some(rid.to_owned())
        }
    };
    Ok(Json(
        issue_challenge(&s, req.purpose, rid, &client, now).await?,
    ))
}

/// A new single-use challenge for `purpose`, stored with its audit row.
async fn issue_challenge(
    s: &AppState,
    purpose: ChallengePurpose,
    rid: Option<String>,
    client: &str,
    now: u64,
) -> Result<ChallengeResponse, Refusal> {
    let record = ChallengeRecord {
        id: random_id::<16>()?,
        purpose,
        challenge: random_id::<32>()?,
        rid,
        expires: now + CHALLENGE_SECS,
        used: false,
    };
    let audit = AuditEntry::new("challenge", &record.id, "ok", client);
    s.0.store.insert_challenge(&record, &audit, now).await?;
    Ok(ChallengeResponse {
        challenge_id: record.id,
        challenge: record.challenge,
        expires_at: record.expires,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/card/login",
    tag = "card",
    request_body = CardLoginRequest,
    responses(
        (status = 200, description = "Logged in with the card (level 3)", body = LoginResponse),
        crate::openapi::Signed,
    )
)]
async fn card_login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<CardLoginRequest>,
) -> Result<Json<LoginResponse>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let subject = req.challenge_id.as_str();
    let checked = async {
        let c = s.0.store.challenge(&req.challenge_id).await?;
        let c = check_challenge(c, ChallengePurpose::Login, None, now)?;
        let statement = CardStatement::Login {
            origin: &s.0.origin,
            challenge: &c.challenge,
        }
        .to_bytes();
        verify_card(&s, &req.certificate, &req.signature, &statement, now)
    }
    .await;
    let card = match checked {
        Ok(card) => card,
        Err(r) => return Err(s.refuse("card_login", subject, &client, r).await),
    };
    let token = random_bytes::<32>()?;
    let session = NewSession {
        token_hash: hash(&token),
        level: 3,
        kind: "app",
        expires: now + SESSION_SECS,
    };
    let audit = AuditEntry::new("card_login", subject, "ok", &client);
    let Some(identity) =
        s.0.store
            .card_login(&req.challenge_id, &card, &session, &audit, now)
            .await?
    else {
        return Err(Refusal::new(ErrorCode::Replayed));
    };
    tracing::info!(identity = %identity.id, "card login");
    crate::observability::login_ok(crate::observability::Flow::Card);
    Ok(Json(LoginResponse {
        identity,
        level: 3,
        session: b64(&token),
    }))
}

// ---------------------------------------------------------------------------------------
// §2 Desktop QR

/// The level a new rendezvous asks: the body's `level` (1–3), else 2 — what a QR approval
/// reaches at the least (the phone's key), so both the card and the key are offered. The
/// body was ignored before `level` existed: an empty body and `null` still mean "none".
fn asked_level(body: &[u8]) -> Result<u8, Refusal> {
    // Nothing asked: the level an enrolled phone's key reaches, so either method serves.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEVICE_LEVEL);
    }
    // An object or `null`: serde would also take `[3]` for the struct.
    let asked = match serde_json::from_slice(body).map_err(|_| bad_field("body"))? {
        serde_json::Value::Null => CreateRendezvous::default(),
        v @ serde_json::Value::Object(_) => {
            serde_json::from_value(v).map_err(|_| bad_field("level"))?
        }
        _ => return Err(bad_field("body")),
    };
    match asked.level {
        None => Ok(DEVICE_LEVEL),
        Some(level @ 1..=3) => Ok(level),
        Some(_) => Err(bad_field("level")),
    }
}

/// What the phone shows about the desktop that asks (a rendezvous, an app approval).
fn desktop_context(
    s: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    level: u8,
    now: u64,
) -> LoginContext {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    LoginContext {
        service: s.0.service.clone(),
        level,
        browser: context::browser(ua).into(),
        os: context::os(ua).into(),
        place: context::place(peer.ip()).into(),
        ip: peer.ip().to_string(),
        created_at: now,
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/desktop/rendezvous",
    tag = "desktop",
    request_body(content = Option<CreateRendezvous>, description = "Optional: the level the service asks (an empty body, `null` or `{}` ask for none)"),
    responses(
        (status = 200, description = "A new rendezvous and its QR; sets the `cc_bind` cookie binding it to this browser", body = RendezvousCreated,
            headers(("Set-Cookie" = String, description = "`cc_bind` (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::Limited,
    )
)]
async fn create_rendezvous(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Refusal> {
    let level = asked_level(&body)?;
    let now = s.now();
    let client = peer.ip().to_string();
    // The same browser keeps its binding cookie, so a new QR replaces its previous one.
    let bind = cookie(&headers, BIND_COOKIE)
        .filter(|v| unb64_array::<32>(v).is_some())
        .map_or_else(random_id::<32>, Ok)?;
    let rid_bytes = random_bytes::<16>()?;
    let secret = random_bytes::<16>()?;
    let rid = b64(&rid_bytes);
    let ctx = desktop_context(&s, &headers, peer, level, now);
    let context_json =
        serde_json::to_string(&ctx).map_err(|_| Refusal::new(ErrorCode::Internal))?;
    let new = NewRendezvous {
        rid: rid.clone(),
        secret,
        bind_hash: hash(bind.as_bytes()),
        context_json,
        context_hash: ctx.hash(),
        created: now,
        expires: now + RENDEZVOUS_SECS,
        client: client.clone(),
    };
    let audit = AuditEntry::new("rendezvous_create", &rid, "ok", &client);
    if let Limited::RetryAfter(secs) =
        s.0.store
            .create_rendezvous(&new, s.0.per_minute, &audit)
            .await?
    {
        return Err(Refusal::rate_limited(secs));
    }
    let qr = DesktopQr {
        origin: s.0.origin.clone(),
        rid: rid_bytes,
        secret,
    }
    .to_uri();
    let qr_svg = crate::page::qr_svg(&qr).ok_or_else(|| Refusal::new(ErrorCode::Internal))?;
    let body = RendezvousCreated {
        rid,
        qr,
        qr_svg,
        rotate_at: now + ROTATE_SECS,
        expires_at: now + RENDEZVOUS_SECS,
    };
    let mut resp = Json(body).into_response();
    if let Some(c) = set_cookie(BIND_COOKIE, &bind, "/api/v1/desktop", 3600) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

#[utoipa::path(
    post,
    path = "/api/v1/rendezvous/claim",
    tag = "app",
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "Claimed: only this phone may continue", body = ClaimResponse),
        crate::openapi::Signed,
    )
)]
async fn claim(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<ClaimResponse>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let rid_bytes = unb64_array::<16>(&req.rid).ok_or_else(|| bad_field("rid"))?;
    let proof = unb64_array::<32>(&req.proof).ok_or_else(|| bad_field("proof"))?;
    if req.device_name.chars().count() > 64 {
        return Err(bad_field("device_name"));
    }
    let rid = req.rid.as_str();
    let Some(rec) = s.rendezvous(rid).await? else {
        return Err(s
            .refuse(
                "rendezvous_claim",
                rid,
                &client,
                Refusal::new(ErrorCode::NotFound),
            )
            .await);
    };
    let secret: [u8; 16] = rec
        .secret
        .as_slice()
        .try_into()
        .map_err(|_| Refusal::new(ErrorCode::Internal))?;
    if !ct_eq(&claim_proof(&secret, &s.0.origin, &rid_bytes), &proof) {
        let r = Refusal::with(
            ErrorCode::BadSignature,
            "This code does not match: scan the code on the screen again.",
            "Il codice non corrisponde: inquadra di nuovo il codice sullo schermo.",
        );
        return Err(s.refuse("rendezvous_claim", rid, &client, r).await);
    }
    let mut state = rec.state;
    if state == RendezvousState::Created {
        let token = random_bytes::<32>()?;
        let claim = Claim {
            claim_token_hash: hash(&token),
            device_name: req.device_name.clone(),
            device_id: req.device_id.clone(),
            claim_expires: (now + CLAIM_SECS).min(rec.expires),
        };
        let audit = AuditEntry::new("rendezvous_claim", rid, "ok", &client);
        if s.0.store.claim(rid, &claim, &audit, now).await? {
            s.0.waiters.wake(rid);
            let context: LoginContext = serde_json::from_str(&rec.context_json)
                .map_err(|_| Refusal::new(ErrorCode::Internal))?;
            return Ok(Json(ClaimResponse {
                claim_token: b64(&token),
                context,
                context_hash: rec.context_hash,
                expires_at: claim.claim_expires,
            }));
        }
        // Another phone won the race: re-read and treat this as the second claim.
        state = match s.rendezvous(rid).await? {
            Some(r) => r.state,
            None => return Err(Refusal::new(ErrorCode::NotFound)),
        };
    }
    match state {
        // Someone else scanned the same code: cancel it, both phones are told.
        RendezvousState::Claimed | RendezvousState::Approved => {
            let audit = AuditEntry::new("rendezvous_second_claim", rid, "aborted", &client);
            s.0.store
                .transition(
                    rid,
                    state,
                    RendezvousState::Aborted,
                    Some("second_claim"),
                    &audit,
                    now,
                )
                .await?;
            s.0.waiters.wake(rid);
            tracing::warn!(rid = %crate::observability::fingerprint(rid), "second claim: rendezvous aborted");
            Err(Refusal::new(ErrorCode::AlreadyClaimed))
        }
        _ => {
            let rec = s.rendezvous(rid).await?;
            let r = rec
                .as_ref()
                .map_or(Refusal::new(ErrorCode::NotFound), state_refusal);
            Err(s.refuse("rendezvous_claim", rid, &client, r).await)
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/rendezvous/{rid}/approve",
    tag = "app",
    params(("rid" = String, Path, description = "Rendezvous id (base64url)")),
    request_body = ApproveRequest,
    responses(
        (status = 200, description = "Approved: the code to type on the desktop", body = ApproveResponse),
        crate::openapi::Signed,
    )
)]
async fn approve(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(rid): Path<String>,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> Result<Json<ApproveResponse>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let (claim_token, challenge_id, certificate, signature) = match req {
        ApproveRequest::Cie {
            claim_token,
            challenge_id,
            certificate,
            signature,
        } => (claim_token, challenge_id, certificate, signature),
        ApproveRequest::Device {
            claim_token,
            transcript,
            signature,
        } => {
            return approve_with_device(&s, &rid, &client, &claim_token, &transcript, &signature)
                .await
                .map(Json);
        }
    };
    let checked = async {
        let rec = s
            .rendezvous(&rid)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
        if rec.state != RendezvousState::Claimed {
            return Err(state_refusal(&rec));
        }
        let token_hash = check_claim_token(&rec, &claim_token)?;
        let c = s.0.store.challenge(&challenge_id).await?;
        let c = check_challenge(c, ChallengePurpose::DesktopApprove, Some(&rid), now)?;
        let statement = CardStatement::DesktopApprove {
            origin: &s.0.origin,
            rid: &rid,
            context_hash: &rec.context_hash,
            challenge: &c.challenge,
        }
        .to_bytes();
        let card = verify_card(&s, &certificate, &signature, &statement, now)?;
        Ok((token_hash, card, rec.created))
    }
    .await;
    let (token_hash, card, shown) = match checked {
        Ok(v) => v,
        Err(r) => return Err(s.refuse("rendezvous_approve", &rid, &client, r).await),
    };
    let code = four_digit_code()?;
    let issued = IssuedCode {
        code_hash: code_hash(&rid, &code),
        expires: now + CODE_SECS,
        tries: CODE_TRIES,
    };
    let audit = AuditEntry::new("rendezvous_approve", &rid, "ok", &client);
    let approved =
        s.0.store
            .approve_with_card(
                &rid,
                &token_hash,
                &challenge_id,
                &card,
                &issued,
                &audit,
                now,
            )
            .await?;
    if approved.is_none() {
        // The challenge or the rendezvous changed meanwhile: say which.
        let rec = s.rendezvous(&rid).await?;
        return Err(match rec {
            Some(rec) if rec.state != RendezvousState::Claimed => state_refusal(&rec),
            Some(_) => Refusal::new(ErrorCode::Replayed),
            None => Refusal::new(ErrorCode::NotFound),
        });
    }
    s.0.waiters.wake(&rid);
    crate::observability::approval_decided(
        crate::observability::Approval::DesktopQr,
        now.saturating_sub(shown),
    );
    Ok(Json(ApproveResponse {
        code,
        expires_at: issued.expires,
    }))
}

/// Transcript `iat` skew allowed (docs/protocol.md §4).
pub const IAT_SKEW: u64 = 60;

/// ES256 (raw r‖s) by the P-256 key `sec1` (uncompressed) over `msg`. High-S signatures
/// are accepted: platforms do not normalise. ring rather than the p256 crate: this runs once
/// per device approval and ring's verification is several times faster.
fn verify_es256(sec1: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, sec1)
        .verify(msg, sig)
        .is_ok()
}

/// `msg` signed (ES256, base64url raw r‖s) by the enrolled device `device_id`: its holder.
async fn verify_device_signature(
    s: &AppState,
    device_id: &str,
    msg: &[u8],
    signature: &str,
) -> Result<Identity, Refusal> {
    let sig = unb64(signature).ok_or_else(|| bad_field("signature"))?;
    let (identity, key) =
        s.0.store
            .device(device_id)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::WrongDevice))?;
    if !verify_es256(&key, msg, &sig) {
        return Err(Refusal::new(ErrorCode::BadSignature));
    }
    Ok(identity)
}

/// A device-signed time within [`IAT_SKEW`] of ours.
fn check_iat(iat: u64, now: u64) -> Result<(), Refusal> {
    if iat.abs_diff(now) > IAT_SKEW {
        return Err(Refusal::with(
            ErrorCode::Expired,
            "The approval is too old or the phone's clock is wrong: try again.",
            "L'autorizzazione è troppo vecchia o l'orologio del telefono è sbagliato: riprova.",
        ));
    }
    Ok(())
}

/// What a device transcript must name: the server's view of the request it approves.
struct Expected<'a> {
    kind: TranscriptKind,
    id: &'a str,
    service: &'a str,
    level: u8,
    context_hash: &'a str,
}

/// An [`ApprovalTranscript`] as received (base64url bytes) and its signature: verified over
/// those exact bytes under the key of the enrolled device it names, then every field
/// compared with `want`, `iat` within ±[`IAT_SKEW`], `jti` well formed. The holder of the
/// device is returned; whether it may decide, and whether the `jti` is fresh, is the
/// caller's (the latter in the transaction that records it).
async fn verify_transcript(
    s: &AppState,
    transcript: &str,
    signature: &str,
    want: &Expected<'_>,
    now: u64,
) -> Result<(ApprovalTranscript, Identity), Refusal> {
    let bytes = unb64(transcript).ok_or_else(|| bad_field("transcript"))?;
    // Parse only to find the device; the signature is checked over the bytes received.
    let t: ApprovalTranscript =
        serde_json::from_slice(&bytes).map_err(|_| bad_field("transcript"))?;
    let identity = verify_device_signature(s, &t.device_id, &bytes, signature).await?;
    if t.v != cie_core::flows::wire::VERSION
        || t.iss != s.0.origin
        || t.kind != want.kind
        || !ct_eq(t.id.as_bytes(), want.id.as_bytes())
    {
        return Err(Refusal::new(ErrorCode::BadRequest));
    }
    if t.service != want.service
        || t.level != want.level
        || !ct_eq(t.context_hash.as_bytes(), want.context_hash.as_bytes())
    {
        return Err(Refusal::new(ErrorCode::ContextMismatch));
    }
    check_iat(t.iat, now)?;
    if unb64_array::<16>(&t.jti).is_none() {
        return Err(bad_field("jti"));
    }
    Ok((t, identity))
}

/// `"method":"device"`: an enrolled device's ES256 over an [`ApprovalTranscript`] of kind
/// `desktop`. Level 2 (a key on a phone, not the card).
async fn approve_with_device(
    s: &AppState,
    rid: &str,
    client: &str,
    claim_token: &str,
    transcript: &str,
    signature: &str,
) -> Result<ApproveResponse, Refusal> {
    let now = s.now();
    let checked = async {
        let rec = s
            .rendezvous(rid)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
        if rec.state != RendezvousState::Claimed {
            return Err(state_refusal(&rec));
        }
        let token_hash = check_claim_token(&rec, claim_token)?;
        let ctx: LoginContext = serde_json::from_str(&rec.context_json)
            .map_err(|_| Refusal::new(ErrorCode::Internal))?;
        if ctx.level > DEVICE_LEVEL {
            // The service asked for the card: a key on the phone would log in at a level it
            // refuses. The rendezvous stays claimed: the same phone can approve with the card.
            return Err(Refusal::new(ErrorCode::CardRequired));
        }
        let want = Expected {
            kind: TranscriptKind::Desktop,
            id: rid,
            service: &ctx.service,
            level: ctx.level,
            context_hash: &rec.context_hash,
        };
        let (t, identity) = verify_transcript(s, transcript, signature, &want, now).await?;
        if t.decision != Decision::Approve {
            // A refusal goes to /deny; this endpoint only approves.
            return Err(bad_field("decision"));
        }
        Ok((token_hash, t, identity, rec.created))
    }
    .await;
    let (token_hash, t, identity, shown) = match checked {
        Ok(v) => v,
        Err(r) => return Err(s.refuse("rendezvous_approve", rid, client, r).await),
    };
    let code = four_digit_code()?;
    let issued = IssuedCode {
        code_hash: code_hash(rid, &code),
        expires: now + CODE_SECS,
        tries: CODE_TRIES,
    };
    let audit = AuditEntry::new("rendezvous_approve", rid, "ok (device)", client);
    let outcome =
        s.0.store
            .approve_with_device(
                rid,
                &token_hash,
                &identity.id,
                &t.jti,
                now + 2 * IAT_SKEW,
                &issued,
                &audit,
                now,
            )
            .await?;
    match outcome {
        DeviceApproval::Approved => {
            s.0.waiters.wake(rid);
            crate::observability::approval_decided(
                crate::observability::Approval::DesktopQr,
                now.saturating_sub(shown),
            );
            Ok(ApproveResponse {
                code,
                expires_at: issued.expires,
            })
        }
        DeviceApproval::Replayed => Err(Refusal::new(ErrorCode::Replayed)),
        DeviceApproval::WrongState => Err(match s.rendezvous(rid).await? {
            Some(rec) => state_refusal(&rec),
            None => Refusal::new(ErrorCode::NotFound),
        }),
    }
}

/// A device's name (at most 64 characters) and its P-256 key (SEC1 uncompressed, on the
/// curve): the key's bytes.
fn checked_device_key(name: &str, key_b64: &str) -> Result<Vec<u8>, Refusal> {
    if name.chars().count() > 64 {
        return Err(bad_field("device_name"));
    }
    let key = unb64(key_b64).ok_or_else(|| bad_field("device_key"))?;
    if key.len() != 65 || p256::ecdsa::VerifyingKey::from_sec1_bytes(&key).is_err() {
        return Err(bad_field("device_key"));
    }
    Ok(key)
}

/// `POST /api/v1/devices`: the card vouches for a device key.
#[utoipa::path(
    post,
    path = "/api/v1/devices",
    tag = "app",
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "The device key is enrolled for the card holder", body = EnrollResponse),
        crate::openapi::Signed,
    )
)]
async fn enroll_device(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let subject = req.challenge_id.as_str();
    let checked = async {
        let key = checked_device_key(&req.device_name, &req.device_key)?;
        let c = s.0.store.challenge(&req.challenge_id).await?;
        let c = check_challenge(c, ChallengePurpose::DeviceEnroll, None, now)?;
        let statement = CardStatement::DeviceEnroll {
            origin: &s.0.origin,
            challenge: &c.challenge,
            device_key: &req.device_key,
        }
        .to_bytes();
        let card = verify_card(&s, &req.certificate, &req.signature, &statement, now)?;
        Ok((key, card))
    }
    .await;
    let (key, card) = match checked {
        Ok(v) => v,
        Err(r) => return Err(s.refuse("device_enroll", subject, &client, r).await),
    };
    let device_id = random_id::<16>()?;
    let audit = AuditEntry::new("device_enroll", subject, "ok", &client);
    let identity =
        s.0.store
            .enroll_device(
                &req.challenge_id,
                &card,
                &device_id,
                &key,
                &req.device_name,
                &audit,
                now,
            )
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::Replayed))?;
    tracing::info!(identity = %identity.id, device = %device_id, "device enrolled");
    Ok(Json(EnrollResponse {
        device_id,
        identity,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/rendezvous/{rid}/deny",
    tag = "app",
    params(("rid" = String, Path, description = "Rendezvous id (base64url)")),
    request_body = DenyRequest,
    responses(
        (status = 204, description = "Denied"),
        crate::openapi::Signed,
    )
)]
async fn deny(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(rid): Path<String>,
    ApiJson(req): ApiJson<DenyRequest>,
) -> Result<StatusCode, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let checked = async {
        let rec = s
            .rendezvous(&rid)
            .await?
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
        if rec.state != RendezvousState::Claimed {
            return Err(state_refusal(&rec));
        }
        check_claim_token(&rec, &req.claim_token).map(|_| rec.created)
    }
    .await;
    let shown = match checked {
        Ok(created) => created,
        Err(r) => return Err(s.refuse("rendezvous_deny", &rid, &client, r).await),
    };
    let outcome = if req.report {
        "denied reported"
    } else {
        "denied"
    };
    let audit = AuditEntry::new("rendezvous_deny", &rid, outcome, &client);
    let done =
        s.0.store
            .transition(
                &rid,
                RendezvousState::Claimed,
                RendezvousState::Denied,
                None,
                &audit,
                now,
            )
            .await?;
    if !done {
        return Err(Refusal::new(ErrorCode::WrongState));
    }
    crate::observability::approval_decided(
        crate::observability::Approval::DesktopQr,
        now.saturating_sub(shown),
    );
    if req.report {
        tracing::warn!(rid = %crate::observability::fingerprint(&rid), "desktop login denied and reported by the phone");
    }
    s.0.waiters.wake(&rid);
    Ok(StatusCode::NO_CONTENT)
}

/// The rendezvous, if this browser made it.
async fn bound_rendezvous(
    s: &AppState,
    rid: &str,
    headers: &HeaderMap,
) -> Result<RendezvousRecord, Refusal> {
    let rec = s
        .rendezvous(rid)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound))?;
    let bound =
        cookie(headers, BIND_COOKIE).is_some_and(|c| ct_eq(&hash(c.as_bytes()), &rec.bind_hash));
    if bound {
        Ok(rec)
    } else {
        Err(Refusal::new(ErrorCode::NotThisBrowser))
    }
}

/// axum's refusal of a query (`after` twice, bad encoding) as our `bad_request`: its
/// plain-text 400 is outside the documented contract (tests/api/schemathesis.sh).
fn bad_query(e: QueryRejection) -> Refusal {
    tracing::debug!(error = %e, "bad query");
    Refusal::new(ErrorCode::BadRequest)
}

/// `?after=<state>`: wait while the state is still that one.
#[derive(Debug, Deserialize)]
struct PollQuery {
    after: Option<String>,
}

fn status_of(rec: &RendezvousRecord) -> RendezvousStatus {
    RendezvousStatus {
        state: rec.state,
        tries_left: rec.code_tries,
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/desktop/rendezvous/{rid}",
    tag = "desktop",
    params(("rid" = String, Path, description = "Rendezvous id (base64url)"), ("after" = Option<String>, Query, description = "Long poll: answer once the state is no longer this one (at most 25 s)")),
    responses(
        (status = 200, description = "The rendezvous state (cookie-bound long poll)", body = RendezvousStatus),
        crate::openapi::Polled,
    )
)]
async fn rendezvous_status(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(rid): Path<String>,
    q: Result<Query<PollQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<RendezvousStatus>, Refusal> {
    let Query(q) = q.map_err(bad_query)?;
    let client = peer.ip().to_string();
    let rec = match bound_rendezvous(&s, &rid, &headers).await {
        Ok(rec) => rec,
        Err(r) => return Err(s.refuse("rendezvous_poll", &rid, &client, r).await),
    };
    let Some(after) = q.after else {
        return Ok(Json(status_of(&rec)));
    };
    let after = RendezvousState::parse(&after).ok_or_else(|| bad_field("after"))?;
    let rec = long_poll(
        &s,
        &rid,
        rec,
        |r| r.state != after,
        || async {
            s.rendezvous(&rid)
                .await?
                .ok_or_else(|| Refusal::new(ErrorCode::NotFound))
        },
    )
    .await?;
    Ok(Json(status_of(&rec)))
}

/// Wait up to [`LONG_POLL`] until `changed(record)`: woken by [`Waiters::wake`] of `key`
/// on this instance, and re-reading with `reread` every [`POLL_FALLBACK`] (another
/// instance, or time running out). The last record read is returned either way.
async fn long_poll<T, F, Fut>(
    s: &AppState,
    key: &str,
    first: T,
    changed: impl Fn(&T) -> bool,
    reread: F,
) -> Result<T, Refusal>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, Refusal>>,
{
    if changed(&first) {
        return Ok(first);
    }
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    let notify = s.0.waiters.get(key);
    let result = async {
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registered before the re-read, so a change between the two is not missed.
            notified.as_mut().enable();
            let rec = reread().await?;
            let now = tokio::time::Instant::now();
            if changed(&rec) || now >= deadline {
                return Ok(rec);
            }
            let nap = (deadline - now).min(POLL_FALLBACK);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }
    .await;
    s.0.waiters.release(key, notify);
    result
}

#[utoipa::path(
    post,
    path = "/api/v1/desktop/rendezvous/{rid}/code",
    tag = "desktop",
    params(("rid" = String, Path, description = "Rendezvous id (base64url)")),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "The code was right: the desktop session", body = crate::api::SessionInfo,
            headers(("Set-Cookie" = String, description = "`cc_session`: the desktop session (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::CodeTyped,
    )
)]
async fn submit_code(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(rid): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Response, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let rec = match bound_rendezvous(&s, &rid, &headers).await {
        Ok(rec) if rec.state == RendezvousState::Approved => rec,
        Ok(rec) => {
            let r = state_refusal(&rec);
            return Err(s.refuse("rendezvous_code", &rid, &client, r).await);
        }
        Err(r) => return Err(s.refuse("rendezvous_code", &rid, &client, r).await),
    };
    let code = req.code.trim();
    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::with(
            ErrorCode::BadRequest,
            "Type the 4 digits shown on your phone.",
            "Digita le 4 cifre mostrate sul telefono.",
        ));
    }
    let right = rec
        .code_hash
        .as_deref()
        .is_some_and(|h| ct_eq(h, &code_hash(&rid, code)));
    let audit = AuditEntry::new("rendezvous_code", &rid, "ok", &client);
    if !right {
        let left =
            s.0.store
                .wrong_code(&rid, rec.code_tries, &audit, now)
                .await?;
        s.0.waiters.wake(&rid);
        return Err(match left {
            Some(left) => Refusal::wrong_code(left),
            // Another guess landed meanwhile: answer from the state it left.
            None => match s.rendezvous(&rid).await? {
                Some(rec) if rec.state == RendezvousState::Approved => {
                    Refusal::wrong_code(rec.code_tries)
                }
                Some(rec) => state_refusal(&rec),
                None => Refusal::new(ErrorCode::NotFound),
            },
        });
    }
    let token = random_bytes::<32>()?;
    let session = NewSession {
        token_hash: hash(&token),
        level: rec.level.unwrap_or(3),
        kind: "desktop",
        expires: now + SESSION_SECS,
    };
    let Some(identity) =
        s.0.store
            .consume_with_code(&rid, rec.code_tries, &session, &audit, now)
            .await?
    else {
        let rec = s.rendezvous(&rid).await?;
        return Err(rec
            .as_ref()
            .map_or(Refusal::new(ErrorCode::NotFound), state_refusal));
    };
    s.0.waiters.wake(&rid);
    tracing::info!(identity = %identity.id, "desktop login");
    crate::observability::login_ok(crate::observability::Flow::DesktopQr);
    let info = SessionInfo {
        identity,
        level: session.level,
        expires_at: session.expires,
    };
    let mut resp = Json(info).into_response();
    if let Some(c) = set_cookie(SESSION_COOKIE, &b64(&token), "/", SESSION_SECS) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "desktop",
    responses(
        (status = 200, description = "The session (the `cc_session` cookie or `Authorization: Bearer`)", body = SessionView),
        crate::openapi::Lookup,
    )
)]
async fn session(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, Refusal> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let token = bearer
        .or_else(|| cookie(&headers, SESSION_COOKIE))
        .and_then(|t| unb64(&t));
    let not_in = || {
        Refusal::with(
            ErrorCode::NotFound,
            "You are not logged in: log in again.",
            "Non hai effettuato l'accesso: accedi di nuovo.",
        )
    };
    let token = token.ok_or_else(not_in)?;
    let token_hash = hash(&token);
    let (identity, level, expires_at) =
        s.0.store
            .session(&token_hash, s.now())
            .await?
            .ok_or_else(not_in)?;
    let factors = s.0.store.account_factors(&identity.id).await?;
    // Recorded for PIN logins; otherwise the level says it.
    let method = match s.0.store.session_method(&token_hash).await? {
        Some(m) => m,
        None => match level {
            3.. => "cie",
            2 => "app",
            _ => "pin",
        }
        .to_owned(),
    };
    Ok(Json(SessionView {
        info: SessionInfo {
            identity,
            level,
            expires_at,
        },
        method,
        factors: factors.into_iter().map(str::to_owned).collect(),
    }))
}

/// The API's part of `/openapi.json` (src/openapi.rs): the handlers' `#[utoipa::path]`
/// annotations, here because the sub-modules are private to this one.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        card_challenge,
        card_login,
        create_rendezvous,
        rendezvous_status,
        submit_code,
        claim,
        approve,
        deny,
        session,
        enroll_device,
        approvals::create,
        approvals::pending,
        approvals::status,
        approvals::decision,
        otp::enroll,
        otp::login,
        registration::challenge,
        registration::register,
        abroad::login,
        abroad::login_otp,
        abroad::change_pin,
        abroad::enrol_code,
        abroad::otp_enrol,
        abroad::otp_confirm,
        abroad::enrol_device,
    ),
    tags(
        (name = "card", description = "Logging in on the phone with the CIE (docs/protocol.md §1)"),
        (name = "desktop", description = "The desktop page: QR rendezvous, code back, session (§2)"),
        (name = "app", description = "The app: claiming and approving a rendezvous, enrolling a device (§2)"),
        (name = "approvals", description = "Approvals with an enrolled phone, number matching (§3)"),
        (name = "otp", description = "One-time codes as a fallback (§3)"),
        (name = "registration", description = "Registration with the CIE (docs/registration.md)"),
        (name = "abroad", description = "Residents abroad: PIN, second factors (docs/abroad-pin.md)"),
    )
)]
pub(crate) struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    /// Signatures from the p256 crate (what the app side uses) verify under ring, in both
    /// S forms; anything else does not.
    #[test]
    fn es256_accepts_both_s_forms_and_nothing_else() {
        use p256::ecdsa::signature::Signer;
        use p256::ecdsa::{Signature, SigningKey};
        let k = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let sec1 = k.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let msg = b"cie-companion/v1 approve";
        let sig: Signature = k.sign(msg);
        let (r, s_) = sig.split_scalars();
        let twin = Signature::from_scalars(r, -*s_).unwrap();
        for sig in [sig, twin] {
            let raw = sig.to_bytes();
            assert!(verify_es256(&sec1, msg, &raw));
            assert!(!verify_es256(&sec1, b"cie-companion/v1 deny", &raw));
            let mut bad = raw.to_vec();
            bad[10] ^= 1;
            assert!(!verify_es256(&sec1, msg, &bad));
            assert!(!verify_es256(&sec1, msg, &raw[..63]));
        }
        let compressed = k.verifying_key().to_sec1_point(true).as_bytes().to_vec();
        let sig: Signature = k.sign(msg);
        assert!(!verify_es256(&compressed, msg, &sig.to_bytes()));
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        let other_sig: Signature = other.sign(msg);
        assert!(!verify_es256(&sec1, msg, &other_sig.to_bytes()));
    }

    #[test]
    fn codes_are_four_digits() {
        for _ in 0..200 {
            let c = four_digit_code().unwrap();
            assert_eq!(c.len(), 4);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cc_bind=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "cc_bind").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "cc_session"), None);
    }
}
