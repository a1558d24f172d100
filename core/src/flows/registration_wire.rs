//! The wire contract of registration with the CIE (issue 12): the app fetches a challenge,
//! the card signs it with its NIS key in the tap that also reads both security objects and
//! the data groups, the citizen sees what was read, and only then the raw bytes go to the
//! server, which verifies everything itself (server `registration` module).
//!
//! ```text
//! POST /api/v1/registration/challenge  {}                    → ChallengeResponse
//! POST /api/v1/registration            RegistrationRequest   → RegistrationResponse
//! ```
//!
//! The card signs [`registration_challenge`]`(origin, challenge)`: 32 bytes that name the
//! server and the purpose, so a signature obtained for another service or another flow
//! does not register here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::wire::{Identity, Origin};

/// Where the app fetches the registration challenge.
pub const REGISTRATION_CHALLENGE_PATH: &str = "/api/v1/registration/challenge";
/// Where the app posts the [`RegistrationRequest`].
pub const REGISTRATION_PATH: &str = "/api/v1/registration";

/// Domain separation of the NIS signature.
const CONTEXT: &[u8] = b"cie-companion registration v1\n";

/// What the card's NIS key signs (PKCS#1 v1.5 type 01 over these raw 32 bytes, cie.md
/// §3.6): `SHA-256("cie-companion registration v1\n" ‖ origin ‖ "\n" ‖ challenge)`, with
/// the challenge as the server sent it (base64url text).
pub fn registration_challenge(origin: &Origin, challenge: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CONTEXT);
    h.update(origin.as_string().as_bytes());
    h.update(b"\n");
    h.update(challenge.as_bytes());
    h.finalize().into()
}

/// `POST /api/v1/registration/challenge`: no fields (the purpose is the path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationChallengeRequest {}

/// `POST /api/v1/registration`: the raw bytes read from the card, base64url. The server
/// trusts none of it before verifying it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationRequest {
    /// The challenge id from `/api/v1/registration/challenge`.
    pub challenge_id: String,
    /// EF.ID_Servizi (1001): the NIS, 12 bytes.
    pub nis: String,
    /// EF.Servizi_Int.Kpub (1005): the NIS key, PKCS#1 RSAPublicKey DER as read.
    pub nis_public_key: String,
    /// EF.SOD of the IAS side (1006), `77 { ContentInfo }` as read.
    pub ias_sod: String,
    /// The card's signature over [`registration_challenge`] with the NIS key.
    pub challenge_signature: String,
    /// EF.Cert_CIE (1003), the authentication certificate DER, read under the secure
    /// session without the PIN; `A3` in the IAS SOD. Its codice fiscale ties the IAS side
    /// (NIS, key) to the eMRTD side (DG11). Absent when the card wanted the PIN for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The eMRTD EF.SOD, as read.
    pub emrtd_sod: String,
    /// DG1 (MRZ).
    pub dg1: String,
    /// DG2 (face).
    pub dg2: String,
    /// DG11 (codice fiscale, place of birth, address).
    pub dg11: String,
    /// DG12 (issuing authority, date of issue), when the chip has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dg12: Option<String>,
    /// DG14 (chip authentication key), when the chip has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dg14: Option<String>,
}

// Personal data: Debug shows sizes only.
impl std::fmt::Debug for RegistrationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationRequest")
            .field("challenge_id", &self.challenge_id)
            .field("dg1_len", &self.dg1.len())
            .field("dg2_len", &self.dg2.len())
            .field("dg11_len", &self.dg11.len())
            .field("dg12", &self.dg12.is_some())
            .field("dg14", &self.dg14.is_some())
            .finish_non_exhaustive()
    }
}

/// The server's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationResponse {
    /// The identity created (or, for a renewed card of a registered person, the existing
    /// one it was linked to).
    pub identity: Identity,
    /// Assurance level reached (3: the chip's data verified to the State's CSCA and the
    /// chip proven genuine).
    pub level: u8,
    /// `true` when the card was linked to an identity that already existed (renewed card).
    #[serde(default)]
    pub linked_to_existing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_bytes_name_the_server_and_the_challenge() {
        let a = Origin::parse("https://id.example.it").unwrap();
        let b = Origin::parse("https://other.example.it").unwrap();
        assert_ne!(
            registration_challenge(&a, "abc"),
            registration_challenge(&b, "abc")
        );
        assert_ne!(
            registration_challenge(&a, "abc"),
            registration_challenge(&a, "abd")
        );
        assert_eq!(
            registration_challenge(&a, "abc"),
            registration_challenge(&a, "abc")
        );
    }

    #[test]
    fn optional_groups_are_omitted_and_debug_hides_data() {
        let r = RegistrationRequest {
            challenge_id: "c".into(),
            nis: "n".into(),
            nis_public_key: "k".into(),
            ias_sod: "s".into(),
            challenge_signature: "x".into(),
            certificate: None,
            emrtd_sod: "e".into(),
            dg1: "SECRETMRZ".into(),
            dg2: "p".into(),
            dg11: "TSTTST".into(),
            dg12: None,
            dg14: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("dg12"));
        let back: RegistrationRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("SECRETMRZ") && !dbg.contains("TSTTST"));
    }
}
