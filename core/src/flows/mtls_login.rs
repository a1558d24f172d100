//! CIE login by mutual TLS (docs/protocol.md §1, mutual-TLS mode): the way the official
//! IdP authenticates, for servers that accept nothing else. One tap: the card is
//! identified, the PIN verified and the certificate taken (pairing cache or card), then,
//! with the card still in the field, the TLS 1.2 handshake runs and the card signs its
//! CertificateVerify; the login answer comes back on the same connection.
//!
//! A wrong PIN is found before any network (the PIN is verified before the handshake
//! starts), so it is the card's typed error with the tries left. A lost tag keeps the
//! [`LoginTap`] (PIN, card identity, certificate read): tapping again starts a new
//! handshake on the same card.

use super::login::{LoginError, LoginProgress, LoginStep, LoginTap, PinEntry, SigningOutcome};
use super::pairing::SharedStore;
use super::step::StepError;
use super::wire::{LoginResponse, Origin};
use crate::apdu::ApduChannel;
use crate::applets::ias::digest_info::DigestAlgorithm;
use crate::applets::ias::secure::Randomness;
use crate::net::{ApiClient, NetError, card_key};

/// The endpoint on the server's mutual-TLS listener.
pub const MTLS_LOGIN_PATH: &str = "/api/v1/card/mtls-login";

/// A completed mutual-TLS login.
pub struct MtlsLoginDone {
    /// Identity, level and the app's session token.
    pub response: LoginResponse,
    /// The tap (NIS, certificate, pairing).
    pub outcome: SigningOutcome,
}

impl std::fmt::Debug for MtlsLoginDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the session token.
        f.debug_struct("MtlsLoginDone")
            .field("identity", &self.response.identity)
            .field("level", &self.response.level)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// One mutual-TLS login, possibly over several taps.
pub struct MtlsLogin {
    origin: Origin,
    store: Option<SharedStore>,
    tap: Option<LoginTap>,
    confirm_last_try: bool,
}

impl std::fmt::Debug for MtlsLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsLogin")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl MtlsLogin {
    /// A login at `origin`, the server's mutual-TLS listener (on the client's list; its
    /// key pinned like the other origins). With a `store`, an 8-digit login pairs the
    /// card and later logins take the last 4 digits and skip the certificate read.
    pub fn new(
        api: &ApiClient,
        origin: Origin,
        store: Option<SharedStore>,
    ) -> Result<Self, StepError> {
        api.url(&origin, MTLS_LOGIN_PATH)?;
        Ok(Self {
            origin,
            store,
            tap: None,
            confirm_last_try: false,
        })
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&mut self) {
        self.confirm_last_try = true;
        if let Some(tap) = &mut self.tap {
            tap.confirm_last_try();
        }
    }

    /// Tap (or tap again after a lost tag): the card work, the handshake it signs and the
    /// login request, all while the card is held. `pin` is needed on the first tap and
    /// after a wrong PIN.
    pub async fn tap<C: ApduChannel + ?Sized>(
        &mut self,
        api: &ApiClient,
        ch: &C,
        pin: Option<PinEntry>,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<MtlsLoginDone, StepError> {
        let step = |s: LoginStep| progress.on_step(s, s.index() - 1, LoginStep::ALL);
        let url = crate::net::parsed_url(&api.url(&self.origin, MTLS_LOGIN_PATH)?)?;
        let tap = match &mut self.tap {
            Some(tap) => {
                if let Some(pin) = pin {
                    tap.set_pin(pin);
                }
                tap
            }
            None => {
                let pin = pin.ok_or(LoginError::PinNeeded)?;
                // The challenge is unused: the message signed is the handshake transcript.
                self.tap.insert(LoginTap::new(
                    Vec::new(),
                    DigestAlgorithm::Sha256,
                    pin,
                    self.store.clone(),
                ))
            }
        };
        if self.confirm_last_try {
            tap.confirm_last_try();
        }
        let signer = tap.open_for_signing(ch, rng, progress).await?;
        let (config, mut requests) =
            card_key::client_config(api.pins(), signer.certificate_der().to_vec())?;
        let answer = card_key::spawn_post(config, url, b"{}".to_vec())?;
        // Serve the handshake's signature requests until the connection is gone (its
        // thread drops the key, which ends the stream).
        let mut card_error = None;
        let mut signed = 0u32;
        while let Some(request) = requests.recv().await {
            if card_error.is_some() {
                request.reply(None);
                continue;
            }
            step(LoginStep::Signing);
            match signer.sign(request.message()).await {
                Ok(signature) => {
                    signed += 1;
                    request.reply(Some(signature));
                }
                Err(e) => {
                    card_error = Some(e);
                    request.reply(None);
                }
            }
        }
        let answer = answer.await.unwrap_or_else(|_| {
            Err(NetError::Offline {
                reason: "the TLS connection ended without an answer".into(),
            })
        });
        let outcome = tap.finish_signing(signer, signed > 0 && card_error.is_none())?;
        // The card's own failure (tag lost, not genuine) explains a failed handshake
        // better than the TLS error it caused.
        if let Some(e) = card_error {
            return Err(e.into());
        }
        step(LoginStep::Done);
        let answer = answer?;
        api.record(&answer);
        let body = answer.into_body()?;
        if signed == 0 {
            // A 2xx from a listener that never asked for the card is not a card login.
            return Err(StepError::Protocol("the server did not ask for the card"));
        }
        let response: LoginResponse =
            serde_json::from_slice(&body).map_err(|e| NetError::BadResponse {
                reason: e.to_string(),
            })?;
        self.tap = None;
        self.confirm_last_try = false;
        Ok(MtlsLoginDone { response, outcome })
    }
}
