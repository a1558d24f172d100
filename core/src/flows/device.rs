//! App approval with an enrolled device key (docs/protocol.md §3): enrolment with a card
//! tap (the card signs the device's public key), then the pending requests (listed with a
//! device-signed statement) and the user's decision (a signed `ApprovalTranscript`).

use super::device_key::{DeviceSigner, device_public_key, sign_raw};
use super::login::{LoginProgress, PinEntry};
use super::pairing::SharedStore;
use super::step::{CardStep, StepError, path_id, random_id};
use super::wire::{
    self, ApprovalTranscript, CardStatement, ChallengePurpose, ChallengeRequest, CodeEnrollRequest,
    Decision, DecisionRequest, EnrollRequest, EnrollResponse, Origin, PendingApproval,
    PendingRequest, TranscriptKind,
};
use crate::apdu::ApduChannel;
use crate::applets::ias::secure::Randomness;
use crate::net::{ApiClient, Retry};

/// Binding this device's key to the card holder, over one or more taps.
pub struct DeviceEnrollment {
    origin: Origin,
    device_key: String,
    device_name: String,
    card: CardStep,
}

impl std::fmt::Debug for DeviceEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceEnrollment")
            .field("origin", &self.origin)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

impl DeviceEnrollment {
    /// Read and check the device's public key, fetch the enrolment challenge.
    pub async fn start(
        api: &ApiClient,
        origin: Origin,
        signer: &dyn DeviceSigner,
        device_name: String,
        store: Option<SharedStore>,
    ) -> Result<Self, StepError> {
        let (_, sec1) = device_public_key(signer)?;
        let device_key = wire::b64(&sec1);
        let (o, k) = (origin.clone(), device_key.clone());
        let statement = Box::new(move |challenge: &str| {
            CardStatement::DeviceEnroll {
                origin: &o,
                challenge,
                device_key: &k,
            }
            .to_bytes()
        });
        let request = ChallengeRequest {
            purpose: ChallengePurpose::DeviceEnroll,
            rid: None,
            claim_token: None,
        };
        let mut card = CardStep::new(request, statement, store);
        card.prepare(api, &origin).await?;
        Ok(Self {
            origin,
            device_key,
            device_name,
            card,
        })
    }

    /// The user accepted spending the last PIN try.
    pub fn confirm_last_try(&mut self) {
        self.card.confirm_last_try();
    }

    /// Tap (again after a lost tag), then post the enrolment once.
    pub async fn tap<C: ApduChannel + ?Sized>(
        &mut self,
        api: &ApiClient,
        ch: &C,
        pin: Option<PinEntry>,
        rng: &dyn Randomness,
        progress: &dyn LoginProgress,
    ) -> Result<EnrollResponse, StepError> {
        let (challenge, outcome) = self
            .card
            .tap(api, &self.origin, ch, pin, rng, progress)
            .await?;
        let request = EnrollRequest {
            challenge_id: challenge.challenge_id,
            certificate: wire::b64(&outcome.certificate.der),
            signature: wire::b64(&outcome.signature),
            device_key: self.device_key.clone(),
            device_name: self.device_name.clone(),
        };
        let enrolled: EnrollResponse = api
            .post(&self.origin, "/api/v1/devices", &request, Retry::Never)
            .await?;
        path_id(&enrolled.device_id)?;
        Ok(enrolled)
    }
}

/// Enrol this device's key with a one-time code the desktop page showed in a PIN session
/// (residents abroad have no card to sign it; docs/abroad-pin.md). Never retried: the code
/// is single use.
pub async fn enroll_with_code(
    api: &ApiClient,
    origin: &Origin,
    code: &str,
    signer: &dyn DeviceSigner,
    device_name: String,
) -> Result<EnrollResponse, StepError> {
    let (_, sec1) = device_public_key(signer)?;
    let request = CodeEnrollRequest {
        code: code.trim().to_owned(),
        device_key: wire::b64(&sec1),
        device_name,
    };
    let enrolled: EnrollResponse = api
        .post(origin, "/api/v1/devices/by-code", &request, Retry::Never)
        .await?;
    path_id(&enrolled.device_id)?;
    Ok(enrolled)
}

/// The answer of `POST /api/v1/approvals/pending`: a bare list or `{"pending": [...]}`
/// (wire.rs names no wrapper yet; both are read).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PendingList {
    Bare(Vec<PendingApproval>),
    Wrapped { pending: Vec<PendingApproval> },
}

/// The approvals waiting for this device, each checked (context against its hash, id
/// usable). Never retried: the signed nonce is single use.
pub async fn pending_approvals(
    api: &ApiClient,
    origin: &Origin,
    device_id: &str,
    signer: &dyn DeviceSigner,
) -> Result<Vec<PendingApproval>, StepError> {
    let iat = api.now();
    let nonce = random_id()?;
    let statement = wire::pending_statement(origin, device_id, iat, &nonce);
    let signature = sign_raw(signer, &statement).await?;
    let request = PendingRequest {
        device_id: device_id.to_owned(),
        iat,
        nonce,
        signature: wire::b64(&signature),
    };
    let list: PendingList = api
        .post(origin, "/api/v1/approvals/pending", &request, Retry::Never)
        .await?;
    let list = match list {
        PendingList::Bare(l) | PendingList::Wrapped { pending: l } => l,
    };
    for p in &list {
        path_id(&p.request_id)?;
        if p.context.hash() != p.context_hash {
            return Err(StepError::Protocol("context hash"));
        }
    }
    Ok(list)
}

/// Sign and post the user's decision on `approval`. Approving needs `number`, one of the
/// choices shown (number matching).
pub async fn decide(
    api: &ApiClient,
    origin: &Origin,
    device_id: &str,
    signer: &dyn DeviceSigner,
    approval: &PendingApproval,
    decision: Decision,
    number: Option<u8>,
) -> Result<(), StepError> {
    let id = path_id(&approval.request_id)?;
    if decision == Decision::Approve
        && !number.is_some_and(|n| approval.choices.is_empty() || approval.choices.contains(&n))
    {
        return Err(StepError::InvalidChoice);
    }
    let transcript = ApprovalTranscript {
        v: wire::VERSION,
        iss: origin.clone(),
        kind: TranscriptKind::Approval,
        id: id.to_owned(),
        service: approval.context.service.clone(),
        level: approval.context.level,
        context_hash: approval.context_hash.clone(),
        decision,
        number,
        device_id: device_id.to_owned(),
        iat: api.now(),
        jti: random_id()?,
    };
    let bytes = transcript.to_bytes();
    let signature = sign_raw(signer, &bytes).await?;
    let request = DecisionRequest {
        transcript: wire::b64(&bytes),
        signature: wire::b64(&signature),
    };
    let path = format!("/api/v1/approvals/{id}/decision");
    let _: serde::de::IgnoredAny = api.post(origin, &path, &request, Retry::Never).await?;
    Ok(())
}
