//! `cargo xtask report`: every benchmark of the project in one report, the table
//! BENCHMARKS.md keeps (`--write` rewrites it), with the machine and the date, and a summary
//! of the headline figures on top. Each section comes from the benchmark that owns it:
//!
//! | Section | Name | Source |
//! |---|---|---|
//! | 1–3 | `cards` | `cie-bench --no-load`: login tap, file reads, eMRTD read (link model) |
//! | 4 | `load` | `companion-load`: desktop QR logins/s and p99 |
//! | 5 | `qr` | `scripts/qr-bench.sh`: QR decoding beside zxing-cpp |
//! | 6 | `pkcs11` | `cie-bench --no-load`: PKCS#11 APDUs per signature |
//! | 7 | `size` | `cargo rustc --profile dist --crate-type cdylib`: core size per ABI |
//! | 8 | `fuzz` | `scripts/fuzz.sh --markdown`, when that script exists |
//! | 9 | `soak` | `scripts/soak.sh`: 10 minutes per store, an instance restarted |

mod md;
mod run;
mod size;
mod summary;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use md::Section;
use run::{Ctx, Res, capture, output};

#[derive(Debug, Parser)]
#[command(about = "Project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the benchmarks and print the report (BENCHMARKS.md's content) on stdout.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Rewrite BENCHMARKS.md: the sections run are replaced, the others kept as they are.
    #[arg(long)]
    write: bool,
    /// Sections to run (default: all). The soak takes 2 × 10 minutes; the fuzz section
    /// runs whatever `scripts/fuzz.sh --markdown` runs.
    #[arg(long, value_delimiter = ',', value_enum)]
    sections: Vec<Name>,
    /// The shortest settings each benchmark has (load seconds, one QR timing run, a
    /// 15-second soak, `fuzz.sh --quick`, no RELR size row): a check of the report, not
    /// figures; refused with --write.
    #[arg(long)]
    quick: bool,
    /// Debug builds of the bench binaries: a check of the plumbing only; refused with --write.
    #[arg(long)]
    debug: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Name {
    Cards,
    Load,
    Qr,
    Pkcs11,
    Size,
    Fuzz,
    Soak,
}

impl Name {
    const ALL: [Self; 7] = [
        Self::Cards,
        Self::Load,
        Self::Qr,
        Self::Pkcs11,
        Self::Size,
        Self::Fuzz,
        Self::Soak,
    ];

    fn numbers(self) -> &'static [u32] {
        match self {
            Self::Cards => &[1, 2, 3],
            Self::Load => &[4],
            Self::Qr => &[5],
            Self::Pkcs11 => &[6],
            Self::Size => &[7],
            Self::Fuzz => &[8],
            Self::Soak => &[9],
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Self::Cards => "cards",
            Self::Load => "load",
            Self::Qr => "qr",
            Self::Pkcs11 => "pkcs11",
            Self::Size => "size",
            Self::Fuzz => "fuzz",
            Self::Soak => "soak",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Cards => "Card flows over the link model",
            Self::Load => "Desktop QR logins under load",
            Self::Qr => "QR decoding: the core's scanner beside zxing-cpp",
            Self::Pkcs11 => "Desktop PKCS#11: C_Login + C_Sign over the link model",
            Self::Size => "Mobile core size per ABI",
            Self::Fuzz => "Fuzzing: executions, coverage and crashes per target",
            Self::Soak => "Soak: desktop QR logins with an instance restarted",
        }
    }
}

fn main() -> ExitCode {
    let Task::Report(args) = Cli::parse().task;
    match report(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "xtask report: a benchmark failed or missed a target it enforces (see above)"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// Run, print, maybe write; `Ok(false)` when a benchmark failed (its figures still shown).
fn report(args: &ReportArgs) -> Res<bool> {
    if args.write && (args.quick || args.debug) {
        return Err("--write keeps real figures only: run without --quick and --debug".into());
    }
    let names: Vec<Name> = if args.sections.is_empty() {
        Name::ALL.to_vec()
    } else {
        Name::ALL
            .into_iter()
            .filter(|n| args.sections.contains(n))
            .collect()
    };
    let ctx = Ctx {
        root: root(),
        quick: args.quick,
        debug: args.debug,
        postgres: postgres(&names),
    };
    let stamp = Stamp::now(&ctx.root)?;
    let mut fresh: Vec<Section> = Vec::new();
    let mut all_ok = true;
    let mut bench_out: Option<(String, bool)> = None;
    for name in &names {
        let run_line = stamp.run_line(*name, &ctx);
        let produced = match name {
            Name::Cards | Name::Pkcs11 => {
                if bench_out.is_none() {
                    // One run gives sections 1-3 and 6 (deterministic counts).
                    bench_out = Some(output(
                        ctx.cargo_run("cie-bench", "cie-bench").arg("--no-load"),
                    )?);
                }
                bench_out.clone().ok_or_else(|| "no output".into())
            }
            Name::Load => load(&ctx),
            Name::Qr => {
                let mut cmd = ctx.script("qr-bench.sh");
                if ctx.quick {
                    cmd.args(["--runs", "1"]);
                }
                output(&mut cmd)
            }
            Name::Size => size::section(&ctx).map(|md| (md, true)),
            Name::Fuzz => fuzz(&ctx),
            Name::Soak => {
                let mut cmd = ctx.script("soak.sh");
                if ctx.quick {
                    cmd.args(["--minutes", "0.25", "--users", "8"]);
                }
                if ctx.debug {
                    cmd.arg("--debug");
                }
                output(&mut cmd)
            }
        };
        let (md, ok) = match produced {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask report: {}: {e}", name.arg());
                (
                    format!(
                        "## {}. {}\n\nNot measured in this run: {e}\n",
                        name.numbers()[0],
                        name.title()
                    ),
                    false,
                )
            }
        };
        all_ok &= ok;
        let mut got: Vec<Section> = md::sections(&md)
            .into_iter()
            .filter(|s| name.numbers().contains(&s.number))
            .collect();
        if got.is_empty() {
            got.push(Section {
                number: name.numbers()[0],
                text: format!(
                    "## {}. {}\n\nNo section in the output of this run (it printed {} bytes).\n",
                    name.numbers()[0],
                    name.title(),
                    md.len()
                ),
            });
            all_ok = false;
        }
        for s in &mut got {
            s.text = with_run_line(&s.text, &run_line);
        }
        fresh.extend(got);
    }

    let path = ctx.root.join("BENCHMARKS.md");
    let old = if args.write {
        std::fs::read_to_string(&path).unwrap_or_default()
    } else {
        String::new()
    };
    let merged = merge(fresh, &old);
    let doc = document(&stamp, &names, &ctx, &merged);
    print!("{doc}");
    if args.write {
        std::fs::write(&path, &doc).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("xtask report: wrote {}", path.display());
    }
    Ok(all_ok)
}

/// The sections just run, and those of `old` (the file being rewritten) that were not.
fn merge(fresh: Vec<Section>, old: &str) -> Vec<Section> {
    let mut merged = fresh;
    for s in md::sections(old) {
        if !merged.iter().any(|f| f.number == s.number) {
            merged.push(s);
        }
    }
    merged.sort_by_key(|s| s.number);
    merged
}

/// Section 4 through `companion-load` (its PostgreSQL peer when a URL is known).
fn load(ctx: &Ctx) -> Res<(String, bool)> {
    let mut cmd = ctx.cargo_run("cie-bench", "companion-load");
    if ctx.quick {
        cmd.args(["--seconds", "2", "--warmup", "1", "--users", "8"]);
    }
    output(&mut cmd)
}

/// Section 8 from the fuzz script, or a note where the script is not (yet) in the tree.
fn fuzz(ctx: &Ctx) -> Res<(String, bool)> {
    let title = Name::Fuzz.title();
    if !ctx.root.join("scripts/fuzz.sh").exists() {
        return Ok((
            format!(
                "## 8. {title}\n\nSkipped: `scripts/fuzz.sh` is not in this checkout; the report \
                 reads its `--markdown` output here once it is.\n"
            ),
            true,
        ));
    }
    let mut cmd = ctx.script("fuzz.sh");
    cmd.arg("--markdown");
    if ctx.quick {
        cmd.arg("--quick");
    }
    let (md, ok) = output(&mut cmd)?;
    // The script prints its table; the report gives it its number if it has none.
    if md::sections(&md).iter().any(|s| s.number == 8) {
        Ok((md, ok))
    } else {
        Ok((format!("## 8. {title}\n\n{}", md.trim_start()), ok))
    }
}

/// A PostgreSQL URL for the load peer and the soak: the caller's, else a local one from
/// scripts/postgres.sh when this user may install and start it.
fn postgres(names: &[Name]) -> Option<String> {
    if let Ok(url) = std::env::var("CIE_TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    if !names.iter().any(|n| matches!(n, Name::Load | Name::Soak)) {
        return None;
    }
    let root_or_sudo = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
        || Command::new("sudo")
            .args(["-n", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !root_or_sudo {
        eprintln!("xtask report: no PostgreSQL (not root, no sudo): its load peer is skipped");
        return None;
    }
    let mut cmd = Command::new("bash");
    cmd.current_dir(root()).arg("scripts/postgres.sh");
    match capture(&mut cmd) {
        Ok(out) => out
            .lines()
            .find_map(|l| l.strip_prefix("export CIE_TEST_POSTGRES_URL="))
            .map(str::to_owned),
        Err(e) => {
            eprintln!("xtask report: no PostgreSQL ({e}): its load peer is skipped");
            None
        }
    }
}

/// When and where the report was made.
struct Stamp {
    date: String,
    commit: String,
    machine: String,
    /// The processor alone, for each section's run line: wall-clock sections kept from an
    /// earlier run may come from another machine.
    cpu: String,
    size: String,
    rustc: String,
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Stamp {
    fn now(root: &Path) -> Res<Self> {
        let git = |args: &[&str]| {
            Command::new("git")
                .current_dir(root)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| s.lines().any(|l| !l.ends_with("BENCHMARKS.md")));
        let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let cpu = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1");
        Ok(Self {
            date: sh("date -u +%Y-%m-%dT%H:%MZ"),
            commit: format!(
                "{commit}{}",
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
            machine: format!(
                "{}{}",
                sh("uname -srm"),
                if cpu.is_empty() {
                    String::new()
                } else {
                    format!(", {cpu}")
                }
            ),
            size: format!(
                "{} cores, {}",
                std::thread::available_parallelism().map_or(0, |n| n.get()),
                sh("awk '/MemTotal/ {printf \"%.0f GiB\", $2 / 1048576}' /proc/meminfo")
            ),
            rustc: sh("rustc -V"),
            cpu: if cpu.is_empty() {
                "an unknown CPU".into()
            } else {
                cpu
            },
        })
    }

    /// The line under each section's heading: when, at which commit, by which command.
    fn run_line(&self, name: Name, ctx: &Ctx) -> String {
        let mut flags = String::new();
        if ctx.quick {
            flags.push_str(" --quick");
        }
        if ctx.debug {
            flags.push_str(" --debug");
        }
        let caveat = if ctx.quick || ctx.debug {
            " **Short or debug settings: a check of the report, not figures.**"
        } else {
            ""
        };
        format!(
            "_Run {} on {}, commit {}, load average {}: `cargo xtask report --sections {}{flags}`._{caveat}",
            self.date,
            self.cpu,
            self.commit,
            sh("cut -d' ' -f1-3 /proc/loadavg"),
            name.arg()
        )
    }
}

/// Put the run line under the heading (replacing one a kept section already had).
fn with_run_line(text: &str, line: &str) -> String {
    let mut lines = text.lines();
    let heading = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    let mut rest = rest.as_slice();
    while rest
        .first()
        .is_some_and(|l| l.trim().is_empty() || l.starts_with("_Run "))
    {
        rest = &rest[1..];
    }
    format!("{heading}\n\n{line}\n\n{}\n", rest.join("\n"))
}

fn document(stamp: &Stamp, names: &[Name], ctx: &Ctx, sections: &[Section]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Every figure of the project in one report. Do not edit by hand: `cargo xtask report \
         --write` reruns every benchmark and rewrites this file; `--sections \
         cards,load,qr,pkcs11,size,fuzz,soak` reruns some and keeps the others (each section \
         says when and how it was last run). Without `--write` the report goes to stdout only.\n"
    );
    let run: Vec<&str> = names.iter().map(|n| n.arg()).collect();
    let _ = writeln!(
        md,
        "- Command: `cargo xtask report{}{}` (sections run: {})",
        if ctx.quick { " --quick" } else { "" },
        if ctx.debug { " --debug" } else { "" },
        run.join(", ")
    );
    let _ = writeln!(md, "- Date: {}", stamp.date);
    let _ = writeln!(md, "- Commit: {}", stamp.commit);
    let _ = writeln!(md, "- Machine: {}; {}", stamp.machine, stamp.rustc);
    let _ = writeln!(
        md,
        "- Machine size: {} (load average at the end: {})",
        stamp.size,
        sh("cut -d' ' -f1-3 /proc/loadavg")
    );
    let _ = writeln!(
        md,
        "- Note: sections 1-3 and 6 are counts and modelled link time (`card_sim::LinkModel`), \
         not wall clock: they do not depend on the machine. Sections 4, 5 and 9 are wall clock \
         on the processor their run line names (client and server sharing its cores; a \
         section kept from an earlier run may come from another machine than the one above); \
         section 7 is bytes; section 8 executions. Every ratio is against a peer measured in \
         the same run.\n"
    );
    md.push_str(&summary::render(sections));
    for s in sections {
        md.push_str(&s.text);
        md.push('\n');
    }
    let trimmed = md.trim_end().len();
    md.truncate(trimmed);
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::{md, merge, with_run_line};

    #[test]
    fn a_partial_run_replaces_its_sections_and_keeps_the_others() {
        let old = "# Benchmarks\n\nheader\n\n## Summary\n\nold\n\n## 1. A\n\nold a\n\n## 5. QR\n\nold qr\n\n## 7. Size\n\nold size\n";
        let fresh = md::sections("## 5. QR\n\nnew qr\n## 9. Soak\n\nnew soak\n");
        let merged = merge(fresh, old);
        let numbers: Vec<u32> = merged.iter().map(|s| s.number).collect();
        assert_eq!(numbers, [1, 5, 7, 9]);
        assert!(merged[0].text.contains("old a"));
        assert!(merged[1].text.contains("new qr") && !merged[1].text.contains("old qr"));
        assert!(merged[2].text.contains("old size"));
    }

    #[test]
    fn run_line_goes_under_the_heading_once() {
        let once = with_run_line("## 5. QR\n\nbody\n", "_Run A._");
        assert_eq!(once, "## 5. QR\n\n_Run A._\n\nbody\n");
        let again = with_run_line(&once, "_Run B._");
        assert_eq!(again, "## 5. QR\n\n_Run B._\n\nbody\n");
    }
}
