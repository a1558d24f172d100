//! Registration with the CIE over HTTPS, on SQLite and PostgreSQL: the challenge endpoint,
//! the virtual CIE read in one CAN tap by the core, the server verifying and storing it;
//! then the store's rules — the same card twice is refused, a challenge serves once (also
//! when the registration it carried was refused), an identity known from a card login is
//! linked, not duplicated — and registration is off without a CSCA.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Harness, TEST_CF, backends, code};

use std::sync::Arc;

use card_sim::emrtd::{self as chip, EmrtdBuilder};
use card_sim::ias::pki::{self, CieCard};
use card_sim::{CardConfig, CieVariant};
use cie_core::apdu::CardChannel;
use cie_core::applets::emrtd::{Can, OsRandomness};
use cie_core::flows::document::NoProgress;
use cie_core::flows::registration::RegistrationRead;
use cie_core::flows::registration_wire::{
    REGISTRATION_CHALLENGE_PATH, REGISTRATION_PATH, RegistrationChallengeRequest,
    RegistrationRequest, registration_challenge,
};
use cie_core::flows::wire::{
    CardLoginRequest, CardStatement, ChallengePurpose, ChallengeRequest, ChallengeResponse, b64,
    unb64,
};
use companion_server::Clock;
use companion_server::registration::RegistrationTrust;
use companion_server::store::RegistrationStore;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};

/// The renewed card's authentication key (the card signs with it; the test signs here).
const RENEWED_AUTH_KEY: &[u8] = include_bytes!("../../card-sim/testdata/renewed_auth_key.pk8.der");

async fn start(db: &common::TestDb) -> Harness {
    Harness::start_with(db, |c| {
        let mut trust = RegistrationTrust::new();
        trust.add_csca_der(chip::CSCA_CERT_DER).unwrap();
        c.registration = Some(Arc::new(trust));
    })
    .await
}

async fn challenge(h: &Harness, phone: &reqwest::Client) -> ChallengeResponse {
    let (status, body) = h
        .post(
            phone,
            REGISTRATION_CHALLENGE_PATH,
            &RegistrationChallengeRequest {},
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// The phone's tap: the virtual CIE read with its CAN, signing this server's challenge.
async fn tap(h: &Harness, ch: &ChallengeResponse) -> RegistrationRequest {
    tap_card(h, ch, CieCard::First).await
}

/// [`tap`] with one of the test holder's two cards.
async fn tap_card(h: &Harness, ch: &ChallengeResponse, which: CieCard) -> RegistrationRequest {
    let card = Arc::new(card_sim::cie::virtual_cie_with(
        CieVariant {
            card: which,
            ..CieVariant::default()
        },
        CardConfig::extended(1024),
        &EmrtdBuilder::cie(),
    ));
    let to_sign = registration_challenge(&h.origin, &ch.challenge);
    let mut read = RegistrationRead::new(Can::new(chip::TEST_CAN).unwrap(), &to_sign);
    let draft = read
        .tap(&CardChannel::new(card), &OsRandomness, &NoProgress)
        .await
        .unwrap();
    draft.request(&ch.challenge_id)
}

/// A fresh challenge, `which` card's tap over it, the post: (status, body).
async fn register(
    h: &Harness,
    phone: &reqwest::Client,
    which: CieCard,
) -> (u16, serde_json::Value) {
    let ch = challenge(h, phone).await;
    let req = tap_card(h, &ch, which).await;
    h.post(phone, REGISTRATION_PATH, &req).await
}

/// A login or registration challenge through the card endpoint (`purpose`).
async fn card_challenge(
    h: &Harness,
    phone: &reqwest::Client,
    purpose: ChallengePurpose,
) -> (u16, serde_json::Value) {
    let req = ChallengeRequest {
        purpose,
        rid: None,
        claim_token: None,
    };
    h.post(phone, "/api/v1/card/challenge", &req).await
}

/// A phone-tap login with the virtual card's certificate over `ch`.
async fn card_login(
    h: &Harness,
    phone: &reqwest::Client,
    ch: &ChallengeResponse,
) -> (u16, serde_json::Value) {
    let login = CardLoginRequest {
        challenge_id: ch.challenge_id.clone(),
        certificate: b64(common::AUTH_CERT),
        signature: common::card_sign(&CardStatement::Login {
            origin: &h.origin,
            challenge: &ch.challenge,
        }),
    };
    h.post(phone, "/api/v1/card/login", &login).await
}

#[tokio::test(flavor = "multi_thread")]
async fn register_once_then_the_same_card_is_refused_and_challenges_serve_once() {
    for db in backends().await {
        let h = start(&db).await;
        let phone = h.other_client();

        let ch = challenge(&h, &phone).await;
        let req = tap(&h, &ch).await;
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &req).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["identity"]["codice_fiscale"], TEST_CF, "{}", db.name);
        assert_eq!(body["level"], 3);
        assert_eq!(body["linked_to_existing"], false);
        let identity_id = body["identity"]["id"].as_str().unwrap().to_owned();
        let cards = h
            .server()
            .store()
            .registrations(&identity_id)
            .await
            .unwrap();
        assert_eq!(cards.len(), 1, "{}", db.name);
        assert_eq!(cards[0].1, 3);

        // The same request again: its challenge is spent.
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &req).await;
        assert_eq!((status, code(&body)), (409, "replayed"), "{}", db.name);

        // The same card with a fresh challenge: already registered, nothing added.
        let ch2 = challenge(&h, &phone).await;
        let req2 = tap(&h, &ch2).await;
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &req2).await;
        assert_eq!(
            (status, code(&body)),
            (409, "already_registered"),
            "{}",
            db.name
        );
        assert!(
            body["message_it"]
                .as_str()
                .unwrap()
                .contains("già registrata")
        );
        let cards = h
            .server()
            .store()
            .registrations(&identity_id)
            .await
            .unwrap();
        assert_eq!(cards.len(), 1, "{}", db.name);

        // A registration challenge is not a login challenge, and the card endpoint does
        // not hand out registration challenges.
        let (status, _) = card_challenge(&h, &phone, ChallengePurpose::Register).await;
        assert_eq!(status, 400, "{}", db.name);
        let ch3 = challenge(&h, &phone).await;
        let (status, body) = card_login(&h, &phone, &ch3).await;
        assert_eq!((status, code(&body)), (409, "wrong_state"), "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_registration_spends_its_challenge_and_stores_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        let phone = h.other_client();
        let ch = challenge(&h, &phone).await;
        let good = tap(&h, &ch).await;
        // DG1 altered on the way: its hash no longer matches the document's SOD.
        let mut bad = good.clone();
        let mut dg1 = unb64(&bad.dg1).unwrap();
        let last = dg1.len() - 1;
        dg1[last] ^= 0x01;
        bad.dg1 = b64(&dg1);
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &bad).await;
        assert_eq!(status, 403, "{}: {body}", db.name);
        assert!(!body["message_it"].as_str().unwrap().is_empty());
        // The genuine bytes cannot ride on that challenge any more.
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &good).await;
        assert_eq!((status, code(&body)), (409, "replayed"), "{}", db.name);
        // Nothing registered: a fresh challenge registers as new.
        let ch2 = challenge(&h, &phone).await;
        let req = tap(&h, &ch2).await;
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &req).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["linked_to_existing"], false);
        let log = h.server().store().audit_log().await.unwrap();
        let outcomes: Vec<&str> = log
            .iter()
            .filter(|(kind, ..)| kind == "registration")
            .map(|(_, _, outcome, _)| outcome.as_str())
            .collect();
        assert_eq!(outcomes.len(), 3, "{}: {outcomes:?}", db.name);
        assert_ne!(outcomes[0], "ok");
        assert_eq!(outcomes[2], "ok");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_known_from_a_card_login_is_linked() {
    for db in backends().await {
        let h = start(&db).await;
        let phone = h.other_client();
        // First a phone-tap login with the same person's card certificate.
        let (_, body) = card_challenge(&h, &phone, ChallengePurpose::Login).await;
        let login_ch: ChallengeResponse = serde_json::from_value(body).unwrap();
        let (status, body) = card_login(&h, &phone, &login_ch).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        let known = body["identity"]["id"].as_str().unwrap().to_owned();

        let ch = challenge(&h, &phone).await;
        let req = tap(&h, &ch).await;
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &req).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["linked_to_existing"], true, "{}", db.name);
        assert_eq!(body["identity"]["id"], known.as_str(), "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_card_is_linked_to_the_identity_and_logs_in_as_it() {
    for db in backends().await {
        let h = start(&db).await;
        let phone = h.other_client();
        let (status, body) = register(&h, &phone, CieCard::First).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["linked_to_existing"], false);
        let identity = body["identity"]["id"].as_str().unwrap().to_owned();

        // The renewed card: another NIS, NIS key and certificate, the same holder (DG11).
        let ch = challenge(&h, &phone).await;
        let renewed = tap_card(&h, &ch, CieCard::Renewed).await;
        assert_eq!(unb64(&renewed.nis).unwrap(), b"000033334444");
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &renewed).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["linked_to_existing"], true, "{}", db.name);
        assert_eq!(body["identity"]["id"], identity.as_str(), "{}", db.name);
        let cards = h.server().store().registrations(&identity).await.unwrap();
        assert_eq!(cards.len(), 2, "{}", db.name);

        // Each card once: the renewed one again is refused too.
        let (status, body) = register(&h, &phone, CieCard::Renewed).await;
        assert_eq!(
            (status, code(&body)),
            (409, "already_registered"),
            "{}",
            db.name
        );

        // A phone-tap login with the renewed card's certificate reaches the same identity.
        let (_, body) = card_challenge(&h, &phone, ChallengePurpose::Login).await;
        let login_ch: ChallengeResponse = serde_json::from_value(body).unwrap();
        let key = rsa::RsaPrivateKey::from_pkcs8_der(RENEWED_AUTH_KEY).unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<sha2_10::Sha256>::new(key);
        let statement = CardStatement::Login {
            origin: &h.origin,
            challenge: &login_ch.challenge,
        };
        let login = CardLoginRequest {
            challenge_id: login_ch.challenge_id.clone(),
            certificate: b64(pki::RENEWED_AUTH_CERT_DER),
            signature: b64(&signer.sign(&statement.to_bytes()).to_bytes()),
        };
        let (status, body) = h.post(&phone, "/api/v1/card/login", &login).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["identity"]["id"], identity.as_str(), "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_challenge_is_refused_and_registers_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        let phone = h.other_client();
        let ch = challenge(&h, &phone).await;
        let req = tap(&h, &ch).await;
        h.clock
            .advance(ch.expires_at.saturating_sub(h.clock.now()) + 1);
        let (status, body) = h.post(&phone, REGISTRATION_PATH, &req).await;
        assert_eq!(code(&body), "expired", "{}: {status} {body}", db.name);
        assert!(
            !body["message_it"].as_str().unwrap_or("").is_empty(),
            "{body}"
        );
        // Nothing stored: a fresh challenge registers a new identity.
        let (status, body) = register(&h, &phone, CieCard::First).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["linked_to_existing"], false, "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_csca_registration_is_not_offered() {
    let db = common::sqlite();
    let h = Harness::start(&db).await;
    let phone = h.other_client();
    let (status, body) = h
        .post(
            &phone,
            REGISTRATION_CHALLENGE_PATH,
            &RegistrationChallengeRequest {},
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
}
