//! The app ↔ server contract of the three login flows (docs/protocol.md): JSON messages,
//! the exact bytes the card and the device key sign, and the desktop QR payload.
//!
//! Both sides use these types (the app through [`crate::net`], the reference server
//! directly), so a field renamed on one side is a compile error on the other. What is
//! signed is never re-serialised on the server: the app sends the signed bytes and the
//! server verifies those bytes, then parses them and compares them with its own state.
//!
//! Binary values travel as base64url without padding.

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Protocol version carried by the QR payload and every signed statement.
pub const VERSION: u8 = 1;
/// Longest QR payload the app accepts (a real one is under 100 characters).
pub const MAX_QR_LEN: usize = 512;
/// Length of rendezvous ids, claim secrets and challenges, in bytes (128-bit ids and
/// secrets; 256-bit challenges).
pub const ID_LEN: usize = 16;
/// Length of a server challenge in bytes.
pub const CHALLENGE_LEN: usize = 32;

// ---------------------------------------------------------------------------------------
// Base64url

/// base64url without padding, as every binary field of the protocol.
pub fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

/// Decode base64url without padding; `None` on anything else.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    BASE64URL_NOPAD.decode(text.as_bytes()).ok()
}

/// Decode exactly `N` bytes of base64url.
pub fn unb64_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    unb64(text)?.try_into().ok()
}

// ---------------------------------------------------------------------------------------
// Origins

/// An `https` origin (`https://host[:port]`), lower-cased, default port omitted. The app
/// talks only to origins on its pinned allow-list; every signed statement names one, so a
/// signature made for one server is useless at another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin {
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parse `https://host[:port]` (a trailing `/` is allowed; no path, query, user info).
    pub fn parse(text: &str) -> Result<Self, WireError> {
        let bad = || WireError::BadOrigin(text.chars().take(80).collect());
        let rest = text.strip_prefix("https://").ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        Self::from_authority(rest).ok_or_else(bad)
    }

    /// `host[:port]` as in a URL.
    fn from_authority(authority: &str) -> Option<Self> {
        if authority.is_empty() || authority.len() > 255 {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let port: u16 = p.parse().ok()?;
                if port == 0 {
                    return None;
                }
                (h, (port != 443).then_some(port))
            }
            _ => (authority, None),
        };
        let host = host.to_ascii_lowercase();
        let ok_host = !host.is_empty()
            && (host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                || (host.starts_with('[')
                    && host.ends_with(']')
                    && host[1..host.len() - 1]
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':')));
        ok_host.then_some(Self { host, port })
    }

    /// The host name or address (IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (443 when none was given).
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(443)
    }

    /// `https://host[:port]`.
    pub fn as_string(&self) -> String {
        match self.port {
            Some(p) => format!("https://{}:{p}", self.host),
            None => format!("https://{}", self.host),
        }
    }

    /// The URL of `path` (which starts with `/`) on this origin.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.as_string())
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl TryFrom<String> for Origin {
    type Error = WireError;
    fn try_from(s: String) -> Result<Self, WireError> {
        Self::parse(&s)
    }
}

impl From<Origin> for String {
    fn from(o: Origin) -> String {
        o.as_string()
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// A message from or about the other side that breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not an `https://host[:port]` origin.
    #[error("not an https origin: {0}")]
    BadOrigin(String),
    /// The scanned QR is not a cie-companion login code.
    #[error("this QR is not a login code")]
    NotALoginCode,
    /// A login code for a server that is not on the app's list.
    #[error("this site is not trusted: {0}")]
    UntrustedOrigin(String),
    /// A login code with an unsupported version (the app is older than the server).
    #[error("this login code needs a newer version of the app")]
    UnsupportedVersion,
    /// A field did not decode.
    #[error("malformed field `{0}`")]
    Malformed(&'static str),
}

impl WireError {
    /// The same message in Italian, saying what to do next.
    pub fn message_it(&self) -> String {
        match self {
            Self::BadOrigin(o) => format!("indirizzo del server non valido: {o}"),
            Self::NotALoginCode => {
                "questo QR non è un codice di accesso: inquadra il QR mostrato dalla pagina di accesso"
                    .into()
            }
            Self::UntrustedOrigin(o) => {
                format!("sito non attendibile ({o}): non proseguire e chiudi la pagina")
            }
            Self::UnsupportedVersion => {
                "questo codice richiede una versione più recente dell'app: aggiornala".into()
            }
            Self::Malformed(f) => format!("messaggio non valido (campo `{f}`)"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Desktop QR payload

/// What the desktop QR carries: `https://<authority>/q#v1.<rid>.<k>`. The id names the
/// rendezvous; the secret `k` never travels back in clear (the claim carries an HMAC under
/// it), so someone who learns only the id from a log cannot claim it. It is a URL so that a
/// phone's own camera opens the app; the part after `#` never reaches any server.
#[derive(Clone, PartialEq, Eq)]
pub struct DesktopQr {
    /// The server that showed the code.
    pub origin: Origin,
    /// Rendezvous id.
    pub rid: [u8; ID_LEN],
    /// Claim secret.
    pub secret: [u8; ID_LEN],
}

impl std::fmt::Debug for DesktopQr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopQr")
            .field("origin", &self.origin)
            .field("rid", &b64(&self.rid))
            .finish_non_exhaustive()
    }
}

impl DesktopQr {
    /// The text to put in the QR.
    pub fn to_uri(&self) -> String {
        format!(
            "{}/q#v{VERSION}.{}.{}",
            self.origin,
            b64(&self.rid),
            b64(&self.secret)
        )
    }

    /// Parse a scanned text strictly, accepting only origins in `allowed`. The checks run
    /// shape first, then version, then origin, so a foreign QR reads "not a login code"
    /// and a look-alike site reads "not trusted".
    pub fn parse(text: &str, allowed: &[Origin]) -> Result<Self, WireError> {
        if text.len() > MAX_QR_LEN {
            return Err(WireError::NotALoginCode);
        }
        let rest = text
            .strip_prefix("https://")
            .ok_or(WireError::NotALoginCode)?;
        let (authority, rest) = rest.split_once('/').ok_or(WireError::NotALoginCode)?;
        let fragment = rest.strip_prefix("q#").ok_or(WireError::NotALoginCode)?;
        let origin = Origin::from_authority(authority).ok_or(WireError::NotALoginCode)?;
        let mut parts = fragment.split('.');
        let (Some(version), Some(rid), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(WireError::NotALoginCode);
        };
        let rid = unb64_array::<ID_LEN>(rid).ok_or(WireError::NotALoginCode)?;
        let secret = unb64_array::<ID_LEN>(secret).ok_or(WireError::NotALoginCode)?;
        let version = version
            .strip_prefix('v')
            .filter(|v| !v.is_empty() && v.len() <= 3 && v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(WireError::NotALoginCode)?;
        if version != VERSION.to_string() {
            return Err(WireError::UnsupportedVersion);
        }
        if !allowed.contains(&origin) {
            return Err(WireError::UntrustedOrigin(origin.as_string()));
        }
        Ok(Self {
            origin,
            rid,
            secret,
        })
    }

    /// The claim proof: HMAC-SHA256 under the QR secret over the statement naming the
    /// origin and the rendezvous.
    pub fn claim_proof(&self) -> [u8; 32] {
        claim_proof(&self.secret, &self.origin, &self.rid)
    }
}

/// HMAC-SHA256(k, "cie-companion/v1 claim\n<origin>\n<rid b64>").
pub fn claim_proof(secret: &[u8; ID_LEN], origin: &Origin, rid: &[u8; ID_LEN]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("cie-companion/v{VERSION} claim\n{origin}\n{}", b64(rid)).as_bytes());
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

// ---------------------------------------------------------------------------------------
// What the card signs

/// The statement a CIE signs (the card signs `DigestInfo(SHA-256(statement))`). Each names
/// its purpose and the server's origin, so no signature serves two purposes or two servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardStatement<'a> {
    /// Phone-tap login: the challenge from `POST /api/v1/card/challenge`.
    Login {
        /// Server origin.
        origin: &'a Origin,
        /// The challenge (base64url as the server sent it).
        challenge: &'a str,
    },
    /// Approval of a desktop session: also names the rendezvous and the context shown.
    DesktopApprove {
        /// Server origin.
        origin: &'a Origin,
        /// Rendezvous id (base64url).
        rid: &'a str,
        /// `context_hash` as the server sent it.
        context_hash: &'a str,
        /// The challenge.
        challenge: &'a str,
    },
    /// Binding a device key to the card holder.
    DeviceEnroll {
        /// Server origin.
        origin: &'a Origin,
        /// The challenge.
        challenge: &'a str,
        /// The device public key (SEC1 uncompressed, base64url).
        device_key: &'a str,
    },
}

impl CardStatement<'_> {
    /// The exact bytes the card signs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let v = VERSION;
        match self {
            Self::Login { origin, challenge } => {
                format!("cie-companion/v{v} card-login\n{origin}\n{challenge}")
            }
            Self::DesktopApprove {
                origin,
                rid,
                context_hash,
                challenge,
            } => format!(
                "cie-companion/v{v} desktop-approve\n{origin}\n{rid}\n{context_hash}\n{challenge}"
            ),
            Self::DeviceEnroll {
                origin,
                challenge,
                device_key,
            } => format!("cie-companion/v{v} device-enroll\n{origin}\n{challenge}\n{device_key}"),
        }
        .into_bytes()
    }
}

// ---------------------------------------------------------------------------------------
// What the device key signs

/// The user's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Decision {
    /// "Autorizza".
    Approve,
    /// "Nega / non sono stato io".
    Deny,
}

/// What a device approval refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TranscriptKind {
    /// A push/app approval request (number matching).
    Approval,
    /// A desktop QR rendezvous approved with the enrolled device instead of the card.
    Desktop,
}

/// The canonical transcript a device key signs (ES256 over these exact JSON bytes, fields
/// in this order, no spaces: `serde_json::to_vec`). The server verifies the signature over
/// the bytes it received, then parses them and checks every field against its own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalTranscript {
    /// Protocol version ([`VERSION`]).
    pub v: u8,
    /// Server origin.
    pub iss: Origin,
    /// What is approved.
    pub kind: TranscriptKind,
    /// Request or rendezvous id (base64url).
    pub id: String,
    /// Service name as shown.
    pub service: String,
    /// Level asked (1–3).
    pub level: u8,
    /// Hash of the context shown ([`LoginContext::hash`]).
    pub context_hash: String,
    /// The decision.
    pub decision: Decision,
    /// The number the user picked (number matching), when asked.
    pub number: Option<u8>,
    /// The enrolled device.
    pub device_id: String,
    /// When signed (Unix seconds, the phone's clock corrected by the server's `Date`).
    pub iat: u64,
    /// A fresh random id (base64url of 16 bytes): each is accepted once.
    pub jti: String,
}

impl ApprovalTranscript {
    /// The bytes to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a plain struct always serialises")
    }
}

// ---------------------------------------------------------------------------------------
// Context

/// What the phone shows before the user decides. The server computes it when the request
/// is made; the phone shows it and signs its hash, so what was approved is what was shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginContext {
    /// Service (relying party) name.
    pub service: String,
    /// Level asked (1–3).
    pub level: u8,
    /// Desktop browser, from its User-Agent ("Firefox", "Chrome"…).
    pub browser: String,
    /// Desktop operating system ("Windows", "Linux"…).
    pub os: String,
    /// Approximate place of the desktop (from its address), or "sconosciuto".
    pub place: String,
    /// The desktop's address as the server saw it.
    pub ip: String,
    /// When the request was made (Unix seconds).
    pub created_at: u64,
}

impl LoginContext {
    /// SHA-256 of the context's JSON (field order as declared), base64url.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a plain struct always serialises");
        b64(&Sha256::digest(json))
    }
}

// ---------------------------------------------------------------------------------------
// Messages

/// Every error body: a stable code the app maps to a typed error, messages in English and
/// Italian, and what the user can still do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Stable machine code.
    pub error: ErrorCode,
    /// English message.
    pub message: String,
    /// Italian message.
    pub message_it: String,
    /// Code guesses left (wrong code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u8>,
    /// Seconds to wait (rate limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Stable error codes of the API (also on the UniFFI surface, inside `FlowError::Server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// The request is malformed.
    BadRequest,
    /// No such challenge, rendezvous, request or device.
    NotFound,
    /// The challenge, QR or request expired.
    Expired,
    /// Already used (challenge, code, transcript id): a replay.
    Replayed,
    /// The rendezvous was already claimed by another phone (it is now cancelled).
    AlreadyClaimed,
    /// Not in a state that allows this step.
    WrongState,
    /// The claim proof or a signature does not verify.
    BadSignature,
    /// The certificate does not chain to a trusted CA.
    UntrustedCertificate,
    /// The certificate is expired or not yet valid.
    CertificateExpired,
    /// The certificate is revoked.
    CertificateRevoked,
    /// The certificate names no identity the server can map.
    UnknownIdentity,
    /// Wrong one-time code; `tries_left` says how many remain.
    WrongCode,
    /// No tries left: start again.
    TooManyAttempts,
    /// Signed by a device not enrolled for this identity.
    WrongDevice,
    /// The signed context is not the one the server showed.
    ContextMismatch,
    /// The number picked is not the one shown on the desktop.
    WrongNumber,
    /// This browser did not start the login.
    NotThisBrowser,
    /// Slow down; `retry_after` seconds.
    RateLimited,
    /// Server-side failure (storage); retry later.
    Internal,
    /// This card is already registered (registration with the CIE): log in with it.
    AlreadyRegistered,
    /// The service asked for level 3 (SPID L3): only the CIE approves it, not the phone's key.
    CardRequired,
}

/// `POST /api/v1/card/challenge` → a challenge for a phone-tap login (also for a desktop
/// approval or device enrolment, see [`ChallengePurpose`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeRequest {
    /// What the challenge is for.
    pub purpose: ChallengePurpose,
    /// For [`ChallengePurpose::DesktopApprove`]: the rendezvous and its claim token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Claim token of that rendezvous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
}

/// What a card challenge may be used for; each is consumed by one endpoint only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChallengePurpose {
    /// `POST /api/v1/card/login`.
    Login,
    /// `POST /api/v1/rendezvous/{rid}/approve`.
    DesktopApprove,
    /// `POST /api/v1/devices`.
    DeviceEnroll,
    /// `POST /api/v1/registration` (issued by `/api/v1/registration/challenge` only).
    Register,
}

/// A challenge: single use, short life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeResponse {
    /// Challenge id.
    pub challenge_id: String,
    /// The challenge (32 random bytes, base64url): goes into the signed statement as is.
    pub challenge: String,
    /// Unix seconds after which it is refused.
    pub expires_at: u64,
}

/// `POST /api/v1/card/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CardLoginRequest {
    /// From [`ChallengeResponse`].
    pub challenge_id: String,
    /// The card's authentication certificate (DER, base64url).
    pub certificate: String,
    /// PKCS#1 v1.5 SHA-256 signature over [`CardStatement::Login`] (base64url).
    pub signature: String,
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    /// Server's id of the person.
    pub id: String,
    /// Codice fiscale.
    pub codice_fiscale: String,
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
}

/// A completed login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// Who.
    pub identity: Identity,
    /// Level reached (3 = card).
    pub level: u8,
    /// Session token for the app (bearer), opaque.
    pub session: String,
}

/// The level an approval with an enrolled phone's key reaches (the card reaches 3).
pub const DEVICE_LEVEL: u8 = 2;

/// `POST /api/v1/desktop/rendezvous` body (optional: an empty body, `null` or `{}` ask for
/// no particular level).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRendezvous {
    /// The level the service asks (1–3; a relying party's `acr_values`). The phone shows it
    /// and, at 3, offers only the card: the server refuses a device-key approval
    /// (`card_required`) instead of logging in at a level the service will refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
}

/// `POST /api/v1/desktop/rendezvous` (the desktop page; sets the binding cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RendezvousCreated {
    /// Rendezvous id (base64url).
    pub rid: String,
    /// The QR text ([`DesktopQr::to_uri`]).
    pub qr: String,
    /// The QR as SVG.
    pub qr_svg: String,
    /// When the page should fetch a fresh QR (Unix seconds).
    pub rotate_at: u64,
    /// When this rendezvous dies whatever happens (Unix seconds).
    pub expires_at: u64,
}

/// `POST /api/v1/rendezvous/claim` (the phone, after scanning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimRequest {
    /// Rendezvous id (base64url).
    pub rid: String,
    /// [`claim_proof`] (base64url).
    pub proof: String,
    /// The phone's name ("Pixel 8"), shown in the audit log.
    pub device_name: String,
    /// An enrolled device's id, when it will approve with its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// The claim succeeded: only this phone may continue.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimResponse {
    /// Bearer for the next steps of this rendezvous.
    pub claim_token: String,
    /// What to show.
    pub context: LoginContext,
    /// [`LoginContext::hash`] as computed by the server.
    pub context_hash: String,
    /// Unix seconds: approve before this.
    pub expires_at: u64,
}

/// `POST /api/v1/rendezvous/{rid}/approve`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ApproveRequest {
    /// With the CIE: a [`ChallengePurpose::DesktopApprove`] challenge signed by the card.
    Cie {
        /// Claim token.
        claim_token: String,
        /// Challenge id.
        challenge_id: String,
        /// Card certificate (DER, base64url).
        certificate: String,
        /// Signature over [`CardStatement::DesktopApprove`].
        signature: String,
    },
    /// With an enrolled device key: a [`TranscriptKind::Desktop`] transcript.
    Device {
        /// Claim token.
        claim_token: String,
        /// The transcript bytes, base64url (the server verifies these exact bytes).
        transcript: String,
        /// ES256 signature, raw r‖s (base64url).
        signature: String,
    },
}

/// Approved: the app shows `code`, the user types it on the desktop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApproveResponse {
    /// 4 digits.
    pub code: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `POST /api/v1/rendezvous/{rid}/deny`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DenyRequest {
    /// Claim token.
    pub claim_token: String,
    /// "Non sono stato io": also report it.
    pub report: bool,
}

/// Rendezvous states (docs/protocol.md state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RendezvousState {
    /// Shown, not scanned.
    Created,
    /// Scanned by one phone.
    Claimed,
    /// Approved; waits for the code on the desktop.
    Approved,
    /// Denied on the phone.
    Denied,
    /// The desktop session exists.
    Consumed,
    /// Cancelled (second claim, too many wrong codes, replaced by a newer QR).
    Aborted,
    /// Time ran out.
    Expired,
}

impl RendezvousState {
    /// Stable text for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Claimed => "claimed",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
            Self::Aborted => "aborted",
            Self::Expired => "expired",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "claimed" => Self::Claimed,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "consumed" => Self::Consumed,
            "aborted" => Self::Aborted,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// `GET /api/v1/desktop/rendezvous/{rid}` (long poll, cookie-bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RendezvousStatus {
    /// Current state.
    pub state: RendezvousState,
    /// Code guesses left once approved.
    pub tries_left: u8,
}

/// `POST /api/v1/desktop/rendezvous/{rid}/code` (cookie-bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeRequest {
    /// The code the phone shows.
    pub code: String,
}

/// `POST /api/v1/devices`: bind a device key to the card holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// A [`ChallengePurpose::DeviceEnroll`] challenge id.
    pub challenge_id: String,
    /// Card certificate (DER, base64url).
    pub certificate: String,
    /// Card signature over [`CardStatement::DeviceEnroll`].
    pub signature: String,
    /// The device's P-256 public key, SEC1 uncompressed (65 bytes, base64url).
    pub device_key: String,
    /// Shown in the account page.
    pub device_name: String,
}

/// `POST /api/v1/devices/by-code`: bind a device key to the holder of a one-time
/// enrolment code the desktop page showed in a PIN session (residents abroad: no card).
/// Debug hides the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeEnrollRequest {
    /// The one-time code (base64url of 32 random bytes).
    pub code: String,
    /// The device's P-256 public key, SEC1 uncompressed (65 bytes, base64url).
    pub device_key: String,
    /// Shown in the account page.
    pub device_name: String,
}

impl std::fmt::Debug for CodeEnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeEnrollRequest")
            .field("code", &"<hidden>")
            .field("device_key", &self.device_key)
            .field("device_name", &self.device_name)
            .finish()
    }
}

/// Enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// Device id: names the key in transcripts.
    pub device_id: String,
    /// The holder.
    pub identity: Identity,
}

/// `POST /api/v1/approvals` (the desktop page "Entra con l'app": codice fiscale typed;
/// cookie-bound like a rendezvous).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalCreate {
    /// Whose phone to ask.
    #[cfg_attr(feature = "openapi", schema(example = "RSSMRA80A01H501U"))]
    pub codice_fiscale: String,
}

/// The request exists; the desktop shows `number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalCreated {
    /// Request id.
    pub request_id: String,
    /// Two digits the user must pick in the app.
    pub number: u8,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `POST /api/v1/approvals/pending` (the phone): authenticated by a device signature over
/// `"cie-companion/v1 pending\n<origin>\n<device_id>\n<iat>\n<nonce>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingRequest {
    /// Device id.
    pub device_id: String,
    /// Unix seconds.
    pub iat: u64,
    /// Random (base64url of 16 bytes), single use.
    pub nonce: String,
    /// ES256 raw r‖s over [`pending_statement`].
    pub signature: String,
}

/// The statement a device signs to list its pending approvals.
pub fn pending_statement(origin: &Origin, device_id: &str, iat: u64, nonce: &str) -> Vec<u8> {
    format!("cie-companion/v{VERSION} pending\n{origin}\n{device_id}\n{iat}\n{nonce}").into_bytes()
}

/// One approval waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingApproval {
    /// Request id.
    pub request_id: String,
    /// What to show.
    pub context: LoginContext,
    /// Its hash.
    pub context_hash: String,
    /// Three two-digit numbers, one of them shown on the desktop.
    pub choices: Vec<u8>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `POST /api/v1/approvals/{id}/decision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRequest {
    /// [`ApprovalTranscript`] bytes, base64url.
    pub transcript: String,
    /// ES256 raw r‖s, base64url.
    pub signature: String,
}

/// `GET /api/v1/approvals/{id}` (desktop long poll, cookie-bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalStatus {
    /// `pending`, `approved`, `denied`, `expired`, `consumed`.
    pub state: String,
}

/// `POST /api/v1/otp/enroll` (the phone): authenticated by a device signature over
/// [`otp_enroll_statement`]; creates or replaces the holder's TOTP token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpEnrollRequest {
    /// Device id.
    pub device_id: String,
    /// Unix seconds.
    pub iat: u64,
    /// Random (base64url of 16 bytes), single use.
    pub nonce: String,
    /// ES256 raw r‖s over [`otp_enroll_statement`].
    pub signature: String,
}

/// The statement a device signs to enrol a TOTP token:
/// `"cie-companion/v1 otp-enroll\n<origin>\n<device_id>\n<iat>\n<nonce>"`.
pub fn otp_enroll_statement(origin: &Origin, device_id: &str, iat: u64, nonce: &str) -> Vec<u8> {
    format!("cie-companion/v{VERSION} otp-enroll\n{origin}\n{device_id}\n{iat}\n{nonce}")
        .into_bytes()
}

/// The token: an `otpauth://totp/…` Key URI holding the seed. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpEnrolled {
    /// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
    pub uri: String,
}

impl std::fmt::Debug for OtpEnrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpEnrolled { uri: <redacted> }")
    }
}

impl Drop for OtpEnrolled {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.uri);
    }
}

/// `POST /api/v1/otp/login` (the desktop page "Entra con un codice").
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpLoginRequest {
    /// Whose token.
    #[cfg_attr(feature = "openapi", schema(example = "RSSMRA80A01H501U"))]
    pub codice_fiscale: String,
    /// The 6 digits the app shows.
    #[cfg_attr(feature = "openapi", schema(example = "123456"))]
    pub code: String,
}

impl std::fmt::Debug for OtpLoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpLoginRequest")
            .field("codice_fiscale", &self.codice_fiscale)
            .finish_non_exhaustive()
    }
}

impl Drop for OtpLoginRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.code);
    }
}

// Bearer tokens (session, claim) and the code-back are secrets: never in `Debug` (logs).
const HIDDEN: &str = "<hidden>";

impl std::fmt::Debug for ChallengeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeRequest")
            .field("purpose", &self.purpose)
            .field("rid", &self.rid)
            .field("claim_token", &self.claim_token.as_ref().map(|_| HIDDEN))
            .finish()
    }
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("identity", &self.identity)
            .field("level", &self.level)
            .field("session", &HIDDEN)
            .finish()
    }
}

impl std::fmt::Debug for ClaimResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimResponse")
            .field("claim_token", &HIDDEN)
            .field("context", &self.context)
            .field("context_hash", &self.context_hash)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for ApproveRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cie { challenge_id, .. } => f
                .debug_struct("ApproveRequest::Cie")
                .field("claim_token", &HIDDEN)
                .field("challenge_id", challenge_id)
                .finish_non_exhaustive(),
            Self::Device { .. } => f
                .debug_struct("ApproveRequest::Device")
                .field("claim_token", &HIDDEN)
                .finish_non_exhaustive(),
        }
    }
}

impl std::fmt::Debug for ApproveResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproveResponse")
            .field("code", &HIDDEN)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for DenyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenyRequest")
            .field("claim_token", &HIDDEN)
            .field("report", &self.report)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_tokens_and_codes_stay_out_of_debug() {
        use super::*;
        let secret = "s3cr3t-t0ken";
        let identity = Identity {
            id: "id".into(),
            codice_fiscale: "TSTTST80A01H501X".into(),
            given_name: "MARIA".into(),
            surname: "TESTER".into(),
        };
        let shown = [
            format!(
                "{:?}",
                ChallengeRequest {
                    purpose: ChallengePurpose::DesktopApprove,
                    rid: Some("rid".into()),
                    claim_token: Some(secret.into()),
                }
            ),
            format!(
                "{:?}",
                LoginResponse {
                    identity,
                    level: 3,
                    session: secret.into(),
                }
            ),
            format!(
                "{:?}",
                ApproveRequest::Device {
                    claim_token: secret.into(),
                    transcript: String::new(),
                    signature: String::new(),
                }
            ),
            format!(
                "{:?}",
                ApproveResponse {
                    code: secret.into(),
                    expires_at: 1,
                }
            ),
            format!(
                "{:?}",
                DenyRequest {
                    claim_token: secret.into(),
                    report: true,
                }
            ),
        ];
        for s in shown {
            assert!(!s.contains(secret) && s.contains("<hidden>"), "{s}");
        }
    }

    use super::*;

    fn origin() -> Origin {
        Origin::parse("https://login.example.it").unwrap()
    }

    #[test]
    fn origins_normalise() {
        let o = Origin::parse("https://Login.Example.IT:443/").unwrap();
        assert_eq!(o.as_string(), "https://login.example.it");
        let o = Origin::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!((o.host(), o.port()), ("127.0.0.1", 8443));
        for bad in [
            "http://a.it",
            "https://",
            "https://a.it/x",
            "https://a.it:0",
            "https://a.it:99999",
            "https://u@a.it",
            "https://a.it:",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        let o = Origin::parse("https://[::1]:8443").unwrap();
        assert_eq!(o.host(), "[::1]");
    }

    #[test]
    fn qr_round_trip_and_strict_parse() {
        let qr = DesktopQr {
            origin: origin(),
            rid: [7; 16],
            secret: [9; 16],
        };
        let text = qr.to_uri();
        assert!(text.len() < 100, "{text}");
        assert_eq!(DesktopQr::parse(&text, &[origin()]).unwrap(), qr);
        // Another site, same shape: not trusted.
        let evil = text.replace("login.example.it", "login.example.it.evil.com");
        assert_eq!(
            DesktopQr::parse(&evil, &[origin()]),
            Err(WireError::UntrustedOrigin(
                "https://login.example.it.evil.com".into()
            ))
        );
        // A newer version: update the app.
        let v2 = text.replace("#v1.", "#v2.");
        assert_eq!(
            DesktopQr::parse(&v2, &[origin()]),
            Err(WireError::UnsupportedVersion)
        );
        for bad in [
            "otpauth://totp/x?secret=AAAA",
            "https://login.example.it/q",
            "https://login.example.it/q#v1.AAAA.BBBB",
            &format!("{text}.extra"),
            &text.replace("/q#", "/p#"),
            &"x".repeat(MAX_QR_LEN + 1),
        ] {
            assert_eq!(
                DesktopQr::parse(bad, &[origin()]),
                Err(WireError::NotALoginCode),
                "{bad}"
            );
        }
    }

    #[test]
    fn claim_proof_depends_on_secret_origin_and_rid() {
        let o = origin();
        let p = claim_proof(&[1; 16], &o, &[2; 16]);
        assert_ne!(p, claim_proof(&[3; 16], &o, &[2; 16]));
        assert_ne!(p, claim_proof(&[1; 16], &o, &[4; 16]));
        let other = Origin::parse("https://other.it").unwrap();
        assert_ne!(p, claim_proof(&[1; 16], &other, &[2; 16]));
    }

    #[test]
    fn statements_are_distinct_per_purpose() {
        let o = origin();
        let login = CardStatement::Login {
            origin: &o,
            challenge: "abc",
        }
        .to_bytes();
        assert_eq!(
            login,
            b"cie-companion/v1 card-login\nhttps://login.example.it\nabc"
        );
        let enroll = CardStatement::DeviceEnroll {
            origin: &o,
            challenge: "abc",
            device_key: "k",
        }
        .to_bytes();
        assert_ne!(login, enroll);
    }

    #[test]
    fn transcript_bytes_are_canonical_and_strict() {
        let t = ApprovalTranscript {
            v: 1,
            iss: origin(),
            kind: TranscriptKind::Approval,
            id: "r".into(),
            service: "INPS".into(),
            level: 2,
            context_hash: "h".into(),
            decision: Decision::Approve,
            number: Some(42),
            device_id: "d".into(),
            iat: 1_700_000_000,
            jti: "j".into(),
        };
        let bytes = t.to_bytes();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"iss":"https://login.example.it","kind":"approval","id":"r","service":"INPS","level":2,"context_hash":"h","decision":"approve","number":42,"device_id":"d","iat":1700000000,"jti":"j"}"#
        );
        let back: ApprovalTranscript = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, t);
        let extra = String::from_utf8(bytes).unwrap().replace("}", r#","x":1}"#);
        assert!(serde_json::from_str::<ApprovalTranscript>(&extra).is_err());
    }

    #[test]
    fn otp_enroll_statement_and_redaction() {
        let s = otp_enroll_statement(&origin(), "d", 7, "n");
        assert_eq!(
            s,
            b"cie-companion/v1 otp-enroll\nhttps://login.example.it\nd\n7\nn"
        );
        assert_ne!(s, pending_statement(&origin(), "d", 7, "n"));
        let e = OtpEnrolled {
            uri: "otpauth://totp/x?secret=GEZDGNBV".into(),
        };
        assert!(!format!("{e:?}").contains("GEZ"));
        let l = OtpLoginRequest {
            codice_fiscale: "X".into(),
            code: "123456".into(),
        };
        assert!(!format!("{l:?}").contains("123456"));
    }

    #[test]
    fn api_error_json_is_stable() {
        let e = ApiError {
            error: ErrorCode::WrongCode,
            message: "wrong code".into(),
            message_it: "codice errato".into(),
            tries_left: Some(2),
            retry_after: None,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"error":"wrong_code","message":"wrong code","message_it":"codice errato","tries_left":2}"#
        );
    }
}
