//! The OpenID Provider (issue 13, plain registration) end to end over HTTPS, on SQLite and
//! PostgreSQL: a test relying party signs its request objects and assertions and checks
//! the provider's signatures with the `rsa` crate (not the provider's JOSE code path);
//! only the UserInfo JWE is opened with josekit.
#![allow(clippy::unwrap_used)]

mod common;

use cie_core::flows::wire::{CardStatement, DesktopQr, b64, unb64};
use common::*;
use companion_server::oidc::{ClientMetadata, OidcConfig, OpKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2_10::{Digest, Sha256};

const RP_SIGN_KEY: &[u8] = include_bytes!("../../card-sim/testdata/renewed_auth_key.pk8.der");
const RP_ENC_KEY: &[u8] = include_bytes!("../../card-sim/testdata/icc_intauth_key.pk8.der");
const OTHER_KEY: &[u8] = include_bytes!("../../card-sim/testdata/ds_key.pk8.der");
const CLIENT_ID: &str = "https://rp.example/oidc/rp";
const REDIRECT: &str = "https://rp.example/oidc/rp/callback";
const SPID_L1: &str = "https://www.spid.gov.it/SpidL1";
const SPID_L2: &str = "https://www.spid.gov.it/SpidL2";
const SPID_L3: &str = "https://www.spid.gov.it/SpidL3";
const FISCAL: &str = "https://attributes.eid.gov.it/fiscal_number";

/// RFC 7638 thumbprint and JWK of an RSA public key, computed here (not by the provider).
fn rsa_jwk(der: &[u8], use_: &str) -> (String, Value) {
    let key = rsa::RsaPrivateKey::from_pkcs8_der(der).unwrap();
    let n = b64(&key.n().to_bytes_be());
    let e = b64(&key.e().to_bytes_be());
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = b64(&Sha256::digest(canonical.as_bytes()));
    let jwk = json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "use": use_});
    (kid, jwk)
}

fn rp_jwks() -> Value {
    json!({"keys": [rsa_jwk(RP_SIGN_KEY, "sig").1, rsa_jwk(RP_ENC_KEY, "enc").1]})
}

/// A compact RS256 JWS by `key_der`, header `kid`.
fn sign_jwt(key_der: &[u8], kid: &str, claims: &Value) -> String {
    let key = SigningKey::<Sha256>::new(rsa::RsaPrivateKey::from_pkcs8_der(key_der).unwrap());
    let header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", b64(&sig))
}

fn rp_sign(claims: &Value) -> String {
    sign_jwt(RP_SIGN_KEY, &rsa_jwk(RP_SIGN_KEY, "sig").0, claims)
}

/// Verify an RS256 JWS with the provider's published JWKS; header and claims.
fn verify_op(token: &str, jwks: &Value) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&unb64(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in the provider's JWKS");
    let n = rsa::BigUint::from_bytes_be(&unb64(jwk["n"].as_str().unwrap()).unwrap());
    let e = rsa::BigUint::from_bytes_be(&unb64(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let sig = Signature::try_from(unb64(parts[2]).unwrap().as_slice()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("the provider's signature verifies");
    let claims: Value = serde_json::from_slice(&unb64(parts[1]).unwrap()).unwrap();
    (header, claims)
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b64(&b)
}

async fn start(db: &TestDb) -> Harness {
    let (key, _) = OpKey::generate().unwrap();
    let mut client = ClientMetadata::new(CLIENT_ID, vec![REDIRECT.into()], rp_jwks());
    client.client_name = Some("Comune di Prova".into());
    let mut oidc = OidcConfig::new(key);
    oidc.clients.push(client);
    Harness::start_with(db, |c| c.oidc = Some(oidc)).await
}

/// The browser, not following redirects (each hop is checked), sharing the jar.
fn browser(h: &Harness) -> reqwest::Client {
    let cert = reqwest::Certificate::from_der(h.server().certificate_der()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .tls_built_in_root_certs(false)
        .cookie_provider(h.jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A desktop QR login approved with the virtual card: the browser's session is level 3.
async fn desktop_login(h: &Harness) {
    let browser = h.browser();
    let phone = h.other_client();
    let (_, body) = h
        .post(&browser, "/api/v1/desktop/rendezvous", &json!({}))
        .await;
    let rid = body["rid"].as_str().unwrap().to_owned();
    let qr = DesktopQr::parse(
        body["qr"].as_str().unwrap(),
        std::slice::from_ref(&h.origin),
    )
    .unwrap();
    let claim = json!({"rid": rid, "proof": b64(&qr.claim_proof()), "device_name": "Pixel 8"});
    let (s, claimed) = h.post(&phone, "/api/v1/rendezvous/claim", &claim).await;
    assert_eq!(s, 200, "{claimed}");
    let token = claimed["claim_token"].as_str().unwrap();
    let (_, ch) = h
        .post(
            &phone,
            "/api/v1/card/challenge",
            &json!({"purpose": "desktop_approve", "rid": rid, "claim_token": token}),
        )
        .await;
    let signature = card_sign(&CardStatement::DesktopApprove {
        origin: &h.origin,
        rid: &rid,
        context_hash: claimed["context_hash"].as_str().unwrap(),
        challenge: ch["challenge"].as_str().unwrap(),
    });
    let approve = json!({"method": "cie", "claim_token": token, "challenge_id": ch["challenge_id"],
        "certificate": b64(AUTH_CERT), "signature": signature});
    let (s, approved) = h
        .post(
            &phone,
            &format!("/api/v1/rendezvous/{rid}/approve"),
            &approve,
        )
        .await;
    assert_eq!(s, 200, "{approved}");
    let (s, done) = h
        .post(
            &browser,
            &format!("/api/v1/desktop/rendezvous/{rid}/code"),
            &json!({"code": approved["code"]}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
}

/// Set the level of every session (a level-2 login, as an enrolled phone gives).
async fn set_session_level(h: &Harness, level: i64) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&h.db_url).await.unwrap();
    sqlx::query("UPDATE sessions SET level = $1")
        .bind(level)
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

/// One authorization request of the test RP.
struct Authz {
    state: String,
    nonce: String,
    verifier: String,
    query: Vec<(String, String)>,
}

fn authz(h: &Harness, tweak: impl FnOnce(&mut Value)) -> Authz {
    let state = random(32);
    let nonce = random(32);
    let verifier = random(32);
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let now = h.clock.now_secs();
    let mut claims = json!({
        "iss": CLIENT_ID, "client_id": CLIENT_ID,
        "aud": [h.origin.to_string(), h.url("/oidc/authorization")],
        "iat": now, "exp": now + 60,
        "response_type": "code", "scope": "openid", "redirect_uri": REDIRECT,
        "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256",
        "acr_values": format!("{SPID_L2} {SPID_L1}"), "prompt": "consent",
        "claims": {"userinfo": {"given_name": null, "family_name": null, FISCAL: {"essential": true}}},
    });
    tweak(&mut claims);
    let query = vec![
        ("client_id".into(), CLIENT_ID.into()),
        ("response_type".into(), "code".into()),
        (
            "scope".into(),
            claims["scope"].as_str().unwrap_or("").into(),
        ),
        ("code_challenge".into(), challenge),
        ("code_challenge_method".into(), "S256".into()),
        ("request".into(), rp_sign(&claims)),
    ];
    Authz {
        state,
        nonce,
        verifier,
        query,
    }
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}
impl NowSecs for companion_server::ManualClock {
    fn now_secs(&self) -> u64 {
        companion_server::Clock::now(self)
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Authorization request → consent page; the consent path.
async fn to_consent(h: &Harness, b: &reqwest::Client, a: &Authz) -> reqwest::Response {
    b.get(h.url("/oidc/authorization"))
        .query(&a.query)
        .send()
        .await
        .unwrap()
}

/// Through the consent page with `decision`: the redirect to the RP, parsed.
async fn consent(
    h: &Harness,
    b: &reqwest::Client,
    a: &Authz,
    decision: &str,
) -> std::collections::HashMap<String, String> {
    let r = to_consent(h, b, a).await;
    assert_eq!(r.status(), 303);
    let path = location(&r);
    assert!(path.starts_with("/oidc/consent/"), "{path}");
    let page = b.get(h.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Acconsento") && html.contains("Rifiuto"));
    assert!(html.contains("Codice fiscale") && html.contains("Comune di Prova"));
    assert!(!html.contains("Data di nascita"), "only what is asked");
    let r = b
        .post(h.url(&path))
        .form(&[("decision", decision)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    query_of(&loc)
}

async fn token(h: &Harness, code: &str, verifier: &str) -> (u16, Value) {
    let now = h.clock.now_secs();
    let assertion = rp_sign(&json!({
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": [h.url("/oidc/token")],
        "iat": now, "exp": now + 60, "jti": random(16),
    }));
    let r = h
        .other_client()
        .post(h.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT_ID),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn userinfo(h: &Harness, at: &str) -> reqwest::Response {
    h.other_client()
        .get(h.url("/oidc/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
}

/// Decrypt the UserInfo JWE with the RP's `enc` key; the inner JWS.
fn open_userinfo(jwe: &str) -> String {
    let decrypter = josekit::jwe::RSA_OAEP
        .decrypter_from_der(RP_ENC_KEY)
        .unwrap();
    let (payload, header) = josekit::jwe::deserialize_compact(jwe, &decrypter).unwrap();
    assert_eq!(header.content_encryption(), Some("A128CBC-HS256"));
    assert_eq!(header.content_type(), Some("JWT"));
    assert_eq!(header.key_id(), Some(rsa_jwk(RP_ENC_KEY, "enc").0.as_str()));
    String::from_utf8(payload).unwrap()
}

#[tokio::test]
async fn authorization_code_flow_end_to_end() {
    for db in backends().await {
        let h = start(&db).await;
        let b = browser(&h);
        // Discovery and keys.
        let (s, conf) = h.get(&b, "/.well-known/openid-configuration").await;
        assert_eq!(s, 200);
        assert_eq!(conf["issuer"], h.origin.to_string());
        assert_eq!(conf["token_endpoint"], h.url("/oidc/token"));
        let (_, jwks) = h.get(&b, "/oidc/jwks.json").await;
        assert_eq!(jwks, conf["jwks"]);
        let kid = jwks["keys"][0]["kid"].as_str().unwrap();
        assert_eq!(kid, rsa_thumbprint_of(&jwks["keys"][0]));

        // Not logged in yet: to the login page, with the way back.
        let a = authz(&h, |_| {});
        let r = to_consent(&h, &b, &a).await;
        let path = location(&r);
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            location(&r),
            format!("/?return={}&level=1", path.replace('/', "%2F"))
        );
        let js = b.get(h.url("/static/oidc-return.js")).send().await.unwrap();
        assert!(js.text().await.unwrap().contains("/api/v1/session"));
        let page = b.get(h.url("/")).send().await.unwrap();
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("<script src=\"/static/oidc-return.js\"")
        );
        desktop_login(&h).await;

        let a = authz(&h, |_| {});
        let back = consent(&h, &b, &a, "accept").await;
        assert_eq!(back["state"], a.state);
        assert_eq!(back["iss"], h.origin.to_string());
        let code = back["code"].clone();

        let (s, t) = token(&h, &code, &a.verifier).await;
        assert_eq!(s, 200, "{}: {t}", db.name);
        assert_eq!(t["token_type"], "Bearer");
        let at = t["access_token"].as_str().unwrap();
        let (idh, id) = verify_op(t["id_token"].as_str().unwrap(), &jwks);
        assert_eq!(idh["kid"], kid);
        assert_eq!(id["iss"], h.origin.to_string());
        assert_eq!(id["aud"], CLIENT_ID);
        assert_eq!(id["nonce"], a.nonce);
        // The card login reached level 3: more than asked, and what is reported.
        assert_eq!(id["acr"], SPID_L3);
        let digest = Sha256::digest(at.as_bytes());
        assert_eq!(id["at_hash"], b64(&digest[..16]));
        assert_eq!(id["nbf"], id["iat"]);
        assert!(id["exp"].as_u64().unwrap() > id["iat"].as_u64().unwrap());
        assert!(id["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let sub = id["sub"].as_str().unwrap().to_owned();
        assert!(!sub.is_empty() && !sub.contains(TEST_CF));
        assert!(
            id.get("given_name").is_none(),
            "no attributes in the ID token"
        );
        let (ath, atc) = verify_op(at, &jwks);
        assert_eq!(ath["typ"], "at+jwt");
        assert!(
            atc["aud"]
                .as_array()
                .unwrap()
                .contains(&json!(h.url("/oidc/userinfo")))
        );
        assert_eq!(atc["sub"], sub);

        let r = userinfo(&h, at).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/jwt");
        let inner = open_userinfo(&r.text().await.unwrap());
        let (_, ui) = verify_op(&inner, &jwks);
        assert_eq!(ui["sub"], sub);
        assert_eq!(ui["aud"], CLIENT_ID);
        assert_eq!(ui["given_name"], "MARIA");
        assert_eq!(ui[FISCAL], format!("TINIT-{TEST_CF}"));
        assert!(ui.get("birthdate").is_none(), "not asked, not released");

        // The consent is on the audit trail, by claim name.
        let log = h.server().store().audit_log().await.unwrap();
        assert!(log.iter().any(|(k, _, o, _)| k == "oidc_consent"
            && o.contains("level 3")
            && o.contains(FISCAL)));

        // Code replay: refused, and the access token it gave is revoked.
        let (s, e) = token(&h, &code, &a.verifier).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_grant")),
            "{e}"
        );
        assert_eq!(userinfo(&h, at).await.status(), 401);

        // The same subject again for the same client (pairwise, stable).
        let a = authz(&h, |c| c["acr_values"] = json!(SPID_L1));
        let back = consent(&h, &b, &a, "accept").await;
        let (_, t) = token(&h, &back["code"], &a.verifier).await;
        let (_, id) = verify_op(t["id_token"].as_str().unwrap(), &jwks);
        assert_eq!(id["sub"], sub);
    }
}

fn rsa_thumbprint_of(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap(),
        jwk["n"].as_str().unwrap()
    );
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// An error redirect to the RP: `error`, `state`, `iss`, and no code.
fn assert_error_redirect(loc: &str, h: &Harness, state: &str, error: &str) {
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(loc);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{loc}");
    assert_eq!(q["state"], state);
    assert_eq!(q["iss"], h.origin.to_string());
    assert!(q.contains_key("error_description"));
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn bad_request_objects_are_refused() {
    for db in backends().await {
        let h = start(&db).await;
        let b = browser(&h);
        // alg none.
        let mut a = authz(&h, |_| {});
        let claims = json!({"iss": CLIENT_ID, "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": a.state});
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(claims.to_string().as_bytes())
        );
        a.query.retain(|(k, _)| k != "request");
        a.query.push(("request".into(), none));
        let r = to_consent(&h, &b, &a).await;
        assert_eq!(r.status(), 302);
        assert_error_redirect(&location(&r), &h, &a.state, "invalid_request_object");

        // Signed by another key under the RP's kid.
        let mut a = authz(&h, |_| {});
        let now = h.clock.now_secs();
        let forged = sign_jwt(
            OTHER_KEY,
            &rsa_jwk(RP_SIGN_KEY, "sig").0,
            &json!({"iss": CLIENT_ID, "client_id": CLIENT_ID, "aud": h.origin.to_string(),
                "iat": now, "exp": now + 60, "redirect_uri": REDIRECT, "state": a.state}),
        );
        a.query.retain(|(k, _)| k != "request");
        a.query.push(("request".into(), forged));
        let r = to_consent(&h, &b, &a).await;
        assert_error_redirect(&location(&r), &h, &a.state, "invalid_request_object");

        // Expired (its exp passed before it arrived).
        let a = authz(&h, |c| {
            let now = c["iat"].as_u64().unwrap();
            c["iat"] = json!(now - 120);
            c["exp"] = json!(now - 60);
        });
        let r = to_consent(&h, &b, &a).await;
        assert_error_redirect(&location(&r), &h, &a.state, "invalid_request_object");

        // Replayed (the same object twice).
        let a = authz(&h, |_| {});
        assert_eq!(to_consent(&h, &b, &a).await.status(), 303);
        let r = to_consent(&h, &b, &a).await;
        assert_error_redirect(&location(&r), &h, &a.state, "invalid_request_object");

        // HTTP scope differs from the object's; short state; plain PKCE.
        let mut a = authz(&h, |_| {});
        a.query.retain(|(k, _)| k != "scope");
        a.query.push(("scope".into(), "openid profile".into()));
        let r = to_consent(&h, &b, &a).await;
        assert_error_redirect(&location(&r), &h, &a.state, "invalid_request");
        let a = authz(&h, |c| c["code_challenge_method"] = json!("plain"));
        let r = to_consent(&h, &b, &a).await;
        assert_error_redirect(&location(&r), &h, &a.state, "invalid_request");

        // Redirect URI not registered: 400 here, never a redirect.
        let a = authz(&h, |c| c["redirect_uri"] = json!("https://evil.example/cb"));
        let r = to_consent(&h, &b, &a).await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        // Unknown client: the same.
        let mut a = authz(&h, |_| {});
        a.query[0].1 = "https://unknown.example".into();
        let r = to_consent(&h, &b, &a).await;
        assert_eq!(r.status(), 400);
    }
}

#[tokio::test]
async fn refusals_after_login() {
    for db in backends().await {
        let h = start(&db).await;
        let b = browser(&h);
        let (_, jwks) = h.get(&b, "/oidc/jwks.json").await;
        desktop_login(&h).await;

        // Refused consent: access_denied, no code.
        let a = authz(&h, |_| {});
        let back = consent(&h, &b, &a, "refuse").await;
        assert_eq!(back["error"], "access_denied");
        assert_eq!(back["state"], a.state);
        assert!(!back.contains_key("code"));

        // PKCE mismatch: invalid_grant, no token; the code is spent.
        let a = authz(&h, |_| {});
        let back = consent(&h, &b, &a, "accept").await;
        let (s, e) = token(&h, &back["code"], &random(32)).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_grant")),
            "{e}"
        );
        assert!(e.get("access_token").is_none());
        let (s, _) = token(&h, &back["code"], &a.verifier).await;
        assert_eq!(s, 400);

        // Level downgrade: SpidL3 asked, a level-2 session → the login page again.
        set_session_level(&h, 2).await;
        let a = authz(&h, |c| c["acr_values"] = json!(SPID_L3));
        let r = to_consent(&h, &b, &a).await;
        let path = location(&r);
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/?return="));
        let r = b
            .post(h.url(&path))
            .form(&[("decision", "accept")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "no code below the level asked");
        // SpidL2 or L1 asked: the acr is the session's, never above it.
        let a = authz(&h, |_| {});
        let back = consent(&h, &b, &a, "accept").await;
        let (s, t) = token(&h, &back["code"], &a.verifier).await;
        assert_eq!(s, 200, "{t}");
        let (_, id) = verify_op(t["id_token"].as_str().unwrap(), &jwks);
        assert_eq!(id["acr"], SPID_L2);

        // prompt=login: the session predates the request, so a new login is asked
        // (and the page must not go straight back); after it, consent.
        let a = authz(&h, |c| c["prompt"] = json!("consent login"));
        let path = location(&to_consent(&h, &b, &a).await);
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert!(
            location(&r).ends_with("&level=1&fresh=1"),
            "{}",
            location(&r)
        );
        h.clock.advance(1);
        desktop_login(&h).await;
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        set_session_level(&h, 2).await;

        // A client assertion for another audience: invalid_client.
        let a = authz(&h, |_| {});
        let back = consent(&h, &b, &a, "accept").await;
        let now = h.clock.now_secs();
        let assertion = rp_sign(&json!({"iss": CLIENT_ID, "sub": CLIENT_ID,
            "aud": "https://elsewhere.example/token", "iat": now, "exp": now + 60, "jti": random(16)}));
        let r = h
            .other_client()
            .post(h.url("/oidc/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", back["code"].as_str()),
                ("code_verifier", a.verifier.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client");

        // A consent page opened in another browser cannot be used there.
        let a = authz(&h, |_| {});
        let path = location(&to_consent(&h, &b, &a).await);
        let other = h.other_client();
        let r = other
            .post(h.url(&path))
            .form(&[("decision", "accept")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
}
