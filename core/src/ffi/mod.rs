//! The UniFFI surface: few objects, plain records, one error enum the app can act on.
//!
//! Exported methods only delegate to the layers below (application-services style), and
//! errors are converted in one place ([`CardError::from`]) so Kotlin and Swift see the same
//! outcomes the desktop program does.

mod card_pin;
#[cfg(feature = "net")]
mod companion;
#[cfg(feature = "net")]
mod countdown;
mod document;
mod error;
#[cfg(feature = "net")]
mod flow_error;
mod language;
mod login;
#[cfg(feature = "rustls-https")]
mod mtls;
#[cfg(feature = "net")]
mod next_step;
#[cfg(feature = "net")]
mod otp;
mod qr;
#[cfg(feature = "net")]
mod registration;
mod session;

pub use card_pin::{change_card_pin, unblock_card_pin};
#[cfg(feature = "net")]
pub use companion::{
    CardLoginResult, CardLoginSession, CompanionClient, DesktopCode, DesktopSession,
    DeviceEnrollmentSession, EnrolledDevice, PendingApprovalInfo, device_signature,
};
#[cfg(feature = "net")]
pub use countdown::Countdown;
pub use document::{
    CloneStatus, DocumentData, DocumentListener, DocumentReader, Portrait, Verification,
};
pub use error::{CardError, card_error_message, card_error_message_it};
#[cfg(feature = "net")]
pub use flow_error::{FlowError, flow_error_message, flow_error_message_it};
pub use language::{Language, language_for_locale};
pub use login::{CieLogin, LoginResult, ProgressListener};
#[cfg(feature = "rustls-https")]
pub use mtls::MtlsLoginSession;
#[cfg(feature = "net")]
pub use next_step::{
    ApprovalStep, CardTapStep, ScanStep, approval_step, card_tap_step, desktop_qr_step,
    enrolment_code_step,
};
#[cfg(feature = "net")]
pub use otp::OtpTokenInfo;
pub use qr::scan_qr_frame;
#[cfg(feature = "net")]
pub use registration::{RegistrationPreview, RegistrationResult, RegistrationSession};
pub use session::{ApplicationAnswer, CardProbe, CardSession};

/// The core's version, so the shells can report it.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
