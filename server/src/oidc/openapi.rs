//! The OpenID Provider's part of `/openapi.json`: the handlers' `#[utoipa::path]`
//! annotations, and the shapes of the form bodies and answers the handlers build as maps
//! (the handlers read forms as maps so an unknown member never refuses a request; these
//! types only describe them).

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// An OAuth error body (RFC 6749 §5.2), as [`super::token::oauth_error`] writes it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`,
    /// `server_error`, `temporarily_unavailable`.
    pub error: String,
    /// What was wrong, in English.
    pub error_description: String,
}

/// OpenID Provider metadata: the members every client reads (the document has more).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    response_types_supported: Vec<String>,
    subject_types_supported: Vec<String>,
    id_token_signing_alg_values_supported: Vec<String>,
}

/// A JWK set (RFC 7517 §5).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct JwkSet {
    keys: Vec<Jwk>,
}

/// A public RSA key (RFC 7517, RFC 7518 §6.3).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Jwk {
    /// `RSA`.
    kty: String,
    kid: Option<String>,
    /// `sig`.
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    /// Modulus, base64url.
    n: String,
    /// Exponent, base64url.
    e: String,
}

/// `POST /oidc/token`: the `authorization_code` grant with `private_key_jwt`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokenRequest {
    /// `authorization_code`.
    grant_type: String,
    /// The code the authorization endpoint gave.
    code: String,
    /// PKCE verifier (S256).
    code_verifier: String,
    /// Must equal the authorization request's when sent.
    redirect_uri: Option<String>,
    client_id: String,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: String,
    /// The signed client assertion (`aud`: this endpoint's URL).
    client_assertion: String,
}

/// `POST /oidc/revocation` and `POST /oidc/introspection`: a token, and the client
/// authenticated as at the token endpoint.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokenRequestOfClient {
    /// The access token.
    token: String,
    client_id: String,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: String,
    /// The signed client assertion (`aud`: this endpoint's URL).
    client_assertion: String,
}

/// The token endpoint's answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokenResponse {
    /// RFC 9068 JWT.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds.
    expires_in: u64,
    /// The ID token (RS256).
    id_token: String,
}

/// RFC 7662 answer: `{"active": false}` or the active token's claims.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Introspection {
    active: bool,
    scope: Option<String>,
    client_id: Option<String>,
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<Audience>,
    iat: Option<u64>,
    exp: Option<u64>,
    token_type: Option<String>,
}

/// `aud`: one audience or several.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct LogoutParams {
    /// An ID token we issued to the client.
    id_token_hint: Option<String>,
    /// A URI registered for the client.
    post_logout_redirect_uri: Option<String>,
    /// Echoed back.
    state: Option<String>,
    /// `1`: the user confirmed.
    confirm: Option<String>,
}

/// The provider's paths and schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        super::discovery::configuration,
        super::discovery::jwks,
        super::discovery::entity_configuration,
        super::authorize::authorization_get,
        super::authorize::authorization_post,
        super::authorize::consent_get,
        super::authorize::consent_post,
        super::token::token,
        super::userinfo::userinfo,
        super::revocation::revocation,
        super::introspection::introspection,
        super::logout::logout_get,
        super::logout::logout_post,
    ),
    components(schemas(OAuthError)),
    tags((name = "oidc", description = "OpenID Provider (docs/oidc.md): relying parties"))
)]
pub(crate) struct OidcDoc;
