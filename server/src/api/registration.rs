//! Registration with the CIE (issue 12; docs/protocol.md §5), over HTTP:
//!
//! - `POST /api/v1/registration/challenge {}` → a `register` challenge (single use, the
//!   card-challenge lifetime), fetched before the tap.
//! - `POST /api/v1/registration` with the raw bytes the tap read → the identity. The
//!   challenge is checked, the bytes verified ([`verify_registration`]: the card's NIS key
//!   signed the challenge, both SODs chain to the configured CSCAs, every data-group hash,
//!   the card tied to the data), then one transaction consumes the challenge, refuses a card
//!   registered before, links a renewed card of a known codice fiscale or creates the
//!   identity, stores attributes, deviations and evidence, and audits. A refused
//!   registration spends its challenge too.
//!
//! Without a CSCA configured (`--csca`) both endpoints answer `not_found`: the server does
//! not offer registration.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::routing::post;
use cie_core::flows::registration_wire::{
    REGISTRATION_CHALLENGE_PATH, REGISTRATION_PATH, RegistrationChallengeRequest,
    RegistrationRequest, RegistrationResponse,
};
use cie_core::flows::wire::{ChallengePurpose, ChallengeResponse, ErrorCode};

use super::{AppState, check_challenge, issue_challenge};
use crate::error::Refusal;
use crate::registration::{RegistrationTrust, verify_registration};
use crate::store::{AuditEntry, NewRegistration, RegistrationOutcome};

/// A registration carries the photo (DG2, tens of KB) and two security objects, base64url
/// in JSON: more than the API's general 64 KiB.
const BODY_LIMIT: usize = 512 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(REGISTRATION_CHALLENGE_PATH, post(challenge))
        .route(REGISTRATION_PATH, post(register))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

fn trust(s: &AppState) -> Result<&RegistrationTrust, Refusal> {
    s.0.registration
        .as_deref()
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound))
}

#[utoipa::path(
    post,
    path = "/api/v1/registration/challenge",
    operation_id = "registration_challenge",
    tag = "registration",
    request_body = RegistrationChallengeRequest,
    responses(
        (status = 200, description = "A registration challenge", body = ChallengeResponse),
        crate::openapi::Lookup,
    )
)]
async fn challenge(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::ApiJson(_): super::ApiJson<RegistrationChallengeRequest>,
) -> Result<Json<ChallengeResponse>, Refusal> {
    trust(&s)?;
    let client = peer.ip().to_string();
    let issued = issue_challenge(&s, ChallengePurpose::Register, None, &client, s.now()).await?;
    Ok(Json(issued))
}

#[utoipa::path(
    post,
    path = "/api/v1/registration",
    operation_id = "registration_register",
    tag = "registration",
    request_body = RegistrationRequest,
    responses(
        (status = 200, description = "Registered (or linked to the existing identity)", body = RegistrationResponse),
        crate::openapi::Signed,
    )
)]
async fn register(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::ApiJson(req): super::ApiJson<RegistrationRequest>,
) -> Result<Json<RegistrationResponse>, Refusal> {
    let trust = trust(&s)?;
    let now = s.now();
    let client = peer.ip().to_string();
    let audit = AuditEntry::new("registration", &req.challenge_id, "ok", &client);
    let stored = s.0.store.challenge(&req.challenge_id).await?;
    let c = match check_challenge(stored, ChallengePurpose::Register, None, now) {
        Ok(c) => c,
        Err(r) => {
            return Err(s
                .refuse("registration", &req.challenge_id, &client, r)
                .await);
        }
    };
    let verified = match verify_registration(trust, &s.0.origin, &c.challenge, &req) {
        Ok(v) => v,
        Err(refusal) => {
            let entry = audit.with_outcome(refusal.code());
            s.0.store
                .refuse_registration(&req.challenge_id, &entry, now)
                .await?;
            tracing::info!(outcome = refusal.code(), "registration refused");
            return Err(Refusal::with(
                refusal.error_code(),
                &refusal.to_string(),
                &refusal.message_it(),
            ));
        }
    };
    let json = |v: serde_json::Result<String>| v.map_err(|_| Refusal::new(ErrorCode::Internal));
    let new = NewRegistration {
        nis: verified.nis.clone(),
        nis_key_hash: verified.nis_key_hash.clone(),
        codice_fiscale: verified.codice_fiscale.clone(),
        given_name: verified.attributes.given_names.clone(),
        surname: verified.attributes.surname.clone(),
        level: verified.level,
        attributes_json: json(serde_json::to_string(&verified.attributes))?,
        deviations_json: json(serde_json::to_string(&verified.deviations))?,
        evidence_json: json(serde_json::to_string(&verified.evidence))?,
    };
    match s
        .0
        .store
        .register(&req.challenge_id, &new, &audit, now)
        .await?
    {
        RegistrationOutcome::Registered { identity, linked } => {
            tracing::info!(identity = %identity.id, linked, "registered with the CIE");
            Ok(Json(RegistrationResponse {
                identity,
                level: verified.level,
                linked_to_existing: linked,
            }))
        }
        RegistrationOutcome::AlreadyRegistered => Err(Refusal::new(ErrorCode::AlreadyRegistered)),
        // Used by a concurrent request between the check and the transaction.
        RegistrationOutcome::ChallengeSpent => Err(Refusal::new(ErrorCode::Replayed)),
    }
}
