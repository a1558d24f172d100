//! The security headers (src/headers.rs) on every route of the main listener, with and
//! without the OpenID Provider, on errors, fallbacks and wrong methods too, and the
//! attributes of every cookie those responses set (the mutual-TLS listener's two routes:
//! tests/card_page.rs). A route added to the source without being listed here fails
//! `every_route_of_the_source_is_listed`, so it gets checked as well.
#![allow(clippy::unwrap_used)]

mod common;
mod hardening;
mod oidc_common;

use common::*;
use companion_server::oidc::{ClientMetadata, OidcConfig, OpKey};
use oidc_common::*;
use serde_json::json;

/// One `.route(…)` call of server/src each: method and a path that reaches it.
const ROUTES: [(&str, &str); 41] = [
    // src/page.rs
    ("GET", "/"),
    ("GET", "/static/app.js"),
    ("GET", "/static/oidc-return.js"),
    ("GET", "/static/app.css"),
    ("GET", "/q"),
    // src/api.rs
    ("POST", "/api/v1/card/challenge"),
    ("POST", "/api/v1/card/login"),
    ("POST", "/api/v1/desktop/rendezvous"),
    ("GET", "/api/v1/desktop/rendezvous/nope"),
    ("POST", "/api/v1/desktop/rendezvous/nope/code"),
    ("POST", "/api/v1/rendezvous/claim"),
    ("POST", "/api/v1/rendezvous/nope/approve"),
    ("POST", "/api/v1/rendezvous/nope/deny"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/devices"),
    // src/api/approvals.rs
    ("POST", "/api/v1/approvals"),
    ("POST", "/api/v1/approvals/pending"),
    ("GET", "/api/v1/approvals/nope"),
    ("POST", "/api/v1/approvals/nope/decision"),
    // src/api/otp.rs
    ("POST", "/api/v1/otp/enroll"),
    ("POST", "/api/v1/otp/login"),
    // src/api/registration.rs
    ("POST", "/api/v1/registration/challenge"),
    ("POST", "/api/v1/registration"),
    // src/api/abroad.rs
    ("POST", "/api/v1/abroad/login"),
    ("POST", "/api/v1/abroad/login/otp"),
    ("POST", "/api/v1/abroad/pin"),
    ("POST", "/api/v1/abroad/enrol"),
    ("POST", "/api/v1/abroad/otp/enrol"),
    ("POST", "/api/v1/abroad/otp/confirm"),
    ("POST", "/api/v1/devices/by-code"),
    // src/oidc (with the provider configured)
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/oidc/jwks.json"),
    ("GET", "/.well-known/openid-federation"),
    ("GET", "/oidc/authorization"),
    ("GET", "/oidc/consent/nope"),
    ("POST", "/oidc/token"),
    ("GET", "/oidc/userinfo"),
    ("POST", "/oidc/revocation"),
    ("POST", "/oidc/introspection"),
    ("GET", "/oidc/logout"),
    // src/openapi.rs
    ("GET", "/openapi.json"),
];

/// The mutual-TLS listener's routes, checked by tests/card_page.rs (they need a card).
const MTLS_ROUTES: [&str; 2] = ["/api/v1/card/mtls-login", "/login/card"];

/// The metrics listener's route (`--metrics-listen`: plain HTTP for a Prometheus scraper on
/// loopback or a private network, never a browser's page), checked by tests/metrics.rs.
const METRICS_ROUTES: [&str; 1] = ["/metrics"];

/// Neither a route nor a method of one: the fallbacks.
const ELSEWHERE: [(&str, &str); 4] = [
    ("GET", "/nope"),
    ("GET", "/api/v1/nope"),
    ("DELETE", "/"),
    ("PUT", "/api/v1/session"),
];

const CLIENT_ID: &str = "https://rp.example/oidc/rp";
const REDIRECT: &str = "https://rp.example/oidc/rp/callback";
const PLAIN: Rp = Rp {
    client_id: CLIENT_ID,
    redirect: REDIRECT,
};

async fn start(db: &TestDb, with_oidc: bool) -> Harness {
    let mut client = ClientMetadata::new(
        CLIENT_ID,
        vec![REDIRECT.into()],
        json!({"keys": [rsa_jwk(RP_SIGN_KEY, "sig").1, rsa_jwk(RP_ENC_KEY, "enc").1]}),
    );
    client.client_name = Some("Comune di Prova".into());
    let mut oidc = OidcConfig::new(OpKey::generate().unwrap().0);
    oidc.clients.push(client);
    Harness::start_with(db, |c| {
        if with_oidc {
            c.oidc = Some(oidc);
        }
    })
    .await
}

/// `method path` on `h` (POSTs with an empty JSON object): its status and what is wrong
/// with its headers.
async fn check(
    h: &Harness,
    client: &reqwest::Client,
    method: &str,
    path: &str,
) -> (u16, Vec<String>) {
    let mut req = client.request(method.parse().unwrap(), h.url(path));
    if method == "POST" {
        req = req.json(&json!({}));
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        hardening::problems_of(resp.headers()),
    )
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let db = sqlite();
    let h = start(&db, true).await;
    let browser = browser(&h);
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeSet::new();
    for (method, path) in ROUTES.iter().chain(&ELSEWHERE) {
        let (status, problems) = check(&h, &browser, method, path).await;
        statuses.insert(status);
        if !problems.is_empty() {
            failures.push(format!("{method} {path} ({status}): {problems:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Successes, refusals, not found, wrong method: every kind of answer was looked at.
    for want in [200, 400, 401, 404, 405] {
        assert!(statuses.contains(&want), "no {want} among {statuses:?}");
    }
    // An oversized body is refused before any handler: still with the headers.
    let big = browser
        .post(h.url("/api/v1/abroad/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    // (ApiJson answers the body limit as any unreadable body: 400.)
    assert!(
        matches!(big.status().as_u16(), 400 | 413),
        "{}",
        big.status()
    );
    assert_eq!(hardening::problems_of(big.headers()), Vec::<String>::new());
}

#[tokio::test]
async fn without_the_provider_too() {
    let db = sqlite();
    let h = start(&db, false).await;
    let browser = browser(&h);
    for (method, path) in ROUTES.iter().chain(&ELSEWHERE) {
        let (status, problems) = check(&h, &browser, method, path).await;
        assert!(
            problems.is_empty(),
            "{method} {path} ({status}): {problems:#?}"
        );
    }
    // index.html loads the OpenID return script with or without the provider: it is there.
    let (status, _) = check(&h, &browser, "GET", "/static/oidc-return.js").await;
    assert_eq!(status, 200);
}

/// The pages' policies: the desktop page runs its own files only, the others nothing.
#[tokio::test]
async fn pages_have_their_own_policy_and_the_rest_allows_nothing() {
    let db = sqlite();
    let h = start(&db, true).await;
    let browser = browser(&h);
    let csp = |r: &reqwest::Response| {
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let page = browser.get(h.url("/")).send().await.unwrap();
    let page_csp = csp(&page);
    assert!(page_csp.contains("script-src 'self';"), "{page_csp}");
    assert!(page_csp.contains("connect-src 'self';"), "{page_csp}");
    // No inline script or style anywhere in the page: the policy would block it.
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "{html}"
    );
    let handler = html.split(" on").skip(1).find(|rest| {
        let name = rest.chars().take_while(char::is_ascii_lowercase).count();
        name > 0 && rest[name..].starts_with('=')
    });
    assert_eq!(handler, None, "an inline event handler");
    // No third-party resource: no page or file the server serves names another origin.
    for path in [
        "/",
        "/q",
        "/static/app.js",
        "/static/app.css",
        "/static/oidc-return.js",
    ] {
        let resp = browser.get(h.url(path)).send().await.unwrap();
        let text = resp.text().await.unwrap();
        for elsewhere in ["http://", "https://", "\"//", "'//", "url("] {
            assert!(!text.contains(elsewhere), "{path} names {elsewhere}");
        }
    }
    for path in ["/api/v1/session", "/nope", "/oidc/jwks.json"] {
        let r = browser.get(h.url(path)).send().await.unwrap();
        assert_eq!(csp(&r), hardening::DEFAULT_CSP, "{path}");
    }
}

/// The responses that set cookies: the desktop's binding cookie, the provider's, the
/// session; every one `Secure; HttpOnly; SameSite`.
#[tokio::test]
async fn every_cookie_is_secure_http_only_and_same_site() {
    let db = sqlite();
    let h = start(&db, true).await;
    let b = browser(&h);
    let mut cookies = 0;
    let mut look = |what: &str, r: &reqwest::Response| {
        cookies += r.headers().get_all("set-cookie").iter().count();
        assert_eq!(
            hardening::problems_of(r.headers()),
            Vec::<String>::new(),
            "{what}"
        );
    };
    let r = b
        .post(h.url("/api/v1/desktop/rendezvous"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    look("rendezvous", &r);
    desktop_login(&h).await;
    let a = authz_for(&PLAIN, &h, |_| {});
    let r = to_consent(&h, &b, &a).await;
    assert_eq!(r.status(), 303);
    look("authorization", &r);
    let consent = location(&r);
    let r = b.get(h.url(&consent)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    look("consent page", &r);
    let r = decide(&h, &b, &consent, "accept").await;
    assert_eq!(r.status(), 302, "back to the relying party");
    look("consent decision", &r);
    assert!(cookies >= 2, "only {cookies} cookies looked at");
}

/// Every `.route(` of server/src is in [`ROUTES`], [`MTLS_ROUTES`] or [`METRICS_ROUTES`]: a
/// new route makes this fail until it is listed, and so checked.
#[test]
fn every_route_of_the_source_is_listed() {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    count(&p)
                } else if p.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    text.lines()
                        .filter(|l| !l.trim_start().starts_with("//"))
                        .map(|l| l.matches(".route(").count())
                        .sum()
                } else {
                    0
                }
            })
            .sum()
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(
        count(&src),
        ROUTES.len() + MTLS_ROUTES.len() + METRICS_ROUTES.len(),
        "a route was added or removed in server/src: list it in tests/headers.rs"
    );
}
