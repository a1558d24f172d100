//! `CieLogin`: the one-tap login on the UniFFI surface. The app fetches the server's
//! challenge, builds a `CieLogin`, then calls `tap` each time the card is presented
//! (again after a lost tag: the login resumes).

use super::CardError;
use crate::apdu::CardChannel;
use crate::applets::ias::digest_info::DigestAlgorithm;
use crate::applets::ias::pin::Pin;
use crate::applets::ias::secure::OsRandomness;
use crate::flows::login::{LoginProgress, LoginStep, LoginTap, PinEntry};
use crate::flows::pairing::SecretStore;
use crate::transport::CardTransport;
use std::sync::{Arc, Mutex, PoisonError};
use zeroize::Zeroizing;

/// Receives the login's progress (implemented by the app's NFC sheet).
#[uniffi::export(foreign)]
pub trait ProgressListener: Send + Sync {
    /// `step` started; `done` of `total` steps are behind.
    fn on_step(&self, step: LoginStep, done: u32, total: u32);
    /// Within `step` (the certificate read): `done` of `total` bytes read, for a
    /// percentage ("lettura certificato 40%"). Called after each card command of the read.
    fn on_bytes(&self, step: LoginStep, done: u32, total: u32);
}

pub(crate) struct Forward(pub(crate) Option<Arc<dyn ProgressListener>>);

impl LoginProgress for Forward {
    fn on_step(&self, step: LoginStep, done: u32, total: u32) {
        if let Some(listener) = &self.0 {
            listener.on_step(step, done, total);
        }
    }

    fn on_bytes(&self, step: LoginStep, done: u32, total: u32) {
        if let Some(listener) = &self.0 {
            listener.on_bytes(step, done, total);
        }
    }
}

/// What the app sends to its server after the tap.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LoginResult {
    /// The card's NIS (12 digits).
    pub nis: String,
    /// Holder's codice fiscale from the certificate.
    pub codice_fiscale: Option<String>,
    /// Holder's given name.
    pub given_name: Option<String>,
    /// Holder's surname.
    pub surname: Option<String>,
    /// Certificate validity end (Unix seconds).
    pub certificate_not_after: u64,
    /// The authentication certificate (DER).
    pub certificate_der: Vec<u8>,
    /// The card's PKCS#1 v1.5 signature over the challenge, already checked against the
    /// certificate.
    pub signature: Vec<u8>,
    /// The certificate came from this device's pairing, not from the card.
    pub certificate_from_cache: bool,
    /// This tap paired the card on this device.
    pub paired_now: bool,
}

/// One login, over one or more taps.
#[derive(uniffi::Object)]
pub struct CieLogin {
    tap: Mutex<Option<LoginTap>>,
}

pub(crate) fn pin_entry(pin: &str) -> Result<PinEntry, CardError> {
    let invalid = |e: crate::applets::ias::pin::PinFormatError| CardError::InvalidPin {
        reason: e.to_string(),
    };
    match pin.len() {
        4 if pin.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(PinEntry::LastFour(Zeroizing::new(pin.to_owned())))
        }
        4 => Err(invalid(
            crate::applets::ias::pin::PinFormatError::NotFourDigits,
        )),
        _ => Pin::new(pin).map(PinEntry::Full).map_err(invalid),
    }
}

#[uniffi::export]
impl CieLogin {
    /// A login signing `challenge` (from the server, fetched before the tap) with
    /// `algorithm`. `pin` is all 8 digits, or the last 4 on a paired card. With a `store`,
    /// an 8-digit login pairs the card on this device.
    #[uniffi::constructor]
    pub fn new(
        challenge: Vec<u8>,
        algorithm: DigestAlgorithm,
        pin: String,
        store: Option<Arc<dyn SecretStore>>,
        check_genuine: bool,
    ) -> Result<Arc<Self>, CardError> {
        let pin = Zeroizing::new(pin);
        let mut tap = LoginTap::new(challenge, algorithm, pin_entry(&pin)?, store);
        if check_genuine {
            tap = tap.with_genuine_check();
        }
        Ok(Arc::new(Self {
            tap: Mutex::new(Some(tap)),
        }))
    }

    /// Run (or resume) the login with the card on `transport`. Calls never overlap: a
    /// second call while one runs fails with `Busy`.
    pub async fn tap(
        &self,
        transport: Arc<dyn CardTransport>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<LoginResult, CardError> {
        let mut tap = self.take()?;
        let ch = CardChannel::new(transport);
        let result = tap.run(&ch, &OsRandomness, &Forward(progress)).await;
        self.put_back(tap);
        let out = result?;
        Ok(LoginResult {
            nis: out.nis.text(),
            codice_fiscale: out.certificate.codice_fiscale.clone(),
            given_name: out.certificate.given_name.clone(),
            surname: out.certificate.surname.clone(),
            certificate_not_after: out.certificate.not_after,
            certificate_der: out.certificate.der.clone(),
            signature: out.signature,
            certificate_from_cache: out.certificate_from_cache,
            paired_now: out.paired_now,
        })
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&self) -> Result<(), CardError> {
        self.with(|tap| tap.confirm_last_try())
    }

    /// Give the PIN again (after `WrongPin` or `PinNeeded`).
    pub fn set_pin(&self, pin: String) -> Result<(), CardError> {
        let entry = pin_entry(&Zeroizing::new(pin))?;
        self.with(|tap| tap.set_pin(entry))
    }
}

impl CieLogin {
    fn take(&self) -> Result<LoginTap, CardError> {
        self.tap
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(CardError::Busy)
    }

    fn put_back(&self, tap: LoginTap) {
        *self.tap.lock().unwrap_or_else(PoisonError::into_inner) = Some(tap);
    }

    fn with(&self, f: impl FnOnce(&mut LoginTap)) -> Result<(), CardError> {
        let mut guard = self.tap.lock().unwrap_or_else(PoisonError::into_inner);
        let tap = guard.as_mut().ok_or(CardError::Busy)?;
        f(tap);
        Ok(())
    }
}
