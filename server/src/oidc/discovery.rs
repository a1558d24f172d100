//! Discovery (OpenID Connect Discovery 1.0) with the profile's values (plain mode: no
//! federation members yet), and the JWK set.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{
    AUTHORIZATION_PATH, INTROSPECTION_PATH, JWKS_PATH, LOGOUT_PATH, OidcState, REVOCATION_PATH,
    TOKEN_PATH, USERINFO_PATH, acr, claims, client, federation, jwt,
};

fn cacheable(body: serde_json::Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

#[utoipa::path(
    get,
    path = super::DISCOVERY_PATH,
    tag = "oidc",
    responses(
        (status = 200, description = "OpenID Provider metadata (OpenID Connect Discovery 1.0)", body = super::openapi::ProviderMetadata),
    )
)]
pub(super) async fn configuration(State(s): State<OidcState>) -> Response {
    cacheable(provider_metadata(&s))
}

/// The provider's metadata (discovery, and `openid_provider` of the entity configuration).
fn provider_metadata(s: &OidcState) -> serde_json::Value {
    let mut claims_supported: Vec<&str> = vec!["sub"];
    claims_supported.extend_from_slice(claims::SUPPORTED);
    json!({
        "issuer": s.0.issuer,
        "authorization_endpoint": s.url(AUTHORIZATION_PATH),
        "token_endpoint": s.url(TOKEN_PATH),
        "userinfo_endpoint": s.url(USERINFO_PATH),
        "revocation_endpoint": s.url(REVOCATION_PATH),
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": jwt::CLIENT_SIGNING_ALGS,
        "end_session_endpoint": s.url(LOGOUT_PATH),
        "introspection_endpoint": s.url(INTROSPECTION_PATH),
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": jwt::CLIENT_SIGNING_ALGS,
        "jwks_uri": s.url(JWKS_PATH),
        "jwks": s.0.key.jwks(),
        "scopes_supported": client::SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "acr_values_supported": acr::ACR_VALUES,
        "subject_types_supported": ["pairwise"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": jwt::CLIENT_SIGNING_ALGS,
        "id_token_signing_alg_values_supported": ["RS256"],
        "userinfo_signing_alg_values_supported": ["RS256"],
        "userinfo_encryption_alg_values_supported": client::USERINFO_ENC_ALGS,
        "userinfo_encryption_enc_values_supported": client::USERINFO_ENC_ENCS,
        "request_object_signing_alg_values_supported": jwt::CLIENT_SIGNING_ALGS,
        "request_authentication_methods_supported": {"authorization_endpoint": ["request_object"]},
        "request_authentication_signing_alg_values_supported": jwt::CLIENT_SIGNING_ALGS,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": true,
        "claims_supported": claims_supported,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["consent", "login"],
    })
}

/// `GET /.well-known/openid-federation`: our entity configuration (404 outside a
/// federation). Its `openid_provider` carries the keys inline and, as the profile asks,
/// `client_registration_types_supported: ["automatic"]`.
#[utoipa::path(
    get,
    path = super::federation::WELL_KNOWN,
    tag = "oidc",
    responses(
        (status = 200, description = "Our entity configuration, a signed JWT", content_type = "application/entity-statement+jwt", body = String),
        (status = 404, description = "Not in a federation (no body)"),
        (status = 500, description = "The entity configuration could not be signed (no body)"),
    )
)]
pub(super) async fn entity_configuration(State(s): State<OidcState>) -> Response {
    let Some(fed) = &s.0.federation else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut provider = provider_metadata(&s);
    if let Some(m) = provider.as_object_mut() {
        m.remove("jwks_uri");
        m.insert(
            "client_registration_types_supported".into(),
            json!(["automatic"]),
        );
        m.insert("organization_name".into(), json!(fed.organization_name()));
    }
    match fed.entity_configuration(&s.0.issuer, provider, s.now()) {
        Ok(jws) => {
            let mut resp = jws.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(federation::CONTENT_TYPE),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "entity configuration not signed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[utoipa::path(
    get,
    path = super::JWKS_PATH,
    tag = "oidc",
    responses(
        (status = 200, description = "The provider's public keys (JWK set)", body = super::openapi::JwkSet),
    )
)]
pub(super) async fn jwks(State(s): State<OidcState>) -> Response {
    cacheable(s.0.key.jwks())
}
