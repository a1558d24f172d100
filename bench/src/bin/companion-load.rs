//! `companion-load`: the load benchmark of desktop QR logins alone (section 4 of
//! `cie-bench`), or `--quick` for CI: a few seconds, no timing assertion, exit 1 on any
//! failed, lost, duplicated or stuck login.
//!
//!   cargo build --release -p companion-server -p cie-bench
//!   target/release/companion-load            # the section, Markdown on stdout
//!   target/release/companion-load --quick    # CI

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cie_bench::load::{SectionOptions, quick, section};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Desktop QR logins under load against a companion-server process")]
struct Args {
    /// CI mode: a few seconds on SQLite, checks only (no timing assertion).
    #[arg(long)]
    quick: bool,
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
