//! `companion-server`: the reference identity server of cie-companion (docs/protocol.md).
//!
//! Start it in-process with [`serve`] on any listener (tests and `cie-companion demo` use
//! `127.0.0.1:0`) and read its address, origin and TLS pin from the [`RunningServer`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), companion_server::ServerError> {
//! let config = companion_server::Config::new("sqlite:/tmp/companion.db");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(companion_server::ServerError::Io)?;
//! let server = companion_server::serve(config, listener).await?;
//! println!("{} pin {}", server.origin(), server.spki_pin());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod abroad;
pub mod api;
pub mod card;
pub mod clock;
pub mod context;
pub mod error;
mod headers;
pub mod mtls;
pub mod observability;
pub mod oidc;
pub mod openapi;
mod page;
pub mod registration;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use cie_core::flows::wire::{Origin, b64};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

pub use card::{CardVerifier, Revocation, RevokedSerials};
pub use clock::{Clock, ManualClock, SystemClock};
pub use store::{SqlStore, Store};
pub use tls::TlsMaterial;

/// Failures to start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// TLS certificate or key.
    #[error("TLS: {0}")]
    Tls(String),
    /// The database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Sockets, files.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, Default)]
pub enum TlsSource {
    /// Generated at start for the origin's host (and `localhost`, `127.0.0.1`).
    #[default]
    SelfSigned,
    /// PEM files: certificate chain (leaf first) and private key.
    PemFiles {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// Everything the server needs to start.
#[derive(Clone)]
pub struct Config {
    /// `sqlite:PATH` or `postgres://…`.
    pub database: String,
    /// The origin the app and the signed statements name; `https://<listen address>` when
    /// `None`.
    pub public_origin: Option<Origin>,
    /// Service name shown on the phone.
    pub service_name: String,
    /// Trusted card CAs, DER.
    pub card_cas: Vec<Vec<u8>>,
    /// Revocation hook.
    pub revocation: Arc<dyn Revocation>,
    /// TLS certificate source.
    pub tls: TlsSource,
    /// Time (injectable for tests).
    pub clock: Arc<dyn Clock>,
    /// Rendezvous creations per minute per client address.
    pub rendezvous_per_minute: u32,
    /// PIN attempts of residents abroad per minute per client address.
    pub abroad_per_minute: u32,
    /// Where the mutual-TLS card login listens, TLS 1.2 and 1.3 (`None`: not served).
    pub mtls_listen: Option<SocketAddr>,
    /// A second mutual-TLS listener offering TLS 1.2 only: the origin of the browser card
    /// login for the CIE, which cannot sign TLS 1.3's RSA-PSS (`None`: not served).
    pub mtls_tls12_listen: Option<SocketAddr>,
    /// The key sealing TOTP seeds at rest (docs/protocol.md §3 "OTP fallback"); without
    /// one the OTP endpoints are off.
    pub otp_key: Option<api::OtpKey>,
    /// Registration with the CIE: the CSCAs (and deviation lists) its documents must chain
    /// to. `None` (the default): registration is not offered.
    pub registration: Option<Arc<registration::RegistrationTrust>>,
    /// The OpenID Provider (src/oidc); `None` (the default): not offered.
    pub oidc: Option<oidc::OidcConfig>,
    /// How long audit rows are kept (everything else goes when it expires; docs/data.md).
    pub retention: store::Retention,
    /// Where `GET /metrics` (Prometheus text) is served, plain HTTP: a loopback or private
    /// address, never the public listener (`None`, the default: not served).
    pub metrics_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may carry a password.
        f.debug_struct("Config")
            .field("public_origin", &self.public_origin)
            .field("service_name", &self.service_name)
            .field("card_cas", &self.card_cas.len())
            .field("tls", &self.tls)
            .field("rendezvous_per_minute", &self.rendezvous_per_minute)
            .field("abroad_per_minute", &self.abroad_per_minute)
            .field("mtls_listen", &self.mtls_listen)
            .field("mtls_tls12_listen", &self.mtls_tls12_listen)
            .field("metrics_listen", &self.metrics_listen)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults: self-signed TLS, system clock, no CA (configure `card_cas`), no
    /// revocations, 10 rendezvous a minute per address.
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
            public_origin: None,
            service_name: "cie-companion (server di prova)".into(),
            card_cas: Vec::new(),
            revocation: Arc::new(RevokedSerials::default()),
            tls: TlsSource::SelfSigned,
            clock: Arc::new(SystemClock),
            rendezvous_per_minute: 10,
            abroad_per_minute: abroad::DEFAULT_PER_MINUTE,
            mtls_listen: None,
            mtls_tls12_listen: None,
            otp_key: None,
            registration: None,
            oidc: None,
            retention: store::Retention::default(),
            metrics_listen: None,
        }
    }
}

/// A server running on its own tasks; dropping it stops it.
pub struct RunningServer {
    addr: SocketAddr,
    origin: Origin,
    spki_pin: String,
    certificate: Vec<u8>,
    store: Arc<SqlStore>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    mtls: Option<(SocketAddr, JoinHandle<()>)>,
    mtls12: Option<(SocketAddr, JoinHandle<()>)>,
    metrics: Arc<observability::Metrics>,
    metrics_listener: Option<(SocketAddr, JoinHandle<()>)>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("origin", &self.origin)
            .field("spki_pin", &self.spki_pin)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The origin statements must name (`https://host:port`).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// base64url(SHA-256(SPKI)) of the TLS certificate: what the app pins.
    pub fn spki_pin(&self) -> &str {
        &self.spki_pin
    }

    /// The TLS leaf certificate, DER (for clients that trust it directly).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// The mutual-TLS listener's address, when configured.
    pub fn mtls_addr(&self) -> Option<SocketAddr> {
        self.mtls.as_ref().map(|(addr, _)| *addr)
    }

    /// The TLS-1.2-only mutual-TLS listener's address, when configured.
    pub fn mtls_tls12_addr(&self) -> Option<SocketAddr> {
        self.mtls12.as_ref().map(|(addr, _)| *addr)
    }

    /// The metrics listener's address, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(addr, _)| *addr)
    }

    /// This server's metrics (what `GET /metrics` shows).
    pub fn metrics(&self) -> Arc<observability::Metrics> {
        self.metrics.clone()
    }

    /// The store (tests inspect state through it).
    pub fn store(&self) -> Arc<SqlStore> {
        self.store.clone()
    }

    /// The tasks of the other listeners (mutual TLS, metrics), taken.
    fn listener_tasks(&mut self) -> Vec<JoinHandle<()>> {
        [
            self.mtls.take(),
            self.mtls12.take(),
            self.metrics_listener.take(),
        ]
        .into_iter()
        .flatten()
        .map(|(_, task)| task)
        .collect()
    }

    /// Stop accepting, drop open connections, close the database.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        for task in self.listener_tasks() {
            let _ = task.await;
        }
        self.store.close().await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        for task in self.listener_tasks() {
            task.abort();
        }
    }
}

/// Random bytes from the OS CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// `N` random bytes as base64url.
pub(crate) fn random_id<const N: usize>() -> Result<String, getrandom::Error> {
    random_bytes::<N>().map(|b| b64(&b))
}

/// Open the database, build the TLS identity and serve HTTPS on `listener` until the
/// returned handle is shut down or dropped.
pub async fn serve(config: Config, listener: TcpListener) -> Result<RunningServer, ServerError> {
    let addr = listener.local_addr()?;
    let origin = match &config.public_origin {
        Some(o) => o.clone(),
        None => Origin::parse(&format!("https://{addr}"))
            .map_err(|e| ServerError::Config(e.to_string()))?,
    };
    let material = match &config.tls {
        TlsSource::PemFiles { cert, key } => TlsMaterial::from_pem_files(cert, key)?,
        TlsSource::SelfSigned => {
            let host = origin.host().trim_start_matches('[').trim_end_matches(']');
            let mut hosts = vec![host.to_owned()];
            for extra in ["localhost", "127.0.0.1", &addr.ip().to_string()] {
                if !hosts.iter().any(|h| h == extra) && !extra.starts_with("0.0.0.0") {
                    hosts.push(extra.to_owned());
                }
            }
            TlsMaterial::self_signed(&hosts)?
        }
    };
    let tls_config = material.server_config()?;
    if config.card_cas.is_empty() {
        tracing::warn!("no --card-ca configured: every card login will be refused");
    }
    let verifier = CardVerifier::new(&config.card_cas, config.revocation.clone())?;
    // Codici fiscali typed at logins are stored under a key derived from the OTP key, or,
    // without one, the database's own (docs/data.md).
    let cf_source = match &config.otp_key {
        Some(k) => store::KeySource::File(k.cf_lookup_key()),
        None => store::KeySource::Database,
    };
    let store = Arc::new(
        SqlStore::connect_keyed(&config.database, cf_source, store::KeyChange::Adopt).await?,
    );
    let (stop, stop_rx) = watch::channel(false);
    // Retention (docs/data.md): ends with the server's stop signal.
    tokio::spawn(store::retention::housekeeping(
        store.clone(),
        config.clock.clone(),
        config.retention,
        stop_rx.clone(),
    ));
    let metrics = Arc::new(observability::Metrics::new());
    let start_mtls = |listener: TcpListener, tls12_only: bool| {
        mtls::start(mtls::MtlsSetup {
            listener,
            material: &material,
            cards: verifier.clone(),
            card_cas: &config.card_cas,
            store: store.clone(),
            clock: config.clock.clone(),
            stop: stop_rx.clone(),
            tls12_only,
            metrics: metrics.clone(),
        })
    };
    let mtls = match config.mtls_listen {
        Some(at) => Some(start_mtls(TcpListener::bind(at).await?, false)?),
        None => None,
    };
    let mtls12 = match config.mtls_tls12_listen {
        Some(at) => Some(start_mtls(TcpListener::bind(at).await?, true)?),
        None => None,
    };
    let state = api::AppState::new(store.clone(), verifier, origin.clone(), &config);
    let mut app = api::router(state);
    if let Some(oidc) = &config.oidc {
        // issuer = the public origin exactly (no trailing slash).
        let routes = oidc::router(
            oidc,
            store.clone(),
            origin.to_string(),
            config.clock.clone(),
        )
        .await?;
        app = app.merge(routes);
    }
    // The contract of what is served (the OpenID Provider's part only when it is).
    app = app.merge(openapi::routes(config.oidc.is_some()));
    let app = observability::layer(app, metrics.clone());
    let app = headers::harden(app);
    let metrics_listener = match config.metrics_listen {
        Some(at) => {
            let listener = TcpListener::bind(at).await?;
            let at = listener.local_addr()?;
            tracing::info!(addr = %at, "serving metrics on http://{at}/metrics");
            let served = observability::serve_metrics(listener, metrics.clone(), stop_rx.clone());
            Some((at, tokio::spawn(served)))
        }
        None => None,
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
    let task = tokio::spawn(accept_loop(listener, acceptor, app, stop_rx));
    tracing::info!(%addr, %origin, pin = %material.spki_pin, "serving");
    Ok(RunningServer {
        addr,
        origin,
        spki_pin: material.spki_pin.clone(),
        certificate: material
            .certs
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default(),
        store,
        stop,
        task: Some(task),
        mtls,
        mtls12,
        metrics,
        metrics_listener,
    })
}

/// Our own accept loop: axum::serve does not speak TLS. Each connection does its handshake
/// on its own task (a slow client cannot stall the others); dropping the JoinSet when the
/// loop ends closes them all.
async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                connections.spawn(async move {
                    let tls = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let service = hyper::service::service_fn(
                        move |mut req: hyper::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            app.clone().oneshot(req)
                        },
                    );
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                    if let Err(e) = served {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
        }
    }
}
