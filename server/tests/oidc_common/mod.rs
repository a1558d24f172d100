//! Shared by the OpenID Provider tests (plain and federated): the test relying party's
//! keys and JWS signing (the `rsa` crate, not the provider's JOSE code), verification of
//! the provider's signatures, the browser and a desktop login with the virtual card.
#![allow(dead_code, clippy::unwrap_used)]

use cie_core::flows::wire::{b64, unb64};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2_10::{Digest, Sha256};

use super::common::*;

pub const RP_SIGN_KEY: &[u8] =
    include_bytes!("../../../card-sim/testdata/renewed_auth_key.pk8.der");
pub const RP_ENC_KEY: &[u8] = include_bytes!("../../../card-sim/testdata/icc_intauth_key.pk8.der");
pub const OTHER_KEY: &[u8] = include_bytes!("../../../card-sim/testdata/ds_key.pk8.der");
pub const SPID_L1: &str = "https://www.spid.gov.it/SpidL1";
pub const SPID_L2: &str = "https://www.spid.gov.it/SpidL2";
pub const SPID_L3: &str = "https://www.spid.gov.it/SpidL3";
pub const FISCAL: &str = "https://attributes.eid.gov.it/fiscal_number";

/// RFC 7638 thumbprint and JWK of an RSA public key, computed here (not by the provider).
pub fn rsa_jwk(der: &[u8], use_: &str) -> (String, Value) {
    let key = rsa::RsaPrivateKey::from_pkcs8_der(der).unwrap();
    let n = b64(&key.n().to_bytes_be());
    let e = b64(&key.e().to_bytes_be());
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = b64(&Sha256::digest(canonical.as_bytes()));
    let jwk = json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "use": use_});
    (kid, jwk)
}

/// A compact RS256 JWS by `key_der`, header `kid` and `typ: JWT`.
pub fn sign_jwt(key_der: &[u8], kid: &str, claims: &Value) -> String {
    sign_typed(key_der, kid, "JWT", claims)
}

/// A compact RS256 JWS by `key_der`, header `kid` and `typ`.
pub fn sign_typed(key_der: &[u8], kid: &str, typ: &str, claims: &Value) -> String {
    let key = SigningKey::<Sha256>::new(rsa::RsaPrivateKey::from_pkcs8_der(key_der).unwrap());
    let header = json!({"alg": "RS256", "kid": kid, "typ": typ});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", b64(&sig))
}

/// Verify an RS256 JWS with the provider's published JWKS; header and claims.
pub fn verify_op(token: &str, jwks: &Value) -> (Value, Value) {
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

pub fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b64(&b)
}

/// The browser, not following redirects (each hop is checked), sharing the jar.
pub fn browser(h: &Harness) -> reqwest::Client {
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
pub async fn desktop_login(h: &Harness) {
    let browser = h.browser();
    let (rid, code) = desktop_qr_approved(h, &browser, || {}).await;
    let (s, done) = h
        .post(
            &browser,
            &format!("/api/v1/desktop/rendezvous/{rid}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
}

/// Set the level of every session (a level-2 login, as an enrolled phone gives).
pub async fn set_session_level(h: &Harness, level: i64) {
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

pub trait NowSecs {
    fn now_secs(&self) -> u64;
}
impl NowSecs for companion_server::ManualClock {
    fn now_secs(&self) -> u64 {
        companion_server::Clock::now(self)
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One authorization request of the test RP.
pub struct Authz {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub query: Vec<(String, String)>,
}

/// A relying party of the tests (signing with `RP_SIGN_KEY`).
pub struct Rp {
    pub client_id: &'static str,
    pub redirect: &'static str,
}

pub fn rp_sign(claims: &Value) -> String {
    sign_jwt(RP_SIGN_KEY, &rsa_jwk(RP_SIGN_KEY, "sig").0, claims)
}

pub fn authz_for(rp: &Rp, h: &Harness, tweak: impl FnOnce(&mut Value)) -> Authz {
    let state = random(32);
    let nonce = random(32);
    let verifier = random(32);
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let now = h.clock.now_secs();
    let mut claims = json!({
        "iss": rp.client_id, "client_id": rp.client_id,
        "aud": [h.origin.to_string(), h.url("/oidc/authorization")],
        "iat": now, "exp": now + 60,
        "response_type": "code", "scope": "openid", "redirect_uri": rp.redirect,
        "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256",
        "acr_values": format!("{SPID_L2} {SPID_L1}"), "prompt": "consent",
        "claims": {"userinfo": {"given_name": null, "family_name": null, FISCAL: {"essential": true}}},
    });
    tweak(&mut claims);
    let query = vec![
        ("client_id".into(), rp.client_id.into()),
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

pub async fn token_for(rp: &Rp, h: &Harness, code: &str, verifier: &str) -> (u16, Value) {
    let now = h.clock.now_secs();
    let assertion = rp_sign(&json!({
        "iss": rp.client_id, "sub": rp.client_id, "aud": [h.url("/oidc/token")],
        "iat": now, "exp": now + 60, "jti": random(16),
    }));
    let r = h
        .other_client()
        .post(h.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", rp.redirect),
            ("client_id", rp.client_id),
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

/// Authorization request → consent page; the consent path.
pub async fn to_consent(h: &Harness, b: &reqwest::Client, a: &Authz) -> reqwest::Response {
    b.get(h.url("/oidc/authorization"))
        .query(&a.query)
        .send()
        .await
        .unwrap()
}

/// The consent page's form posted with `decision`.
pub async fn decide(
    h: &Harness,
    b: &reqwest::Client,
    path: &str,
    decision: &str,
) -> reqwest::Response {
    b.post(h.url(path))
        .form(&[("decision", decision)])
        .send()
        .await
        .unwrap()
}

/// A `private_key_jwt` assertion of `rp` for the endpoint at `path`.
pub fn assertion_for(rp: &Rp, h: &Harness, path: &str) -> String {
    let now = h.clock.now_secs();
    rp_sign(&json!({
        "iss": rp.client_id, "sub": rp.client_id, "aud": [h.url(path)],
        "iat": now, "exp": now + 60, "jti": random(16),
    }))
}

/// The form of a POST to `path` authenticated as `rp` (revocation, introspection).
pub fn client_form(
    rp: &Rp,
    h: &Harness,
    path: &str,
    params: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    form.push(("client_id".into(), rp.client_id.into()));
    form.push((
        "client_assertion_type".into(),
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
    ));
    form.push(("client_assertion".into(), assertion_for(rp, h, path)));
    form
}

/// POST `form` to `path`: status and body (JSON, or `Null`).
pub async fn post_form(h: &Harness, path: &str, form: &[(String, String)]) -> (u16, Value) {
    let r = h
        .other_client()
        .post(h.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `client_form` then `post_form`.
pub async fn client_post(
    rp: &Rp,
    h: &Harness,
    path: &str,
    params: &[(&str, &str)],
) -> (u16, Value) {
    post_form(h, path, &client_form(rp, h, path, params)).await
}
