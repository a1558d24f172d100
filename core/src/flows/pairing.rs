//! Pairing: after the first full login, the phone remembers the card's certificate and
//! the first 4 PIN digits, so later taps ask only for the last 4 and skip the certificate
//! read (the official apps' "abbina", done with the platform keystore; cie.md §3.5).

use std::sync::Arc;

/// How the platform must protect a stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Protection {
    /// Public data (the certificate): plain app storage is enough.
    Public,
    /// A secret (PIN digits): the keystore, released only after the user is present
    /// (biometry or device credential) on this device.
    UserPresence,
    /// A secret the app uses without a prompt (OTP seeds): encrypted by a non-exportable
    /// keystore key bound to this device (Android Keystore / iOS Keychain
    /// `ThisDeviceOnly`; the desktop program's passphrase-encrypted file).
    DeviceOnly,
}

/// Why the platform store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum StoreError {
    /// The user cancelled the biometric prompt.
    #[error("the user cancelled")]
    Cancelled,
    /// The keystore is unavailable or the key was invalidated (new fingerprint enrolled).
    #[error("secure storage unavailable: {reason}")]
    Unavailable {
        /// Platform detail, for logs.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for StoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unavailable { reason: e.reason }
    }
}

/// The platform keystore, implemented by the shells (Android Keystore, iOS Keychain).
#[uniffi::export(foreign)]
pub trait SecretStore: Send + Sync {
    /// The value stored under `name`, if any.
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store `value` under `name` with `protection`.
    fn save(&self, name: String, value: Vec<u8>, protection: Protection) -> Result<(), StoreError>;
    /// Forget `name`.
    fn remove(&self, name: String) -> Result<(), StoreError>;
}

/// Names under which a card's pairing is stored, keyed by its NIS.
pub(crate) fn cert_key(nis: &str) -> String {
    format!("cie/{nis}/certificate")
}

pub(crate) fn pin_half_key(nis: &str) -> String {
    format!("cie/{nis}/pin-first-half")
}

/// Shared store handle.
pub type SharedStore = Arc<dyn SecretStore>;
