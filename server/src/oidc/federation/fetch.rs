//! Fetching statements over HTTP(S): bounded time and size, no redirects, TLS through
//! rustls (ring) trusting the system's CA bundle plus any configured CA.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use super::statement::MAX_LEN;

/// Why a statement could not be fetched (the URL is not repeated: it may be long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fetch: {0}")]
pub struct FetchError(pub String);

/// Where statements come from (HTTP in the server, a map in tests).
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// The body of `GET url` (a compact JWS), if 200.
    async fn get(&self, url: &str) -> Result<String, FetchError>;
}

/// The system's CA bundle (Debian, Fedora, Alpine paths).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Fetches over HTTP(S) with reqwest.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// Trusting the system's CA bundle and the PEM certificates in `extra_cas`.
    pub fn new(extra_cas: &[&Path]) -> Result<Self, FetchError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(8))
            .connect_timeout(Duration::from_secs(4))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("companion-server/", env!("CARGO_PKG_VERSION")))
            .tls_built_in_root_certs(false);
        let system = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists());
        for path in system.into_iter().chain(extra_cas.iter().copied()) {
            let pem =
                std::fs::read(path).map_err(|e| FetchError(format!("{}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| FetchError(format!("{}: {e}", path.display())))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder.build().map_err(|e| FetchError(e.to_string()))?;
        Ok(Self { client })
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn get(&self, url: &str) -> Result<String, FetchError> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| FetchError(e.without_url().to_string()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError(format!("HTTP {}", resp.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_LEN {
                return Err(FetchError("statement too long".into()));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map(|s| s.trim().to_owned())
            .map_err(|_| FetchError("not text".into()))
    }
}
