//! Entry point of the `oidc_request` fuzz target (fuzz/): the provider's parsers of outside
//! JWTs and federation documents, which must never panic.

use super::federation::{policy, statement};
use super::request_object::{HttpParams, locate, validate};
use super::{ClientMetadata, check_assertion, jwt};

/// RFC 7638's example RSA key, as a registered client's signing key.
const JWKS: &str = r#"{"keys":[{"kty":"RSA","use":"sig","kid":"k","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}"#;

/// A request object (or anything) in `data`: peek, locate, validate; and the same bytes
/// as client-assertion claims.
pub fn request(data: &[u8]) {
    let _ = check_assertion(
        data,
        "https://rp.example",
        "https://op.example/oidc/token",
        1_000,
    );
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::peek(text);
    // Federation: an entity configuration as a peer serves it (self-signed, its own keys),
    // and `[metadata, policy]` as a superior's statement combines them.
    let _ = statement::self_signed(text, "https://rp.example", 1_000);
    if let Ok(serde_json::Value::Array(parts)) = serde_json::from_str::<serde_json::Value>(text)
        && let [serde_json::Value::Object(metadata), rules] = parts.as_slice()
    {
        let _ = policy::apply(&mut metadata.clone(), rules);
    }
    let p = HttpParams {
        request: Some(text.to_owned()),
        scope: Some("openid".into()),
        ..HttpParams::default()
    };
    if let Ok(located) = locate(&p) {
        let jwks = serde_json::from_str(JWKS).unwrap_or_default();
        let client = ClientMetadata::new(
            "https://rp.example",
            vec![located.redirect_uri.clone()],
            jwks,
        );
        let _ = validate(&p, &located, &client, "https://op.example", 1_000);
    }
}

#[cfg(test)]
mod tests {
    /// The harness runs on a well-formed unsigned object and on junk.
    #[test]
    fn runs() {
        super::request(b"eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL3JwL2NiIn0.");
        super::request(b"\xff..");
        super::request(br#"{"iss":1}"#);
        super::request(
            br#"[{"scope":"openid","grant_types":["authorization_code"]},{"scope":{"subset_of":["openid"]},"grant_types":{"one_of":["x"]},"contacts":{"essential":true}}]"#,
        );
    }
}
