//! The OpenID Provider (issue 13, plain registration) end to end over HTTPS, on SQLite and
//! PostgreSQL: a test relying party signs its request objects and assertions and checks
//! the provider's signatures with the `rsa` crate (not the provider's JOSE code path);
//! only the UserInfo JWE is opened with josekit.
#![allow(clippy::unwrap_used)]

mod common;
mod oidc_common;

use cie_core::flows::wire::b64;
use common::*;
use companion_server::oidc::{ClientMetadata, OidcConfig, OpKey};
use oidc_common::*;
use serde_json::{Value, json};
use sha2_10::{Digest, Sha256};

const CLIENT_ID: &str = "https://rp.example/oidc/rp";
const REDIRECT: &str = "https://rp.example/oidc/rp/callback";
const LOGGED_OUT: &str = "https://rp.example/oidc/rp/logged-out";
/// A second client (same keys, another id): its calls must not touch the first's tokens.
const OTHER_ID: &str = "https://rp2.example/oidc/rp";
const OTHER_REDIRECT: &str = "https://rp2.example/oidc/rp/callback";

fn rp_jwks() -> Value {
    json!({"keys": [rsa_jwk(RP_SIGN_KEY, "sig").1, rsa_jwk(RP_ENC_KEY, "enc").1]})
}

async fn start(db: &TestDb) -> Harness {
    start_keys(db, OpKey::generate().unwrap().0, Vec::new()).await
}

/// With `key` signing and `published` (rotation) also in the JWK set.
async fn start_keys(db: &TestDb, key: OpKey, published: Vec<OpKey>) -> Harness {
    let mut client = ClientMetadata::new(CLIENT_ID, vec![REDIRECT.into()], rp_jwks());
    client.client_name = Some("Comune di Prova".into());
    client.post_logout_redirect_uris = vec![LOGGED_OUT.into()];
    let mut oidc = OidcConfig::new(key);
    oidc.published_keys = published.into_iter().map(std::sync::Arc::new).collect();
    oidc.clients.push(client);
    oidc.clients.push(ClientMetadata::new(
        OTHER_ID,
        vec![OTHER_REDIRECT.into()],
        rp_jwks(),
    ));
    Harness::start_with(db, |c| c.oidc = Some(oidc)).await
}

fn authz(h: &Harness, tweak: impl FnOnce(&mut Value)) -> Authz {
    authz_for(&PLAIN, h, tweak)
}

const PLAIN: Rp = Rp {
    client_id: CLIENT_ID,
    redirect: REDIRECT,
};
const OTHER: Rp = Rp {
    client_id: OTHER_ID,
    redirect: OTHER_REDIRECT,
};

/// Logged in, consented, redeemed: the token response.
async fn tokens(h: &Harness, b: &reqwest::Client) -> Value {
    let a = authz(h, |_| {});
    let back = consent(h, b, &a, "accept").await;
    let (s, t) = token(h, &back["code"], &a.verifier).await;
    assert_eq!(s, 200, "{t}");
    t
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
    let r = decide(h, b, &path, decision).await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    query_of(&loc)
}

async fn token(h: &Harness, code: &str, verifier: &str) -> (u16, Value) {
    token_for(&PLAIN, h, code, verifier).await
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

        // SpidL3 asked of a level-2 session from before the request: the login page
        // again (a step up), asking level 3.
        set_session_level(&h, 2).await;
        let a = authz(&h, |c| c["acr_values"] = json!(SPID_L3));
        let r = to_consent(&h, &b, &a).await;
        let path = location(&r);
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/?return="));
        assert!(location(&r).ends_with("&level=3"), "{}", location(&r));
        let r = decide(&h, &b, &path, "accept").await;
        assert_eq!(r.status(), 303, "no code below the level asked");
        // Level downgrade: the login made for it reaches only level 2 → access_denied, the
        // request is finished (no code, even on an accept).
        h.clock.advance(1);
        desktop_login(&h).await;
        set_session_level(&h, 2).await;
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 302);
        assert_error_redirect(&location(&r), &h, &a.state, "access_denied");
        let r = decide(&h, &b, &path, "accept").await;
        assert_eq!(r.status(), 400, "the downgraded request is over");
        assert!(r.headers().get("location").is_none());
        let log = h.server().store().audit_log().await.unwrap();
        assert!(
            log.iter()
                .any(|(k, _, o, _)| k == "oidc_consent" && o == "level_not_reached 2 < 3")
        );
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

#[tokio::test]
async fn revocation() {
    for db in backends().await {
        let h = start(&db).await;
        let b = browser(&h);
        let (_, conf) = h.get(&b, "/.well-known/openid-configuration").await;
        assert_eq!(conf["revocation_endpoint"], h.url("/oidc/revocation"));
        assert_eq!(
            conf["revocation_endpoint_auth_methods_supported"],
            json!(["private_key_jwt"])
        );
        desktop_login(&h).await;
        let t = tokens(&h, &b).await;
        let at = t["access_token"].as_str().unwrap();
        // A second token from the same single sign-on session.
        let t2 = tokens(&h, &b).await;
        const PATH: &str = "/oidc/revocation";

        // Without client authentication, or with an assertion for the token endpoint:
        // 401, nothing revoked.
        let (s, e) = post_form(&h, PATH, &[("token".into(), at.into())]).await;
        assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
        let mut form = client_form(&PLAIN, &h, "/oidc/token", &[("token", at)]);
        let (s, _) = post_form(&h, PATH, &form).await;
        assert_eq!(s, 401);
        // A replayed assertion: 401.
        form = client_form(&PLAIN, &h, PATH, &[("token", "x")]);
        assert_eq!(post_form(&h, PATH, &form).await.0, 200);
        assert_eq!(post_form(&h, PATH, &form).await.0, 401);
        assert_eq!(userinfo(&h, at).await.status(), 200);

        // Another client revoking it: 200, and the token and the session still work.
        let (s, _) = client_post(&OTHER, &h, PATH, &[("token", at)]).await;
        assert_eq!(s, 200);
        assert_eq!(userinfo(&h, at).await.status(), 200);
        assert_eq!(h.get(&b, "/api/v1/session").await.0, 200);
        // Unknown tokens: 200.
        for unknown in ["not-a-token", t["id_token"].as_str().unwrap()] {
            let (s, _) = client_post(&PLAIN, &h, PATH, &[("token", unknown)]).await;
            assert_eq!(s, 200, "{unknown}");
        }
        // Its client: 200, then UserInfo refuses it; revoking again is still 200.
        let hint = [("token", at), ("token_type_hint", "access_token")];
        let (s, _) = client_post(&PLAIN, &h, PATH, &hint).await;
        assert_eq!(s, 200);
        assert_eq!(userinfo(&h, at).await.status(), 401);
        assert_eq!(client_post(&PLAIN, &h, PATH, &hint).await.0, 200);
        // SPID: the single sign-on session it came from is over, so a new authorization
        // goes back to the login page; another token of that session is not touched.
        assert_eq!(
            h.get(&b, "/api/v1/session").await.0,
            404,
            "the session outlived the revocation"
        );
        assert_eq!(
            userinfo(&h, t2["access_token"].as_str().unwrap())
                .await
                .status(),
            200
        );
        let log = h.server().store().audit_log().await.unwrap();
        assert!(
            log.iter()
                .any(|(k, s, o, _)| k == "oidc_revocation" && s == CLIENT_ID && o == "ok")
        );
        assert!(
            log.iter().any(|(k, s, o, _)| k == "oidc_revocation"
                && s == OTHER_ID
                && o == "unknown_token")
        );
    }
}

#[tokio::test]
async fn introspection() {
    for db in backends().await {
        let h = start(&db).await;
        let b = browser(&h);
        let (_, conf) = h.get(&b, "/.well-known/openid-configuration").await;
        assert_eq!(conf["introspection_endpoint"], h.url("/oidc/introspection"));
        assert_eq!(
            conf["introspection_endpoint_auth_methods_supported"],
            json!(["private_key_jwt"])
        );
        desktop_login(&h).await;
        let t = tokens(&h, &b).await;
        let at = t["access_token"].as_str().unwrap();
        const PATH: &str = "/oidc/introspection";
        let (_, jwks) = h.get(&b, "/oidc/jwks.json").await;
        let (_, atc) = verify_op(at, &jwks);

        // Its client: active, with the profile's members.
        let (s, i) = client_post(&PLAIN, &h, PATH, &[("token", at)]).await;
        assert_eq!(s, 200, "{i}");
        assert_eq!(i["active"], true);
        assert_eq!(i["client_id"], CLIENT_ID);
        assert_eq!(i["sub"], atc["sub"]);
        assert_eq!(i["iss"], h.origin.to_string());
        assert_eq!(i["scope"], "openid");
        assert_eq!(i["exp"], atc["exp"]);
        assert_eq!(i["aud"], atc["aud"]);

        // Without client authentication: 401; with an assertion for another endpoint: 401.
        let (s, e) = post_form(&h, PATH, &[("token".into(), at.into())]).await;
        assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
        let form = client_form(&PLAIN, &h, "/oidc/revocation", &[("token", at)]);
        assert_eq!(post_form(&h, PATH, &form).await.0, 401);

        // Another client's token, unknown tokens, an ID token: inactive, nothing else.
        let inactive = json!({"active": false});
        let (s, i) = client_post(&OTHER, &h, PATH, &[("token", at)]).await;
        assert_eq!((s, &i), (200, &inactive));
        for unknown in ["x", t["id_token"].as_str().unwrap()] {
            let (s, i) = client_post(&PLAIN, &h, PATH, &[("token", unknown)]).await;
            assert_eq!((s, &i), (200, &inactive), "{unknown}");
        }

        // Revoked: inactive.
        let (s, _) = client_post(&PLAIN, &h, "/oidc/revocation", &[("token", at)]).await;
        assert_eq!(s, 200);
        let (s, i) = client_post(&PLAIN, &h, PATH, &[("token", at)]).await;
        assert_eq!((s, &i), (200, &inactive));

        // Expired: inactive (a new login: the revocation ended the single sign-on session).
        desktop_login(&h).await;
        let t = tokens(&h, &b).await;
        let at = t["access_token"].as_str().unwrap();
        let (_, i) = client_post(&PLAIN, &h, PATH, &[("token", at)]).await;
        assert_eq!(i["active"], true);
        h.clock.advance(companion_server::oidc::TOKEN_SECS);
        let (s, i) = client_post(&PLAIN, &h, PATH, &[("token", at)]).await;
        assert_eq!((s, &i), (200, &inactive));
        let log = h.server().store().audit_log().await.unwrap();
        assert!(
            log.iter()
                .any(|(k, s, o, _)| k == "oidc_introspection" && s == CLIENT_ID && o == "active")
        );
    }
}

/// The logout endpoint called with `params` by `b`: status, Location, body.
async fn logout_call(
    h: &Harness,
    b: &reqwest::Client,
    params: &[(&str, &str)],
    confirm: bool,
) -> (u16, String, String) {
    let r = if confirm {
        let mut form = params.to_vec();
        form.push(("confirm", "1"));
        b.post(h.url("/oidc/logout")).form(&form).send().await
    } else {
        b.get(h.url("/oidc/logout")).query(params).send().await
    }
    .unwrap();
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, loc, r.text().await.unwrap())
}

#[tokio::test]
async fn rp_initiated_logout() {
    for db in backends().await {
        // A published key the test holds, to make a hint naming another user.
        let (extra, extra_pem) = OpKey::generate().unwrap();
        let h = start_keys(&db, OpKey::generate().unwrap().0, vec![extra]).await;
        let extra = OpKey::from_pem(&extra_pem).unwrap();
        let b = browser(&h);
        let (_, conf) = h.get(&b, "/.well-known/openid-configuration").await;
        assert_eq!(conf["end_session_endpoint"], h.url("/oidc/logout"));
        desktop_login(&h).await;
        let t = tokens(&h, &b).await;
        let at = t["access_token"].as_str().unwrap();
        let hint = t["id_token"].as_str().unwrap();

        // Refused, each with the error page and never a redirect.
        let (_, jwks) = h.get(&b, "/oidc/jwks.json").await;
        let (idh, idc) = verify_op(hint, &jwks);
        let forged = sign_jwt(OTHER_KEY, idh["kid"].as_str().unwrap(), &idc);
        for (params, why) in [
            (vec![("state", "s")], "no hint"),
            (
                vec![("id_token_hint", forged.as_str())],
                "not our signature",
            ),
            (vec![("id_token_hint", at)], "an access token"),
            (
                vec![
                    ("id_token_hint", hint),
                    ("post_logout_redirect_uri", REDIRECT),
                ],
                "redirect not registered for logout",
            ),
            (
                vec![("id_token_hint", hint), ("client_id", OTHER_ID)],
                "client_id not the hint's aud",
            ),
        ] {
            for confirm in [false, true] {
                let (s, loc, body) = logout_call(&h, &b, &params, confirm).await;
                assert_eq!((s, loc.as_str()), (400, ""), "{why}");
                assert!(body.contains("Richiesta non valida") && body.contains("Invalid request"));
            }
        }
        assert_eq!(userinfo(&h, at).await.status(), 200, "nothing ended");

        // A valid request: first the confirmation page, which ends nothing.
        let ok = [
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "st-42"),
        ];
        let (s, _, page) = logout_call(&h, &b, &ok, false).await;
        assert_eq!(s, 200);
        assert!(page.contains("Log out") && page.contains("Comune di Prova"));
        assert!(page.contains("name=\"confirm\" value=\"1\""));
        assert_eq!(userinfo(&h, at).await.status(), 200);

        // Confirmed from a browser without this user's session: nothing to end.
        let stranger = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_der(h.server().certificate_der()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (s, loc, _) = logout_call(&h, &stranger, &ok, true).await;
        assert_eq!(s, 302);
        assert_eq!(loc, format!("{LOGGED_OUT}?state=st-42"));
        assert_eq!(userinfo(&h, at).await.status(), 200);

        // A hint of ours naming another subject (the other client's aud, so its pairwise
        // sub is not this user's there): the user's session is not ended.
        let mut other_user = idc.clone();
        other_user["aud"] = json!(OTHER_ID);
        let other_hint = extra.sign(None, &other_user).unwrap();
        let (s, loc, body) =
            logout_call(&h, &b, &[("id_token_hint", other_hint.as_str())], true).await;
        assert_eq!((s, loc.as_str()), (200, ""));
        assert!(body.contains("No login to end"), "{body}");
        assert_eq!(userinfo(&h, at).await.status(), 200);

        // Confirmed in the user's browser: back to the RP with the state, the session
        // ended (cookie cleared, row gone) and the client's tokens from it revoked.
        let r = b
            .post(h.url("/oidc/logout"))
            .form(&[ok.as_slice(), &[("confirm", "1")]].concat())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(location(&r), format!("{LOGGED_OUT}?state=st-42"));
        let cleared = r.headers()["set-cookie"].to_str().unwrap();
        assert!(cleared.starts_with("cc_session=;") && cleared.contains("Max-Age=0"));
        assert_eq!(userinfo(&h, at).await.status(), 401);
        let (_, i) = client_post(&PLAIN, &h, "/oidc/introspection", &[("token", at)]).await;
        assert_eq!(i, json!({"active": false}));
        let log = h.server().store().audit_log().await.unwrap();
        assert!(log.iter().any(|(k, s, o, _)| k == "oidc_logout"
            && s.starts_with(&format!("{CLIENT_ID} "))
            && o == "ok"));
        // The session is over: a new authorization goes to the login page.
        let a = authz(&h, |_| {});
        let path = location(&to_consent(&h, &b, &a).await);
        let r = b.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/?return="));

        // Without a way back (and an expired hint): the page, in Italian and English.
        h.clock.advance(companion_server::oidc::TOKEN_SECS + 1);
        let (s, loc, body) = logout_call(&h, &b, &[("id_token_hint", hint)], true).await;
        assert_eq!((s, loc.as_str()), (200, ""));
        assert!(body.contains("Nessun accesso da chiudere") && body.contains("No login to end"));
    }
}

/// `token`'s header and claims re-signed by `key` (its own `kid`, same `typ`).
fn resign(token: &str, key: &OpKey, jwks: &Value) -> String {
    let (header, claims) = verify_op(token, jwks);
    key.sign(header["typ"].as_str(), &claims).unwrap()
}

#[tokio::test]
async fn key_rotation() {
    for db in backends().await {
        // The current key signs; the previous one (and a next one) stay published.
        let (current, _) = OpKey::generate().unwrap();
        let (previous, previous_pem) = OpKey::generate().unwrap();
        let (next, next_pem) = OpKey::generate().unwrap();
        let (unpublished, _) = OpKey::generate().unwrap();
        let current_kid = current.kid().to_owned();
        let kids = [
            current_kid.clone(),
            previous.kid().into(),
            next.kid().into(),
        ];
        let h = start_keys(&db, current, vec![previous, next]).await;
        let b = browser(&h);
        let (_, jwks) = h.get(&b, "/oidc/jwks.json").await;
        let published: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(published, kids, "the current key first, then the others");
        for k in jwks["keys"].as_array().unwrap() {
            assert_eq!(k["kid"], rsa_thumbprint_of(k));
            assert_eq!(
                (k["use"].as_str(), k["alg"].as_str()),
                (Some("sig"), Some("RS256"))
            );
            assert!(k.get("d").is_none(), "public keys only");
        }
        let (_, conf) = h.get(&b, "/.well-known/openid-configuration").await;
        assert_eq!(conf["jwks"], jwks);

        // Tokens and UserInfo are signed with the current key.
        desktop_login(&h).await;
        let t = tokens(&h, &b).await;
        let at = t["access_token"].as_str().unwrap();
        let id = t["id_token"].as_str().unwrap();
        assert_eq!(verify_op(at, &jwks).0["kid"], current_kid);
        assert_eq!(verify_op(id, &jwks).0["kid"], current_kid);
        let r = userinfo(&h, at).await;
        let inner = open_userinfo(&r.text().await.unwrap());
        assert_eq!(verify_op(&inner, &jwks).0["kid"], current_kid);

        // The same access token signed with the previous or the next key (as before the
        // rotation, or by another instance already rotated) is accepted: UserInfo,
        // introspection; by a key no longer published it is not.
        let previous = OpKey::from_pem(&previous_pem).unwrap();
        let next = OpKey::from_pem(&next_pem).unwrap();
        for key in [&previous, &next] {
            let old = resign(at, key, &jwks);
            let (h_, _) = verify_op(&old, &jwks);
            assert_eq!(h_["kid"], key.kid(), "verifiable with the published JWKS");
            assert_eq!(userinfo(&h, &old).await.status(), 200);
            let (_, i) = client_post(&PLAIN, &h, "/oidc/introspection", &[("token", &old)]).await;
            assert_eq!(i["active"], true);
            // An ID token by it is a valid logout hint (the confirmation page).
            let hint = resign(id, key, &jwks);
            let (s, _, _) = logout_call(&h, &b, &[("id_token_hint", &hint)], false).await;
            assert_eq!(s, 200);
        }
        let gone = unpublished
            .sign(Some("at+jwt"), &verify_op(at, &jwks).1)
            .unwrap();
        assert_eq!(userinfo(&h, &gone).await.status(), 401);
        let (_, i) = client_post(&PLAIN, &h, "/oidc/introspection", &[("token", &gone)]).await;
        assert_eq!(i, json!({"active": false}));
        let hint = unpublished.sign(None, &verify_op(id, &jwks).1).unwrap();
        let (s, _, _) = logout_call(&h, &b, &[("id_token_hint", &hint)], false).await;
        assert_eq!(s, 400);
    }
}
