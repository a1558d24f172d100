//! The Prometheus metrics of one server (docs/operations.md "Metrics"): one registry per
//! [`crate::RunningServer`], so servers sharing a process (tests, `cie-companion demo`)
//! count apart. Label values come from fixed sets (flows, error codes, route templates,
//! table names), never from what a request carries.

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::encode`]: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds, in seconds, of the approval latency buckets: a person reads the phone and
/// decides within the 90–120 s windows (docs/protocol.md §4).
pub const APPROVAL_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
];

/// How a login was made (label `flow` of `companion_logins_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// The phone-tap CIE login (`POST /api/v1/card/login`).
    Card,
    /// The desktop QR, completed by the code typed on the desktop.
    DesktopQr,
    /// The push approval on an enrolled phone (also the second step of PIN + app).
    AppApproval,
    /// A one-time code from the enrolled TOTP token.
    Otp,
    /// Residents abroad: codice fiscale + PIN.
    AbroadPin,
    /// Residents abroad: codice fiscale + PIN + OTP.
    AbroadPinOtp,
    /// The OpenID Provider issuing an authorization code.
    OidcAuthorization,
    /// The mutual-TLS card login (app or browser).
    Mtls,
}

impl Flow {
    /// Every flow.
    pub const ALL: [Flow; 8] = [
        Self::Card,
        Self::DesktopQr,
        Self::AppApproval,
        Self::Otp,
        Self::AbroadPin,
        Self::AbroadPinOtp,
        Self::OidcAuthorization,
        Self::Mtls,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::DesktopQr => "desktop_qr",
            Self::AppApproval => "app_approval",
            Self::Otp => "otp",
            Self::AbroadPin => "abroad_pin",
            Self::AbroadPinOtp => "abroad_pin_otp",
            Self::OidcAuthorization => "oidc_authorization",
            Self::Mtls => "mtls",
        }
    }
}

/// Which approval a latency is of (label `kind` of `companion_approval_latency_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Approval {
    /// Desktop QR: the rendezvous created (the QR shown) to the phone's approve or deny.
    DesktopQr,
    /// Push approval: the request created to the phone's decision.
    Push,
}

impl Approval {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DesktopQr => "desktop_qr",
            Self::Push => "push",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    flow: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimiterLabels {
    limiter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

type HistogramFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

/// The counters and histograms, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    logins: Family<LoginLabels, Counter>,
    approval_latency: HistogramFamily,
    rate_limited: Family<LimiterLabels, Counter>,
    store_errors: Family<OperationLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn approval_histogram() -> Histogram {
    Histogram::new(APPROVAL_BUCKETS)
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("companion");
        let logins = Family::default();
        registry.register(
            "logins",
            "Login attempts that ended, by flow and outcome (ok, or the refusal's error code)",
            logins.clone(),
        );
        let approval_latency: HistogramFamily = Family::new_with_constructor(approval_histogram);
        registry.register(
            "approval_latency_seconds",
            "Seconds from a login request shown (desktop QR created, push approval created) to the phone's decision",
            approval_latency.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limiter or attempt counter, by limiter",
            rate_limited.clone(),
        );
        let store_errors = Family::default();
        registry.register(
            "store_errors",
            "Failed database statements, by operation (statement verb and table)",
            store_errors.clone(),
        );
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        // The successes and both latencies exist from the start at zero: a scrape shows the
        // families and `rate()` has a first sample (failures appear as they happen).
        for flow in Flow::ALL {
            logins.get_or_create_owned(&LoginLabels {
                flow: flow.as_str(),
                outcome: "ok".into(),
            });
        }
        for kind in [Approval::DesktopQr, Approval::Push] {
            approval_latency.get_or_create_owned(&KindLabels {
                kind: kind.as_str(),
            });
        }
        Self {
            registry,
            logins,
            approval_latency,
            rate_limited,
            store_errors,
            requests,
        }
    }

    /// A login ended with `outcome` (`ok` or an error code).
    pub fn login(&self, flow: Flow, outcome: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                flow: flow.as_str(),
                outcome: label(outcome),
            })
            .inc();
    }

    /// An approval was decided `secs` after the request was shown.
    pub fn approval_decided(&self, kind: Approval, secs: u64) {
        #[allow(clippy::cast_precision_loss)] // seconds within a day: exact in an f64
        self.approval_latency
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .observe(secs as f64);
    }

    /// A limiter refused a request.
    pub fn rate_limited(&self, limiter: &str) {
        self.rate_limited
            .get_or_create(&LimiterLabels {
                limiter: label(limiter),
            })
            .inc();
    }

    /// A database statement failed.
    pub fn store_error(&self, operation: &str) {
        self.store_errors
            .get_or_create(&OperationLabels {
                operation: label(operation),
            })
            .inc();
    }

    /// A request was answered (`route`: the template, never the path).
    pub fn request(&self, method: &str, route: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: label(method),
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// The Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// A label value from a fixed vocabulary, bounded and plain whatever a caller passes.
fn label(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The operation label of a failed SQL statement: its verb and first table, e.g.
/// `insert_rendezvous`, `select_sessions` (the statement texts are the server's own,
/// so the set is fixed and holds no values).
pub fn sql_operation(sql: &str) -> String {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .filter(|w| !w.is_empty())
        .take(64)
        .map(str::to_ascii_lowercase)
        .collect();
    let verb = words.first().map_or("sql", String::as_str);
    let table = words
        .windows(2)
        .find(|w| matches!(w[0].as_str(), "into" | "from" | "update"))
        .map(|w| w[1].as_str());
    match table {
        Some(t) => format!("{}_{}", label(verb), label(t)),
        None => label(verb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names() {
        assert_eq!(
            sql_operation("INSERT INTO rendezvous (rid, secret) VALUES ($1, $2)"),
            "insert_rendezvous"
        );
        assert_eq!(
            sql_operation("SELECT a, b FROM sessions WHERE token_hash = $1"),
            "select_sessions"
        );
        assert_eq!(
            sql_operation("UPDATE approvals SET state = $1"),
            "update_approvals"
        );
        assert_eq!(
            sql_operation("DELETE FROM nonces WHERE x < $1"),
            "delete_nonces"
        );
        assert_eq!(sql_operation("PRAGMA wal_checkpoint"), "pragma");
        assert_eq!(sql_operation(""), "sql");
    }

    #[test]
    fn exposition_counts() {
        let m = Metrics::new();
        m.login(Flow::Card, "ok");
        m.login(Flow::Card, "ok");
        m.login(Flow::AbroadPin, "invalid credentials\n");
        m.approval_decided(Approval::Push, 7);
        m.rate_limited("rendezvous");
        m.store_error("insert_rendezvous");
        let text = m.encode();
        for line in [
            "companion_logins_total{flow=\"card\",outcome=\"ok\"} 2",
            "companion_logins_total{flow=\"abroad_pin\",outcome=\"invalid_credentials_\"} 1",
            "companion_approval_latency_seconds_bucket{kind=\"push\",le=\"5\"} 0",
            "companion_approval_latency_seconds_bucket{kind=\"push\",le=\"10\"} 1",
            "companion_approval_latency_seconds_sum{kind=\"push\"} 7.0",
            "companion_approval_latency_seconds_count{kind=\"push\"} 1",
            "companion_rate_limited_total{limiter=\"rendezvous\"} 1",
            "companion_store_errors_total{operation=\"insert_rendezvous\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
