//! `CompanionClient::enroll_otp`: the offline TOTP fallback of the app approval
//! (docs/protocol.md §3). The token goes straight from the server's answer into the app's
//! `OtpVault` (seed in the platform keystore, device-only); the UI gets names, never the
//! secret.

use std::sync::Arc;

use super::FlowError;
use super::companion::CompanionClient;
use crate::flows::device_key::DeviceSigner;
use crate::flows::otp_enroll;
use crate::flows::pairing::StoreError;
use crate::net::device_now;
use crate::otp::{KeyUri, OtpError, OtpKind, OtpVault};

/// The token now saved in the vault, for the UI (no secret).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OtpTokenInfo {
    /// The server it logs in to.
    pub origin: String,
    /// The vault's name of the token (what `OtpVault::code` takes).
    pub token_id: String,
    /// The service, as the server names it.
    pub issuer: Option<String>,
    /// The account label (name and surname initial).
    pub account: String,
    /// Code length (6).
    pub digits: u8,
    /// Seconds per code (30).
    pub period: u64,
    /// A token of the same name was already saved and is replaced (the server replaced it
    /// too: the old codes no longer work).
    pub replaced: bool,
}

/// A vault failure as the flows report it. URI problems are the server's (a bad answer);
/// keystore problems are the platform's.
fn vault_error(e: OtpError) -> FlowError {
    match e {
        OtpError::Store(StoreError::Cancelled) => FlowError::Cancelled,
        OtpError::Store(StoreError::Unavailable { reason }) => FlowError::Storage { reason },
        e @ OtpError::Corrupt { .. } => FlowError::Storage {
            reason: e.to_string(),
        },
        e @ (OtpError::InvalidUri { .. }
        | OtpError::UnsupportedType { .. }
        | OtpError::UnsupportedAlgorithm { .. }
        | OtpError::UnsupportedDigits { .. }
        | OtpError::UnsupportedPeriod { .. }
        | OtpError::MissingSecret
        | OtpError::BadSecret { .. }
        | OtpError::SecretTooShort { .. }) => FlowError::BadResponse {
            reason: format!("token: {e}"),
        },
        e => FlowError::Internal {
            reason: e.to_string(),
        },
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CompanionClient {
    /// Enrol a TOTP token at `origin` for the holder of the enrolled device `device_id`
    /// (signed by its key) and save it in `vault`, replacing a saved token of the same
    /// name. The vault's clock correction is set from this server's time, so the phone's
    /// codes match the server's even with a wrong device clock.
    pub async fn enroll_otp(
        &self,
        origin: String,
        device_id: String,
        signer: Arc<dyn DeviceSigner>,
        vault: Arc<OtpVault>,
    ) -> Result<OtpTokenInfo, FlowError> {
        let origin = self.api.origin(&origin)?;
        let uri = otp_enroll::enroll_otp(&self.api, &origin, &device_id, signer.as_ref()).await?;
        let parsed = KeyUri::parse(&uri).map_err(vault_error)?;
        let OtpKind::Totp { period, .. } = parsed.kind else {
            return Err(FlowError::BadResponse {
                reason: "token: not time-based".into(),
            });
        };
        if parsed.issuer.is_none() {
            return Err(FlowError::BadResponse {
                reason: "token: no issuer".into(),
            });
        }
        let (added, replaced) = match vault.add_parsed(parsed.clone()) {
            Ok(a) => (a, false),
            Err(OtpError::Duplicate { name }) => {
                vault.remove(name).map_err(vault_error)?;
                (vault.add_parsed(parsed).map_err(vault_error)?, true)
            }
            Err(e) => return Err(vault_error(e)),
        };
        if let Some(offset) = self.api.clock_offset() {
            vault.set_clock_offset_seconds(Some(offset.offset_seconds), device_now());
        }
        Ok(OtpTokenInfo {
            origin: origin.as_string(),
            token_id: added.token.id,
            issuer: added.token.issuer,
            account: added.token.account,
            digits: added.token.digits,
            period,
            replaced,
        })
    }
}
