//! The OpenID Provider in an OpenID Federation (issue 13): our entity configuration, and
//! relying parties registered automatically through their trust chain. The Trust Anchor,
//! an intermediate and the relying parties are synthetic: their statements are signed here
//! with the `rsa` crate and served to the provider by an in-memory fetcher.
#![allow(clippy::unwrap_used)]

mod common;
mod oidc_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cie_core::flows::wire::unb64;
use common::*;
use companion_server::oidc::federation::{FetchError, Fetcher};
use companion_server::oidc::{FederationConfig, OidcConfig, OpKey};
use oidc_common::*;
use serde_json::{Value, json};

const TA: &str = "https://ta.example";
const TA_KEY: &[u8] = OTHER_KEY;
const FOREIGN_TA: &str = "https://other-ta.example";
const FOREIGN_KEY: &[u8] = include_bytes!("../../card-sim/testdata/test_ca_key.pk8.der");
const INTERMEDIATE: &str = "https://intermediate.example";
const INTERMEDIATE_KEY: &[u8] = include_bytes!("../../card-sim/testdata/nis_intauth_key.pk8.der");
/// The relying parties' federation key (distinct from their OpenID keys).
const RP_FED_KEY: &[u8] = include_bytes!("../../card-sim/testdata/cns_auth_key.pk8.der");
const TRUST_MARK: &str = "https://ta.example/openid_relying_party/public/";
const TYP: &str = "entity-statement+jwt";

const GOOD: Rp = Rp {
    client_id: "https://rp.fed.example/oidc/rp/",
    redirect: "https://rp.fed.example/oidc/rp/callback",
};

/// Statements by URL.
#[derive(Default)]
struct MapFetcher(Mutex<HashMap<String, String>>);

#[async_trait]
impl Fetcher for MapFetcher {
    async fn get(&self, url: &str) -> Result<String, FetchError> {
        self.0
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or_else(|| FetchError("HTTP 404".into()))
    }
}

impl MapFetcher {
    fn put(&self, url: &str, jws: String) {
        self.0.lock().unwrap().insert(url.to_owned(), jws);
    }
}

fn jwks_of(key: &[u8]) -> Value {
    json!({"keys": [rsa_jwk(key, "sig").1]})
}

fn statement(key: &[u8], claims: &Value) -> String {
    sign_typed(key, &rsa_jwk(key, "sig").0, TYP, claims)
}

fn well_known(id: &str) -> String {
    format!("{}/.well-known/openid-federation", id.trim_end_matches('/'))
}

fn fetch_url(superior: &str, sub: &str) -> String {
    let url = reqwest::Url::parse_with_params(&format!("{superior}/fetch"), &[("sub", sub)]);
    url.unwrap().to_string()
}

/// A federation as the tests arrange it.
struct Fed {
    fetcher: Arc<MapFetcher>,
    now: u64,
}

impl Fed {
    /// A (Trust Anchor or intermediate) entity configuration with a fetch endpoint.
    fn authority(&self, id: &str, key: &[u8], hints: &[&str]) {
        let mut ec = json!({
            "iss": id, "sub": id, "iat": self.now, "exp": self.now + 3600,
            "jwks": jwks_of(key),
            "metadata": {"federation_entity": {"federation_fetch_endpoint": format!("{id}/fetch")}},
            "constraints": {"max_path_length": 1},
        });
        if !hints.is_empty() {
            ec["authority_hints"] = json!(hints);
        }
        self.fetcher.put(&well_known(id), statement(key, &ec));
    }

    /// `superior`'s statement about `sub` (federation keys `sub_key`), with a policy.
    fn subordinate(&self, superior: &str, key: &[u8], sub: &str, sub_key: &[u8], exp: u64) {
        self.subordinate_with(superior, key, sub, sub_key, exp, |_| {});
    }

    /// [`Self::subordinate`], `tweak`ed.
    fn subordinate_with(
        &self,
        superior: &str,
        key: &[u8],
        sub: &str,
        sub_key: &[u8],
        exp: u64,
        tweak: impl FnOnce(&mut Value),
    ) {
        let mut claims = json!({
            "iss": superior, "sub": sub, "iat": self.now, "exp": exp,
            "jwks": jwks_of(sub_key),
            "metadata_policy": {"openid_relying_party": {
                "token_endpoint_auth_method": {"one_of": ["private_key_jwt"], "essential": true},
                "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
                "client_registration_types": {"subset_of": ["automatic"], "essential": true},
                "client_name": {"value": "Comune Federato"},
                "contacts": {"max_path_length": 1},
            }},
        });
        tweak(&mut claims);
        self.fetcher
            .put(&fetch_url(superior, sub), statement(key, &claims));
    }

    /// A trust-mark entry about `sub`, signed with `key`, its JWT's claims `tweak`ed.
    fn trust_mark(&self, key: &[u8], sub: &str, tweak: impl FnOnce(&mut Value)) -> Value {
        let mut claims = json!({"iss": TA, "sub": sub, "id": TRUST_MARK, "iat": self.now});
        tweak(&mut claims);
        let jwt = sign_jwt(key, &rsa_jwk(key, "sig").0, &claims);
        json!({"id": TRUST_MARK, "trust_mark": jwt})
    }

    /// A relying party under the Trust Anchor, `tweak`ed, vouched for an hour.
    fn direct(&self, rp: &Rp, tweak: impl FnOnce(&mut Value)) {
        self.relying_party(rp, &[TA], tweak);
        self.subordinate(TA, TA_KEY, rp.client_id, RP_FED_KEY, self.now + 3600);
    }

    /// A relying party's entity configuration, `tweak`ed.
    fn relying_party(&self, rp: &Rp, hints: &[&str], tweak: impl FnOnce(&mut Value)) {
        let mark = self.trust_mark(TA_KEY, rp.client_id, |_| {});
        let mut ec = json!({
            "iss": rp.client_id, "sub": rp.client_id, "iat": self.now, "exp": self.now + 3600,
            "jwks": jwks_of(RP_FED_KEY),
            "authority_hints": hints,
            "trust_marks": [mark],
            "metadata": {
                "federation_entity": {"organization_name": "Comune"},
                "openid_relying_party": {
                    "client_id": rp.client_id,
                    "redirect_uris": [rp.redirect],
                    "jwks": {"keys": [rsa_jwk(RP_SIGN_KEY, "sig").1, rsa_jwk(RP_ENC_KEY, "enc").1]},
                    "client_registration_types": ["automatic"],
                    "response_types": ["code"],
                    "grant_types": ["authorization_code", "refresh_token", "implicit"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "client_name": "Nome scelto dal RP",
                },
            },
        });
        tweak(&mut ec);
        self.fetcher
            .put(&well_known(rp.client_id), statement(RP_FED_KEY, &ec));
    }
}

/// Without trust marks in its configuration.
fn unmarked(ec: &mut Value) {
    ec.as_object_mut().unwrap().remove("trust_marks");
}

async fn start(db: &TestDb, required_marks: &[&str]) -> (Harness, Fed, OpKey) {
    let fetcher = Arc::new(MapFetcher::default());
    let (op_key, _) = OpKey::generate().unwrap();
    let (fed_key, fed_pem) = OpKey::generate().unwrap();
    let mut fed = FederationConfig::new(fed_key, TA, jwks_of(TA_KEY), fetcher.clone());
    fed.trust_marks = vec![json!({"id": "https://ta.example/openid_provider/public/",
        "trust_mark": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"})];
    fed.required_trust_marks = required_marks.iter().map(|s| (*s).to_owned()).collect();
    fed.organization_name = "Ente di prova".into();
    let mut oidc = OidcConfig::new(op_key);
    oidc.federation = Some(fed);
    let h = Harness::start_with(db, |c| c.oidc = Some(oidc)).await;
    let f = Fed {
        fetcher,
        now: h.clock.now_secs(),
    };
    f.authority(TA, TA_KEY, &[]);
    let ours = OpKey::from_pem(&fed_pem).unwrap();
    (h, f, ours)
}

/// The authorization request of `rp` after login: the consent page's HTML, or the
/// refusal's status and body.
async fn authorize(h: &Harness, b: &reqwest::Client, rp: &Rp) -> (u16, String) {
    let r = to_consent(h, b, &authz_for(rp, h, |_| {})).await;
    if r.status() != 303 {
        assert!(r.headers().get("set-cookie").is_none());
        return (r.status().as_u16(), r.text().await.unwrap());
    }
    let page = b.get(h.url(&location(&r))).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

#[tokio::test]
async fn entity_configuration_is_signed_with_the_federation_key() {
    let db = sqlite();
    let (h, _, fed_key) = start(&db, &[]).await;
    let b = browser(&h);
    let r = b
        .get(h.url("/.well-known/openid-federation"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/entity-statement+jwt"
    );
    let jws = r.text().await.unwrap();
    let payload: Value =
        serde_json::from_slice(&unb64(jws.split('.').nth(1).unwrap()).unwrap()).unwrap();
    // Self-signed with the key it publishes, which is the federation key, not the OP's.
    let (header, ec) = verify_op(&jws, &payload["jwks"]);
    assert_eq!(header["typ"], TYP);
    assert_eq!(header["kid"], fed_key.kid());
    assert_eq!(ec["jwks"], fed_key.jwks());
    let (_, op_jwks) = h.get(&b, "/oidc/jwks.json").await;
    assert_ne!(op_jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(ec["iss"], h.origin.to_string());
    assert_eq!(ec["sub"], ec["iss"]);
    assert_eq!(ec["authority_hints"], json!([TA]));
    assert!(ec["exp"].as_u64().unwrap() > ec["iat"].as_u64().unwrap());
    assert_eq!(
        ec["trust_marks"][0]["id"],
        "https://ta.example/openid_provider/public/"
    );
    assert_eq!(
        ec["metadata"]["federation_entity"]["organization_name"],
        "Ente di prova"
    );
    let op = &ec["metadata"]["openid_provider"];
    assert_eq!(op["issuer"], h.origin.to_string());
    assert_eq!(op["jwks"], op_jwks, "the OpenID keys, inline");
    assert!(op.get("jwks_uri").is_none());
    assert_eq!(
        op["client_registration_types_supported"],
        json!(["automatic"])
    );
    assert_eq!(op["acr_values_supported"].as_array().unwrap().len(), 3);
    assert_eq!(op["token_endpoint"], h.url("/oidc/token"));
    assert_eq!(op["revocation_endpoint"], h.url("/oidc/revocation"));
    assert_eq!(op["introspection_endpoint"], h.url("/oidc/introspection"));
    assert_eq!(op["end_session_endpoint"], h.url("/oidc/logout"));
    assert_eq!(
        op["revocation_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    for k in [
        "request_object_signing_alg_values_supported",
        "id_token_signing_alg_values_supported",
        "userinfo_encryption_alg_values_supported",
    ] {
        assert!(op[k].as_array().is_some_and(|a| !a.is_empty()), "{k}");
    }
}

/// A relying party known only through the federation logs in: the chain is resolved, the
/// Trust Anchor's policy applied (its `client_name` shown), and tokens issued.
#[tokio::test]
async fn federated_relying_party_completes_the_flow() {
    for db in backends().await {
        let (h, f, _) = start(&db, &[TRUST_MARK]).await;
        f.direct(&GOOD, |_| {});
        let b = browser(&h);
        desktop_login(&h).await;
        // A redirect URI the resolved metadata does not list: a 400 page, no redirect, no
        // pending request.
        let a = authz_for(&GOOD, &h, |c| {
            c["redirect_uri"] = json!("https://rp.fed.example/oidc/rp/elsewhere");
        });
        let r = to_consent(&h, &b, &a).await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        assert!(r.headers().get("set-cookie").is_none());
        let a = authz_for(&GOOD, &h, |_| {});
        let r = to_consent(&h, &b, &a).await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        let path = location(&r);
        let page = b.get(h.url(&path)).send().await.unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains("Comune Federato"), "the TA's policy value");
        let r = decide(&h, &b, &path, "accept").await;
        let back = query_of(&location(&r));
        assert_eq!(back["state"], a.state);
        let (s, t) = token_for(&GOOD, &h, &back["code"], &a.verifier).await;
        assert_eq!(s, 200, "{}: {t}", db.name);
        let (_, jwks) = h.get(&b, "/oidc/jwks.json").await;
        let (_, id) = verify_op(t["id_token"].as_str().unwrap(), &jwks);
        assert_eq!(id["aud"], GOOD.client_id);
        assert_eq!(id["iss"], h.origin.to_string());
        assert_eq!(id["nonce"], a.nonce);
    }
}

/// Through an intermediate (the Trust Anchor allows one), and what is refused: a foreign
/// Trust Anchor, an expired statement (also once a cached chain expires), keys the
/// superior does not vouch for, a policy the metadata breaks, a missing trust mark. No
/// refusal redirects (the redirect URIs are not known) and none yields a token.
#[tokio::test]
async fn trust_chains_are_checked() {
    let db = sqlite();
    let (h, f, _) = start(&db, &[TRUST_MARK]).await;
    let b = browser(&h);
    desktop_login(&h).await;

    // Through an intermediate.
    const VIA: Rp = Rp {
        client_id: "https://via.example",
        redirect: "https://via.example/cb",
    };
    f.authority(INTERMEDIATE, INTERMEDIATE_KEY, &[TA]);
    f.subordinate(TA, TA_KEY, INTERMEDIATE, INTERMEDIATE_KEY, f.now + 3600);
    f.relying_party(&VIA, &[INTERMEDIATE], |_| {});
    f.subordinate(
        INTERMEDIATE,
        INTERMEDIATE_KEY,
        VIA.client_id,
        RP_FED_KEY,
        f.now + 3600,
    );
    let (s, html) = authorize(&h, &b, &VIA).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("Acconsento"));

    // Foreign Trust Anchor: its statements verify, but it is not ours.
    const FOREIGN: Rp = Rp {
        client_id: "https://foreign.example",
        redirect: "https://foreign.example/cb",
    };
    f.authority(FOREIGN_TA, FOREIGN_KEY, &[]);
    f.relying_party(&FOREIGN, &[FOREIGN_TA], |_| {});
    f.subordinate(
        FOREIGN_TA,
        FOREIGN_KEY,
        FOREIGN.client_id,
        RP_FED_KEY,
        f.now + 3600,
    );
    // A foreign TA claiming to be ours is not signed with the pinned keys either.
    const IMPOSTOR: Rp = Rp {
        client_id: "https://impostor.example",
        redirect: "https://impostor.example/cb",
    };
    f.relying_party(&IMPOSTOR, &[TA], |_| {});
    f.fetcher.put(
        &fetch_url(TA, IMPOSTOR.client_id),
        statement(
            FOREIGN_KEY,
            &json!({"iss": TA, "sub": IMPOSTOR.client_id, "iat": f.now, "exp": f.now + 3600,
                "jwks": jwks_of(RP_FED_KEY)}),
        ),
    );
    // Expired subordinate statement.
    const EXPIRED: Rp = Rp {
        client_id: "https://expired.example",
        redirect: "https://expired.example/cb",
    };
    f.relying_party(&EXPIRED, &[TA], |_| {});
    f.subordinate(TA, TA_KEY, EXPIRED.client_id, RP_FED_KEY, f.now - 1);
    // The TA vouches for other keys than those signing the configuration.
    const REKEYED: Rp = Rp {
        client_id: "https://rekeyed.example",
        redirect: "https://rekeyed.example/cb",
    };
    f.relying_party(&REKEYED, &[TA], |_| {});
    f.subordinate(TA, TA_KEY, REKEYED.client_id, FOREIGN_KEY, f.now + 3600);
    // Metadata breaking the TA's policy.
    const SECRET: Rp = Rp {
        client_id: "https://secret.example",
        redirect: "https://secret.example/cb",
    };
    f.direct(&SECRET, |ec| {
        ec["metadata"]["openid_relying_party"]["token_endpoint_auth_method"] =
            json!("client_secret_basic");
    });
    // No trust mark.
    const UNMARKED: Rp = Rp {
        client_id: "https://unmarked.example",
        redirect: "https://unmarked.example/cb",
    };
    f.direct(&UNMARKED, unmarked);
    // Trust marks: expired, or signed by another key than the Trust Anchor's.
    const STALE_MARK: Rp = Rp {
        client_id: "https://stale-mark.example",
        redirect: "https://stale-mark.example/cb",
    };
    let stale = f.trust_mark(TA_KEY, STALE_MARK.client_id, |c| {
        c["exp"] = json!(f.now - 1)
    });
    f.direct(&STALE_MARK, |ec| ec["trust_marks"] = json!([stale]));
    const FORGED_MARK: Rp = Rp {
        client_id: "https://forged-mark.example",
        redirect: "https://forged-mark.example/cb",
    };
    let forged = f.trust_mark(FOREIGN_KEY, FORGED_MARK.client_id, |_| {});
    f.direct(&FORGED_MARK, |ec| ec["trust_marks"] = json!([forged]));
    // No mark in its configuration: an intermediate it names is not even fetched.
    const VIA_UNMARKED: Rp = Rp {
        client_id: "https://via-unmarked.example",
        redirect: "https://via-unmarked.example/cb",
    };
    f.relying_party(&VIA_UNMARKED, &[INTERMEDIATE], unmarked);
    f.subordinate(
        INTERMEDIATE,
        INTERMEDIATE_KEY,
        VIA_UNMARKED.client_id,
        RP_FED_KEY,
        f.now + 3600,
    );
    // Not an https entity id.
    const PLAIN_HTTP: Rp = Rp {
        client_id: "http://127.0.0.1:9/rp",
        redirect: "http://127.0.0.1:9/rp/cb",
    };

    for (rp, error) in [
        (&FOREIGN, "invalid_client"),
        (&IMPOSTOR, "invalid_client"),
        (&EXPIRED, "invalid_client"),
        (&REKEYED, "invalid_client"),
        (&SECRET, "unauthorized_client"),
        (&UNMARKED, "unauthorized_client"),
        (&STALE_MARK, "unauthorized_client"),
        (&FORGED_MARK, "unauthorized_client"),
        (&VIA_UNMARKED, "invalid_client"),
        (&PLAIN_HTTP, "invalid_client"),
    ] {
        let (s, html) = authorize(&h, &b, rp).await;
        assert_eq!(s, 400, "{}", rp.client_id);
        assert!(html.contains(error), "{}: {html}", rp.client_id);
        // The token endpoint refuses it too (a code could never be issued, but a
        // signed assertion alone must not pass either).
        let (s, t) = token_for(rp, &h, "no-code", "v").await;
        assert_eq!((s, &t["error"]), (401, &json!("invalid_client")), "{t}");
    }

    // The mark only in the Trust Anchor's statement about it (as the reference Trust
    // Anchor hands them out): accepted.
    const STATEMENT_MARK: Rp = Rp {
        client_id: "https://statement-mark.example",
        redirect: "https://statement-mark.example/cb",
    };
    f.relying_party(&STATEMENT_MARK, &[TA], unmarked);
    let mark = f.trust_mark(TA_KEY, STATEMENT_MARK.client_id, |_| {});
    let exp = f.now + 3600;
    f.subordinate_with(TA, TA_KEY, STATEMENT_MARK.client_id, RP_FED_KEY, exp, |s| {
        s["trust_marks"] = json!([mark]);
    });
    assert_eq!(authorize(&h, &b, &STATEMENT_MARK).await.0, 200);

    // A chain that was valid expires: the cached registration ends with it.
    const SHORT: Rp = Rp {
        client_id: "https://short.example",
        redirect: "https://short.example/cb",
    };
    f.relying_party(&SHORT, &[TA], |_| {});
    f.subordinate(TA, TA_KEY, SHORT.client_id, RP_FED_KEY, f.now + 120);
    assert_eq!(authorize(&h, &b, &SHORT).await.0, 200);
    h.clock.advance(121);
    let (s, html) = authorize(&h, &b, &SHORT).await;
    assert_eq!(s, 400);
    assert!(html.contains("invalid_client"), "{html}");
}
