//! `GET /login/card`: the browser card login. The browser reached this page over the
//! mutual-TLS listener with the card's certificate (its PKCS#11 module signed the
//! handshake, after the user typed the PIN in the browser's dialog); the page logs the
//! holder in with a session cookie (`cc_session`, the desktop page's) and shows the
//! identity and the TLS version the handshake used. No script, no style: plain HTML, under
//! the default Content-Security-Policy that allows nothing (src/headers.rs).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cie_core::flows::wire::b64;

use super::{MtlsState, Negotiated, PeerCertificate, login};
use crate::api::{SESSION_COOKIE, SESSION_SECS, set_cookie};

/// The page's path on the mutual-TLS listeners.
pub const CARD_PAGE_PATH: &str = "/login/card";

/// The audit kind of browser card logins and their refusals.
const AUDIT_KIND: &str = "card_page_login";

pub(super) async fn card_page(
    State(s): State<MtlsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(PeerCertificate(der)): Extension<PeerCertificate>,
    Extension(negotiated): Extension<Negotiated>,
) -> Response {
    let tls = negotiated.label();
    match login(&s, peer, &der, "desktop", AUDIT_KIND).await {
        Ok((identity, token)) => {
            tracing::info!(identity = %identity.id, tls, "browser card login");
            let name = format!("{} {}", identity.given_name, identity.surname);
            let body = format!(
                "<h1>Accesso effettuato · Logged in</h1>\n\
                 <p>Titolare · Holder: <strong id=\"holder\">{}</strong></p>\n\
                 <p>Codice fiscale: <strong id=\"codice-fiscale\">{}</strong></p>\n\
                 <p>Connessione · Connection: <span id=\"tls-version\">{tls}</span></p>\n\
                 <p>La sessione dura {} ore; per uscire chiudi il browser. · \
                 The session lasts {} hours; close the browser to leave.</p>",
                escape(name.trim()),
                escape(&identity.codice_fiscale),
                SESSION_SECS / 3600,
                SESSION_SECS / 3600,
            );
            let mut resp = html(StatusCode::OK, "Accesso effettuato · Logged in", &body);
            if let Some(c) = set_cookie(SESSION_COOKIE, &b64(&token), "/", SESSION_SECS) {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp
        }
        Err(refusal) => {
            tracing::info!(code = %refusal.code_str(), tls, "browser card login refused");
            let status = refusal.clone().into_response().status();
            let body = format!(
                "<h1>Accesso non riuscito · Login failed</h1>\n\
                 <p id=\"error\" lang=\"it\">{}</p>\n<p lang=\"en\">{}</p>",
                escape(&refusal.0.message_it),
                escape(&refusal.0.message),
            );
            html(status, "Accesso non riuscito · Login failed", &body)
        }
    }
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\n\
         <body>\n{body}\n</body></html>\n"
    );
    let mut resp = (status, page).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Text for HTML element content: the names come from the certificate's subject.
fn escape(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                _ => out.push(c),
            }
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_text_cannot_make_markup() {
        assert_eq!(
            escape("<b>O'Brien & \"co\"</b>"),
            "&lt;b&gt;O&#39;Brien &amp; &quot;co&quot;&lt;/b&gt;"
        );
    }
}
