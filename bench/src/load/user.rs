//! Virtual users: each a desktop browser (its own cookie jar, one keep-alive connection)
//! and a phone (another keep-alive connection) running complete desktop QR logins, back to
//! back, until the stop time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cie_core::flows::wire::{
    ApprovalTranscript, ApproveRequest, ApproveResponse, CardStatement, ChallengePurpose,
    ChallengeRequest, ChallengeResponse, ClaimRequest, ClaimResponse, CodeRequest, Decision,
    DesktopQr, EnrollRequest, EnrollResponse, Origin, RendezvousCreated, TranscriptKind, VERSION,
    b64, unb64,
};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Res;

/// The virtual card's key (card-sim's test authentication key) and certificate.
const AUTH_KEY: &[u8] = include_bytes!("../../../card-sim/testdata/auth_key.pk8.der");
/// The identity the test card names.
pub const TEST_CF: &str = "TSTTST80A01H501X";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
    Chrome/126.0.0.0 Safari/537.36";

/// How the phone approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An enrolled device key (ES256), level 2.
    Device,
    /// The card (RSA-2048 PKCS#1 v1.5, signed here by the load client), level 3.
    Cie,
}

impl Method {
    /// As in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Device => "device (ES256)",
            Self::Cie => "cie (RSA-2048)",
        }
    }

    fn level(self) -> u64 {
        match self {
            Self::Device => 2,
            Self::Cie => 3,
        }
    }
}

/// The steps of one login, in order (`challenge` only with the card).
pub const STEPS: [&str; 6] = [
    "create rendezvous (browser)",
    "claim (phone, HMAC proof)",
    "card challenge (phone, cie only)",
    "approve (phone, incl. signing)",
    "code (browser)",
    "GET session (browser)",
];

/// What every user shares.
pub struct Shared {
    /// `https://127.0.0.1:PORT` of each server instance: requests go round robin (one
    /// instance in the bench; two sharing one database in the soak).
    pub bases: Vec<String>,
    next_base: AtomicUsize,
    /// How long a request whose connection was refused is retried on the next instance
    /// (zero: not retried). The soak restarts an instance; the bench does not.
    pub retry_window: Duration,
    /// Requests retried that way, whole run.
    pub retries: AtomicU64,
    pub origin: Origin,
    pub cert: reqwest::Certificate,
    pub method: Method,
    /// Enrolled devices: (id, key). ring signs: on a phone the keystore does this, off
    /// the machine under test, so the client spends as little of the shared cores on it
    /// as it can.
    pub devices: Vec<(String, ring::signature::EcdsaKeyPair)>,
    pub card_key: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
    /// Logins finishing in `[window_start, window_end)` are measured.
    pub window_start: Instant,
    pub window_end: Instant,
    jti_prefix: [u8; 8],
    jti_counter: AtomicU64,
}

impl Shared {
    /// Everything but the devices (see [`enroll_devices`]).
    pub fn new(
        bases: Vec<String>,
        origin: Origin,
        cert_der: &[u8],
        method: Method,
        window_start: Instant,
        window_end: Instant,
    ) -> Res<Self> {
        let cert = reqwest::Certificate::from_der(cert_der).map_err(|e| e.to_string())?;
        let key = rsa::RsaPrivateKey::from_pkcs8_der(AUTH_KEY).map_err(|e| e.to_string())?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            bases,
            next_base: AtomicUsize::new(0),
            retry_window: Duration::ZERO,
            retries: AtomicU64::new(0),
            origin,
            cert,
            method,
            devices: Vec::new(),
            card_key: rsa::pkcs1v15::SigningKey::new(key),
            window_start,
            window_end,
            jti_prefix: (nanos as u64).to_be_bytes(),
            jti_counter: AtomicU64::new(0),
        })
    }

    /// A client with one keep-alive connection (a browser with its own jar, or a phone).
    pub fn client(&self, cookies: bool) -> Res<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(self.cert.clone())
            .tls_built_in_root_certs(false)
            .user_agent(UA)
            .timeout(Duration::from_secs(30));
        if cookies {
            b = b.cookie_provider(Arc::new(reqwest::cookie::Jar::default()));
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The instance the next request goes to.
    fn base(&self) -> &str {
        let i = self.next_base.fetch_add(1, Ordering::Relaxed);
        self.bases
            .get(i % self.bases.len().max(1))
            .map_or("", String::as_str)
    }

    /// A fresh `jti`: unique within the run (counter) and across runs (start time).
    fn jti(&self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.jti_prefix);
        b[8..].copy_from_slice(
            &self
                .jti_counter
                .fetch_add(1, Ordering::Relaxed)
                .to_be_bytes(),
        );
        b64(&b)
    }

    fn card_sign(&self, statement: &CardStatement<'_>) -> String {
        b64(&self.card_key.sign(&statement.to_bytes()).to_bytes())
    }
}

/// A refused or failed step: `step: error code` (the ApiError code, `http NNN` or
/// `transport`).
#[derive(Debug)]
struct Failure {
    step: usize,
    code: String,
}

/// Send the request `make` builds for an instance's base URL. A refused connection (the
/// request never reached a server: safe to repeat) is retried on the next instance, counted,
/// for `retry_window`; any other transport error fails the step.
async fn send<F>(s: &Shared, step: usize, make: F) -> Result<reqwest::Response, Failure>
where
    F: Fn(&str) -> reqwest::RequestBuilder,
{
    let deadline = Instant::now() + s.retry_window;
    let resp = loop {
        match make(s.base()).send().await {
            Ok(resp) => break resp,
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                s.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(Failure {
                    step,
                    code: if e.is_timeout() {
                        "timeout".into()
                    } else if e.is_connect() {
                        "connection refused".into()
                    } else {
                        "transport".into()
                    },
                });
            }
        }
    };
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["error"]
        .as_str()
        .map_or_else(|| format!("http {status}"), |c| format!("{c} ({status})"));
    Err(Failure { step, code })
}

async fn json<T: serde::de::DeserializeOwned>(
    step: usize,
    resp: reqwest::Response,
) -> Result<T, Failure> {
    resp.json().await.map_err(|_| Failure {
        step,
        code: "bad body".into(),
    })
}

/// Enrol `n` device keys with the card (one card-signed `DeviceEnroll` each).
pub async fn enroll_devices(shared: &mut Shared, n: usize) -> Res<()> {
    let phone = shared.client(false)?;
    for i in 0..n {
        let seed = [u8::try_from(i % 250).unwrap_or(0) + 1; 32];
        let key = p256::ecdsa::SigningKey::from_slice(&seed).map_err(|e| e.to_string())?;
        let public = b64(key.verifying_key().to_encoded_point(false).as_bytes());
        let req = ChallengeRequest {
            purpose: ChallengePurpose::DeviceEnroll,
            rid: None,
            claim_token: None,
        };
        let post = |b: &str| phone.post(format!("{b}/api/v1/card/challenge")).json(&req);
        let ch: ChallengeResponse = async { json(0, send(shared, 0, post).await?).await }
            .await
            .map_err(|f| format!("enrol challenge: {}", f.code))?;
        let signature = shared.card_sign(&CardStatement::DeviceEnroll {
            origin: &shared.origin,
            challenge: &ch.challenge,
            device_key: &public,
        });
        let req = EnrollRequest {
            challenge_id: ch.challenge_id,
            certificate: b64(card_sim::ias::pki::AUTH_CERT_DER),
            signature,
            device_key: public,
            device_name: format!("Load phone {i}"),
        };
        let post = |b: &str| phone.post(format!("{b}/api/v1/devices")).json(&req);
        let enrolled: EnrollResponse = async { json(0, send(shared, 0, post).await?).await }
            .await
            .map_err(|f| format!("enrol: {}", f.code))?;
        let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &seed,
            key.verifying_key().to_encoded_point(false).as_bytes(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| e.to_string())?;
        shared.devices.push((enrolled.device_id, pair));
    }
    Ok(())
}

/// What one user did.
#[derive(Default)]
pub struct UserOut {
    /// Whole-login latencies (µs) of the logins measured.
    pub logins: Vec<u32>,
    /// Per-step latencies (µs) of the logins measured.
    pub steps: [Vec<u32>; STEPS.len()],
    /// `step: code` → count, whole run.
    pub errors: BTreeMap<String, u64>,
    /// Rendezvous created (200), whole run including warm-up.
    pub created: u64,
    /// Acknowledged logins (session cookie received), whole run: (rid, SHA-256 of the
    /// session token) — the ledger the database is checked against.
    pub completed: Vec<(String, [u8; 32])>,
    /// Rendezvous created whose login then failed.
    pub failed_rids: Vec<String>,
}

/// Run logins back to back until `window_end`, then return (the last one finishes).
pub async fn run_user(shared: Arc<Shared>, index: usize) -> Res<UserOut> {
    let browser = shared.client(true)?;
    let phone = shared.client(false)?;
    let mut out = UserOut::default();
    while Instant::now() < shared.window_end {
        let started = Instant::now();
        let mut times = [0u32; STEPS.len()];
        let (mut rid, mut acked) = (None, None);
        let result = login(
            &shared, index, &browser, &phone, &mut times, &mut rid, &mut acked,
        )
        .await;
        let finished = Instant::now();
        if rid.is_some() {
            out.created += 1;
        }
        match result {
            Ok(session_hash) => {
                if let Some(rid) = rid {
                    out.completed.push((rid, session_hash));
                }
                if finished >= shared.window_start && finished < shared.window_end {
                    out.logins.push(micros(finished - started));
                    for (i, t) in times.iter().enumerate() {
                        if !(i == 2 && shared.method == Method::Device) {
                            out.steps[i].push(*t);
                        }
                    }
                }
            }
            Err(f) => {
                *out.errors
                    .entry(format!("{}: {}", STEPS[f.step], f.code))
                    .or_default() += 1;
                // The session cookie arrived before the confirming GET failed: the login
                // was acknowledged, so the ledger keeps it (the database must hold it).
                match (rid, acked) {
                    (Some(rid), Some(hash)) => out.completed.push((rid, hash)),
                    (rid, _) => out.failed_rids.extend(rid),
                }
                // Do not spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok(out)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// One complete desktop QR login; the SHA-256 of the session token on success.
async fn login(
    s: &Shared,
    index: usize,
    browser: &reqwest::Client,
    phone: &reqwest::Client,
    times: &mut [u32; STEPS.len()],
    rid_out: &mut Option<String>,
    acked: &mut Option<[u8; 32]>,
) -> Result<[u8; 32], Failure> {
    let mut t = Instant::now();
    let mut lap = |times: &mut [u32; STEPS.len()], i: usize| {
        let now = Instant::now();
        times[i] = micros(now - t);
        t = now;
    };

    // 1. The desktop page asks for a QR.
    let created: RendezvousCreated = json(
        0,
        send(s, 0, |base| {
            browser
                .post(format!("{base}/api/v1/desktop/rendezvous"))
                .json(&serde_json::json!({}))
        })
        .await?,
    )
    .await?;
    *rid_out = Some(created.rid.clone());
    let rid = created.rid;
    lap(times, 0);

    // 2. The phone scans it and claims with the HMAC proof.
    let bad = |step: usize, what: &str| Failure {
        step,
        code: what.to_owned(),
    };
    let qr = DesktopQr::parse(&created.qr, std::slice::from_ref(&s.origin))
        .map_err(|_| bad(1, "bad QR"))?;
    let device = s
        .devices
        .get(index % s.devices.len().max(1))
        .filter(|_| s.method == Method::Device);
    let claim = ClaimRequest {
        rid: rid.clone(),
        proof: b64(&qr.claim_proof()),
        device_name: "Pixel 8".into(),
        device_id: device.map(|(id, _)| id.clone()),
    };
    let claimed: ClaimResponse = json(
        1,
        send(s, 1, |base| {
            phone
                .post(format!("{base}/api/v1/rendezvous/claim"))
                .json(&claim)
        })
        .await?,
    )
    .await?;
    lap(times, 1);

    // 3. The phone approves: device key, or the card over a fresh challenge.
    let approve = match (s.method, device) {
        (Method::Device, Some((device_id, key))) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let transcript = ApprovalTranscript {
                v: VERSION,
                iss: s.origin.clone(),
                kind: TranscriptKind::Desktop,
                id: rid.clone(),
                service: claimed.context.service.clone(),
                level: claimed.context.level,
                context_hash: claimed.context_hash.clone(),
                decision: Decision::Approve,
                number: None,
                device_id: device_id.clone(),
                iat: now,
                jti: s.jti(),
            }
            .to_bytes();
            let sig = key
                .sign(&ring::rand::SystemRandom::new(), &transcript)
                .map_err(|_| bad(3, "ES256 signing failed"))?;
            ApproveRequest::Device {
                claim_token: claimed.claim_token,
                transcript: b64(&transcript),
                signature: b64(sig.as_ref()),
            }
        }
        (Method::Device, None) => return Err(bad(3, "no enrolled device")),
        (Method::Cie, _) => {
            let req = ChallengeRequest {
                purpose: ChallengePurpose::DesktopApprove,
                rid: Some(rid.clone()),
                claim_token: Some(claimed.claim_token.clone()),
            };
            let ch: ChallengeResponse = json(
                2,
                send(s, 2, |base| {
                    phone
                        .post(format!("{base}/api/v1/card/challenge"))
                        .json(&req)
                })
                .await?,
            )
            .await?;
            lap(times, 2);
            let signature = s.card_sign(&CardStatement::DesktopApprove {
                origin: &s.origin,
                rid: &rid,
                context_hash: &claimed.context_hash,
                challenge: &ch.challenge,
            });
            ApproveRequest::Cie {
                claim_token: claimed.claim_token,
                challenge_id: ch.challenge_id,
                certificate: b64(card_sim::ias::pki::AUTH_CERT_DER),
                signature,
            }
        }
    };
    let approved: ApproveResponse = json(
        3,
        send(s, 3, |base| {
            phone
                .post(format!("{base}/api/v1/rendezvous/{rid}/approve"))
                .json(&approve)
        })
        .await?,
    )
    .await?;
    lap(times, 3);

    // 4. The user types the code on the desktop: the session cookie lands in its jar.
    let code = CodeRequest {
        code: approved.code,
    };
    let resp = send(s, 4, |base| {
        browser
            .post(format!("{base}/api/v1/desktop/rendezvous/{rid}/code"))
            .json(&code)
    })
    .await?;
    let token = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("cc_session="))
        .and_then(|v| v.split(';').next())
        .and_then(unb64)
        .ok_or_else(|| bad(4, "no session cookie"))?;
    let done: Value = json(4, resp).await?;
    if done["identity"]["codice_fiscale"] != TEST_CF {
        return Err(bad(4, "wrong identity"));
    }
    let session_hash: [u8; 32] = Sha256::digest(&token).into();
    *acked = Some(session_hash);
    lap(times, 4);

    // 5. The page reloads as the logged-in user.
    let me: Value = json(
        5,
        send(s, 5, |base| browser.get(format!("{base}/api/v1/session"))).await?,
    )
    .await?;
    if me["identity"]["codice_fiscale"] != TEST_CF || me["level"] != s.method.level() {
        return Err(bad(5, "wrong identity or level"));
    }
    lap(times, 5);
    Ok(session_hash)
}

/// The peer: `GET /api/v1/session` without a cookie (404 before any database access) as
/// fast as the same users can, until `window_end`: the TLS + HTTP + routing upper bound.
pub async fn run_trivial(shared: Arc<Shared>) -> Res<(u64, BTreeMap<String, u64>)> {
    let client = shared.client(false)?;
    let url = format!(
        "{}/api/v1/session",
        shared.bases.first().ok_or("no server")?
    );
    let (mut n, mut errors) = (0u64, BTreeMap::new());
    while Instant::now() < shared.window_end {
        let ok = match client.get(&url).send().await {
            Ok(r) => r.status().as_u16() == 404 && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        let now = Instant::now();
        if !ok {
            *errors.entry("trivial GET".to_owned()).or_default() += 1;
        } else if now >= shared.window_start && now < shared.window_end {
            n += 1;
        }
    }
    Ok((n, errors))
}
