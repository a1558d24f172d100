//! Running the benchmarks: cargo, the bench binaries and the repository's scripts, from the
//! workspace root, with the caller's environment (CARGO_TARGET_DIR, CIE_TEST_POSTGRES_URL).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// What every section needs to know.
pub struct Ctx {
    pub root: PathBuf,
    /// Short settings (a check of the report, not figures).
    pub quick: bool,
    /// Debug builds (a check of the report's plumbing, not figures).
    pub debug: bool,
    /// PostgreSQL for the load peer and the soak (`CIE_TEST_POSTGRES_URL`).
    pub postgres: Option<String>,
}

impl Ctx {
    /// `cargo` (the one running us) in the workspace root.
    pub fn cargo(&self) -> Command {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.current_dir(&self.root);
        c
    }

    /// `cargo run -q [--release] -p PACKAGE --bin BIN --`, arguments to follow.
    pub fn cargo_run(&self, package: &str, bin: &str) -> Command {
        let mut c = self.cargo();
        c.args(["run", "-q"]);
        if !self.debug {
            c.arg("--release");
        }
        c.args(["-p", package, "--bin", bin, "--"]);
        self.with_postgres(&mut c);
        c
    }

    fn with_postgres(&self, c: &mut Command) {
        if let Some(url) = &self.postgres {
            c.env("CIE_TEST_POSTGRES_URL", url);
        }
    }

    /// `bash scripts/NAME`, from the root.
    pub fn script(&self, name: &str) -> Command {
        let mut c = Command::new("bash");
        c.current_dir(&self.root)
            .arg(Path::new("scripts").join(name));
        self.with_postgres(&mut c);
        c
    }

    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|p| {
                if p.is_absolute() {
                    p
                } else {
                    self.root.join(p)
                }
            })
            .unwrap_or_else(|| self.root.join("target"))
    }
}

/// A command's stdout (stderr passes through: build progress, warnings); the stdout and
/// whether it succeeded. A benchmark that misses a target exits non-zero after printing
/// its figures: those are still reported.
pub fn output(cmd: &mut Command) -> Res<(String, bool)> {
    eprintln!("xtask: {}", describe(cmd));
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    ))
}

/// Stdout of a command that must succeed.
pub fn capture(cmd: &mut Command) -> Res<String> {
    let (out, ok) = output(cmd)?;
    if ok {
        Ok(out)
    } else {
        Err(format!("{} failed", describe(cmd)).into())
    }
}

/// Run a command that must succeed, its output passing through to stderr.
pub fn run_ok(cmd: &mut Command) -> Res<()> {
    eprintln!("xtask: {}", describe(cmd));
    let status = cmd
        .stdin(Stdio::null())
        // Never on our stdout: that is the report.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(cmd)).into())
    }
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
