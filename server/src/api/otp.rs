//! docs/protocol.md §3 "OTP fallback": offline TOTP codes when the phone has no network.
//!
//! - `POST /api/v1/otp/enroll` (phone, device-signed like the pending list: enrolled key,
//!   `iat` ±60 s, nonce once) creates the holder's token, or replaces it (one token per
//!   identity: a re-enrolment means the old phone or app lost it, and the enrolled device
//!   that asks could log in by approval at the same level anyway). The seed is 20 bytes
//!   from the OS CSPRNG, SHA-1 / 6 digits / 30 s: RFC 6238's defaults, the only parameters
//!   every authenticator honours (several ignore `algorithm`, `digits` or `period`).
//! - `POST /api/v1/otp/login {codice_fiscale, code}` (desktop page) → `cc_session`, level 2.
//!   No binding cookie: the flow is one request, so there is no later step another browser
//!   could take over; the JSON body needs a CORS preflight this server never grants, so
//!   another site cannot post it (no login CSRF).
//!
//! **How the seed is kept.** The server must be able to compute codes, so the seed cannot
//! be hashed. It is sealed with AES-256-GCM under the deployment's OTP key
//! (`--otp-key-file`, 32 bytes; [`OtpKey`]), a fresh 96-bit nonce each time, the identity
//! id as associated data (a sealed seed copied to another row does not open); the database
//! holds only `0x01 ‖ nonce ‖ ciphertext ‖ tag`. A database dump without the key file
//! reveals no seed. Without a key the OTP endpoints are off. In memory the seed lives in
//! zeroizing buffers while a code is computed; it is never logged and never in `Debug`.
//! The enrolment answer carries it once (in the URI) over TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::post;
use cie_core::flows::wire::{
    ErrorCode, Identity, OtpEnrollRequest, OtpEnrolled, OtpLoginRequest, otp_enroll_statement,
};
use cie_core::otp::verify::{AccountState, Credential, Policy, Verdict, verify_totp};
use cie_core::otp::{Algorithm, KeyUri, OtpKind, Secret, TimeStep};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::{Zeroize, Zeroizing};

use super::approvals::{DeviceSigned, normalise_cf, verify_device_request};
use super::{ApiJson, AppState, IAT_SKEW, SESSION_SECS, SessionInfo, hash, with_session};
use crate::error::Refusal;
use crate::random_bytes;
use crate::store::{
    AuditEntry, NewOtpToken, NewSession, OtpAttempt, OtpSubject, otp_audit_subject,
};

/// Seed length: 160 bits, RFC 4226's recommendation and the HMAC-SHA-1 block it feeds.
pub const SEED_LEN: usize = 20;
/// Code length.
pub const DIGITS: u8 = 6;
/// Step length, seconds.
pub const PERIOD: u64 = 30;

/// Sealed-seed format version.
const SEALED_V1: u8 = 1;
/// The associated data's label of the fallback tokens' seeds.
const SEED_PURPOSE: &str = "otp-seed";

/// The key that seals TOTP seeds at rest (AES-256-GCM). Zeroized on drop, never printed.
#[derive(Clone)]
pub struct OtpKey(Arc<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for OtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpKey(<redacted>)")
    }
}

impl OtpKey {
    /// From 32 raw bytes; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Arc::new(Zeroizing::new(key))))
    }

    /// From a file of exactly 32 bytes (`head -c 32 /dev/urandom > otp.key`).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes =
            Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
        Self::from_bytes(&bytes).ok_or_else(|| {
            format!(
                "{}: an OTP key file holds exactly 32 random bytes (head -c 32 /dev/urandom)",
                path.display()
            )
        })
    }

    /// The codice fiscale lookup key derived from this key (HKDF-SHA-256, its own label:
    /// `store::CfKey::derive`), so the operator configures one file for both uses.
    pub fn cf_lookup_key(&self) -> crate::store::CfKey {
        crate::store::CfKey::derive(&self.0)
    }

    fn aead(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, self.0.as_slice())
            .ok()
            .map(LessSafeKey::new)
    }

    fn aad(purpose: &str, identity_id: &str) -> Vec<u8> {
        format!("cie-companion/v1 {purpose}\n{identity_id}").into_bytes()
    }

    /// `0x01 ‖ nonce ‖ AES-256-GCM(seed) ‖ tag`, bound to `identity_id`.
    fn seal(&self, identity_id: &str, seed: &[u8]) -> Option<Vec<u8>> {
        self.seal_as(SEED_PURPOSE, identity_id, seed)
    }

    /// The seed, if `sealed` opens under this key for `identity_id`.
    fn open(&self, identity_id: &str, sealed: &[u8]) -> Option<Secret> {
        self.open_as(SEED_PURPOSE, identity_id, sealed)
    }

    /// [`OtpKey::seal`] for another use of a seed (`purpose` is in the associated data, so
    /// a box sealed for one use does not open for another).
    pub(super) fn seal_as(&self, purpose: &str, identity_id: &str, seed: &[u8]) -> Option<Vec<u8>> {
        let nonce = random_bytes::<NONCE_LEN>().ok()?;
        let mut buf = Zeroizing::new(seed.to_vec());
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(purpose, identity_id)),
                &mut *buf,
            )
            .ok()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Some(out)
    }

    /// [`OtpKey::open`] for another use of a seed.
    pub(super) fn open_as(
        &self,
        purpose: &str,
        identity_id: &str,
        sealed: &[u8],
    ) -> Option<Secret> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(Self::aad(purpose, identity_id)), &mut buf)
            .ok()?;
        Some(Secret::new(plain.to_vec()))
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/otp/enroll", post(enroll))
        .route("/api/v1/otp/login", post(login))
}

/// The validator's policy (window ±1 step, 5 free failures, then 30 s doubling to 15 min).
fn policy() -> Policy {
    Policy::default()
}

/// Checked against when the codice fiscale has no token, so the work is the same.
fn dummy_seed() -> &'static Secret {
    static DUMMY: OnceLock<Secret> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Secret::new(
            random_bytes::<SEED_LEN>()
                .unwrap_or([0x5a; SEED_LEN])
                .to_vec(),
        )
    })
}

fn not_offered() -> Refusal {
    Refusal::with(
        ErrorCode::NotFound,
        "This server does not offer one-time codes: log in with the app or the CIE.",
        "Questo server non offre codici monouso: accedi con l'app o con la CIE.",
    )
}

/// What the authenticator shows as the account: the name, the surname as an initial (no
/// codice fiscale on a lock screen or in an authenticator's cloud backup).
fn account_label(identity: &Identity) -> String {
    let given = identity.given_name.trim();
    let initial = identity.surname.trim().chars().next();
    match (given.is_empty(), initial) {
        (false, Some(i)) => format!("{given} {i}."),
        (false, None) => given.to_owned(),
        _ => {
            let cf = &identity.codice_fiscale;
            let tail = cf.get(cf.len().saturating_sub(4)..).unwrap_or("");
            format!("…{tail}")
        }
    }
}

/// `POST /api/v1/otp/enroll` (phone, device-signed) → `{uri}`.
#[utoipa::path(
    post,
    path = "/api/v1/otp/enroll",
    operation_id = "otp_enroll",
    tag = "otp",
    request_body = OtpEnrollRequest,
    responses(
        (status = 200, description = "The new TOTP token (`otpauth://` URI holding the seed)", body = OtpEnrolled),
        crate::openapi::Signed,
    )
)]
async fn enroll(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<OtpEnrollRequest>,
) -> Result<Json<OtpEnrolled>, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let Some(key) = s.0.otp_key.clone() else {
        return Err(not_offered());
    };
    let statement = otp_enroll_statement(&s.0.origin, &req.device_id, req.iat, &req.nonce);
    let signed = DeviceSigned {
        device_id: &req.device_id,
        iat: req.iat,
        nonce: &req.nonce,
        signature: &req.signature,
    };
    let identity =
        verify_device_request(&s, "otp_enroll", &signed, &statement, &client, now).await?;
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    getrandom::fill(&mut *seed)?;
    let sealed = key
        .seal(&identity.id, &*seed)
        .ok_or_else(|| Refusal::new(ErrorCode::Internal))?;
    let nonce_key = format!("otp-enroll:{}:{}", req.device_id, req.nonce);
    let token = NewOtpToken {
        identity_id: &identity.id,
        codice_fiscale: &identity.codice_fiscale,
        sealed_seed: &sealed,
        device_id: &req.device_id,
        nonce_key: &nonce_key,
        nonce_expires: now + 2 * IAT_SKEW,
    };
    let audit = AuditEntry::new(
        "otp_enroll",
        &format!("{} {}", req.device_id, identity.id),
        "ok",
        &client,
    );
    if !s.0.store.enroll_otp(&token, &audit, now).await? {
        return Err(Refusal::new(ErrorCode::Replayed));
    }
    let uri = totp_uri(&s.0.service, &identity, &*seed);
    tracing::info!(identity = %identity.id, device = %req.device_id, "TOTP token enrolled");
    Ok(Json(OtpEnrolled {
        uri: uri.as_str().to_owned(),
    }))
}

/// The `otpauth://totp/…` link of a seed for the holder (SHA-1, [`DIGITS`], [`PERIOD`]),
/// named for the service.
pub(super) fn totp_uri(service: &str, identity: &Identity, seed: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(
        KeyUri {
            issuer: Some(service.to_owned()),
            account: account_label(identity),
            secret: Secret::new(seed.to_vec()),
            algorithm: Algorithm::Sha1,
            digits: DIGITS,
            kind: OtpKind::Totp {
                period: PERIOD,
                t0: 0,
            },
            warnings: Vec::new(),
        }
        .to_uri(),
    )
}

/// The one check of a login attempt, run inside the store's transaction.
fn check_code(
    key: Option<&OtpKey>,
    code: &str,
    now: u64,
    subject: Option<&OtpSubject<'_>>,
    state: &mut AccountState,
) -> Option<Verdict> {
    let policy = policy();
    let step = TimeStep::default();
    let real = match subject {
        Some(t) => Some(key?.open(t.identity_id, t.sealed_seed)?),
        None => None,
    };
    let secret = real.as_ref().unwrap_or_else(|| dummy_seed());
    let cred = Credential {
        secret,
        algorithm: Algorithm::Sha1,
        digits: DIGITS,
    };
    let before = state.clone();
    let verdict = verify_totp(&cred, step, code, now, state, &policy);
    if real.is_none() && matches!(verdict, Verdict::Accepted { .. }) {
        // The dummy seed's code (one chance in 10^6): a wrong code like any other.
        *state = before;
        return Some(verify_totp(&cred, step, "", now, state, &policy));
    }
    Some(verdict)
}

fn wrong_code(state: &AccountState, now: u64) -> Refusal {
    let max = policy().max_failures;
    let mut r = Refusal::with(
        ErrorCode::WrongCode,
        "Wrong code or codice fiscale: type the 6-digit code the cie-companion app shows for this service.",
        "Codice o codice fiscale errato: digita il codice di 6 cifre che l'app cie-companion mostra per questo servizio.",
    );
    r.0.tries_left = Some(u8::try_from(max.saturating_sub(state.failures)).unwrap_or(u8::MAX));
    if state.locked_until > now {
        r.0.retry_after = Some(state.locked_until - now);
    }
    r
}

/// `POST /api/v1/otp/login {codice_fiscale, code}` (desktop page) → `SessionInfo` and
/// `cc_session` (level 2).
#[utoipa::path(
    post,
    path = "/api/v1/otp/login",
    operation_id = "otp_login",
    tag = "otp",
    request_body = OtpLoginRequest,
    responses(
        (status = 200, description = "The code was right: the desktop session (level 2)", body = crate::api::SessionInfo,
            headers(("Set-Cookie" = String, description = "`cc_session`: the desktop session (HttpOnly, Secure, SameSite=Strict)"))),
        crate::openapi::CodeTyped,
    )
)]
async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(mut req): ApiJson<OtpLoginRequest>,
) -> Result<Response, Refusal> {
    let now = s.now();
    let client = peer.ip().to_string();
    let Some(codice_fiscale) = normalise_cf(&req.codice_fiscale) else {
        return Err(Refusal::with(
            ErrorCode::BadRequest,
            "Type your codice fiscale: 16 letters and digits.",
            "Digita il tuo codice fiscale: 16 lettere e cifre.",
        ));
    };
    let code = Zeroizing::new(req.code.trim().to_owned());
    req.code.zeroize();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::with(
            ErrorCode::BadRequest,
            "Type the 6 digits the cie-companion app shows.",
            "Digita le 6 cifre mostrate dall'app cie-companion.",
        ));
    }
    let token = Zeroizing::new(random_bytes::<32>()?);
    let session = NewSession {
        token_hash: hash(&*token),
        level: 2,
        kind: "desktop",
        expires: now + SESSION_SECS,
    };
    // The audit names the codice fiscale by a prefix of its keyed lookup value only.
    let subject = otp_audit_subject(&s.0.store.cf_key(&codice_fiscale));
    let audit = AuditEntry::new("otp_login", &subject, "", &client);
    let key = s.0.otp_key.clone();
    let check = move |t: Option<&OtpSubject<'_>>, st: &mut AccountState| {
        check_code(key.as_ref(), &code, now, t, st)
    };
    let attempt =
        s.0.store
            .otp_login(&codice_fiscale, &check, &session, &audit, now)
            .await?;
    match attempt {
        OtpAttempt::Accepted(identity) => {
            tracing::info!(identity = %identity.id, "desktop login by one-time code");
            crate::observability::login_ok(crate::observability::Flow::Otp);
            let info = SessionInfo {
                identity,
                level: session.level,
                expires_at: session.expires,
            };
            Ok(with_session(info, &*token))
        }
        OtpAttempt::Refused(Verdict::Throttled { retry_after }, _) => {
            let mut r = Refusal::with(
                ErrorCode::RateLimited,
                "Too many wrong codes: wait before trying again, or log in with the app or the CIE.",
                "Troppi codici errati: attendi prima di riprovare, oppure accedi con l'app o con la CIE.",
            );
            r.0.retry_after = Some(retry_after);
            Err(r)
        }
        OtpAttempt::Refused(Verdict::Replayed, _) => Err(Refusal::with(
            ErrorCode::Replayed,
            "This code was already used: wait for the next one in the app (a new code every 30 seconds).",
            "Questo codice è già stato usato: attendi il prossimo nell'app (un nuovo codice ogni 30 secondi).",
        )),
        OtpAttempt::Refused(_, state) => Err(wrong_code(&state, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_seal_and_open_only_for_their_identity_and_key() {
        let key = OtpKey::from_bytes(&[7; 32]).unwrap();
        let seed = [9u8; SEED_LEN];
        let sealed = key.seal("alice", &seed).unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + SEED_LEN + 16);
        assert!(!sealed.windows(SEED_LEN).any(|w| w == seed));
        assert_eq!(key.open("alice", &sealed).unwrap().expose(), &seed);
        assert!(key.open("bob", &sealed).is_none());
        let other = OtpKey::from_bytes(&[8; 32]).unwrap();
        assert!(other.open("alice", &sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(key.open("alice", &flipped).is_none());
        assert!(key.open("alice", &[]).is_none());
        assert!(key.open("alice", &[1, 2, 3]).is_none());
        assert_ne!(key.seal("alice", &seed).unwrap(), sealed, "fresh nonce");
        assert!(OtpKey::from_bytes(&[0; 31]).is_none());
        assert!(!format!("{key:?}").contains('7'));
    }

    #[test]
    fn no_token_is_always_wrong_and_counts() {
        let mut st = AccountState::default();
        for _ in 0..3 {
            let v = check_code(None, "123456", 1_700_000_000, None, &mut st);
            assert_eq!(v, Some(Verdict::Wrong));
        }
        assert_eq!(st.failures, 3);
    }

    #[test]
    fn labels_hide_the_codice_fiscale() {
        let mut i = Identity {
            id: "x".into(),
            codice_fiscale: "TSTTST80A01H501X".into(),
            given_name: "MARIO".into(),
            surname: "ROSSI".into(),
        };
        assert_eq!(account_label(&i), "MARIO R.");
        i.given_name.clear();
        assert_eq!(account_label(&i), "…501X");
    }
}
