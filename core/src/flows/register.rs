//! Registration with the CIE over the network (feature `net`): the challenge fetched
//! before the tap, the offline tap ([`super::registration`]), the summary shown, and the
//! post only after the citizen confirmed.
//!
//! ```no_run
//! # async fn demo<C: cie_core::apdu::ApduChannel>(api: &cie_core::net::ApiClient, card: &C,
//! #   origin: cie_core::flows::wire::Origin) -> Result<(), cie_core::flows::register::RegisterError> {
//! use cie_core::applets::emrtd::{Can, OsRandomness};
//! use cie_core::flows::document::NoProgress;
//! use cie_core::flows::register::Registration;
//! let can = Can::new("123456").map_err(cie_core::flows::registration::RegistrationError::from)?;
//! let mut reg = Registration::start(api, origin, can).await?;
//! let draft = reg.tap(card, &OsRandomness, &NoProgress).await?;
//! // … show draft.summary(), then, once the citizen confirmed:
//! let done = reg.submit(api, &draft).await?;
//! # let _ = done; Ok(()) }
//! ```

use super::document::DocumentProgress;
use super::registration::{RegistrationDraft, RegistrationError, RegistrationRead};
use super::registration_wire::{
    REGISTRATION_CHALLENGE_PATH, REGISTRATION_PATH, RegistrationChallengeRequest,
    RegistrationResponse, registration_challenge,
};
use super::wire::{ChallengeResponse, Origin};
use crate::apdu::ApduChannel;
use crate::applets::emrtd::{Can, Randomness};
use crate::net::{ApiClient, NetError, Retry};

/// Why a registration step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The card.
    #[error(transparent)]
    Card(#[from] RegistrationError),
    /// The network or the server (a refusal carries the server's reason).
    #[error(transparent)]
    Net(#[from] NetError),
}

impl RegisterError {
    /// The message in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::Card(e) => e.message_it(),
            Self::Net(e) => e.message_it(),
        }
    }
}

/// One registration: challenge held, tap, confirm, submit.
pub struct Registration {
    origin: Origin,
    challenge: ChallengeResponse,
    read: RegistrationRead,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("origin", &self.origin)
            .field("expires_at", &self.challenge.expires_at)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Fetch the server's challenge (before the user taps: no network while the card is
    /// held).
    pub async fn start(api: &ApiClient, origin: Origin, can: Can) -> Result<Self, RegisterError> {
        let challenge: ChallengeResponse = api
            .post(
                &origin,
                REGISTRATION_CHALLENGE_PATH,
                &RegistrationChallengeRequest {},
                Retry::Idempotent,
            )
            .await?;
        let to_sign = registration_challenge(&origin, &challenge.challenge);
        Ok(Self {
            origin,
            challenge,
            read: RegistrationRead::new(can, &to_sign),
        })
    }

    /// When the server stops accepting this challenge (server time): past it, start again.
    pub fn expires_at(&self) -> u64 {
        self.challenge.expires_at
    }

    /// The tap (or the next one after a lost tag). No network.
    pub async fn tap<C: ApduChannel>(
        &mut self,
        ch: &C,
        rng: &dyn Randomness,
        progress: &dyn DocumentProgress,
    ) -> Result<RegistrationDraft, RegisterError> {
        Ok(self.read.tap(ch, rng, progress).await?)
    }

    /// Send what the citizen confirmed. Never retried (the challenge is single-use).
    pub async fn submit(
        &self,
        api: &ApiClient,
        draft: &RegistrationDraft,
    ) -> Result<RegistrationResponse, RegisterError> {
        let request = draft.request(&self.challenge.challenge_id);
        Ok(api
            .post(&self.origin, REGISTRATION_PATH, &request, Retry::Never)
            .await?)
    }
}
