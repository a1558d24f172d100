//! What the three network flows share: their error type, and the card step (a challenge
//! fetched before the tap, signed by the card in one offline tap that resumes after a
//! lost tag).

use super::device_key::DeviceKeyError;
use super::login::{LoginError, LoginOutcome, LoginProgress, LoginTap, PinEntry};
use super::pairing::SharedStore;
use super::wire::{self, ChallengeRequest, ChallengeResponse, Origin, WireError};
use crate::apdu::ApduChannel;
use crate::applets::ias::digest_info::DigestAlgorithm;
use crate::applets::ias::secure::Randomness;
use crate::net::{ApiClient, NetError, Retry};

/// A challenge closer than this to its end is refetched (if the card has not signed it):
/// the tap and the post must still fit in its life.
pub const CHALLENGE_MARGIN_SECS: u64 = 15;

/// Why a flow step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The card, the link or the PIN.
    #[error(transparent)]
    Card(#[from] LoginError),
    /// The network or the server.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The scanned QR.
    #[error(transparent)]
    Qr(#[from] WireError),
    /// The device key.
    #[error(transparent)]
    DeviceKey(#[from] DeviceKeyError),
    /// The server's answer contradicts the protocol (a context whose hash is not the one
    /// served, an unusable id).
    #[error("the server's answer is inconsistent ({0}); do not go on")]
    Protocol(&'static str),
    /// This login is over (approved, denied, or its result already returned).
    #[error("this request is already finished; start again")]
    Finished,
    /// The number picked is not one of those shown.
    #[error("pick one of the numbers shown")]
    InvalidChoice,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Randomness,
}

/// 16 random bytes, base64url (nonces, `jti`).
pub(crate) fn random_id() -> Result<String, StepError> {
    let mut bytes = [0u8; wire::ID_LEN];
    getrandom::fill(&mut bytes).map_err(|_| StepError::Randomness)?;
    Ok(wire::b64(&bytes))
}

/// An id the server gave that goes into a URL path: base64url-safe characters only.
pub(crate) fn path_id(id: &str) -> Result<&str, StepError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id).ok_or(StepError::Protocol("id"))
}

/// The statement the card signs, from the challenge text.
pub(crate) type Statement = Box<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// A card signature over a statement built from a fresh server challenge.
pub(crate) struct CardStep {
    request: ChallengeRequest,
    statement: Statement,
    store: Option<SharedStore>,
    challenge: Option<ChallengeResponse>,
    tap: Option<LoginTap>,
    confirm_last_try: bool,
}

impl CardStep {
    pub(crate) fn new(
        request: ChallengeRequest,
        statement: Statement,
        store: Option<SharedStore>,
    ) -> Self {
        Self {
            request,
            statement,
            store,
            challenge: None,
            tap: None,
            confirm_last_try: false,
        }
    }

    /// When the held challenge expires (Unix seconds, server time).
    pub(crate) fn expires_at(&self) -> Option<u64> {
        self.challenge.as_ref().map(|c| c.expires_at)
    }

    /// The user accepted spending the last PIN try.
    pub(crate) fn confirm_last_try(&mut self) {
        self.confirm_last_try = true;
        if let Some(tap) = &mut self.tap {
            tap.confirm_last_try();
        }
    }

    /// Fetch a challenge unless a usable one is held. Once the card has signed, the
    /// challenge is kept whatever its age (a new one would need a new signature, so a
    /// resumed tap finishes and the server judges the time).
    pub(crate) async fn prepare(
        &mut self,
        api: &ApiClient,
        origin: &Origin,
    ) -> Result<(), StepError> {
        let signed = self.tap.as_ref().is_some_and(LoginTap::has_signed);
        let fresh = self
            .challenge
            .as_ref()
            .is_some_and(|c| c.expires_at > api.now().saturating_add(CHALLENGE_MARGIN_SECS));
        if signed || fresh {
            return Ok(());
        }
        let challenge: ChallengeResponse = api
            .post(
                origin,
                "/api/v1/card/challenge",
                &self.request,
                Retry::Idempotent,
            )
            .await?;
        if wire::unb64_array::<{ wire::CHALLENGE_LEN }>(&challenge.challenge).is_none()
            || challenge.challenge_id.is_empty()
        {
            return Err(StepError::Protocol("challenge"));
        }
        if let Some(tap) = &mut self.tap {
            tap.replace_challenge((self.statement)(&challenge.challenge));
        }
        self.challenge = Some(challenge);
        Ok(())
    }

    /// Fetch a challenge if needed (before any command reaches the card), then run or
    /// resume the tap. `pin` is needed on the first tap and after a wrong PIN; a resumed
    /// tap keeps the one it had. On success the step is spent: the caller posts the
    /// result once, and a later call starts over with a new challenge.
    pub(crate) async fn tap<C: ApduChannel + ?Sized>(
        &mut self,
        api: &ApiClient,
        origin: &Origin,
        ch: &C,
        pin: Option<PinEntry>,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<(ChallengeResponse, LoginOutcome), StepError> {
        self.prepare(api, origin).await?;
        let challenge = self.challenge.clone().ok_or(StepError::Finished)?;
        let tap = match &mut self.tap {
            Some(tap) => {
                if let Some(pin) = pin {
                    tap.set_pin(pin);
                }
                tap
            }
            None => {
                let pin = pin.ok_or(LoginError::PinNeeded)?;
                self.tap.insert(LoginTap::new(
                    (self.statement)(&challenge.challenge),
                    DigestAlgorithm::Sha256,
                    pin,
                    self.store.clone(),
                ))
            }
        };
        if self.confirm_last_try {
            tap.confirm_last_try();
        }
        let outcome = tap.run(ch, rng, progress).await?;
        self.challenge = None;
        self.tap = None;
        self.confirm_last_try = false;
        Ok((challenge, outcome))
    }
}
