//! The provider's signing key: RSA (≥ 2048 bits), RS256, `kid` = RFC 7638 thumbprint.
//!
//! It lives in a PEM file (PKCS#8) named by `--oidc-key`, created with mode 0600 on first
//! start when missing: a file the operator can back up, rotate and share between
//! instances, never in the database (whose file or dumps are readable more widely).

use std::path::Path;
use std::sync::Arc;

use cie_core::flows::wire::b64;
use josekit::jwk::Jwk;
use josekit::jwk::KeyPair;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::alg::rsassa::{RsassaJwsSigner, RsassaJwsVerifier};
use josekit::jws::{JwsHeader, RS256};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not an RSA private key in PEM, or too short.
    #[error("signing key: {0}")]
    Invalid(String),
    /// Reading or writing the file.
    #[error("signing key file: {0}")]
    Io(#[from] std::io::Error),
}

/// Smallest modulus accepted (the profile's floor).
pub const MIN_BITS: u32 = 2048;

/// The provider's signing key.
pub struct OpKey {
    signer: RsassaJwsSigner,
    verifier: RsassaJwsVerifier,
    public: Jwk,
    kid: String,
}

impl std::fmt::Debug for OpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl OpKey {
    /// From a PEM private key (PKCS#8, or PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pem(pem).map_err(|e| KeyError::Invalid(e.to_string()))?;
        if pair.key_len() * 8 < MIN_BITS {
            return Err(KeyError::Invalid(format!(
                "RSA key of {} bits, at least {MIN_BITS} needed",
                pair.key_len() * 8
            )));
        }
        let mut public = pair.to_jwk_public_key();
        let kid = thumbprint(&public)
            .ok_or_else(|| KeyError::Invalid("RSA public key without n or e".into()))?;
        public.set_key_id(&kid);
        public.set_key_use("sig");
        public.set_algorithm("RS256");
        let signer = RS256
            .signer_from_pem(pem)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let verifier = RS256
            .verifier_from_jwk(&public)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(Self {
            signer,
            verifier,
            public,
            kid,
        })
    }

    /// A new 3072-bit key and its PEM (PKCS#8).
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let pair = RsaKeyPair::generate(3072).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let pem = Zeroizing::new(pair.to_pem_private_key());
        Ok((Self::from_pem(&pem)?, pem))
    }

    /// Load `path`, or create it (mode 0600, never overwriting) with a new key.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read(path) {
            Ok(pem) => Self::from_pem(&Zeroizing::new(pem)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, pem) = Self::generate()?;
                write_private(path, &pem)?;
                Ok(key)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK set (`{"keys":[…]}`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// The public JWK (`kid`, `use: sig`, `alg: RS256`).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::Value::Object(self.public.as_ref().clone())
    }

    /// A compact JWS of `claims`, header `alg`, `kid` and `typ` when given.
    pub fn sign(&self, typ: Option<&str>, claims: &serde_json::Value) -> Result<String, KeyError> {
        let mut header = JwsHeader::new();
        header.set_key_id(&self.kid);
        if let Some(t) = typ {
            header.set_token_type(t);
        }
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Invalid(e.to_string()))?;
        josekit::jws::serialize_compact(&payload, &header, &self.signer)
            .map_err(|e| KeyError::Invalid(e.to_string()))
    }

    /// The payload and `typ` of a JWS this key signed, or `None`.
    pub fn verify(&self, token: &str) -> Option<(Vec<u8>, Option<String>)> {
        let (payload, header) = josekit::jws::deserialize_compact(token, &self.verifier).ok()?;
        if header.key_id() != Some(self.kid.as_str()) {
            return None;
        }
        Some((payload, header.token_type().map(str::to_owned)))
    }
}

/// The keys the provider publishes: the current one signs; the others (the next key
/// before it takes over, the previous one until what it signed has expired) are in the
/// JWK set and verify, never sign. See docs/oidc.md, "Key rotation".
#[derive(Debug)]
pub struct OpKeys {
    current: Arc<OpKey>,
    others: Vec<Arc<OpKey>>,
}

impl OpKeys {
    /// `current` and the other published keys (a key given twice is published once).
    pub fn new(current: Arc<OpKey>, others: &[Arc<OpKey>]) -> Self {
        let mut kept: Vec<Arc<OpKey>> = Vec::new();
        for k in others {
            if k.kid() != current.kid() && !kept.iter().any(|o| o.kid() == k.kid()) {
                kept.push(k.clone());
            }
        }
        Self {
            current,
            others: kept,
        }
    }

    /// The signing key's id.
    pub fn kid(&self) -> &str {
        self.current.kid()
    }

    /// The public JWK set: the current key first, then the others.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = std::iter::once(&self.current)
            .chain(&self.others)
            .map(|k| k.public_jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signed with the current key (see [`OpKey::sign`]).
    pub fn sign(&self, typ: Option<&str>, claims: &serde_json::Value) -> Result<String, KeyError> {
        self.current.sign(typ, claims)
    }

    /// The payload and `typ` of a JWS one of the published keys signed (the key its `kid`
    /// names), or `None`.
    pub fn verify(&self, token: &str) -> Option<(Vec<u8>, Option<String>)> {
        let (header, _) = super::jwt::peek(token).ok()?;
        let kid = header.kid?;
        std::iter::once(&self.current)
            .chain(&self.others)
            .find(|k| k.kid == kid)?
            .verify(token)
    }
}

/// RFC 7638 thumbprint of an RSA or EC public JWK (required members, lexical order).
pub fn thumbprint(jwk: &Jwk) -> Option<String> {
    let p = |k: &str| jwk.parameter(k).and_then(|v| v.as_str());
    let canonical = match jwk.key_type() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, p("e")?, p("n")?),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            p("crv")?,
            p("x")?,
            p("y")?
        ),
        _ => return None,
    };
    Some(b64(&Sha256::digest(canonical.as_bytes())))
}

#[cfg(unix)]
fn write_private(path: &Path, pem: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(pem)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, pem: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(pem)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn thumbprint_of_the_rfc_example() {
        let jwk = Jwk::from_bytes(br#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#).unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn key_set_signs_with_the_current_key_and_verifies_with_any() {
        let (a, _) = OpKey::generate().unwrap();
        let (b, b_pem) = OpKey::generate().unwrap();
        let (a, b) = (Arc::new(a), Arc::new(b));
        // A key given twice, or the current one again, is published once.
        let set = OpKeys::new(a.clone(), &[b.clone(), a.clone(), b.clone()]);
        assert_eq!(set.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(set.kid(), a.kid());
        let claims = serde_json::json!({"x": 1});
        let by_set = set.sign(None, &claims).unwrap();
        assert!(a.verify(&by_set).is_some() && b.verify(&by_set).is_none());
        let by_b = OpKey::from_pem(&b_pem)
            .unwrap()
            .sign(None, &claims)
            .unwrap();
        assert!(set.verify(&by_b).is_some());
        assert!(OpKeys::new(a, &[]).verify(&by_b).is_none());
    }
}
