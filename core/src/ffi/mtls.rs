//! The mutual-TLS card login on the UniFFI surface (docs/protocol.md §1, mutual-TLS
//! mode): `CompanionClient.start_mtls_login(origin)` gives a session whose `tap` does the
//! whole login in one tap, and resumes after a lost tag; `mtls_login` is the one-call form
//! for shells that start over instead.

use super::FlowError;
use super::companion::{CardLoginResult, CompanionClient, Slot, pin_option};
use super::login::{Forward, ProgressListener};
use crate::apdu::CardChannel;
use crate::applets::ias::secure::OsRandomness;
use crate::flows::mtls_login::{MtlsLogin, MtlsLoginDone};
use crate::net::ApiClient;
use crate::transport::CardTransport;
use std::sync::Arc;

#[uniffi::export(async_runtime = "tokio")]
impl CompanionClient {
    /// Mutual-TLS login at `origin` (the server's mutual-TLS listener, on this client's
    /// list and pinned like the others). No network yet: `tap` does it all.
    pub fn start_mtls_login(&self, origin: String) -> Result<Arc<MtlsLoginSession>, FlowError> {
        let origin = self.api.origin(&origin)?;
        let flow = MtlsLogin::new(&self.api, origin, self.store.clone())?;
        Ok(Arc::new(MtlsLoginSession {
            api: self.api.clone(),
            flow: Slot::new(flow),
        }))
    }

    /// Mutual-TLS login in one call: a lost tag means calling it again, PIN included, and
    /// starting over loses what the session form keeps (the card's identity, and the
    /// check that a PIN try whose answer was lost is reported rather than retried), so
    /// prefer `start_mtls_login` + `tap`. `pin`: all 8 digits, or the last 4 on a paired
    /// card.
    pub async fn mtls_login(
        &self,
        origin: String,
        transport: Arc<dyn CardTransport>,
        pin: String,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<CardLoginResult, FlowError> {
        self.start_mtls_login(origin)?
            .tap(transport, Some(pin), progress)
            .await
    }
}

/// One mutual-TLS login, until it succeeds.
#[derive(uniffi::Object)]
pub struct MtlsLoginSession {
    api: Arc<ApiClient>,
    flow: Slot<MtlsLogin>,
}

impl std::fmt::Debug for MtlsLoginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsLoginSession").finish_non_exhaustive()
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl MtlsLoginSession {
    /// Tap the card (again after `TagLost`: the login resumes on the same card). The card
    /// must stay in the field during the handshake, a network round trip. `pin`: needed on
    /// the first tap and after a wrong PIN.
    pub async fn tap(
        &self,
        transport: Arc<dyn CardTransport>,
        pin: Option<String>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<CardLoginResult, FlowError> {
        let pin = pin_option(pin)?;
        let mut flow = self.flow.take()?;
        let ch = CardChannel::new(transport);
        let result = flow
            .tap(&self.api, &ch, pin, &OsRandomness, &Forward(progress))
            .await;
        self.flow.put(flow);
        let MtlsLoginDone { response, outcome } = result?;
        Ok(CardLoginResult {
            identity: response.identity,
            level: response.level,
            session_token: response.session,
            nis: outcome.nis.text(),
            paired_now: outcome.paired_now,
        })
    }

    /// The user accepted spending the last PIN try (after `LastTryNeedsConfirmation`).
    pub fn confirm_last_try(&self) -> Result<(), FlowError> {
        self.flow.with(MtlsLogin::confirm_last_try)
    }
}
