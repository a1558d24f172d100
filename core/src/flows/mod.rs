//! User-level flows built on the applets. Each keeps its state between taps, so a lost
//! tag costs a tap, never the work already done.

#[cfg(feature = "net")]
pub mod card_login;
#[cfg(feature = "net")]
pub mod desktop_qr;
#[cfg(feature = "net")]
pub mod device;
pub mod device_key;
pub mod document;
pub mod login;
#[cfg(feature = "rustls-https")]
pub mod mtls_login;
#[cfg(feature = "net")]
pub mod otp_enroll;
pub mod pairing;
#[cfg(feature = "net")]
pub mod register;
pub mod registration;
pub mod registration_wire;
#[cfg(feature = "net")]
pub mod step;
pub mod wire;
