//! The soak (`companion-load --soak`, `scripts/soak.sh`): desktop QR logins for minutes
//! against one instance (SQLite) or two instances on one database (PostgreSQL) that the
//! client alternates between request by request; midway, one instance is stopped (SIGINT)
//! and started again on the same port. A request whose connection is refused is retried on
//! the next instance (counted); a login cut mid-request is counted and started afresh.
//! Afterwards the database is counted against the client's ledger of acknowledged logins:
//! none may be lost (acknowledged, then absent) or duplicated.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Check, Db, Method, Res, Server, check, locate_server, percentile, runtime, user};

/// What to soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub server: Option<PathBuf>,
    pub db: Db,
    /// Instances on the database (the client alternates between them).
    pub instances: usize,
    pub users: usize,
    pub duration: Duration,
    pub devices: usize,
}

/// What a soak measured.
#[derive(Debug)]
pub struct SoakResult {
    pub options: SoakOptions,
    /// Whole-login latencies (µs), sorted, restart window included.
    pub logins: Vec<u32>,
    /// Requests retried after a refused connection.
    pub retries: u64,
    /// `step: code` → count (logins cut by the restart show up as `transport`).
    pub errors: std::collections::BTreeMap<String, u64>,
    /// How long the restarted instance's port was closed.
    pub downtime: Duration,
    pub check: Check,
}

impl SoakResult {
    /// Logins per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.logins.len() as f64 / self.options.duration.as_secs_f64()
    }

    /// Whole-login percentile, ms.
    pub fn p(&self, q: f64) -> f64 {
        percentile(&self.logins, q)
    }

    /// Short label: store and instances.
    pub fn label(&self) -> String {
        let n = self.options.instances;
        format!(
            "{}, {n} instance{}",
            self.options.db.name(),
            if n == 1 { "" } else { "s" }
        )
    }
}

/// Run the soak: start the instances, drive the users, restart the last instance midway,
/// stop everything, count the database.
pub fn soak(o: &SoakOptions) -> Res<SoakResult> {
    let bin = locate_server(o.server.as_deref())?;
    let rt = runtime()?;
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let first = Server::start(&bin, &o.db).await?;
        let mut servers = vec![first];
        for _ in 1..o.instances.max(1) {
            match servers[0].start_peer() {
                Ok(peer) => servers.push(peer),
                Err(e) => {
                    for s in servers.into_iter().rev() {
                        s.clean_up().await;
                    }
                    return Err(e);
                }
            }
        }
        let result = drive(&mut servers, o).await;
        let mut stopped = Ok(());
        for s in servers.iter_mut().rev() {
            stopped = stopped.and(s.stop());
        }
        let result = match (result, stopped) {
            (Ok((outs, retries, downtime)), Ok(())) => {
                let created = outs.iter().map(|u| u.created).sum();
                let completed: Vec<_> = outs.iter().flat_map(|u| u.completed.clone()).collect();
                let failed: Vec<_> = outs.iter().flat_map(|u| u.failed_rids.clone()).collect();
                let c = check::check(&servers[0].db_url, created, &completed, &failed).await;
                c.map(|check| {
                    let mut logins: Vec<u32> = Vec::new();
                    let mut errors = std::collections::BTreeMap::new();
                    for u in outs {
                        logins.extend(u.logins);
                        for (k, v) in u.errors {
                            *errors.entry(k).or_default() += v;
                        }
                    }
                    logins.sort_unstable();
                    SoakResult {
                        options: o.clone(),
                        logins,
                        retries,
                        errors,
                        downtime,
                        check,
                    }
                })
            }
            (Err(e), _) | (Ok(_), Err(e)) => {
                let logs: Vec<String> = servers.iter().map(Server::log_tail).collect();
                Err(format!("{e}\nserver logs:\n{}", logs.join("\n----\n")))
            }
        };
        for s in servers.into_iter().rev() {
            s.clean_up().await;
        }
        result
    })
}

type Driven = (Vec<user::UserOut>, u64, Duration);

async fn drive(servers: &mut Vec<Server>, o: &SoakOptions) -> Res<Driven> {
    let now = Instant::now();
    let mut shared = user::Shared::new(
        servers.iter().map(|s| s.base.clone()).collect(),
        servers[0].origin.clone(),
        &servers[0].cert_der,
        Method::Device,
        now,
        now + o.duration,
    )?;
    // A restart takes a second or two; a request refused meanwhile waits for it (one
    // instance) or goes to the other instance.
    shared.retry_window = Duration::from_secs(60);
    user::enroll_devices(&mut shared, o.devices).await?;
    // Every login of the run is measured: the restart is part of what is soaked.
    let start = Instant::now();
    shared.window_start = start;
    shared.window_end = start + o.duration;
    let shared = Arc::new(shared);
    // The last instance is the one restarted: moved to a blocking thread and back.
    let mut restarted = servers.pop().ok_or("no server")?;
    let midway = start + o.duration / 2;
    let restart = tokio::task::spawn_blocking(move || {
        std::thread::sleep(midway.saturating_duration_since(Instant::now()));
        let downtime = restarted.restart();
        (restarted, downtime)
    });
    let tasks: Vec<_> = (0..o.users)
        .map(|i| tokio::spawn(user::run_user(shared.clone(), i)))
        .collect();
    let mut outs = Vec::new();
    let mut failure = None;
    for t in tasks {
        match t.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(out) => outs.push(out),
            Err(e) => failure = Some(e),
        }
    }
    let (server, downtime) = restart.await.map_err(|e| e.to_string())?;
    servers.push(server);
    let downtime = downtime?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((outs, shared.retries.load(Ordering::Relaxed), downtime))
}

/// The soak section's Markdown: one row per run, then the database counts.
pub fn report(md: &mut String, runs: &[SoakResult]) {
    let Some(first) = runs.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "Desktop QR logins (device method, ES256), {users} virtual users back to back for {min} \
         min per store, against the release `companion-server` on loopback (HTTPS). SQLite: one \
         instance; PostgreSQL: two instances on one schema, the client alternating between them \
         request by request. Midway the last instance is stopped (SIGINT) and started again on \
         the same port; a request whose connection is refused is retried on the next instance \
         (counted), a login cut mid-request is counted and started afresh. Logins/s and p99 \
         cover the whole run, restart included; \"done, not acknowledged\" counts logins the \
         server finished whose answer the restart cut (allowed, not lost). Afterwards the \
         database is counted against the client's ledger: **lost** = acknowledged to the \
         client (its session cookie received, whether or not the confirming request then got \
         through), then missing its consumed rendezvous, session or audit row; \
         **duplicated** = a login completed twice, a right code audited twice, or more \
         sessions than consumed rendezvous. Both must be 0.\n",
        users = first.options.users,
        min = fmt_minutes(first.options.duration),
    );
    let _ = writeln!(
        md,
        "| Run | Logins/s | p99 (ms) | Restart: port closed (s) | Retried requests | Logins cut | \
         Other errors | Sessions created (acknowledged) | Completed (acknowledged) | \
         Rendezvous in DB | Consumed in DB | Desktop sessions in DB | Done, not acknowledged | \
         Lost | Duplicated | Verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in runs {
        let c = &r.check;
        let cut: u64 = r
            .errors
            .iter()
            .filter(|(k, _)| is_cut(k))
            .map(|(_, v)| v)
            .sum();
        let other: u64 = r.errors.values().sum::<u64>() - cut;
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | **{}** |",
            r.label(),
            r.rate(),
            r.p(0.99),
            r.downtime.as_secs_f64(),
            r.retries,
            cut,
            other,
            c.created,
            c.completed,
            c.db_rendezvous,
            c.db_consumed,
            c.db_sessions,
            c.unacknowledged + c.unacknowledged_created,
            c.lost,
            c.duplicated,
            if c.soak_passed() { "PASS" } else { "FAIL" },
        );
    }
    let _ = writeln!(md);
    for r in runs {
        if !r.errors.is_empty() || !r.check.problems.is_empty() {
            let _ = writeln!(md, "Notes ({}):\n", r.label());
            for (k, v) in &r.errors {
                let _ = writeln!(md, "- {k}: {v}");
            }
            for p in r.check.problems.iter().take(10) {
                let _ = writeln!(md, "- {p}");
            }
            let _ = writeln!(md);
        }
    }
}

/// Errors of a login cut by the restart (not refused by a server).
fn is_cut(key: &str) -> bool {
    key.ends_with(": transport")
        || key.ends_with(": timeout")
        || key.ends_with(": connection refused")
}

fn fmt_minutes(d: Duration) -> String {
    let m = d.as_secs_f64() / 60.0;
    if (m - m.round()).abs() < 1e-9 {
        format!("{m:.0}")
    } else {
        format!("{m:.2}")
    }
}
