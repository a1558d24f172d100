//! Where log lines go and in which format (`--log-format`, `--log-file`), for the server
//! and the `cie-companion` CLI alike. `RUST_LOG` chooses what is logged (default: the
//! caller's); `log` records of rustls and reqwest come through as well.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// The line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, spans as `request{id=… method=… route=…}:` prefixes.
    #[default]
    Text,
    /// One JSON object a line (`timestamp`, `level`, `fields`, `target`, `span`, `spans`),
    /// for log collectors.
    Json,
}

/// Where lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (the server: its other output is a few start-up lines).
    Stdout,
    /// Standard error (commands whose standard output is data or screen text).
    Stderr,
}

/// Keep it alive until the program ends: dropping it writes the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Install the global subscriber: `format` lines to `file` (appended, created) when given,
/// else to `stream`; `default_filter` (an `EnvFilter` directive) when `RUST_LOG` is unset
/// or invalid. Lines are written by a background thread (`tracing-appender`): a request
/// never waits on the terminal, pipe or disk; should the queue (128 000 lines) fill, lines
/// are dropped rather than requests slowed. An error when the file cannot be opened; a
/// subscriber already installed (tests) is kept.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    file: Option<&Path>,
    stream: Stream,
) -> std::io::Result<LogGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ((writer, guard), ansi): ((NonBlocking, WorkerGuard), bool) = match (file, stream) {
        (Some(path), _) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            (tracing_appender::non_blocking(f), false)
        }
        (None, Stream::Stdout) => (
            tracing_appender::non_blocking(std::io::stdout()),
            std::io::stdout().is_terminal(),
        ),
        (None, Stream::Stderr) => (
            tracing_appender::non_blocking(std::io::stderr()),
            std::io::stderr().is_terminal(),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    Ok(LogGuard(guard))
}
