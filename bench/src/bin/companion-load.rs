//! `companion-load`: the load benchmark of desktop QR logins alone (section 4 of
//! `cie-bench`), `--quick` for CI (a few seconds, no timing assertion, exit 1 on any
//! failed, lost, duplicated or stuck login), or `--soak` (`scripts/soak.sh`): minutes of
//! logins with an instance restarted midway, exit 1 on any lost or duplicated login.
//!
//!   cargo build --release -p companion-server -p cie-bench
//!   target/release/companion-load            # the section, Markdown on stdout
//!   target/release/companion-load --quick    # CI
//!   target/release/companion-load --soak --minutes 10 --stores sqlite,postgres

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cie_bench::load::soak::{SoakOptions, report, soak};
use cie_bench::load::{Db, SectionOptions, quick, section};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Desktop QR logins under load against a companion-server process")]
struct Args {
    /// CI mode: a few seconds on SQLite, checks only (no timing assertion).
    #[arg(long, conflicts_with = "soak")]
    quick: bool,
    /// Soak: `--minutes` per store, an instance restarted midway, lost/duplicated counted.
    #[arg(long)]
    soak: bool,
    /// Soak length per store, minutes (fractions allowed).
    #[arg(long, default_value_t = 10.0, requires = "soak")]
    minutes: f64,
    /// Soak stores, comma-separated: `sqlite` (one instance), `postgres` (two instances on
    /// one schema; needs CIE_TEST_POSTGRES_URL).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sqlite,postgres",
        requires = "soak"
    )]
    stores: Vec<String>,
    /// The companion-server binary (default: beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Concurrent virtual users.
    #[arg(long, default_value_t = SectionOptions::default().users)]
    users: usize,
    /// Measured seconds of the main run.
    #[arg(long, default_value_t = SectionOptions::default().duration.as_secs())]
    seconds: u64,
    /// Warm-up seconds.
    #[arg(long, default_value_t = SectionOptions::default().warmup.as_secs())]
    warmup: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.quick {
        return match quick(args.server) {
            Ok(summary) => {
                print!("{summary}");
                println!("companion-load --quick: PASS");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("companion-load --quick: FAIL\n{e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.soak {
        return run_soak(&args);
    }
    let opts = SectionOptions {
        server: args.server,
        users: args.users,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.seconds),
        ..SectionOptions::default()
    };
    let mut md = String::new();
    match section(&mut md, &opts) {
        Ok(ok) => {
            print!("{md}");
            if ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("companion-load: a login failed or the lost/duplicated check failed");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("companion-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_soak(args: &Args) -> ExitCode {
    if !(args.minutes.is_finite() && args.minutes > 0.0) {
        eprintln!("companion-load: --minutes must be positive");
        return ExitCode::FAILURE;
    }
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let mut runs = Vec::new();
    for store in &args.stores {
        let (db, instances) = match store.as_str() {
            "sqlite" => (Db::Sqlite, 1),
            "postgres" => match std::env::var("CIE_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => (Db::Postgres(url), 2),
                _ => {
                    eprintln!(
                        "companion-load: --stores postgres needs CIE_TEST_POSTGRES_URL \
                         (eval \"$(bash scripts/postgres.sh)\")"
                    );
                    return ExitCode::FAILURE;
                }
            },
            other => {
                eprintln!("companion-load: unknown store {other:?} (sqlite, postgres)");
                return ExitCode::FAILURE;
            }
        };
        let opts = SoakOptions {
            server: args.server.clone(),
            db,
            instances,
            users: args.users,
            duration,
            devices: 8,
        };
        eprintln!("companion-load: soak on {store}, {} min", args.minutes);
        match soak(&opts) {
            Ok(r) => {
                eprintln!(
                    "companion-load: {}: {:.0} logins/s, p99 {:.1} ms, completed {}, lost {}, duplicated {}",
                    r.label(),
                    r.rate(),
                    r.p(0.99),
                    r.check.completed,
                    r.check.lost,
                    r.check.duplicated
                );
                runs.push(r);
            }
            Err(e) => {
                eprintln!("companion-load: soak on {store}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut md = String::new();
    report(&mut md, &runs);
    print!("{md}");
    if runs
        .iter()
        .all(|r| r.check.soak_passed() && r.check.completed > 0)
    {
        ExitCode::SUCCESS
    } else {
        eprintln!("companion-load: soak FAILED: a login was lost or duplicated, or none completed");
        ExitCode::FAILURE
    }
}
