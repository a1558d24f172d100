//! Where log lines go and in which format (`--log-format`, `--log-file`), for the server
//! and the `cie-companion` CLI alike. `RUST_LOG` chooses what is logged (default: the
//! caller's); `log` records of rustls and reqwest come through as well.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

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

/// Install the global subscriber: `format` lines to `file` (appended, created) when given,
/// else to `stream`; `default_filter` (an `EnvFilter` directive) when `RUST_LOG` is unset
/// or invalid. An error when the file cannot be opened; a subscriber already installed
/// (tests) is kept.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    file: Option<&Path>,
    stream: Stream,
) -> std::io::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (writer, ansi) = match (file, stream) {
        (Some(path), _) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            (BoxMakeWriter::new(std::sync::Arc::new(f)), false)
        }
        (None, Stream::Stdout) => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
        (None, Stream::Stderr) => (
            BoxMakeWriter::new(std::io::stderr),
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
    Ok(())
}
