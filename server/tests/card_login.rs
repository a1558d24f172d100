//! Phone-tap card login (docs/protocol.md §1) over HTTPS.
#![allow(clippy::unwrap_used)]

mod common;

use cie_core::flows::wire::{CardStatement, b64};
use common::*;
use serde_json::json;

fn good_sign(h: &Harness) -> impl Fn(&str) -> String + '_ {
    |challenge| {
        card_sign(&CardStatement::Login {
            origin: &h.origin,
            challenge,
        })
    }
}

#[tokio::test]
async fn card_login_happy_path_and_session() {
    for db in backends().await {
        let h = Harness::start(&db).await;
        let (status, body) = card_login_with(&h, AUTH_CERT, good_sign(&h)).await;
        assert_eq!(status, 200, "{}: {body}", db.name);
        assert_eq!(body["identity"]["codice_fiscale"], TEST_CF);
        assert_eq!(body["identity"]["given_name"], "MARIA");
        assert_eq!(body["identity"]["surname"], "TESTER");
        assert_eq!(body["level"], 3);
        let token = body["session"].as_str().unwrap();
        let resp = h
            .other_client()
            .get(h.url("/api/v1/session"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let s: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(s["identity"]["id"], body["identity"]["id"]);
        // A second login maps to the same identity.
        let (_, again) = card_login_with(&h, AUTH_CERT, good_sign(&h)).await;
        assert_eq!(
            again["identity"]["id"], body["identity"]["id"],
            "{}",
            db.name
        );
    }
}

#[tokio::test]
async fn replayed_challenge_is_refused() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let phone = h.other_client();
    let (_, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &json!({"purpose": "login"}),
        )
        .await;
    let body = json!({
        "challenge_id": ch["challenge_id"],
        "certificate": b64(AUTH_CERT),
        "signature": card_sign(&CardStatement::Login { origin: &h.origin, challenge: ch["challenge"].as_str().unwrap() }),
    });
    let (status, _) = h.post(&phone, "/api/v1/card/login", &body).await;
    assert_eq!(status, 200);
    let (status, err) = h.post(&phone, "/api/v1/card/login", &body).await;
    assert_eq!((status, code(&err)), (409, "replayed"), "{err}");
    assert!(err["message_it"].as_str().unwrap().contains("ricomincia"));
}

#[tokio::test]
async fn expired_challenge_is_refused() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let phone = h.other_client();
    let (_, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &json!({"purpose": "login"}),
        )
        .await;
    h.clock.advance(121);
    let body = json!({
        "challenge_id": ch["challenge_id"],
        "certificate": b64(AUTH_CERT),
        "signature": card_sign(&CardStatement::Login { origin: &h.origin, challenge: ch["challenge"].as_str().unwrap() }),
    });
    let (status, err) = h.post(&phone, "/api/v1/card/login", &body).await;
    assert_eq!((status, code(&err)), (410, "expired"), "{err}");
}

#[tokio::test]
async fn wrong_signature_is_refused() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    // Signed for another origin: a signature made for one server is useless at another.
    let other = cie_core::flows::wire::Origin::parse("https://evil.example").unwrap();
    let (status, err) = card_login_with(&h, AUTH_CERT, |challenge| {
        card_sign(&CardStatement::Login {
            origin: &other,
            challenge,
        })
    })
    .await;
    assert_eq!((status, code(&err)), (403, "bad_signature"), "{err}");
    // Garbage signature.
    let (status, err) = card_login_with(&h, AUTH_CERT, |_| b64(&[7u8; 256])).await;
    assert_eq!((status, code(&err)), (403, "bad_signature"), "{err}");
}

#[tokio::test]
async fn revoked_serial_is_refused() {
    let db = sqlite();
    let h = Harness::start_with(&db, |c| {
        c.revocation = std::sync::Arc::new(companion_server::RevokedSerials::new(["0x1003"]));
    })
    .await;
    let (status, err) = card_login_with(&h, AUTH_CERT, good_sign(&h)).await;
    assert_eq!((status, code(&err)), (403, "certificate_revoked"), "{err}");
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    h.clock.set(2_400_000_000); // 2046, after the test certificate's end
    let (status, err) = card_login_with(&h, AUTH_CERT, good_sign(&h)).await;
    assert_eq!((status, code(&err)), (403, "certificate_expired"), "{err}");
}

#[tokio::test]
async fn untrusted_ca_is_refused() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    // Another CA, with the test CA's name, certifies the card's own key: the signature over
    // the statement is good, the chain is not.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CountryName, "IT");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "cie-companion TEST");
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "cie-companion TEST CA \u{2014} not a real authority",
    );
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types_pkcs8(AUTH_KEY),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
        "TINIT-TSTTST80A01H501X",
    );
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "TSTTST80A01H501X");
    let cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let (status, err) = card_login_with(&h, cert.der(), good_sign(&h)).await;
    assert_eq!(
        (status, code(&err)),
        (403, "untrusted_certificate"),
        "{err}"
    );
}

fn rustls_pki_types_pkcs8(der: &[u8]) -> rustls::pki_types::PrivatePkcs8KeyDer<'static> {
    rustls::pki_types::PrivatePkcs8KeyDer::from(der.to_vec())
}

#[tokio::test]
async fn malformed_requests_are_api_errors() {
    let db = sqlite();
    let h = Harness::start(&db).await;
    let c = h.other_client();
    let (status, err) = h
        .post(&c, "/api/v1/card/login", &json!({"challenge_id": 1}))
        .await;
    assert_eq!((status, code(&err)), (400, "bad_request"), "{err}");
    let (status, err) = h
        .post(
            &c,
            "/api/v1/card/login",
            &json!({"challenge_id": "nope", "certificate": "!!", "signature": "x"}),
        )
        .await;
    assert_eq!((status, code(&err)), (404, "not_found"), "{err}");
    let (status, err) = card_login_with(&h, b"not a certificate", good_sign(&h)).await;
    assert_eq!((status, code(&err)), (400, "bad_request"), "{err}");
}
