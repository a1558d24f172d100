//! `CompanionClient`: the three login flows on the UniFFI surface. One client per app
//! (its server origins and key pins built in); each flow is an object whose async methods
//! are the steps the shell renders between (context shown, Autorizza/Nega, PIN entry,
//! NFC sheet). Every method that touches the network runs on the tokio runtime UniFFI
//! provides (`async_runtime = "tokio"`): reqwest needs its reactor.

use super::FlowError;
use super::login::{Forward, ProgressListener, pin_entry};
use crate::apdu::CardChannel;
use crate::applets::ias::secure::OsRandomness;
use crate::flows::card_login::CardLogin;
use crate::flows::desktop_qr::DesktopApproval;
use crate::flows::device::{self, DeviceEnrollment};
use crate::flows::device_key::{DeviceSigner, sign_raw};
use crate::flows::login::PinEntry;
use crate::flows::pairing::SecretStore;
use crate::flows::wire::{Decision, DesktopQr, Identity, LoginContext, PendingApproval};
use crate::net::ApiClient;
use crate::net::platform::{HttpsTransport, ServerKeyCheck};
use crate::otp::clock::ClockOffset;
use crate::transport::CardTransport;
use std::sync::{Arc, Mutex, PoisonError};
use zeroize::Zeroizing;

/// A finished phone-tap login.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct CardLoginResult {
    /// Who logged in.
    pub identity: Identity,
    /// Level reached (3: card).
    pub level: u8,
    /// The app's session token (bearer): keep it in the keystore.
    pub session_token: String,
    /// The card's NIS.
    pub nis: String,
    /// This tap paired the card on this device (next time: last 4 PIN digits).
    pub paired_now: bool,
}

impl std::fmt::Debug for CardLoginResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardLoginResult")
            .field("identity", &self.identity)
            .field("level", &self.level)
            .field("nis", &self.nis)
            .field("paired_now", &self.paired_now)
            .finish_non_exhaustive()
    }
}

/// The code to show after a desktop approval; the user types it on the computer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DesktopCode {
    /// 4 digits.
    pub code: String,
    /// Unix seconds (server time).
    pub expires_at: u64,
}

/// A device bound to the card holder.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrolledDevice {
    /// The server this device is enrolled at.
    pub origin: String,
    /// Names the device key in approvals: store it with the key.
    pub device_id: String,
    /// The holder.
    pub identity: Identity,
}

/// An approval request waiting for the user (number matching).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingApprovalInfo {
    /// The server asking.
    pub origin: String,
    /// Request id.
    pub request_id: String,
    /// What to show.
    pub context: LoginContext,
    /// Its hash (checked against `context`), signed with the decision.
    pub context_hash: String,
    /// Three two-digit numbers; the user picks the one shown on the computer.
    pub choices: Vec<u8>,
    /// Unix seconds (server time).
    pub expires_at: u64,
}

/// The app's client of its login server(s).
#[derive(uniffi::Object)]
pub struct CompanionClient {
    pub(super) api: Arc<ApiClient>,
    pub(super) store: Option<Arc<dyn SecretStore>>,
}

impl std::fmt::Debug for CompanionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompanionClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

pub(super) fn pin_option(pin: Option<String>) -> Result<Option<PinEntry>, FlowError> {
    pin.map(|p| pin_entry(&Zeroizing::new(p)).map_err(FlowError::from))
        .transpose()
}

// The core's own HTTPS client: not in the mobile library (see `with_https_transport`).
#[cfg(feature = "rustls-https")]
#[uniffi::export]
impl CompanionClient {
    /// A client talking only to `origins` (`https://host[:port]`) and trusting only the
    /// server keys in `pins` (base64url SHA-256 of the SubjectPublicKeyInfo, as
    /// `companion-server` prints them; several, so keys can rotate). With a `store`, an
    /// 8-digit card login pairs the card and later taps take the last 4 digits.
    #[uniffi::constructor]
    pub fn new(
        origins: Vec<String>,
        pins: Vec<String>,
        store: Option<Arc<dyn SecretStore>>,
    ) -> Result<Arc<Self>, FlowError> {
        Ok(Arc::new(Self {
            api: Arc::new(ApiClient::new(&origins, &pins)?),
            store,
        }))
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CompanionClient {
    /// The same client with its requests sent by the platform's HTTPS stack (the shell's
    /// `transport`: HttpsURLConnection/OkHttp, URLSession) instead of the core's own. The
    /// shell's TLS trusts exactly what `server_keys` accepts — it built its connection with
    /// that check — and the core still decides everything else (origins, retries, timeouts,
    /// sizes, errors).
    #[uniffi::constructor]
    pub fn with_https_transport(
        origins: Vec<String>,
        server_keys: Arc<ServerKeyCheck>,
        store: Option<Arc<dyn SecretStore>>,
        transport: Arc<dyn HttpsTransport>,
    ) -> Result<Arc<Self>, FlowError> {
        Ok(Arc::new(Self {
            api: Arc::new(ApiClient::with_platform(&origins, server_keys, transport)?),
            store,
        }))
    }

    /// Server time minus device time, from the last answer's `Date` (for the clock
    /// warning; the flows already use it).
    pub fn clock_offset(&self) -> Option<ClockOffset> {
        self.api.clock_offset()
    }

    /// Check a scanned text without any network: the origin of a login code for one of
    /// this app's servers, or why not (`NotALoginCode`, `UntrustedSite`, `AppTooOld`).
    pub fn check_desktop_qr(&self, qr_text: String) -> Result<String, FlowError> {
        Ok(DesktopQr::parse(&qr_text, self.api.origins())?
            .origin
            .as_string())
    }

    /// Phone-tap login at `origin`: fetches the challenge now (before the NFC sheet).
    pub async fn start_card_login(
        &self,
        origin: String,
    ) -> Result<Arc<CardLoginSession>, FlowError> {
        let origin = self.api.origin(&origin)?;
        let flow = CardLogin::start(&self.api, origin, self.store.clone()).await?;
        Ok(Arc::new(CardLoginSession {
            api: self.api.clone(),
            flow: Slot::new(flow),
        }))
    }

    /// Desktop QR: parse `qr_text`, claim the rendezvous; show `context()` next.
    /// `device_id`: this device's enrolment there, if it may approve with its key.
    pub async fn claim_desktop_qr(
        &self,
        qr_text: String,
        device_name: String,
        device_id: Option<String>,
    ) -> Result<Arc<DesktopSession>, FlowError> {
        let flow = DesktopApproval::claim(
            &self.api,
            &qr_text,
            device_name,
            device_id,
            self.store.clone(),
        )
        .await?;
        Ok(Arc::new(DesktopSession {
            api: self.api.clone(),
            flow: Slot::new(flow),
        }))
    }

    /// Enrol this device's key at `origin`: reads and checks the key, fetches the
    /// challenge; then `tap` with the CIE.
    pub async fn start_device_enrollment(
        &self,
        origin: String,
        signer: Arc<dyn DeviceSigner>,
        device_name: String,
    ) -> Result<Arc<DeviceEnrollmentSession>, FlowError> {
        let origin = self.api.origin(&origin)?;
        let flow = DeviceEnrollment::start(
            &self.api,
            origin.clone(),
            signer.as_ref(),
            device_name,
            self.store.clone(),
        )
        .await?;
        Ok(Arc::new(DeviceEnrollmentSession {
            api: self.api.clone(),
            origin: origin.as_string(),
            flow: Slot::new(flow),
        }))
    }

    /// Enrol `signer`'s key with the one-time code a desktop page showed after a PIN login
    /// (residents abroad: no card); the code is spent.
    pub async fn enroll_device_with_code(
        &self,
        origin: String,
        code: String,
        signer: Arc<dyn DeviceSigner>,
        device_name: String,
    ) -> Result<EnrolledDevice, FlowError> {
        let origin = self.api.origin(&origin)?;
        let enrolled =
            device::enroll_with_code(&self.api, &origin, &code, signer.as_ref(), device_name)
                .await?;
        Ok(EnrolledDevice {
            origin: origin.as_string(),
            device_id: enrolled.device_id,
            identity: enrolled.identity,
        })
    }

    /// The approval requests waiting for this device at `origin`.
    pub async fn pending_approvals(
        &self,
        origin: String,
        device_id: String,
        signer: Arc<dyn DeviceSigner>,
    ) -> Result<Vec<PendingApprovalInfo>, FlowError> {
        let origin = self.api.origin(&origin)?;
        let list =
            device::pending_approvals(&self.api, &origin, &device_id, signer.as_ref()).await?;
        Ok(list
            .into_iter()
            .map(|p| PendingApprovalInfo {
                origin: origin.as_string(),
                request_id: p.request_id,
                context: p.context,
                context_hash: p.context_hash,
                choices: p.choices,
                expires_at: p.expires_at,
            })
            .collect())
    }

    /// The user's decision on `approval`; approving needs the `number` picked.
    pub async fn decide_approval(
        &self,
        approval: PendingApprovalInfo,
        device_id: String,
        signer: Arc<dyn DeviceSigner>,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<(), FlowError> {
        let origin = self.api.origin(&approval.origin)?;
        let pending = PendingApproval {
            request_id: approval.request_id,
            context: approval.context,
            context_hash: approval.context_hash,
            choices: approval.choices,
            expires_at: approval.expires_at,
        };
        device::decide(
            &self.api,
            &origin,
            &device_id,
            signer.as_ref(),
            &pending,
            decision,
            number,
        )
        .await?;
        Ok(())
    }
}

/// Have the device key sign `message`; the raw r‖s (64 bytes) the protocol sends, after
/// checking it against the key. For the shells' self-test after creating a key.
#[uniffi::export]
pub async fn device_signature(
    signer: Arc<dyn DeviceSigner>,
    message: Vec<u8>,
) -> Result<Vec<u8>, FlowError> {
    Ok(sign_raw(signer.as_ref(), &message).await?.to_vec())
}

/// A flow held by an FFI object: taken for the length of one call (calls never overlap:
/// a second one fails with `Busy`) and put back, so no lock is held across an await.
pub(super) struct Slot<T>(Mutex<Option<T>>);

impl<T> Slot<T> {
    pub(super) fn new(flow: T) -> Self {
        Self(Mutex::new(Some(flow)))
    }

    pub(super) fn take(&self) -> Result<T, FlowError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(FlowError::Busy)
    }

    pub(super) fn put(&self, flow: T) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(flow);
    }

    pub(super) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, FlowError> {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_mut().map(f).ok_or(FlowError::Busy)
    }
}

/// One phone-tap login.
#[derive(uniffi::Object)]
pub struct CardLoginSession {
    api: Arc<ApiClient>,
    flow: Slot<CardLogin>,
}

#[uniffi::export(async_runtime = "tokio")]
impl CardLoginSession {
    /// When the challenge expires (server time); `tap` fetches a new one first if the card
    /// has not signed it.
    pub fn expires_at(&self) -> Result<Option<u64>, FlowError> {
        self.flow.with(|f| f.expires_at())
    }

    /// Refresh an expired challenge now (before showing the NFC sheet).
    pub async fn prepare(&self) -> Result<(), FlowError> {
        let mut flow = self.flow.take()?;
        let result = flow.prepare(&self.api).await;
        self.flow.put(flow);
        Ok(result?)
    }

    /// Tap the card (again after `TagLost`: the login resumes). `pin`: all 8 digits, or
    /// the last 4 on a paired card; needed on the first tap and after a wrong PIN.
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
        let done = result?;
        Ok(CardLoginResult {
            identity: done.response.identity,
            level: done.response.level,
            session_token: done.response.session,
            nis: done.outcome.nis.text(),
            paired_now: done.outcome.paired_now,
        })
    }

    /// The user accepted spending the last PIN try (after `LastTryNeedsConfirmation`).
    pub fn confirm_last_try(&self) -> Result<(), FlowError> {
        self.flow.with(CardLogin::confirm_last_try)
    }
}

/// A claimed desktop QR, until approved or denied.
#[derive(uniffi::Object)]
pub struct DesktopSession {
    api: Arc<ApiClient>,
    flow: Slot<DesktopApproval>,
}

#[uniffi::export(async_runtime = "tokio")]
impl DesktopSession {
    /// The server that showed the QR.
    pub fn origin(&self) -> Result<String, FlowError> {
        self.flow.with(|f| f.origin().as_string())
    }

    /// What to show before "Autorizza" / "Nega".
    pub fn context(&self) -> Result<LoginContext, FlowError> {
        self.flow.with(|f| f.context().clone())
    }

    /// Decide before this (Unix seconds, server time).
    pub fn expires_at(&self) -> Result<u64, FlowError> {
        self.flow.with(|f| f.expires_at())
    }

    /// Offer "Autorizza con questo telefono" only when this is true: a service that asks for
    /// level 3 takes the card alone (the server refuses the phone's key with `CardRequired`).
    pub fn device_approval_allowed(&self) -> Result<bool, FlowError> {
        self.flow.with(|f| f.device_allowed())
    }

    /// On "Autorizza" with the CIE: fetch the card challenge while the user types the PIN.
    pub async fn prepare_card_approval(&self) -> Result<(), FlowError> {
        let mut flow = self.flow.take()?;
        let result = flow.prepare_card(&self.api).await;
        self.flow.put(flow);
        Ok(result?)
    }

    /// Approve with the CIE (tap again after `TagLost`); the code to show.
    pub async fn approve_with_card(
        &self,
        transport: Arc<dyn CardTransport>,
        pin: Option<String>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<DesktopCode, FlowError> {
        let pin = pin_option(pin)?;
        let mut flow = self.flow.take()?;
        let ch = CardChannel::new(transport);
        let result = flow
            .approve_with_card(&self.api, &ch, pin, &OsRandomness, &Forward(progress))
            .await;
        self.flow.put(flow);
        let approved = result?;
        Ok(DesktopCode {
            code: approved.code,
            expires_at: approved.expires_at,
        })
    }

    /// Approve with this enrolled device's key; the code to show.
    pub async fn approve_with_device(
        &self,
        device_id: String,
        signer: Arc<dyn DeviceSigner>,
    ) -> Result<DesktopCode, FlowError> {
        let mut flow = self.flow.take()?;
        let result = flow
            .approve_with_device(&self.api, &device_id, signer.as_ref())
            .await;
        self.flow.put(flow);
        let approved = result?;
        Ok(DesktopCode {
            code: approved.code,
            expires_at: approved.expires_at,
        })
    }

    /// "Nega"; `report` for "non sono stato io".
    pub async fn deny(&self, report: bool) -> Result<(), FlowError> {
        let mut flow = self.flow.take()?;
        let result = flow.deny(&self.api, report).await;
        self.flow.put(flow);
        Ok(result?)
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&self) -> Result<(), FlowError> {
        self.flow.with(DesktopApproval::confirm_last_try)
    }
}

/// Enrolling this device's key with a card tap.
#[derive(uniffi::Object)]
pub struct DeviceEnrollmentSession {
    api: Arc<ApiClient>,
    origin: String,
    flow: Slot<DeviceEnrollment>,
}

#[uniffi::export(async_runtime = "tokio")]
impl DeviceEnrollmentSession {
    /// Tap the card (again after `TagLost`); the enrolment.
    pub async fn tap(
        &self,
        transport: Arc<dyn CardTransport>,
        pin: Option<String>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<EnrolledDevice, FlowError> {
        let pin = pin_option(pin)?;
        let mut flow = self.flow.take()?;
        let ch = CardChannel::new(transport);
        let result = flow
            .tap(&self.api, &ch, pin, &OsRandomness, &Forward(progress))
            .await;
        self.flow.put(flow);
        let enrolled = result?;
        Ok(EnrolledDevice {
            origin: self.origin.clone(),
            device_id: enrolled.device_id,
            identity: enrolled.identity,
        })
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&self) -> Result<(), FlowError> {
        self.flow.with(DeviceEnrollment::confirm_last_try)
    }
}

#[uniffi::export]
impl ServerKeyCheck {
    /// A check trusting the server keys in `pins` (as for [`CompanionClient::new`]): give it
    /// to the HTTPS transport's TLS trust callback and to
    /// [`CompanionClient::with_https_transport`].
    #[uniffi::constructor]
    pub fn new(pins: Vec<String>) -> Result<Arc<Self>, FlowError> {
        Ok(Arc::new(ServerKeyCheck::with_pins(
            crate::net::parse_pins(&pins)?,
        )?))
    }
}
