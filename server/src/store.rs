//! Everything the server remembers, in SQLite or PostgreSQL through one SQL text (`db`:
//! rusqlite in the calling task for SQLite, sqlx for PostgreSQL; `$1` placeholders work on
//! both). Each state change is one transaction and
//! each state transition a compare-and-set (`UPDATE … WHERE state = <from>`, rows counted),
//! so two instances on one PostgreSQL never both win and a restart loses nothing: no state
//! lives in memory. The audit row of a change or a refusal is written in the same
//! transaction.

use async_trait::async_trait;
use cie_core::flows::wire::{ChallengePurpose, Identity, RendezvousState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::card::VerifiedCard;

mod db;
use db::{Db, Row, Tx, query};

mod abroad;
pub use abroad::{
    AbroadAccount, AbroadIssue, AbroadStore, Attempt, Channel, Enrolment, IssueOutcome, METHOD_PIN,
    METHOD_PIN_APP, METHOD_PIN_OTP, OutboxItem, PinOtpAttempt, PinTicket, SealedOtpCheck,
};
mod approvals;
pub use approvals::{
    ApprovalRecord, ApprovalState, ApprovalStore, CONSUME_SECS, DecisionOutcome, NewApproval,
    NewDecision,
};
mod cfkey;
pub use cfkey::{CF_LOOKUP_INFO, CfKey, KeyChange, KeySource, legacy_key};
mod erasure;
pub use erasure::Erased;
mod mtls;
mod oidc;
pub use oidc::{PendingRequest, Redeemed};
mod otp;
mod registrations;
pub mod retention;
pub use otp::{NewOtpToken, OtpAttempt, OtpCheck, OtpStore, OtpSubject, otp_audit_subject};
pub use registrations::{NewRegistration, RegistrationOutcome, RegistrationStore};
pub use retention::{Pruned, Retention};

/// A storage failure (the client gets `internal`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// SQLite refused.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row the server wrote no longer parses.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database URL is not one we serve.
    #[error("unsupported database URL (use sqlite:PATH or postgres://…)")]
    UnsupportedUrl,
    /// An operator's command was given another codice fiscale lookup key than the one the
    /// database's rows were written with.
    #[error(
        "questo database usa un'altra chiave per i codici fiscali: passa lo stesso \
         --otp-key-file del server (o nessuno, se il server non ne usa) / this database's \
         codice fiscale lookups were written with another key: pass the server's \
         --otp-key-file (or none, if the server runs without one)"
    )]
    CfKeyMismatch,
}

type Result<T> = std::result::Result<T, StoreError>;

/// One line of the audit trail: never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// What happened (`card_login`, `rendezvous_claim`…).
    pub kind: &'static str,
    /// Which object (challenge id, rendezvous id, identity id).
    pub subject: String,
    /// `ok` or the refusal's error code.
    pub outcome: String,
    /// Client address.
    pub client: String,
}

impl AuditEntry {
    /// The same entry with another outcome (a refusal, or what a transition found).
    pub fn with_outcome(&self, outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            ..self.clone()
        }
    }

    /// The same entry naming the identity it ended at (`<subject> <identity id>`).
    pub fn for_identity(&self, identity_id: &str) -> Self {
        Self {
            subject: format!("{} {identity_id}", self.subject),
            ..self.clone()
        }
    }

    /// An entry.
    pub fn new(kind: &'static str, subject: &str, outcome: &str, client: &str) -> Self {
        Self {
            kind,
            subject: subject.into(),
            outcome: outcome.into(),
            client: client.into(),
        }
    }
}

/// A card challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// Id (base64url).
    pub id: String,
    /// What it may be used for.
    pub purpose: ChallengePurpose,
    /// The challenge text signed by the card (base64url of 32 random bytes; not secret).
    pub challenge: String,
    /// The rendezvous it belongs to (desktop approval).
    pub rid: Option<String>,
    /// Unix seconds.
    pub expires: u64,
    /// Already consumed.
    pub used: bool,
}

/// A rendezvous as created by the desktop page.
#[derive(Clone)]
pub struct NewRendezvous {
    /// Id (base64url).
    pub rid: String,
    /// Claim secret `k` (only its HMAC ever travels back).
    pub secret: [u8; 16],
    /// SHA-256 of the `cc_bind` cookie.
    pub bind_hash: [u8; 32],
    /// The context JSON shown on the phone.
    pub context_json: String,
    /// Its hash (`LoginContext::hash`).
    pub context_hash: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub expires: u64,
    /// Desktop address.
    pub client: String,
}

/// A stored rendezvous.
#[derive(Clone)]
pub struct RendezvousRecord {
    /// Id.
    pub rid: String,
    /// Claim secret.
    pub secret: Vec<u8>,
    /// SHA-256 of the binding cookie.
    pub bind_hash: Vec<u8>,
    /// State.
    pub state: RendezvousState,
    /// Why it was aborted (`second_claim`, `replaced`, `too_many_codes`).
    pub abort_reason: Option<String>,
    /// Context JSON.
    pub context_json: String,
    /// Context hash.
    pub context_hash: String,
    /// Unix seconds.
    pub created: u64,
    /// Hard end of life.
    pub expires: u64,
    /// SHA-256 of the claim token.
    pub claim_token_hash: Option<Vec<u8>>,
    /// The claiming phone.
    pub device_name: Option<String>,
    /// Approve before this.
    pub claim_expires: Option<u64>,
    /// Who approved.
    pub identity_id: Option<String>,
    /// Level of the approval.
    pub level: Option<u8>,
    /// SHA-256(rid ‖ code).
    pub code_hash: Option<Vec<u8>>,
    /// Code valid until.
    pub code_expires: Option<u64>,
    /// Code guesses left.
    pub code_tries: u8,
}

impl std::fmt::Debug for RendezvousRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RendezvousRecord")
            .field("rid", &self.rid)
            .field("state", &self.state)
            .field("abort_reason", &self.abort_reason)
            .field("expires", &self.expires)
            .field("code_tries", &self.code_tries)
            .finish_non_exhaustive()
    }
}

/// A session to open (the token itself is never stored).
#[derive(Clone)]
pub struct NewSession {
    /// SHA-256 of the bearer token or cookie.
    pub token_hash: [u8; 32],
    /// Level reached.
    pub level: u8,
    /// `app` (bearer) or `desktop` (cookie).
    pub kind: &'static str,
    /// Unix seconds.
    pub expires: u64,
}

/// What a claim changes.
#[derive(Clone)]
pub struct Claim {
    /// SHA-256 of the claim token.
    pub claim_token_hash: [u8; 32],
    /// Phone name.
    pub device_name: String,
    /// Enrolled device id.
    pub device_id: Option<String>,
    /// Approve before this.
    pub claim_expires: u64,
}

/// The code handed out on approval.
#[derive(Clone)]
pub struct IssuedCode {
    /// SHA-256(rid ‖ code).
    pub code_hash: [u8; 32],
    /// Unix seconds.
    pub expires: u64,
    /// Guesses allowed.
    pub tries: u8,
}

/// Result of a rate-limited insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Done.
    Done,
    /// Refused; retry after this many seconds.
    RetryAfter(u64),
}

/// The server's memory (app approvals: [`ApprovalStore`]).
#[async_trait]
pub trait Store:
    ApprovalStore + OtpStore + RegistrationStore + AbroadStore + Send + Sync + 'static
{
    /// Record a refusal that changes nothing else.
    async fn audit(&self, entry: &AuditEntry, now: u64) -> Result<()>;
    /// Store a new challenge.
    async fn insert_challenge(
        &self,
        c: &ChallengeRecord,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()>;
    /// A challenge by id.
    async fn challenge(&self, id: &str) -> Result<Option<ChallengeRecord>>;
    /// Phone-tap login, one transaction: consume the challenge (unused, unexpired, for
    /// `login`), map the card to its identity (created on first login), open the session.
    /// `None` when the challenge was consumed or expired meanwhile.
    async fn card_login(
        &self,
        challenge_id: &str,
        card: &VerifiedCard,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
    /// Insert a rendezvous, first aborting the unclaimed ones of the same browser, within
    /// `per_minute` creations per `client` address.
    async fn create_rendezvous(
        &self,
        r: &NewRendezvous,
        per_minute: u32,
        audit: &AuditEntry,
    ) -> Result<Limited>;
    /// A rendezvous by id (after marking it expired if its time ran out).
    async fn rendezvous(&self, rid: &str, now: u64) -> Result<Option<RendezvousRecord>>;
    /// `created → claimed`.
    async fn claim(&self, rid: &str, claim: &Claim, audit: &AuditEntry, now: u64) -> Result<bool>;
    /// `from → aborted` (second claim, replaced) or `claimed → denied`; any CAS without
    /// extra fields.
    async fn transition(
        &self,
        rid: &str,
        from: RendezvousState,
        to: RendezvousState,
        reason: Option<&str>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool>;
    /// `claimed → approved` by a card, one transaction: consume the challenge (bound to
    /// `rid`), check the claim token, map the identity, store the code. `None` when the
    /// challenge or the rendezvous changed meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn approve_with_card(
        &self,
        rid: &str,
        claim_token_hash: &[u8; 32],
        challenge_id: &str,
        card: &VerifiedCard,
        code: &IssuedCode,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
    /// A wrong code: one try fewer (CAS on the count read), aborting at zero. The tries
    /// left, or `None` if someone else changed the row meanwhile.
    async fn wrong_code(
        &self,
        rid: &str,
        tries_before: u8,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<u8>>;
    /// The right code: `approved → consumed` and the desktop session, one transaction.
    async fn consume_with_code(
        &self,
        rid: &str,
        tries_before: u8,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
    /// Device enrolment, one transaction: consume the `device_enroll` challenge, map the
    /// card's identity, store the device key. `None` when the challenge was consumed or
    /// expired meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn enroll_device(
        &self,
        challenge_id: &str,
        card: &VerifiedCard,
        device_id: &str,
        public_key: &[u8],
        name: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>>;
    /// An enrolled device: its identity and public key (SEC1).
    async fn device(&self, device_id: &str) -> Result<Option<(Identity, Vec<u8>)>>;
    /// `claimed → approved` by an enrolled device, one transaction: the transcript's `jti`
    /// is recorded (a replay fails), the claim token checked, the code stored. `Err`-free
    /// outcomes: see [`DeviceApproval`].
    #[allow(clippy::too_many_arguments)]
    async fn approve_with_device(
        &self,
        rid: &str,
        claim_token_hash: &[u8; 32],
        identity_id: &str,
        jti: &str,
        jti_expires: u64,
        code: &IssuedCode,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<DeviceApproval>;
    /// The live session of a token hash.
    async fn session(&self, token_hash: &[u8; 32], now: u64)
    -> Result<Option<(Identity, u8, u64)>>;
}

/// What a device approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceApproval {
    /// Approved.
    Approved,
    /// The transcript id was used before.
    Replayed,
    /// The rendezvous was no longer claimed by this phone.
    WrongState,
}

/// Which database is behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file, WAL.
    Sqlite,
    /// A server, possibly shared by several instances.
    Postgres,
}

/// The SQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqlStore {
    /// Reads go to it directly, writes through [`Db::begin`] (see `db` for how SQLite
    /// queues writers).
    pool: Arc<Db>,
    backend: Backend,
    /// Unix second of this instance's last prune of spent `used_jti` rows, old
    /// `rate_limits` buckets and quiet `abroad_throttle` rows: housekeeping, at most once a
    /// second rather than a statement in every transaction (expired rows never change an
    /// outcome: jtis are random and their transcripts' `iat` has expired too; buckets are
    /// keyed by minute; a throttle row a day quiet has no delay or lock left).
    pruned: Arc<[AtomicU64; 3]>,
    /// The lookup key of codici fiscali (`cfkey`).
    cf: CfKey,
    /// Whether rows in the unkeyed form may be left (then an attempt re-keys its own).
    legacy_cf: Arc<AtomicBool>,
}

const PRUNE_JTI: usize = 0;
const PRUNE_RATE: usize = 1;
const PRUNE_THROTTLE: usize = 2;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS identities (
        id TEXT PRIMARY KEY,
        codice_fiscale TEXT NOT NULL UNIQUE,
        given_name TEXT NOT NULL,
        surname TEXT NOT NULL,
        created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cards (
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (issuer, serial))",
    "CREATE TABLE IF NOT EXISTS challenges (
        id TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        challenge TEXT NOT NULL,
        rid TEXT,
        expires BIGINT NOT NULL,
        used BIGINT NOT NULL DEFAULT 0) {without_rowid}",
    "CREATE TABLE IF NOT EXISTS rendezvous (
        rid TEXT PRIMARY KEY,
        secret {blob} NOT NULL,
        bind_hash {blob} NOT NULL,
        state TEXT NOT NULL,
        abort_reason TEXT,
        context TEXT NOT NULL,
        context_hash TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        client TEXT NOT NULL,
        claim_token_hash {blob},
        device_name TEXT,
        device_id TEXT,
        claim_expires BIGINT,
        identity_id TEXT REFERENCES identities (id),
        level BIGINT,
        code_hash {blob},
        code_expires BIGINT,
        code_tries BIGINT NOT NULL DEFAULT 0) {without_rowid}",
    "CREATE INDEX IF NOT EXISTS rendezvous_bind ON rendezvous (bind_hash, state)",
    "CREATE TABLE IF NOT EXISTS sessions (
        token_hash {blob} PRIMARY KEY,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        level BIGINT NOT NULL,
        kind TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT NOT NULL) {without_rowid}",
    "CREATE TABLE IF NOT EXISTS devices (
        id TEXT PRIMARY KEY,
        identity_id TEXT NOT NULL REFERENCES identities (id),
        public_key {blob} NOT NULL,
        name TEXT NOT NULL,
        created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS used_jti (
        jti TEXT PRIMARY KEY,
        expires BIGINT NOT NULL) {without_rowid}",
    // Every approval prunes spent jtis and every challenge old challenges: by index, not by
    // scanning a table that holds minutes of traffic.
    "CREATE INDEX IF NOT EXISTS used_jti_expires ON used_jti (expires)",
    "CREATE INDEX IF NOT EXISTS challenges_expires ON challenges (expires)",
    "CREATE TABLE IF NOT EXISTS rate_limits (
        bucket_key TEXT NOT NULL,
        bucket BIGINT NOT NULL,
        hits BIGINT NOT NULL,
        PRIMARY KEY (bucket_key, bucket)) {without_rowid}",
    "CREATE TABLE IF NOT EXISTS audit (
        id {serial},
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        outcome TEXT NOT NULL,
        client TEXT NOT NULL)",
];

const RENDEZVOUS_COLUMNS: &str = "rid, secret, bind_hash, state, abort_reason, context, \
    context_hash, created, expires, claim_token_hash, device_name, claim_expires, identity_id, \
    level, code_hash, code_expires, code_tries";

/// Unix seconds in an i64 column (saturating: far-future values stay far-future).
fn ts(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn un_ts(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

fn purpose_str(p: ChallengePurpose) -> &'static str {
    match p {
        ChallengePurpose::Login => "login",
        ChallengePurpose::DesktopApprove => "desktop_approve",
        ChallengePurpose::DeviceEnroll => "device_enroll",
        ChallengePurpose::Register => "register",
    }
}

fn parse_purpose(s: &str) -> Option<ChallengePurpose> {
    Some(match s {
        "login" => ChallengePurpose::Login,
        "desktop_approve" => ChallengePurpose::DesktopApprove,
        "device_enroll" => ChallengePurpose::DeviceEnroll,
        "register" => ChallengePurpose::Register,
        _ => return None,
    })
}

/// A live rendezvous whose time ran out (`$2` = now). The 120 s cap bounds the way to an
/// approval (and the claim its 90 s window); once approved, the code has its own 120 s.
const DUE: &str = "(
    (state IN ('created', 'claimed') AND expires <= $2)
    OR (state = 'claimed' AND claim_expires <= $2)
    OR (state = 'approved' AND code_expires <= $2))";

/// Create the tables if needed, resolve the codice fiscale lookup key and re-key the
/// token holders' OTP state left in the unkeyed form, in one transaction. The key, and
/// whether unkeyed rows are left.
async fn create_schema(
    pool: &Db,
    backend: Backend,
    source: &KeySource,
    change: KeyChange,
) -> Result<(CfKey, bool)> {
    // SQLite: tables keyed by a random id store their rows in the key's b-tree (no
    // separate rowid table plus key index): a page fewer written per insert, and every
    // page written is a WAL frame.
    let without_rowid = match backend {
        Backend::Sqlite => "WITHOUT ROWID",
        Backend::Postgres => "",
    };
    let (blob, serial) = match backend {
        // Audit rows are deleted only from the old end (retention) or by an erasure,
        // so a plain rowid still orders them: without AUTOINCREMENT's sequence table,
        // a page fewer written per audited change (an erased newest id may be reused,
        // by a row that names nothing erased).
        Backend::Sqlite => ("BLOB", "INTEGER PRIMARY KEY"),
        Backend::Postgres => ("BYTEA", "BIGSERIAL PRIMARY KEY"),
    };
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        // Two instances starting together must not both create the same table.
        query("SELECT pg_advisory_xact_lock(731001)")
            .execute(&mut tx)
            .await?;
    }
    for stmt in SCHEMA
        .iter()
        .chain(approvals::SCHEMA)
        .chain(otp::SCHEMA)
        .chain(registrations::SCHEMA)
        .chain(abroad::SCHEMA)
        .chain(oidc::SCHEMA)
        .chain(cfkey::SCHEMA)
    {
        let sql = stmt
            .replace("{blob}", blob)
            .replace("{serial}", serial)
            .replace("{without_rowid}", without_rowid);
        query(&sql).execute(&mut tx).await?;
    }
    let key = cfkey::resolve(&mut tx, source, change).await?;
    // Token holders' validator state (their HOTP counter) must survive: their codice
    // fiscale is on the identity row, so their rows are re-keyed now (idempotent).
    let holders = query(
        "SELECT i.codice_fiscale FROM identities i JOIN otp_tokens t ON t.identity_id = i.id",
    );
    let n: i64 = query(cfkey::LEGACY_ROWS)
        .fetch_one(&mut tx)
        .await?
        .try_get("n")?;
    // A store that ignores the key check may hold another key than the server's: it
    // re-keys nothing, now or at an attempt.
    let legacy = if n > 0 && change != KeyChange::Ignore {
        for r in holders.fetch_all(&mut tx).await? {
            let cf: String = r.try_get("codice_fiscale")?;
            cfkey::adopt(
                &mut tx,
                "otp_state",
                "cf_key",
                "",
                &legacy_key(&cf),
                &key.lookup(&cf),
            )
            .await?;
        }
        query(cfkey::LEGACY_ROWS)
            .fetch_one(&mut tx)
            .await?
            .try_get::<i64>("n")?
            > 0
    } else {
        false
    };
    tx.commit().await?;
    Ok((key, legacy))
}

impl SqlStore {
    /// Connect to `sqlite:PATH` (created if missing; WAL, busy timeout) or
    /// `postgres://…`, and create the tables if needed. Codici fiscali are looked up under
    /// the database's own key (see [`SqlStore::connect_keyed`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_keyed(url, KeySource::Database, KeyChange::Adopt).await
    }

    /// [`SqlStore::connect`] with the codice fiscale lookup key from `source` (the server:
    /// derived from its `--otp-key-file`); `change` says what a key other than the one the
    /// rows were written with does. Token holders' OTP state still in the unkeyed form is
    /// re-keyed here, in the schema's transaction.
    pub async fn connect_keyed(url: &str, source: KeySource, change: KeyChange) -> Result<Self> {
        let pool = Db::connect(url).await?;
        let backend = match pool {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Pg(_) => Backend::Postgres,
        };
        let (cf, legacy) = create_schema(&pool, backend, &source, change).await?;
        Ok(Self {
            pool: Arc::new(pool),
            backend,
            pruned: Arc::default(),
            cf,
            legacy_cf: Arc::new(AtomicBool::new(legacy)),
        })
    }

    /// The stored lookup value of a codice fiscale (`k1.…`; docs/data.md).
    pub fn cf_key(&self, codice_fiscale: &str) -> String {
        self.cf.lookup(codice_fiscale)
    }

    /// Inside an attempt's transaction: while rows in the unkeyed form may be left, move
    /// this codice fiscale's (`table`, `column`, `prefix` of the value) to the keyed form.
    async fn adopt_legacy(
        &self,
        tx: &mut Tx,
        table: &str,
        column: &str,
        prefix: &str,
        codice_fiscale: &str,
    ) -> Result<()> {
        if !self.legacy_cf.load(Ordering::Relaxed) {
            return Ok(());
        }
        let legacy = format!("{prefix}{}", legacy_key(codice_fiscale));
        let keyed = format!("{prefix}{}", self.cf_key(codice_fiscale));
        let same = if table == "rate_limits" {
            " AND k.bucket = rate_limits.bucket"
        } else {
            ""
        };
        cfkey::adopt(tx, table, column, same, &legacy, &keyed).await
    }

    /// Whether rows in the unkeyed form are left; clears the flag when none are.
    async fn check_legacy(&self) -> Result<()> {
        if self.legacy_cf.load(Ordering::Relaxed) {
            let n: i64 = query(cfkey::LEGACY_ROWS)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            self.legacy_cf.store(n > 0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether `what` is due for pruning at `now` (once a second per instance).
    fn prune_due(&self, what: usize, now: u64) -> bool {
        self.pruned
            .get(what)
            .is_some_and(|t| t.swap(now, Ordering::Relaxed) != now)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The audit trail, oldest first: (kind, subject, outcome, client).
    pub async fn audit_log(&self) -> Result<Vec<(String, String, String, String)>> {
        let rows = query("SELECT kind, subject, outcome, client FROM audit ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("kind")?,
                    r.try_get("subject")?,
                    r.try_get("outcome")?,
                    r.try_get("client")?,
                ))
            })
            .collect()
    }

    /// Close the pool (PostgreSQL: waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction (see [`Db::begin`]).
    async fn begin(&self) -> Result<Tx> {
        self.pool.begin().await
    }

    /// Store a device key for `identity`, audit (`<device id> <identity id>`) and commit.
    async fn insert_device(
        mut tx: Tx,
        identity: Identity,
        device_id: &str,
        public_key: &[u8],
        name: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        query(
            "INSERT INTO devices (id, identity_id, public_key, name, created)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(device_id)
        .bind(&identity.id)
        .bind(public_key.to_vec())
        .bind(name)
        .bind(ts(now))
        .execute(&mut tx)
        .await?;
        let entry = AuditEntry {
            subject: format!("{device_id} {}", identity.id),
            ..audit.clone()
        };
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(identity))
    }

    async fn write_audit(conn: &mut Tx, e: &AuditEntry, now: u64) -> Result<()> {
        query("INSERT INTO audit (at, kind, subject, outcome, client) VALUES ($1, $2, $3, $4, $5)")
            .bind(ts(now))
            .bind(e.kind)
            .bind(&e.subject)
            .bind(&e.outcome)
            .bind(&e.client)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// One more hit on `key` in this minute's bucket: the hits so far, this one included
    /// (old buckets pruned on the way).
    async fn rate_limit_hit(&self, tx: &mut Tx, key: &str, now: u64) -> Result<i64> {
        let bucket = now / 60;
        let hits: i64 = query(
            "INSERT INTO rate_limits (bucket_key, bucket, hits) VALUES ($1, $2, 1)
             ON CONFLICT (bucket_key, bucket) DO UPDATE SET hits = rate_limits.hits + 1
             RETURNING hits",
        )
        .bind(key)
        .bind(ts(bucket))
        .fetch_one(&mut *tx)
        .await?
        .try_get("hits")?;
        if self.prune_due(PRUNE_RATE, now) {
            query("DELETE FROM rate_limits WHERE bucket < $1")
                .bind(ts(bucket.saturating_sub(1)))
                .execute(&mut *tx)
                .await?;
        }
        Ok(hits)
    }

    /// End a compare-and-set: audit it (`audit` when it took, else with the outcome
    /// `missed`) and commit; whether it took.
    async fn commit_cas(
        mut tx: Tx,
        done: bool,
        audit: &AuditEntry,
        missed: &str,
        now: u64,
    ) -> Result<bool> {
        let entry = if done {
            audit.clone()
        } else {
            audit.with_outcome(missed)
        };
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Mark due rendezvous expired (any of its clocks ran out).
    async fn expire_due(conn: &mut Tx, rid: &str, now: u64) -> Result<bool> {
        let done = query(&format!(
            "UPDATE rendezvous SET state = 'expired' WHERE rid = $1 AND {DUE}"
        ))
        .bind(rid)
        .bind(ts(now))
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Insert or refresh the identity a card names, and remember the card.
    async fn map_identity(conn: &mut Tx, card: &VerifiedCard, now: u64) -> Result<Identity> {
        let new_id = crate::random_id::<16>().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        query(
            "INSERT INTO identities (id, codice_fiscale, given_name, surname, created)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (codice_fiscale) DO UPDATE
             SET given_name = excluded.given_name, surname = excluded.surname",
        )
        .bind(&new_id)
        .bind(&card.codice_fiscale)
        .bind(&card.given_name)
        .bind(&card.surname)
        .bind(ts(now))
        .execute(&mut *conn)
        .await?;
        let row = query(
            "SELECT id, codice_fiscale, given_name, surname FROM identities
             WHERE codice_fiscale = $1",
        )
        .bind(&card.codice_fiscale)
        .fetch_one(&mut *conn)
        .await?;
        let identity = identity_from_row(&row)?;
        query(
            "INSERT INTO cards (issuer, serial, identity_id, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (issuer, serial) DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(&card.issuer)
        .bind(&card.serial)
        .bind(&identity.id)
        .bind(ts(now))
        .execute(&mut *conn)
        .await?;
        Ok(identity)
    }

    async fn insert_session(
        conn: &mut Tx,
        identity_id: &str,
        s: &NewSession,
        now: u64,
    ) -> Result<()> {
        query(
            "INSERT INTO sessions (token_hash, identity_id, level, kind, created, expires)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.token_hash.to_vec())
        .bind(identity_id)
        .bind(i64::from(s.level))
        .bind(s.kind)
        .bind(ts(now))
        .bind(ts(s.expires))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Consume a challenge: unused, unexpired, of `purpose` (and of `rid` when given).
    async fn consume_challenge(
        conn: &mut Tx,
        id: &str,
        purpose: ChallengePurpose,
        rid: Option<&str>,
        now: u64,
    ) -> Result<bool> {
        let done = query(
            "UPDATE challenges SET used = 1
             WHERE id = $1 AND used = 0 AND purpose = $2 AND expires > $3
               AND ($4 = '' OR rid = $4)",
        )
        .bind(id)
        .bind(purpose_str(purpose))
        .bind(ts(now))
        .bind(rid.unwrap_or(""))
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn identity_from_row(row: &Row) -> Result<Identity> {
    Ok(Identity {
        id: row.try_get("id")?,
        codice_fiscale: row.try_get("codice_fiscale")?,
        given_name: row.try_get("given_name")?,
        surname: row.try_get("surname")?,
    })
}

fn small(v: Option<i64>) -> Option<u8> {
    v.and_then(|v| u8::try_from(v).ok())
}

fn rendezvous_from_row(row: &Row) -> Result<RendezvousRecord> {
    let state: String = row.try_get("state")?;
    Ok(RendezvousRecord {
        rid: row.try_get("rid")?,
        secret: row.try_get("secret")?,
        bind_hash: row.try_get("bind_hash")?,
        state: RendezvousState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("rendezvous state {state}")))?,
        abort_reason: row.try_get("abort_reason")?,
        context_json: row.try_get("context")?,
        context_hash: row.try_get("context_hash")?,
        created: un_ts(row.try_get("created")?),
        expires: un_ts(row.try_get("expires")?),
        claim_token_hash: row.try_get("claim_token_hash")?,
        device_name: row.try_get("device_name")?,
        claim_expires: row.try_get::<Option<i64>>("claim_expires")?.map(un_ts),
        identity_id: row.try_get("identity_id")?,
        level: small(row.try_get("level")?),
        code_hash: row.try_get("code_hash")?,
        code_expires: row.try_get::<Option<i64>>("code_expires")?.map(un_ts),
        code_tries: small(Some(row.try_get("code_tries")?)).unwrap_or(0),
    })
}

#[async_trait]
impl Store for SqlStore {
    async fn audit(&self, entry: &AuditEntry, now: u64) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::write_audit(&mut tx, entry, now).await?;
        tx.commit().await
    }

    async fn insert_challenge(
        &self,
        c: &ChallengeRecord,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        query(
            "INSERT INTO challenges (id, purpose, challenge, rid, expires, used)
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(&c.id)
        .bind(purpose_str(c.purpose))
        .bind(&c.challenge)
        .bind(c.rid.clone())
        .bind(ts(c.expires))
        .execute(&mut tx)
        .await?;
        // Spent challenges are useless after their life: keep the table small.
        query("DELETE FROM challenges WHERE expires < $1")
            .bind(ts(now.saturating_sub(3600)))
            .execute(&mut tx)
            .await?;
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn challenge(&self, id: &str) -> Result<Option<ChallengeRecord>> {
        let row = query(
            "SELECT id, purpose, challenge, rid, expires, used FROM challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let purpose: String = row.try_get("purpose")?;
            Ok(ChallengeRecord {
                id: row.try_get("id")?,
                purpose: parse_purpose(&purpose)
                    .ok_or_else(|| StoreError::Corrupt(format!("purpose {purpose}")))?,
                challenge: row.try_get("challenge")?,
                rid: row.try_get("rid")?,
                expires: un_ts(row.try_get("expires")?),
                used: row.try_get::<i64>("used")? != 0,
            })
        })
        .transpose()
    }

    async fn card_login(
        &self,
        challenge_id: &str,
        card: &VerifiedCard,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        if !Self::consume_challenge(&mut tx, challenge_id, ChallengePurpose::Login, None, now)
            .await?
        {
            let refused = audit.with_outcome("replayed");
            Self::write_audit(&mut tx, &refused, now).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let identity = Self::map_identity(&mut tx, card, now).await?;
        Self::insert_session(&mut tx, &identity.id, session, now).await?;
        let done = audit.for_identity(&identity.id);
        Self::write_audit(&mut tx, &done, now).await?;
        tx.commit().await?;
        Ok(Some(identity))
    }

    async fn create_rendezvous(
        &self,
        r: &NewRendezvous,
        per_minute: u32,
        audit: &AuditEntry,
    ) -> Result<Limited> {
        let now = r.created;
        let mut tx = self.begin().await?;
        let hits = self
            .rate_limit_hit(&mut tx, &format!("rendezvous:{}", r.client), now)
            .await?;
        if hits > i64::from(per_minute) {
            let refused = audit.with_outcome("rate_limited");
            Self::write_audit(&mut tx, &refused, now).await?;
            tx.commit().await?;
            return Ok(Limited::RetryAfter(60 - now % 60));
        }
        // A new QR for the same browser replaces its unclaimed one.
        query(
            "UPDATE rendezvous SET state = 'aborted', abort_reason = 'replaced'
             WHERE bind_hash = $1 AND state = 'created'",
        )
        .bind(r.bind_hash.to_vec())
        .execute(&mut tx)
        .await?;
        query(
            "INSERT INTO rendezvous (rid, secret, bind_hash, state, context, context_hash,
                 created, expires, client, code_tries)
             VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, 0)",
        )
        .bind(&r.rid)
        .bind(r.secret.to_vec())
        .bind(r.bind_hash.to_vec())
        .bind(&r.context_json)
        .bind(&r.context_hash)
        .bind(ts(r.created))
        .bind(ts(r.expires))
        .bind(&r.client)
        .execute(&mut tx)
        .await?;
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(Limited::Done)
    }

    async fn rendezvous(&self, rid: &str, now: u64) -> Result<Option<RendezvousRecord>> {
        // One read that also says whether the row is due to expire, so the common case is
        // a single query and only a due row takes the write lock.
        let row = query(&format!(
            "SELECT {RENDEZVOUS_COLUMNS}, CAST(CASE WHEN {DUE} THEN 1 ELSE 0 END AS BIGINT) AS due
             FROM rendezvous WHERE rid = $1"
        ))
        .bind(rid)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        match &row {
            None => return Ok(None),
            Some(r) if r.try_get::<i64>("due")? == 0 => {
                return rendezvous_from_row(r).map(Some);
            }
            Some(_) => {}
        }
        let mut tx = self.begin().await?;
        if Self::expire_due(&mut tx, rid, now).await? {
            let e = AuditEntry::new("rendezvous_expire", rid, "ok", "");
            Self::write_audit(&mut tx, &e, now).await?;
        }
        tx.commit().await?;
        let row = query(&format!(
            "SELECT {RENDEZVOUS_COLUMNS} FROM rendezvous WHERE rid = $1"
        ))
        .bind(rid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rendezvous_from_row).transpose()
    }

    async fn claim(&self, rid: &str, claim: &Claim, audit: &AuditEntry, now: u64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = query(
            "UPDATE rendezvous SET state = 'claimed', claim_token_hash = $2, device_name = $3,
                 device_id = $4, claim_expires = $5
             WHERE rid = $1 AND state = 'created' AND expires > $6",
        )
        .bind(rid)
        .bind(claim.claim_token_hash.to_vec())
        .bind(&claim.device_name)
        .bind(claim.device_id.clone())
        .bind(ts(claim.claim_expires))
        .bind(ts(now))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        Self::commit_cas(tx, done, audit, "wrong_state", now).await
    }

    async fn transition(
        &self,
        rid: &str,
        from: RendezvousState,
        to: RendezvousState,
        reason: Option<&str>,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = query(
            "UPDATE rendezvous SET state = $3, abort_reason = $4 WHERE rid = $1 AND state = $2",
        )
        .bind(rid)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(reason.map(str::to_owned))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        Self::commit_cas(tx, done, audit, "wrong_state", now).await
    }

    async fn approve_with_card(
        &self,
        rid: &str,
        claim_token_hash: &[u8; 32],
        challenge_id: &str,
        card: &VerifiedCard,
        code: &IssuedCode,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        let refuse = |outcome: &str| audit.with_outcome(outcome);
        if !Self::consume_challenge(
            &mut tx,
            challenge_id,
            ChallengePurpose::DesktopApprove,
            Some(rid),
            now,
        )
        .await?
        {
            Self::write_audit(&mut tx, &refuse("replayed"), now).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let identity = Self::map_identity(&mut tx, card, now).await?;
        let done = query(
            "UPDATE rendezvous SET state = 'approved', identity_id = $3, level = 3,
                 code_hash = $4, code_expires = $5, code_tries = $6
             WHERE rid = $1 AND state = 'claimed' AND claim_token_hash = $2
               AND claim_expires > $7 AND expires > $7",
        )
        .bind(rid)
        .bind(claim_token_hash.to_vec())
        .bind(&identity.id)
        .bind(code.code_hash.to_vec())
        .bind(ts(code.expires))
        .bind(i64::from(code.tries))
        .bind(ts(now))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            // Undo the challenge and identity writes; record only the refusal.
            tx.rollback().await?;
            self.audit(&refuse("wrong_state"), now).await?;
            return Ok(None);
        }
        let entry = audit.for_identity(&identity.id);
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(identity))
    }

    async fn wrong_code(
        &self,
        rid: &str,
        tries_before: u8,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<u8>> {
        let left = tries_before.saturating_sub(1);
        let mut tx = self.begin().await?;
        let done = query(
            "UPDATE rendezvous SET code_tries = $3,
                 state = CASE WHEN $3 = 0 THEN 'aborted' ELSE state END,
                 abort_reason = CASE WHEN $3 = 0 THEN 'too_many_codes' ELSE abort_reason END
             WHERE rid = $1 AND state = 'approved' AND code_tries = $2",
        )
        .bind(rid)
        .bind(i64::from(tries_before))
        .bind(i64::from(left))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        let entry = audit.with_outcome(if done {
            format!("wrong_code tries_left={left}")
        } else {
            "wrong_state".into()
        });
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(done.then_some(left))
    }

    async fn consume_with_code(
        &self,
        rid: &str,
        tries_before: u8,
        session: &NewSession,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        let row = query(
            "UPDATE rendezvous SET state = 'consumed'
             WHERE rid = $1 AND state = 'approved' AND code_tries = $2 AND code_expires > $3
             RETURNING identity_id, level",
        )
        .bind(rid)
        .bind(i64::from(tries_before))
        .bind(ts(now))
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            let entry = audit.with_outcome("wrong_state");
            Self::write_audit(&mut tx, &entry, now).await?;
            tx.commit().await?;
            return Ok(None);
        };
        let identity_id: Option<String> = row.try_get("identity_id")?;
        let identity_id =
            identity_id.ok_or_else(|| StoreError::Corrupt("approved without identity".into()))?;
        let level = small(row.try_get("level")?).unwrap_or(session.level);
        let session = NewSession {
            level,
            ..session.clone()
        };
        Self::insert_session(&mut tx, &identity_id, &session, now).await?;
        let identity = identity_from_row(
            &query("SELECT id, codice_fiscale, given_name, surname FROM identities WHERE id = $1")
                .bind(&identity_id)
                .fetch_one(&mut tx)
                .await?,
        )?;
        let entry = audit.for_identity(&identity.id);
        Self::write_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(identity))
    }

    async fn enroll_device(
        &self,
        challenge_id: &str,
        card: &VerifiedCard,
        device_id: &str,
        public_key: &[u8],
        name: &str,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<Option<Identity>> {
        let mut tx = self.begin().await?;
        if !Self::consume_challenge(
            &mut tx,
            challenge_id,
            ChallengePurpose::DeviceEnroll,
            None,
            now,
        )
        .await?
        {
            let refused = audit.with_outcome("replayed");
            Self::write_audit(&mut tx, &refused, now).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let identity = Self::map_identity(&mut tx, card, now).await?;
        Self::insert_device(tx, identity, device_id, public_key, name, audit, now).await
    }

    async fn device(&self, device_id: &str) -> Result<Option<(Identity, Vec<u8>)>> {
        let row = query(
            "SELECT i.id, i.codice_fiscale, i.given_name, i.surname, d.public_key
             FROM devices d JOIN identities i ON i.id = d.identity_id WHERE d.id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((identity_from_row(&row)?, row.try_get("public_key")?)))
            .transpose()
    }

    async fn approve_with_device(
        &self,
        rid: &str,
        claim_token_hash: &[u8; 32],
        identity_id: &str,
        jti: &str,
        jti_expires: u64,
        code: &IssuedCode,
        audit: &AuditEntry,
        now: u64,
    ) -> Result<DeviceApproval> {
        let mut tx = self.begin().await?;
        if self.prune_due(PRUNE_JTI, now) {
            query("DELETE FROM used_jti WHERE expires < $1")
                .bind(ts(now))
                .execute(&mut tx)
                .await?;
        }
        let fresh = query(
            "INSERT INTO used_jti (jti, expires) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(ts(jti_expires))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            let entry = audit.with_outcome("replayed");
            Self::write_audit(&mut tx, &entry, now).await?;
            tx.commit().await?;
            return Ok(DeviceApproval::Replayed);
        }
        let done = query(
            "UPDATE rendezvous SET state = 'approved', identity_id = $3, level = 2,
                 code_hash = $4, code_expires = $5, code_tries = $6
             WHERE rid = $1 AND state = 'claimed' AND claim_token_hash = $2
               AND claim_expires > $7 AND expires > $7",
        )
        .bind(rid)
        .bind(claim_token_hash.to_vec())
        .bind(identity_id)
        .bind(code.code_hash.to_vec())
        .bind(ts(code.expires))
        .bind(i64::from(code.tries))
        .bind(ts(now))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            // Nothing happened: the jti stays unspent.
            tx.rollback().await?;
            let entry = audit.with_outcome("wrong_state");
            self.audit(&entry, now).await?;
            return Ok(DeviceApproval::WrongState);
        }
        Self::write_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(DeviceApproval::Approved)
    }

    async fn session(
        &self,
        token_hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<(Identity, u8, u64)>> {
        let row = query(
            "SELECT i.id, i.codice_fiscale, i.given_name, i.surname, s.level, s.expires
             FROM sessions s JOIN identities i ON i.id = s.identity_id
             WHERE s.token_hash = $1 AND s.expires > $2",
        )
        .bind(token_hash.to_vec())
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok((
                identity_from_row(&row)?,
                small(row.try_get("level")?).unwrap_or(0),
                un_ts(row.try_get("expires")?),
            ))
        })
        .transpose()
    }
}
