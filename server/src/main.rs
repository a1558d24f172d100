//! `companion-server`: run the reference identity server.

use std::path::PathBuf;
use std::sync::Arc;

use cie_core::flows::wire::Origin;
use clap::{Parser, Subcommand};
use companion_server::abroad::{DEFAULT_PER_MINUTE, IssueRequest, issue_pin};
use companion_server::observability::logs::{self, LogFormat, Stream};
use companion_server::store::{AbroadStore, AuditEntry, Channel};
use companion_server::{
    Clock, Config, RevokedSerials, ServerError, SqlStore, SystemClock, TlsSource, card, serve,
};

/// The cie-companion reference identity server (docs/protocol.md). Without a command it
/// serves; `pin …` are the operator's commands for residents abroad (docs/abroad-pin.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// `sqlite:PATH` (created if missing) or `postgres://user:pass@host/db`.
    #[arg(long, default_value = "sqlite:companion.db")]
    database: String,
    /// Trusted card CA certificate, PEM or DER (repeatable).
    #[arg(long = "card-ca")]
    card_ca: Vec<PathBuf>,
    /// Revoked card serials, one hex serial a line.
    #[arg(long)]
    revoked: Option<PathBuf>,
    /// The public origin (`https://host[:port]`) the app and the signatures name; default
    /// `https://<listen address>`.
    #[arg(long)]
    public_origin: Option<String>,
    /// Service name shown on the phone.
    #[arg(long, default_value = "cie-companion (server di prova)")]
    service_name: String,
    /// TLS certificate chain, PEM (with --tls-key); default: self-signed at start.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key, PEM.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Write the TLS key pin (base64url SHA-256 of the SPKI) to this file.
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// Rendezvous creations per minute per client address.
    #[arg(long, default_value_t = 10)]
    rendezvous_per_minute: u32,
    /// PIN attempts of residents abroad per minute per client address.
    #[arg(long, default_value_t = DEFAULT_PER_MINUTE)]
    abroad_per_minute: u32,
    /// Also serve the mutual-TLS card login (client certificate = the CIE's) here.
    #[arg(long)]
    mtls_listen: Option<std::net::SocketAddr>,
    /// Also serve the mutual-TLS card login here with TLS 1.2 only: the origin for
    /// browsers with a CIE (TLS 1.3 needs RSA-PSS, which the CIE cannot sign).
    #[arg(long)]
    mtls_tls12_listen: Option<std::net::SocketAddr>,
    /// Offer registration with the CIE: a CSCA file its documents must chain to (DER, PEM,
    /// ICAO master list, or a ZIP of those, as published); repeat for more.
    #[arg(long)]
    csca: Vec<PathBuf>,
    /// A CSCA-signed ICAO deviation list (e.g. the CIE 3.0 DG12 hash list); needs --csca.
    #[arg(long, requires = "csca")]
    deviation_list: Vec<PathBuf>,
    /// 32 random bytes sealing the TOTP seeds at rest (`head -c 32 /dev/urandom`); without
    /// it the OTP fallback is off. Codici fiscali typed at logins are stored under a key
    /// derived from it: give the operator's `pin` and `identity` commands the same file.
    #[arg(long, global = true)]
    otp_key_file: Option<PathBuf>,
    /// Serve the OpenID Provider, signing with this RSA key (PEM, PKCS#8); a new key is
    /// written there (mode 0600) when the file does not exist.
    #[arg(long)]
    oidc_key: Option<PathBuf>,
    /// Key rotation: another OpenID Provider key (PEM, PKCS#8; created, mode 0600, when
    /// missing) published in the JWK set and accepted, never used to sign: the next key
    /// before it becomes --oidc-key, the previous one after (repeatable; docs/oidc.md).
    #[arg(long, requires = "oidc_key")]
    oidc_published_key: Vec<PathBuf>,
    /// Join an OpenID Federation: sign the entity configuration with this RSA key (PEM,
    /// PKCS#8; created, mode 0600, when missing), distinct from --oidc-key.
    #[arg(long, requires_all = ["oidc_key", "trust_anchor", "trust_anchor_jwks"])]
    federation_key: Option<PathBuf>,
    /// The Trust Anchor's entity id (relying parties are resolved up to it).
    #[arg(long, requires = "federation_key")]
    trust_anchor: Option<String>,
    /// The Trust Anchor's public federation keys, a JSON JWK set obtained out of band.
    #[arg(long, requires = "federation_key")]
    trust_anchor_jwks: Option<PathBuf>,
    /// Our superior in the federation (repeatable; default: the Trust Anchor).
    #[arg(long, requires = "federation_key")]
    authority_hint: Vec<String>,
    /// Trust marks to publish: a JSON array of {"id", "trust_mark"} as the TA issued them.
    #[arg(long, requires = "federation_key")]
    trust_marks: Option<PathBuf>,
    /// A trust mark id relying parties must carry, signed by the Trust Anchor (repeatable).
    #[arg(long, requires = "federation_key")]
    require_trust_mark: Vec<String>,
    /// `federation_entity.organization_name` of our entity configuration.
    #[arg(long, requires = "federation_key", default_value = "cie-companion")]
    organization_name: String,
    /// An extra CA (PEM) trusted when fetching federation statements (repeatable).
    #[arg(long, requires = "federation_key")]
    federation_ca: Vec<PathBuf>,
    /// Days audit rows are kept before the pruning pass deletes them (0: for ever);
    /// everything else goes when it expires (docs/data.md).
    #[arg(long, default_value_t = companion_server::store::retention::DEFAULT_AUDIT_DAYS)]
    retention_days: u32,
    /// Serve `GET /metrics` (Prometheus text format) over plain HTTP here, e.g.
    /// `127.0.0.1:9464`: a loopback or private address, never the public one
    /// (docs/operations.md).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Log lines as `text` or `json` (one object a line); what is logged: RUST_LOG
    /// (default `companion_server=info`).
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    /// Append the log lines to this file instead of the standard output (the standard
    /// error for `pin` and `oidc`).
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// TESTS ONLY: accept http:// loopback entity ids (the reference software on loopback).
    #[arg(long, requires = "federation_key")]
    federation_loopback_http: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Residents abroad: issue, reset and deliver PINs.
    #[command(subcommand)]
    Pin(PinCommand),
    /// OpenID Provider: register relying parties.
    #[command(subcommand)]
    Oidc(OidcCommand),
    /// One person's data: export it (right of access) or erase it (docs/data.md).
    #[command(subcommand)]
    Identity(IdentityCommand),
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Print everything held about a person as one JSON object (no secrets).
    Export {
        /// Their codice fiscale.
        #[arg(long)]
        cf: String,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
    /// Delete everything held about a person, consent records and audit rows included,
    /// in one transaction; print the rows erased per table as JSON. Running it again
    /// erases nothing more.
    Erase {
        /// Their codice fiscale.
        #[arg(long)]
        cf: String,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum OidcCommand {
    /// Relying parties registered without a federation.
    #[command(subcommand)]
    Client(OidcClientCommand),
}

#[derive(Debug, Subcommand)]
enum OidcClientCommand {
    /// Register (or replace) a relying party.
    Add {
        /// Its client id, an https:// URL.
        #[arg(long)]
        client_id: String,
        /// An exact redirect URI (repeatable).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uri: Vec<String>,
        /// An exact URI RP-initiated logout may return to (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uri: Vec<String>,
        /// Its public JWK set (JSON file): a signing key and an RSA `use: enc` key.
        #[arg(long)]
        jwks: PathBuf,
        /// Name shown on the consent page.
        #[arg(long)]
        client_name: Option<String>,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PinCommand {
    /// A new account with a 16-character PIN: the first 8 characters queued for the e-mail,
    /// the last 8 for the letter (see `pin outbox`). The PIN is printed nowhere.
    Issue {
        /// The holder's codice fiscale.
        #[arg(long)]
        codice_fiscale: String,
        /// E-mail address (digital channel).
        #[arg(long)]
        email: String,
        /// Postal address (postal channel).
        #[arg(long)]
        address: String,
        /// Given names, for a new identity.
        #[arg(long, default_value = "")]
        given_name: String,
        /// Surname, for a new identity.
        #[arg(long, default_value = "")]
        surname: String,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
    /// ("Ripristina") a new 16-character PIN the same way: the old PIN, its undelivered
    /// halves and any lockout are void.
    Reset {
        /// The holder's codice fiscale.
        #[arg(long)]
        codice_fiscale: String,
        /// A new e-mail address (default: the stored one).
        #[arg(long)]
        email: Option<String>,
        /// A new postal address (default: the stored one).
        #[arg(long)]
        address: Option<String>,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
    /// Print the pending deliveries of a channel, one JSON object a line (for the hook).
    Outbox {
        /// `digital` or `postal`.
        #[arg(long, value_parser = ["digital", "postal"])]
        channel: String,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
    /// The hook delivered row `--id` of `--channel`: erase it.
    Ack {
        /// `digital` or `postal`.
        #[arg(long, value_parser = ["digital", "postal"])]
        channel: String,
        /// The row id printed by `pin outbox`.
        #[arg(long)]
        id: i64,
        /// Default: the server's --database.
        #[arg(long)]
        database: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The operator's commands print data on stdout: their logs go to stderr.
    let stream = match args.command {
        Some(_) => Stream::Stderr,
        None => Stream::Stdout,
    };
    let _logs = match logs::init(
        args.log_format,
        "companion_server=info",
        args.log_file.as_deref(),
        stream,
    ) {
        Ok(guard) => guard,
        Err(e) => {
            let file = args.log_file.as_deref().unwrap_or(std::path::Path::new(""));
            eprintln!("companion-server: --log-file {}: {e}", file.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Some(Command::Pin(cmd)) => run_pin(cmd, &args.database, &args.otp_key_file).await,
        Some(Command::Oidc(cmd)) => run_oidc(cmd, &args.database).await,
        Some(Command::Identity(cmd)) => run_identity(cmd, &args.database, &args.otp_key_file).await,
        None => run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("companion-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), ServerError> {
    let federation = federation(&args)?;
    let mut config = Config::new(args.database);
    config.service_name = args.service_name;
    config.rendezvous_per_minute = args.rendezvous_per_minute;
    config.abroad_per_minute = args.abroad_per_minute;
    config.retention.audit_days = args.retention_days;
    config.mtls_listen = args.mtls_listen;
    config.mtls_tls12_listen = args.mtls_tls12_listen;
    config.metrics_listen = args.metrics_listen;
    if let Some(o) = args.public_origin {
        config.public_origin =
            Some(Origin::parse(&o).map_err(|e| ServerError::Config(e.to_string()))?);
    }
    for path in &args.card_ca {
        let bytes = std::fs::read(path)
            .map_err(|e| ServerError::Config(format!("--card-ca {}: {e}", path.display())))?;
        config.card_cas.extend(card::parse_certificates(&bytes)?);
    }
    if let Some(path) = &args.revoked {
        config.revocation = Arc::new(RevokedSerials::from_file(path)?);
    }
    if let Some(path) = &args.otp_key_file {
        config.otp_key = Some(
            companion_server::api::OtpKey::from_file(path)
                .map_err(|e| ServerError::Config(format!("--otp-key-file {e}")))?,
        );
    }
    if !args.csca.is_empty() {
        let mut trust = companion_server::registration::RegistrationTrust::new();
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| ServerError::Config(format!("--{flag} {}: {e}", path.display())))
        };
        for path in &args.csca {
            trust
                .add_csca_file(&read("csca", path)?)
                .map_err(|e| ServerError::Config(format!("--csca {}: {e}", path.display())))?;
        }
        // After the CSCAs: a list is verified against those loaded.
        for path in &args.deviation_list {
            trust
                .add_deviation_list(&read("deviation-list", path)?)
                .map_err(|e| {
                    ServerError::Config(format!("--deviation-list {}: {e}", path.display()))
                })?;
        }
        tracing::info!(
            cscas = trust.csca_count(),
            "registration with the CIE offered"
        );
        config.registration = Some(Arc::new(trust));
    }
    if let Some(path) = &args.oidc_key {
        let key = companion_server::oidc::OpKey::load_or_create(path)
            .map_err(|e| ServerError::Config(format!("--oidc-key {}: {e}", path.display())))?;
        tracing::info!(kid = key.kid(), "OpenID Provider offered");
        let mut oidc = companion_server::oidc::OidcConfig::new(key);
        for path in &args.oidc_published_key {
            let other = companion_server::oidc::OpKey::load_or_create(path).map_err(|e| {
                ServerError::Config(format!("--oidc-published-key {}: {e}", path.display()))
            })?;
            tracing::info!(
                kid = other.kid(),
                "OpenID Provider key published, not signing"
            );
            oidc.published_keys.push(Arc::new(other));
        }
        oidc.federation = federation;
        config.oidc = Some(oidc);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = TlsSource::PemFiles { cert, key };
    }
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let server = serve(config, listener).await?;
    // Start-up lines for whoever started the server; a closed stdout does not stop it.
    let mut lines = vec![
        format!("listening on {}", server.local_addr()),
        format!("origin {}", server.origin()),
    ];
    if let Some(addr) = server.mtls_addr() {
        lines.push(format!("mutual-TLS card login on https://{addr}"));
    }
    if let Some(addr) = server.mtls_tls12_addr() {
        lines.push(format!(
            "mutual-TLS card login (TLS 1.2 only) on https://{addr}"
        ));
    }
    if let Some(addr) = server.metrics_addr() {
        lines.push(format!("metrics on http://{addr}/metrics"));
    }
    lines.push(format!("tls pin sha256/{}", server.spki_pin()));
    for line in &lines {
        if !out(line) {
            break;
        }
    }
    if let Some(path) = &args.pin_file {
        std::fs::write(path, format!("{}\n", server.spki_pin()))?;
    }
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}

/// An operator's store: codici fiscali looked up under the server's key (from the same
/// `--otp-key-file`), refused when the database's rows were written under another.
async fn operator_store(
    db: &Option<String>,
    default_db: &str,
    otp_key_file: &Option<PathBuf>,
) -> Result<SqlStore, ServerError> {
    use companion_server::store::{KeyChange, KeySource};
    let source = match otp_key_file {
        Some(path) => KeySource::File(
            companion_server::api::OtpKey::from_file(path)
                .map_err(|e| ServerError::Config(format!("--otp-key-file {e}")))?
                .cf_lookup_key(),
        ),
        None => KeySource::Database,
    };
    let url = db.as_deref().unwrap_or(default_db);
    Ok(SqlStore::connect_keyed(url, source, KeyChange::Refuse).await?)
}

/// An operator's store for a command that looks up no codice fiscale (outbox, ack, OIDC
/// clients): no key needed, the recorded one left alone.
async fn keyless_store(db: &Option<String>, default_db: &str) -> Result<SqlStore, ServerError> {
    use companion_server::store::{KeyChange, KeySource};
    let url = db.as_deref().unwrap_or(default_db);
    Ok(SqlStore::connect_keyed(url, KeySource::Database, KeyChange::Ignore).await?)
}

async fn run_pin(
    cmd: PinCommand,
    default_db: &str,
    otp_key_file: &Option<PathBuf>,
) -> Result<(), ServerError> {
    let channel = |c: &str| Channel::parse(c).unwrap_or(Channel::Digital);
    let now = SystemClock.now();
    match cmd {
        PinCommand::Issue {
            codice_fiscale,
            email,
            address,
            given_name,
            surname,
            database,
        } => {
            let req = IssueRequest {
                codice_fiscale,
                email: Some(email),
                address: Some(address),
                given_name,
                surname,
            };
            let store = operator_store(&database, default_db, otp_key_file).await?;
            issue(&store, &req, false, now).await?;
        }
        PinCommand::Reset {
            codice_fiscale,
            email,
            address,
            database,
        } => {
            let req = IssueRequest {
                codice_fiscale,
                email,
                address,
                ..IssueRequest::default()
            };
            let store = operator_store(&database, default_db, otp_key_file).await?;
            issue(&store, &req, true, now).await?;
        }
        PinCommand::Outbox {
            channel: c,
            database,
        } => {
            let store = keyless_store(&database, default_db).await?;
            for item in store.abroad_outbox(channel(&c)).await? {
                let line =
                    serde_json::to_string(&item).map_err(|e| ServerError::Config(e.to_string()))?;
                if !out(&line) {
                    break;
                }
            }
        }
        PinCommand::Ack {
            channel: c,
            id,
            database,
        } => {
            let store = keyless_store(&database, default_db).await?;
            let audit =
                AuditEntry::new("abroad_outbox_ack", &format!("{c} {id}"), "ok", "operator");
            if !store.abroad_ack(channel(&c), id, &audit, now).await? {
                return Err(ServerError::Config(format!("no pending {c} delivery {id}")));
            }
            out(&format!("{c} delivery {id} acknowledged and erased"));
        }
    }
    Ok(())
}

/// The federation options, if --federation-key is given.
fn federation(
    args: &Args,
) -> Result<Option<companion_server::oidc::FederationConfig>, ServerError> {
    use companion_server::oidc::federation::HttpFetcher;
    let (Some(path), Some(anchor), Some(jwks_path)) = (
        &args.federation_key,
        &args.trust_anchor,
        &args.trust_anchor_jwks,
    ) else {
        return Ok(None);
    };
    let key = companion_server::oidc::OpKey::load_or_create(path)
        .map_err(|e| ServerError::Config(format!("--federation-key {}: {e}", path.display())))?;
    let json = |name: &str, p: &PathBuf| -> Result<serde_json::Value, ServerError> {
        let bytes = std::fs::read(p)
            .map_err(|e| ServerError::Config(format!("--{name} {}: {e}", p.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ServerError::Config(format!("--{name} {}: {e}", p.display())))
    };
    let cas: Vec<&std::path::Path> = args.federation_ca.iter().map(PathBuf::as_path).collect();
    let fetcher = HttpFetcher::new(&cas).map_err(|e| ServerError::Config(e.to_string()))?;
    let mut fed = companion_server::oidc::FederationConfig::new(
        key,
        anchor,
        json("trust-anchor-jwks", jwks_path)?,
        Arc::new(fetcher),
    );
    if !args.authority_hint.is_empty() {
        fed.authority_hints.clone_from(&args.authority_hint);
    }
    if let Some(p) = &args.trust_marks {
        fed.trust_marks = serde_json::from_value(json("trust-marks", p)?)
            .map_err(|e| ServerError::Config(format!("--trust-marks: {e}")))?;
    }
    fed.required_trust_marks
        .clone_from(&args.require_trust_mark);
    fed.organization_name.clone_from(&args.organization_name);
    fed.allow_loopback_http = args.federation_loopback_http;
    fed.validate()
        .map_err(|e| ServerError::Config(format!("federation: {e}")))?;
    tracing::info!(kid = fed.key.kid(), trust_anchor = %anchor, "federation member");
    Ok(Some(fed))
}

async fn run_oidc(cmd: OidcCommand, default_db: &str) -> Result<(), ServerError> {
    let OidcCommand::Client(OidcClientCommand::Add {
        client_id,
        redirect_uri,
        post_logout_redirect_uri,
        jwks,
        client_name,
        database,
    }) = cmd;
    let text = std::fs::read(&jwks)
        .map_err(|e| ServerError::Config(format!("--jwks {}: {e}", jwks.display())))?;
    let jwks_json = serde_json::from_slice(&text)
        .map_err(|e| ServerError::Config(format!("--jwks {}: {e}", jwks.display())))?;
    let mut client =
        companion_server::oidc::ClientMetadata::new(&client_id, redirect_uri, jwks_json);
    client.client_name = client_name;
    client.post_logout_redirect_uris = post_logout_redirect_uri;
    // Registering a client looks up no codice fiscale: the lookup key is left alone.
    let store = keyless_store(&database, default_db).await?;
    companion_server::oidc::register(&store, &client, "operator", SystemClock.now()).await?;
    out(&format!("client {client_id} registered"));
    Ok(())
}

/// One line of data on stdout. A reader that stops reading (`| head`) ends the output, not
/// the command: `println!` would panic on the broken pipe (Rust ignores SIGPIPE), after an
/// erase or an acknowledgement that has already happened. False when nothing more should be
/// written.
fn out(line: &str) -> bool {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("companion-server: standard output: {e}");
            false
        }
    }
}

/// `identity export|erase`: JSON on stdout, for the operator's records.
async fn run_identity(
    cmd: IdentityCommand,
    default_db: &str,
    otp_key_file: &Option<PathBuf>,
) -> Result<(), ServerError> {
    let json = |v: &serde_json::Value| {
        serde_json::to_string_pretty(v).map_err(|e| ServerError::Config(e.to_string()))
    };
    match cmd {
        IdentityCommand::Export { cf, database } => {
            let store = operator_store(&database, default_db, otp_key_file).await?;
            let Some(data) = store.export_identity(&cf).await? else {
                return Err(ServerError::Config(
                    "nessun dato per questo codice fiscale / nothing is held for this \
                     codice fiscale: check it and the --database"
                        .into(),
                ));
            };
            out(&json(&data)?);
        }
        IdentityCommand::Erase { cf, database } => {
            let store = operator_store(&database, default_db, otp_key_file).await?;
            let erased = store
                .erase_identity(&cf, "operator", SystemClock.now())
                .await?;
            let rows: serde_json::Map<String, serde_json::Value> = erased
                .rows
                .iter()
                .map(|(t, n)| ((*t).to_owned(), (*n).into()))
                .collect();
            let report = serde_json::json!({
                "erased_rows": rows,
                "total": erased.total(),
                "sqlite_wal_truncated": erased.wal_truncated,
            });
            out(&json(&report)?);
            if erased.wal_truncated == Some(false) {
                eprintln!(
                    "companion-server: il WAL di SQLite non è stato svuotato (un lettore era \
                     attivo): ripeti il comando / the SQLite WAL was not emptied (a reader was \
                     active): run the command again"
                );
            }
            store.close().await;
        }
    }
    Ok(())
}

/// `pin issue` / `pin reset`: says what was done, never the PIN.
async fn issue(
    store: &SqlStore,
    req: &IssueRequest,
    reset: bool,
    now: u64,
) -> Result<(), ServerError> {
    let id = issue_pin(store, req, reset, "operator", now)
        .await
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let done = if reset { "reset" } else { "issued" };
    out(&format!(
        "PIN {done} for identity {id}: one half queued per outbox (digital, postal)"
    ));
    Ok(())
}
