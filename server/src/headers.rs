//! The security headers of every response, in one place: a layer over each listener's whole
//! router (pages, API, OpenID Provider, the mutual-TLS card login, fallbacks and 405s), so
//! a route added later gets them without anyone remembering to. Pages that need a looser
//! Content-Security-Policy (the desktop page's script, the consent form's target) set their
//! own; every other response gets [`DEFAULT_CSP`], which allows nothing.
//!
//! Strict-Transport-Security goes on every response, the loopback listeners of tests and
//! `cie-companion demo` included: this server speaks only HTTPS (there is no plain-HTTP
//! listener to keep it off), so every response is one RFC 6797 §7.2 allows it on, and one
//! code path means the header a deployment sends is the one the tests see. Browsers ignore
//! it for IP-literal hosts (RFC 6797 §8.1), which is what the loopback listeners are; a
//! deployment behind a name gets it from its first response, which is what protects the
//! citizen from a downgrade on the next visit. `preload` is the operator's choice for its
//! domain, not ours.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

/// Two years, the figure the HSTS preload list asks for.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Responses that are not pages (JSON, assets, errors): nothing may load, run, frame them or
/// be posted from them.
const DEFAULT_CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Powerful features no page of ours uses, denied to the page and anything it could embed
/// (features Chromium knows: an unknown name is a console error, which the browser test
/// watches for).
const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), \
    usb=(), serial=(), hid=(), midi=(), display-capture=(), \
    publickey-credentials-get=(), clipboard-read=(), browsing-topics=()";

/// The headers every response carries, with the reason for each.
const COMMON: [(&str, &str); 7] = [
    // HTTPS only, this host and its subdomains, for two years (see the module comment).
    ("strict-transport-security", HSTS),
    // A response is what its Content-Type says: JSON is never run as a script.
    ("x-content-type-options", "nosniff"),
    // No framing (a framed QR is how QR-login phishing starts); `frame-ancestors 'none'`
    // says it to current browsers, this to old ones.
    ("x-frame-options", "DENY"),
    // Rendezvous ids, consent ids and `return=` paths live in URLs: never sent elsewhere.
    ("referrer-policy", "no-referrer"),
    // No other site's window keeps a handle on ours (opened us, or we opened it).
    ("cross-origin-opener-policy", "same-origin"),
    // No other site may embed our responses (script, image, JSON) in its page.
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", PERMISSIONS_POLICY),
];

/// `router` with the headers on every response it gives (its fallback's too).
pub(crate) fn harden(router: Router) -> Router {
    router.layer(middleware::from_fn(security_headers))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in COMMON {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    resp
}
