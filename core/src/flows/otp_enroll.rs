//! TOTP enrolment from the app (docs/protocol.md §3 "OTP fallback"): the enrolled device
//! signs `otp_enroll_statement` and the server answers with the token's `otpauth://` URI,
//! which the app keeps in its `OtpVault` so the phone shows codes without a network.

use zeroize::Zeroizing;

use super::device_key::{DeviceSigner, sign_raw};
use super::step::{StepError, random_id};
use super::wire::{self, Origin, OtpEnrollRequest, OtpEnrolled};
use crate::net::{ApiClient, Retry};

/// Ask `origin` for this identity's TOTP token (created, or replacing the previous one),
/// signed by the enrolled device `device_id`. The URI holds the seed: the caller saves it
/// in the vault and drops it. Never retried: the signed nonce is single use.
pub async fn enroll_otp(
    api: &ApiClient,
    origin: &Origin,
    device_id: &str,
    signer: &dyn DeviceSigner,
) -> Result<Zeroizing<String>, StepError> {
    let iat = api.now();
    let nonce = random_id()?;
    let statement = wire::otp_enroll_statement(origin, device_id, iat, &nonce);
    let signature = sign_raw(signer, &statement).await?;
    let request = OtpEnrollRequest {
        device_id: device_id.to_owned(),
        iat,
        nonce,
        signature: wire::b64(&signature),
    };
    let mut enrolled: OtpEnrolled = api
        .post(origin, "/api/v1/otp/enroll", &request, Retry::Never)
        .await?;
    Ok(Zeroizing::new(std::mem::take(&mut enrolled.uri)))
}
