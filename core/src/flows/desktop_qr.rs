//! Desktop QR authorisation, the phone's side (docs/protocol.md §2): scan → claim (HMAC
//! proof under the QR secret) → show the context → approve with the CIE (challenge, PIN,
//! tap) or the enrolled device key, and get the 4-digit code for the desktop; or deny.

use super::device_key::{DeviceSigner, sign_raw};
use super::login::{LoginProgress, PinEntry};
use super::pairing::SharedStore;
use super::step::{CardStep, StepError, random_id};
use super::wire::{
    self, ApprovalTranscript, ApproveRequest, ApproveResponse, CardStatement, ChallengePurpose,
    ChallengeRequest, ClaimRequest, ClaimResponse, Decision, DenyRequest, DesktopQr, LoginContext,
    Origin, TranscriptKind,
};
use crate::apdu::ApduChannel;
use crate::applets::ias::secure::Randomness;
use crate::net::{ApiClient, Retry};
use zeroize::{Zeroize, Zeroizing};

/// A claimed rendezvous, until the user approves or denies.
pub struct DesktopApproval {
    origin: Origin,
    rid: String,
    claim_token: Zeroizing<String>,
    context: LoginContext,
    context_hash: String,
    expires_at: u64,
    card: CardStep,
    finished: bool,
}

impl std::fmt::Debug for DesktopApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopApproval")
            .field("origin", &self.origin)
            .field("rid", &self.rid)
            .field("context", &self.context)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl DesktopApproval {
    /// Parse the scanned `qr_text` (only origins on the client's list), claim the
    /// rendezvous, and check the context against its hash. `device_id` names an enrolled
    /// device that may approve with its key.
    pub async fn claim(
        api: &ApiClient,
        qr_text: &str,
        device_name: String,
        device_id: Option<String>,
        store: Option<SharedStore>,
    ) -> Result<Self, StepError> {
        let mut qr = DesktopQr::parse(qr_text, api.origins())?;
        let mut proof = qr.claim_proof();
        // The secret is needed only for the proof: wipe it now.
        qr.secret.zeroize();
        let rid = wire::b64(&qr.rid);
        let request = ClaimRequest {
            rid: rid.clone(),
            proof: wire::b64(&proof),
            device_name,
            device_id,
        };
        proof.zeroize();
        let origin = qr.origin.clone();
        let claimed: ClaimResponse = api
            .post(&origin, "/api/v1/rendezvous/claim", &request, Retry::Never)
            .await?;
        if claimed.context.hash() != claimed.context_hash {
            return Err(StepError::Protocol("context hash"));
        }
        if claimed.claim_token.is_empty() {
            return Err(StepError::Protocol("claim token"));
        }
        let claim_token = Zeroizing::new(claimed.claim_token);
        let (o, r, h) = (origin.clone(), rid.clone(), claimed.context_hash.clone());
        let statement = Box::new(move |challenge: &str| {
            CardStatement::DesktopApprove {
                origin: &o,
                rid: &r,
                context_hash: &h,
                challenge,
            }
            .to_bytes()
        });
        let request = ChallengeRequest {
            purpose: ChallengePurpose::DesktopApprove,
            rid: Some(rid.clone()),
            claim_token: Some(claim_token.to_string()),
        };
        Ok(Self {
            card: CardStep::new(request, statement, store),
            origin,
            rid,
            claim_token,
            context: claimed.context,
            context_hash: claimed.context_hash,
            expires_at: claimed.expires_at,
            finished: false,
        })
    }

    /// The server that showed the QR.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// What to show before the user decides.
    pub fn context(&self) -> &LoginContext {
        &self.context
    }

    /// Approve or deny before this (Unix seconds, server time).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&mut self) {
        self.card.confirm_last_try();
    }

    fn open(&self) -> Result<(), StepError> {
        if self.finished {
            Err(StepError::Finished)
        } else {
            Ok(())
        }
    }

    /// Fetch the card challenge (on "Autorizza", while the user types the PIN), so the
    /// tap runs with no network.
    pub async fn prepare_card(&mut self, api: &ApiClient) -> Result<(), StepError> {
        self.open()?;
        self.card.prepare(api, &self.origin).await
    }

    /// Approve with the CIE: tap (again after a lost tag), post once, return the code to
    /// show.
    pub async fn approve_with_card<C: ApduChannel + ?Sized>(
        &mut self,
        api: &ApiClient,
        ch: &C,
        pin: Option<PinEntry>,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<ApproveResponse, StepError> {
        self.open()?;
        let (challenge, outcome) = self
            .card
            .tap(api, &self.origin, ch, pin, rng, progress)
            .await?;
        let request = ApproveRequest::Cie {
            claim_token: self.claim_token.to_string(),
            challenge_id: challenge.challenge_id,
            certificate: wire::b64(&outcome.certificate.der),
            signature: wire::b64(&outcome.signature),
        };
        self.approve(api, &request).await
    }

    /// Whether the enrolled device's key may approve: not when the service asked for level 3,
    /// which only the card reaches (the server would refuse it: `card_required`).
    pub fn device_allowed(&self) -> bool {
        self.context.level <= wire::DEVICE_LEVEL
    }

    /// Approve with the enrolled device key (level 2): a `desktop` transcript.
    pub async fn approve_with_device(
        &mut self,
        api: &ApiClient,
        device_id: &str,
        signer: &dyn DeviceSigner,
    ) -> Result<ApproveResponse, StepError> {
        self.open()?;
        let transcript = ApprovalTranscript {
            v: wire::VERSION,
            iss: self.origin.clone(),
            kind: TranscriptKind::Desktop,
            id: self.rid.clone(),
            service: self.context.service.clone(),
            level: self.context.level,
            context_hash: self.context_hash.clone(),
            decision: Decision::Approve,
            number: None,
            device_id: device_id.to_owned(),
            iat: api.now(),
            jti: random_id()?,
        };
        let bytes = transcript.to_bytes();
        let signature = sign_raw(signer, &bytes).await?;
        let request = ApproveRequest::Device {
            claim_token: self.claim_token.to_string(),
            transcript: wire::b64(&bytes),
            signature: wire::b64(&signature),
        };
        self.approve(api, &request).await
    }

    async fn approve(
        &mut self,
        api: &ApiClient,
        request: &ApproveRequest,
    ) -> Result<ApproveResponse, StepError> {
        let path = format!("/api/v1/rendezvous/{}/approve", self.rid);
        let approved: ApproveResponse =
            api.post(&self.origin, &path, request, Retry::Never).await?;
        if approved.code.len() != 4 || !approved.code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StepError::Protocol("code"));
        }
        self.finished = true;
        Ok(approved)
    }

    /// Deny ("Nega"); with `report`, also "non sono stato io".
    pub async fn deny(&mut self, api: &ApiClient, report: bool) -> Result<(), StepError> {
        self.open()?;
        let request = DenyRequest {
            claim_token: self.claim_token.to_string(),
            report,
        };
        let path = format!("/api/v1/rendezvous/{}/deny", self.rid);
        let _: serde::de::IgnoredAny = api
            .post(&self.origin, &path, &request, Retry::Never)
            .await?;
        self.finished = true;
        Ok(())
    }
}
