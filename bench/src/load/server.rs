//! The real `companion-server` binary as a child process on loopback: its own TLS identity
//! (made here, so the client trusts exactly that certificate), the test card CA, a fresh
//! database, and the per-address rendezvous limit raised (every virtual browser comes from
//! 127.0.0.1).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cie_core::flows::wire::Origin;
use sqlx::Connection;

use super::Res;

/// Rendezvous creations per minute per address given to the bench server: high enough that
/// the limit never bites (one address for every virtual browser).
pub const BENCH_RENDEZVOUS_PER_MINUTE: u32 = 100_000_000;

/// Which database the server runs on.
#[derive(Debug, Clone)]
pub enum Db {
    /// A fresh SQLite file in the run's temporary directory.
    Sqlite,
    /// A fresh schema on this PostgreSQL (`postgres://…`).
    Postgres(String),
}

impl Db {
    /// Short name for the tables.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }
}

/// A running server process.
pub struct Server {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The origin signatures name.
    pub origin: Origin,
    /// The TLS certificate (DER) the client trusts.
    pub cert_der: Vec<u8>,
    /// The database URL (the check reads it after the run).
    pub db_url: String,
    /// Dropped when the server stops (PostgreSQL).
    pub schema: Option<(String, String)>,
    dir: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    /// Every argument but `--listen` (a restart or a peer reuses them).
    args: Vec<OsString>,
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// The server binary: `--server`, else `COMPANION_SERVER_BIN`, else beside this executable
/// (same target directory and profile). Under `cargo run`, that one is (re)built first, so
/// the figures are never those of a stale server.
pub fn locate_server(explicit: Option<&Path>) -> Res<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Ok(p) = std::env::var("COMPANION_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().ok_or("executable without a directory")?;
    let bin = dir.join(format!("companion-server{}", std::env::consts::EXE_SUFFIX));
    if let Ok(cargo) = std::env::var("CARGO") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "companion-server",
            "--manifest-path",
        ])
        .arg(manifest);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cargo build companion-server: {e}"))?;
        if !status.success() {
            return Err("cargo build -p companion-server failed".into());
        }
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p companion-server) or pass --server",
            bin.display()
        ))
    }
}

impl Server {
    /// Start `bin` on a fresh database and wait until it listens.
    pub async fn start(bin: &Path, db: &Db) -> Res<Self> {
        let suffix = unique_suffix();
        let dir = std::env::temp_dir().join(format!("companion-load-{suffix}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, bytes: &[u8]| -> Res<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".into()])
            .and_then(|p| p.self_signed(&key))
            .map_err(|e| e.to_string())?;
        let cert_pem = write("cert.pem", cert.pem().as_bytes())?;
        let key_pem = write("key.pem", key.serialize_pem().as_bytes())?;
        let ca = write("ca.der", card_sim::ias::pki::TEST_CA_CERT_DER)?;
        let (db_url, schema) = match db {
            Db::Sqlite => (format!("sqlite:{}", dir.join("server.db").display()), None),
            Db::Postgres(base) => {
                let name = format!("load_{suffix}");
                let mut conn = sqlx::AnyConnection::connect(base)
                    .await
                    .map_err(|e| format!("PostgreSQL {e}"))?;
                sqlx::query(&format!("CREATE SCHEMA {name}"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                (
                    format!("{base}{sep}options[search_path]={name}"),
                    Some((base.clone(), name)),
                )
            }
        };
        let mut args: Vec<OsString> = vec!["--database".into(), db_url.clone().into()];
        for (flag, path) in [
            ("--card-ca", &ca),
            ("--tls-cert", &cert_pem),
            ("--tls-key", &key_pem),
        ] {
            args.push(flag.into());
            args.push(path.clone().into());
        }
        for a in [
            "--rendezvous-per-minute",
            &BENCH_RENDEZVOUS_PER_MINUTE.to_string(),
            "--service-name",
            "cie-companion load bench",
        ] {
            args.push(a.into());
        }
        let log = dir.join("server.log");
        let (child, addr, origin) = spawn(bin, "127.0.0.1:0", &args, &log)?;
        Ok(Self {
            child,
            base: format!("https://{addr}"),
            origin,
            cert_der: cert.der().to_vec(),
            db_url,
            schema,
            dir,
            log,
            bin: bin.to_owned(),
            args,
        })
    }

    /// A second instance on the same database, TLS identity and public origin (what a load
    /// balancer would have behind one name), on its own port.
    pub fn start_peer(&self) -> Res<Self> {
        let dir = std::env::temp_dir().join(format!("companion-load-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut args = self.args.clone();
        args.push("--public-origin".into());
        args.push(self.origin.to_string().into());
        let log = dir.join("server.log");
        let (child, addr, origin) = spawn(&self.bin, "127.0.0.1:0", &args, &log)?;
        if origin != self.origin {
            return Err(format!("peer origin {origin}, expected {}", self.origin));
        }
        Ok(Self {
            child,
            base: format!("https://{addr}"),
            origin,
            cert_der: self.cert_der.clone(),
            db_url: self.db_url.clone(),
            // The first instance drops the schema.
            schema: None,
            dir,
            log,
            bin: self.bin.clone(),
            args,
        })
    }

    /// Stop (SIGINT, as an operator's restart would) and start again on the same port and
    /// database; the time the port was closed.
    pub fn restart(&mut self) -> Res<Duration> {
        let listen = self
            .base
            .strip_prefix("https://")
            .ok_or("no address")?
            .to_owned();
        let down = Instant::now();
        self.stop()?;
        // The port was just closed: a bind may briefly fail.
        let mut tries = 0;
        let (child, addr, origin) = loop {
            match spawn(&self.bin, &listen, &self.args, &self.log) {
                Ok(started) => break started,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(format!("restart on {listen}: {e}")),
            }
        };
        if addr != listen || origin != self.origin {
            return Err(format!("restarted on {addr} ({origin}), expected {listen}"));
        }
        self.child = child;
        Ok(down.elapsed())
    }

    /// The server's process id (CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT (the server's clean stop: connections dropped, database closed) and wait.
    pub fn stop(&mut self) -> Res<()> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("companion-server stopped with {status}"))
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err("companion-server did not stop within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the server's log (for a failure report).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Remove the temporary directory and the PostgreSQL schema.
    pub async fn clean_up(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((base, name)) = self.schema.take()
            && let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await
        {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start `bin --listen LISTEN ARGS…`, its stderr and then stdout appended to `log`, and
/// wait for its address and origin lines.
fn spawn(bin: &Path, listen: &str, args: &[OsString], log: &Path) -> Res<(Child, String, Origin)> {
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))
    };
    let mut child = Command::new(bin)
        .args(["--listen", listen])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(open_log()?)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stdout = BufReader::new(stdout);
    let (mut addr, mut origin) = (None, None);
    let mut line = String::new();
    while addr.is_none() || origin.is_none() {
        line.clear();
        let n = stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!(
                "companion-server exited at start:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            addr = Some(a.to_owned());
        } else if let Some(o) = line.trim().strip_prefix("origin ") {
            origin = Some(Origin::parse(o).map_err(|e| e.to_string())?);
        }
    }
    let (Some(addr), Some(origin)) = (addr, origin) else {
        return Err("no address".into());
    };
    // The server logs to stdout (a line per login): drain it into the log file, or a full
    // pipe would stall the server.
    let mut sink = open_log()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdout, &mut sink);
        let _ = sink.flush();
    });
    Ok((child, addr, origin))
}

/// User + system CPU seconds of a process so far (Linux `/proc`; 0 elsewhere).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state (field 3);
    // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
