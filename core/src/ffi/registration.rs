//! Registration with the CIE on the UniFFI surface (issue 12): `CompanionClient.
//! startRegistration(origin, can)` fetches the challenge, `tap` reads the card and returns
//! what the citizen must see, `submit` sends it — only after the shell showed the preview
//! and the citizen confirmed.

use std::sync::{Arc, Mutex, PoisonError};

use super::companion::{CompanionClient, Slot};
use super::document::{DocumentListener, Forward, Portrait};
use super::{CardError, FlowError};
use crate::apdu::CardChannel;
use crate::applets::emrtd::Can;
use crate::applets::ias::secure::OsRandomness;
use crate::flows::register::{RegisterError, Registration};
use crate::flows::registration::{RegistrationAttributes, RegistrationDraft, RegistrationError};
use crate::flows::wire::Identity;
use crate::net::ApiClient;
use crate::transport::CardTransport;

/// What the tap read, to show before anything is sent.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct RegistrationPreview {
    /// The holder's data as the chip holds it.
    pub attributes: RegistrationAttributes,
    /// The card's NIS.
    pub nis: String,
    /// The photo.
    pub portrait: Option<Portrait>,
    /// What will be sent, in Italian (one line each).
    pub sent_items_it: Vec<String>,
    /// The same in English.
    pub sent_items_en: Vec<String>,
}

impl std::fmt::Debug for RegistrationPreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationPreview")
            .finish_non_exhaustive()
    }
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RegistrationResult {
    /// The identity created, or the existing one a renewed card was linked to.
    pub identity: Identity,
    /// Assurance level (3).
    pub level: u8,
    /// A renewed card linked to an existing identity.
    pub linked_to_existing: bool,
}

impl From<RegistrationError> for CardError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::Ias(i) => i.into(),
            RegistrationError::Emrtd(m) => m.into(),
            RegistrationError::Missing(_) => Self::NotFound,
            e @ RegistrationError::Data(_) => Self::InvalidResponse {
                reason: e.to_string(),
            },
        }
    }
}

impl From<RegisterError> for FlowError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Card(c) => CardError::from(c).into(),
            RegisterError::Net(n) => n.into(),
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CompanionClient {
    /// Registration at `origin` with the card's `can` (6 digits printed on the front):
    /// fetches the challenge now, before the NFC sheet.
    pub async fn start_registration(
        &self,
        origin: String,
        can: String,
    ) -> Result<Arc<RegistrationSession>, FlowError> {
        let origin = self.api.origin(&origin)?;
        let can = Can::new(&can).map_err(CardError::from)?;
        let flow = Registration::start(&self.api, origin, can).await?;
        Ok(Arc::new(RegistrationSession {
            api: self.api.clone(),
            flow: Slot::new(flow),
            draft: Mutex::new(None),
        }))
    }
}

/// One registration: tap, show, confirm, submit.
#[derive(uniffi::Object)]
pub struct RegistrationSession {
    api: Arc<ApiClient>,
    flow: Slot<Registration>,
    draft: Mutex<Option<RegistrationDraft>>,
}

impl std::fmt::Debug for RegistrationSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationSession")
            .finish_non_exhaustive()
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl RegistrationSession {
    /// When the server stops accepting this registration (server time).
    pub fn expires_at(&self) -> Result<u64, FlowError> {
        self.flow.with(|f| f.expires_at())
    }

    /// Tap the card (again after `TagLost`: the read resumes). No network. Show the
    /// preview; call `submit` only once the citizen confirmed it.
    pub async fn tap(
        &self,
        transport: Arc<dyn CardTransport>,
        listener: Option<Arc<dyn DocumentListener>>,
    ) -> Result<RegistrationPreview, FlowError> {
        let mut flow = self.flow.take()?;
        let ch = CardChannel::new(transport);
        let result = flow.tap(&ch, &OsRandomness, &Forward(listener)).await;
        self.flow.put(flow);
        let draft = result?;
        let portrait = draft
            .faces()
            .and_then(Result::ok)
            .and_then(|f| f.into_iter().next())
            .map(Portrait::from_face);
        let items = draft.sent_items();
        let preview = RegistrationPreview {
            attributes: draft.summary().clone(),
            nis: draft.nis(),
            portrait,
            sent_items_it: items.iter().map(|(it, _)| (*it).to_string()).collect(),
            sent_items_en: items.iter().map(|(_, en)| (*en).to_string()).collect(),
        };
        *self.draft.lock().unwrap_or_else(PoisonError::into_inner) = Some(draft);
        Ok(preview)
    }

    /// Send what `tap` read (the citizen confirmed the preview). Fails with `Busy` before
    /// a successful tap.
    pub async fn submit(&self) -> Result<RegistrationResult, FlowError> {
        let draft = self
            .draft
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(FlowError::Busy)?;
        let flow = self.flow.take()?;
        let result = flow.submit(&self.api, &draft).await;
        self.flow.put(flow);
        let done = result?;
        Ok(RegistrationResult {
            identity: done.identity,
            level: done.level,
            linked_to_existing: done.linked_to_existing,
        })
    }
}
