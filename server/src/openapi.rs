//! `GET /openapi.json`: the OpenAPI 3.1 document of everything this server serves, built
//! from the handlers' `#[utoipa::path]` annotations (api.rs and api/, oidc/), so the
//! published contract is the code's. `server/tests/openapi.rs` checks that every route the
//! routers declare is in it; `tests/api/schemathesis.sh` checks live answers against it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cie_core::flows::wire::{ApiError, ErrorCode};
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

// The refusals (src/error.rs), one reusable response per HTTP status, each naming the
// `ErrorCode`s that map to it. Every body is an `ApiError`.

/// `bad_request`: the request is malformed (not JSON of the documented shape, a field
/// badly encoded). Update the app.
#[derive(utoipa::ToResponse)]
pub struct BadRequest(pub ApiError);

/// `wrong_code`: a wrong code or PIN; `tries_left` says how many guesses remain.
#[derive(utoipa::ToResponse)]
pub struct WrongCode(pub ApiError);

/// `bad_signature`, `untrusted_certificate`, `certificate_expired`, `certificate_revoked`,
/// `unknown_identity`, `wrong_device`, `context_mismatch`, `wrong_number`,
/// `too_many_attempts`, `not_this_browser`.
#[derive(utoipa::ToResponse)]
pub struct Forbidden(pub ApiError);

/// `not_found`: no such challenge, rendezvous, request, device or session, or the feature
/// is not offered by this server.
#[derive(utoipa::ToResponse)]
pub struct NotFound(pub ApiError);

/// `replayed`, `already_claimed`, `wrong_state`, `already_registered`.
#[derive(utoipa::ToResponse)]
pub struct Conflict(pub ApiError);

/// `expired`: the challenge, QR, code or request expired. Start again.
#[derive(utoipa::ToResponse)]
pub struct Gone(pub ApiError);

/// `rate_limited`: wait `retry_after` seconds (also in `Retry-After`).
#[derive(utoipa::ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait")))]
pub struct TooManyRequests(pub ApiError);

/// `internal`: a storage failure or the like. Retry later.
#[derive(utoipa::ToResponse)]
pub struct Internal(pub ApiError);

/// A set of refusals an operation may answer, each a `$ref` to the responses above (one
/// `IntoResponses` type per kind of endpoint, so each handler's annotation names its kind).
macro_rules! refusals {
    ($(#[$doc:meta])* $name:ident: $($status:literal => $response:ident),+ $(,)?) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                [$(($status, stringify!($response))),+]
                    .into_iter()
                    .map(|(status, name)| {
                        (status.to_string(), RefOr::Ref(Ref::from_response_name(name)))
                    })
                    .collect()
            }
        }
    };
}

refusals!(
    /// A request signed by the card or an enrolled device, or bearing a claim token.
    Signed: "400" => BadRequest, "403" => Forbidden, "404" => NotFound, "409" => Conflict,
    "410" => Gone, "500" => Internal
);
refusals!(
    /// A code or PIN typed by the user: guesses counted, attempts rate-limited.
    CodeTyped: "400" => BadRequest, "401" => WrongCode, "403" => Forbidden,
    "404" => NotFound, "409" => Conflict, "410" => Gone, "429" => TooManyRequests,
    "500" => Internal
);
refusals!(
    /// A cookie-bound long poll.
    Polled: "400" => BadRequest, "403" => Forbidden, "404" => NotFound, "500" => Internal
);
refusals!(
    /// A creation rate-limited per client address.
    Limited: "400" => BadRequest, "429" => TooManyRequests, "500" => Internal
);
refusals!(
    /// A step of a logged-in PIN holder (`cc_session`).
    SessionBound: "400" => BadRequest, "404" => NotFound, "409" => Conflict, "410" => Gone,
    "429" => TooManyRequests, "500" => Internal
);
refusals!(
    /// A lookup.
    Lookup: "400" => BadRequest, "404" => NotFound, "500" => Internal
);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object))
)]
#[allow(dead_code)]
async fn openapi_json() {}

/// The bearer of `/oidc/userinfo` (an access token of ours).
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "companion-server",
        description = "The reference identity server of cie-companion (docs/protocol.md, docs/oidc.md). \
            Every refusal of `/api/v1` is an `ApiError` JSON body: a stable `error` code, messages \
            in English and Italian; the OpenID Provider answers OAuth error bodies or HTML pages."
    ),
    paths(openapi_json),
    components(
        schemas(ApiError, ErrorCode),
        responses(BadRequest, WrongCode, Forbidden, NotFound, Conflict, Gone, TooManyRequests, Internal)
    ),
    modifiers(&Security),
    tags(
        (name = "page", description = "The desktop page and its static files"),
        (name = "meta", description = "This document"),
    )
)]
struct Doc;

/// The static files of the desktop page (page.rs, oidc/page.rs): closures, so described
/// here.
fn static_file(summary: &str, content_type: &str) -> PathItem {
    let text = ObjectBuilder::new().schema_type(Type::String).build();
    let ok = ResponseBuilder::new()
        .description(summary)
        .content(
            content_type,
            ContentBuilder::new().schema(Some(text)).build(),
        )
        .build();
    PathItem::new(
        HttpMethod::Get,
        OperationBuilder::new()
            .tag("page")
            .summary(Some(summary))
            .response("200", ok)
            .build(),
    )
}

/// The document; with the OpenID Provider's paths when `oidc`.
pub fn document(oidc: bool) -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    doc.merge(crate::api::ApiDoc::openapi());
    let mut pages = vec![
        ("/", "The desktop login page", "text/html"),
        (
            "/q",
            "Where the QR leads a phone without the app",
            "text/html",
        ),
        (
            "/static/app.js",
            "The desktop page's script",
            "text/javascript",
        ),
        ("/static/app.css", "The desktop page's style", "text/css"),
    ];
    if oidc {
        doc.merge(crate::oidc::openapi::OidcDoc::openapi());
        pages.push((
            "/static/oidc-return.js",
            "The consent page's script",
            "text/javascript",
        ));
    }
    for (path, summary, content_type) in pages {
        doc.paths
            .paths
            .insert(path.to_owned(), static_file(summary, content_type));
    }
    // One handler served on GET and POST (`/oidc/userinfo`) gets one operationId from its
    // fn name; operationIds must be unique, so the POST one is `<id>_post`.
    for item in doc.paths.paths.values_mut() {
        if let (Some(get), Some(post)) = (&item.get, &mut item.post)
            && get.operation_id.is_some()
            && get.operation_id == post.operation_id
        {
            post.operation_id = post.operation_id.take().map(|id| format!("{id}_post"));
        }
    }
    doc
}

/// `GET /openapi.json`, serialised once.
pub(crate) fn routes(oidc: bool) -> Router {
    let json: Option<Arc<str>> = match document(oidc).to_json() {
        Ok(j) => Some(j.into()),
        Err(e) => {
            tracing::error!(error = %e, "OpenAPI document not serialised");
            None
        }
    };
    Router::new().route(
        PATH,
        get(move || {
            let json = json.clone();
            async move {
                let Some(json) = json else {
                    return crate::error::Refusal::new(ErrorCode::Internal).into_response();
                };
                let mut resp: Response = (StatusCode::OK, json.to_string()).into_response();
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                resp
            }
        }),
    )
}
