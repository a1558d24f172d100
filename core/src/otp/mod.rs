//! One-time codes: HOTP (RFC 4226) and TOTP (RFC 6238), `otpauth://` Key URIs, clock drift
//! correction, the validating side for the reference server, and saved tokens kept by the
//! platform keystore.
//!
//! - [`hotp`]: the algorithm;
//! - [`base32`], [`uri`]: import and export of tokens;
//! - [`clock`]: server-time offset and the drift diagnostic;
//! - [`verify`]: window, replay refusal, drift recording, throttling;
//! - [`vault`]: saved tokens over [`crate::flows::pairing::SecretStore`] (UniFFI).

pub mod base32;
pub mod clock;
mod error;
pub mod hotp;
pub mod uri;
pub mod vault;
pub mod verify;

pub use clock::{ClockOffset, DriftDiagnostic, DriftStatus};
pub use error::{OtpError, UriWarning, otp_error_message, otp_error_message_it};
pub use hotp::{Algorithm, Secret, TimeStep};
pub use uri::{KeyUri, OtpKind};
pub use vault::{
    AddedToken, OtpCode, OtpToken, OtpUriInfo, OtpVault, otp_code_for_uri, otp_inspect_uri,
};
