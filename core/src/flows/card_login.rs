//! Phone-tap CIE login (docs/protocol.md §1): a challenge fetched before the tap, the card
//! signs `CardStatement::Login` in one offline tap, then one post. A lost tag resumes the
//! same tap without a new challenge; an expired challenge is replaced only while the card
//! has not signed it.

use super::login::{LoginOutcome, LoginProgress, PinEntry};
use super::pairing::SharedStore;
use super::step::{CardStep, StepError};
use super::wire::{
    self, CardLoginRequest, CardStatement, ChallengePurpose, ChallengeRequest, LoginResponse,
    Origin,
};
use crate::apdu::ApduChannel;
use crate::applets::ias::secure::Randomness;
use crate::net::{ApiClient, Retry};

/// A completed login: the server's answer and what the card gave.
#[derive(Debug)]
pub struct CardLoginDone {
    /// Identity, level and the app's session token.
    pub response: LoginResponse,
    /// The tap (NIS, certificate, pairing).
    pub outcome: LoginOutcome,
}

/// One phone-tap login.
pub struct CardLogin {
    origin: Origin,
    card: CardStep,
}

impl std::fmt::Debug for CardLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardLogin")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CardLogin {
    /// Start a login at `origin` (on the client's list): fetches the challenge now, before
    /// the user taps. With a `store`, an 8-digit login pairs the card.
    pub async fn start(
        api: &ApiClient,
        origin: Origin,
        store: Option<SharedStore>,
    ) -> Result<Self, StepError> {
        let o = origin.clone();
        let statement = Box::new(move |challenge: &str| {
            CardStatement::Login {
                origin: &o,
                challenge,
            }
            .to_bytes()
        });
        let request = ChallengeRequest {
            purpose: ChallengePurpose::Login,
            rid: None,
            claim_token: None,
        };
        let mut card = CardStep::new(request, statement, store);
        card.prepare(api, &origin).await?;
        Ok(Self { origin, card })
    }

    /// When the challenge expires (server time); a later tap fetches a new one first.
    pub fn expires_at(&self) -> Option<u64> {
        self.card.expires_at()
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&mut self) {
        self.card.confirm_last_try();
    }

    /// Fetch a fresh challenge if the held one is (nearly) expired and unsigned; call it
    /// before showing the NFC sheet so no network runs while the card is held.
    pub async fn prepare(&mut self, api: &ApiClient) -> Result<(), StepError> {
        self.card.prepare(api, &self.origin).await
    }

    /// Tap (or tap again after a lost tag), then post the signature once.
    pub async fn tap<C: ApduChannel + ?Sized>(
        &mut self,
        api: &ApiClient,
        ch: &C,
        pin: Option<PinEntry>,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<CardLoginDone, StepError> {
        let (challenge, outcome) = self
            .card
            .tap(api, &self.origin, ch, pin, rng, progress)
            .await?;
        let request = CardLoginRequest {
            challenge_id: challenge.challenge_id,
            certificate: wire::b64(&outcome.certificate.der),
            signature: wire::b64(&outcome.signature),
        };
        let response: LoginResponse = api
            .post(&self.origin, "/api/v1/card/login", &request, Retry::Never)
            .await?;
        Ok(CardLoginDone { response, outcome })
    }
}
