//! The provider's pages: consent and the error page (IT + EN), plain HTML with the desktop
//! page's style sheet and no script. (The small script the login page loads to come back
//! to a pending authorization after login, static/oidc-return.js, is served with the
//! desktop page, src/page.rs; the headers every response carries come from
//! src/headers.rs.)

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{CONSENT_PATH, LOGOUT_PATH, claims};

/// HTML text escaping.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
    // The consent form posts here and is then redirected to the client: `form-action` must
    // allow both (browsers apply it to the redirect too).
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'none'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
         form-action {form_action}; frame-ancestors 'none'"
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn frame(title_it: &str, title_en: &str, inner: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} / {}</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main>{inner}</main></body></html>\n",
        esc(title_it),
        esc(title_en)
    )
}

/// A request we cannot send back to a client (unknown client, unregistered redirect URI,
/// expired page): 400 and what happened, never a redirect.
pub(super) fn error_page(reason: &str) -> Response {
    let inner = format!(
        "<h1>Richiesta non valida</h1><p lang=\"en\"><strong>Invalid request</strong></p>\
         <p>Il servizio che ti ha mandato qui ha fatto una richiesta che non possiamo accettare. \
         Torna al servizio e riprova.</p>\
         <p lang=\"en\">The service that sent you here made a request we cannot accept. \
         Go back to the service and try again.</p><p><code>{}</code></p>",
        esc(reason)
    );
    html(
        StatusCode::BAD_REQUEST,
        frame("Richiesta non valida", "Invalid request", &inner),
        None,
    )
}

/// What the consent page shows.
pub(super) struct Consent<'a> {
    pub id: &'a str,
    pub service: &'a str,
    pub user: &'a str,
    pub claims: &'a [String],
    pub redirect_origin: Option<&'a str>,
}

pub(super) fn consent_page(c: &Consent<'_>) -> Response {
    let mut items = String::new();
    for name in c.claims {
        let (it, en) = claims::label(name);
        items.push_str(&format!(
            "<li>{} <span lang=\"en\">({})</span></li>",
            esc(it),
            esc(en)
        ));
    }
    let asked = if c.claims.is_empty() {
        "<p>Il servizio chiede solo di sapere che sei tu (un identificativo). \
         <span lang=\"en\">The service only asks to know it is you (an identifier).</span></p>"
            .to_owned()
    } else {
        format!(
            "<p>Il servizio chiede questi dati: \
             <span lang=\"en\">The service asks for these data:</span></p><ul>{items}</ul>"
        )
    };
    let inner = format!(
        "<h1>Accesso a {service}</h1><p lang=\"en\"><strong>Log in to {service}</strong></p>\
         <p>Hai effettuato l'accesso come <strong>{user}</strong>. \
         <span lang=\"en\">You are logged in as <strong>{user}</strong>.</span></p>{asked}\
         <form method=\"post\" action=\"{CONSENT_PATH}/{id}\">\
         <button type=\"submit\" name=\"decision\" value=\"accept\">Acconsento \
         <span lang=\"en\">(I agree)</span></button> \
         <button type=\"submit\" name=\"decision\" value=\"refuse\">Rifiuto \
         <span lang=\"en\">(I refuse)</span></button></form>",
        service = esc(c.service),
        user = esc(c.user),
        id = esc(c.id),
    );
    html(
        StatusCode::OK,
        frame("Consenso", "Consent", &inner),
        Some(c.redirect_origin.unwrap_or("'none'")),
    )
}

/// The logout confirmation: a form posting `fields` back to the logout endpoint (a click
/// on our own page, so the `SameSite=Strict` session cookie goes with it).
pub(super) fn logout_confirm_page(
    service: &str,
    fields: &[(&str, &str)],
    redirect_origin: Option<&str>,
) -> Response {
    let mut hidden = String::new();
    for (k, v) in fields {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        ));
    }
    let inner = format!(
        "<h1>Uscire da {service}?</h1><p lang=\"en\"><strong>Log out of {service}?</strong></p>\
         <p>Il servizio chiede di chiudere il tuo accesso anche qui. \
         <span lang=\"en\">The service asks to end your login here too.</span></p>\
         <form method=\"post\" action=\"{LOGOUT_PATH}\">{hidden}\
         <input type=\"hidden\" name=\"confirm\" value=\"1\">\
         <button type=\"submit\">Esci <span lang=\"en\">(Log out)</span></button></form>",
        service = esc(service),
    );
    html(
        StatusCode::OK,
        frame("Uscita", "Log out", &inner),
        Some(redirect_origin.unwrap_or("'self'")),
    )
}

/// After a logout with no (valid) way back to the service.
pub(super) fn logged_out_page(ended: bool) -> Response {
    let inner = if ended {
        "<h1>Sei uscito</h1><p lang=\"en\"><strong>You are logged out</strong></p>\
         <p>Il tuo accesso è chiuso. Puoi chiudere questa pagina o tornare al servizio.</p>\
         <p lang=\"en\">Your login has ended. You can close this page or go back to the \
         service.</p>"
    } else {
        "<h1>Nessun accesso da chiudere</h1>\
         <p lang=\"en\"><strong>No login to end</strong></p>\
         <p>In questo browser non c'è un tuo accesso aperto per quel servizio. \
         Puoi chiudere questa pagina o tornare al servizio.</p>\
         <p lang=\"en\">This browser has no login of yours open for that service. \
         You can close this page or go back to the service.</p>"
    };
    html(StatusCode::OK, frame("Uscita", "Log out", inner), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
