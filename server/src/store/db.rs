//! The two databases behind one small query API, so the store's SQL and logic are written
//! once. `query(sql).bind(..).execute(target)` mirrors sqlx's builder; `$N` placeholders
//! work on both.
//!
//! Why not sqlx for SQLite too: its SQLite driver runs each connection on a worker thread
//! and every statement is a round trip to it. A desktop QR login is ~26 statements, and
//! under load those hops (two thread switches each) were half the server's CPU time. Here
//! SQLite runs in the calling task: a transaction takes the one writer connection (an
//! async FIFO lock, so writers queue fairly instead of napping in SQLite's busy handler)
//! and runs its statements synchronously, microseconds each, on cached prepared
//! statements; reads use a small set of reader connections (WAL: readers never wait for
//! the writer). Checkpoints, the only step that syncs to disk, run on a background thread,
//! not inside a request. PostgreSQL stays on sqlx's async driver (network round trips).

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Postgres, Row as _, TypeInfo, ValueRef};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Result, StoreError};

/// A bound value. Typed even when null: PostgreSQL needs the parameter type.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Blob(Some(v))
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Blob(Some(v.to_vec()))
    }
}
impl From<Option<Vec<u8>>> for Arg {
    fn from(v: Option<Vec<u8>>) -> Self {
        Arg::Blob(v)
    }
}

/// A column value as read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// Conversion of a read column.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The named column, converted.
    pub(crate) fn try_get<T: FromValue>(&self, name: &str) -> Result<T> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {name}")))?;
        T::from_value(&self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("column {name}: unexpected type")))
    }
}

impl Row {
    /// The row as a JSON object (blobs as base64url): the operator's export.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        let fields = self.columns.iter().zip(&self.values).map(|(c, v)| {
            let v = match v {
                Value::Null => J::Null,
                Value::Int(i) => J::from(*i),
                Value::Text(t) => J::from(t.as_str()),
                Value::Blob(b) => J::from(cie_core::flows::wire::b64(b)),
            };
            (c.clone(), v)
        });
        J::Object(fields.collect())
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A statement to run.
#[must_use]
pub(crate) struct Query<'q> {
    sql: &'q str,
    args: Vec<Arg>,
}

/// `sqlx::query`'s shape: the SQL with `$1…$N` placeholders.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

/// Where a statement runs: inside a write transaction, or a plain read.
pub(crate) enum Target<'a> {
    Tx(&'a mut Tx),
    Read(&'a Db),
}

impl<'a> From<&'a mut Tx> for Target<'a> {
    fn from(t: &'a mut Tx) -> Self {
        Target::Tx(t)
    }
}
impl<'a> From<&'a Db> for Target<'a> {
    fn from(d: &'a Db) -> Self {
        Target::Read(d)
    }
}
impl<'a> From<&'a Arc<Db>> for Target<'a> {
    fn from(d: &'a Arc<Db>) -> Self {
        Target::Read(d)
    }
}

impl<'q> Query<'q> {
    /// Bind the next `$N`.
    pub(crate) fn bind(mut self, v: impl Into<Arg>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Run a statement that returns no rows.
    pub(crate) async fn execute<'a>(self, target: impl Into<Target<'a>>) -> Result<Done> {
        let done = match target.into() {
            Target::Tx(Tx::Sqlite(t)) => t.conn().and_then(|c| sqlite_execute(c, &self)),
            Target::Read(Db::Sqlite(s)) => s.read(|c| sqlite_execute(c, &self)),
            Target::Tx(Tx::Pg(t)) => pg_query(&self)
                .execute(&mut **t)
                .await
                .map(|r| Done(r.rows_affected()))
                .map_err(StoreError::from),
            Target::Read(Db::Pg(p)) => pg_query(&self)
                .execute(p)
                .await
                .map(|r| Done(r.rows_affected()))
                .map_err(StoreError::from),
        };
        counted(self.sql, done)
    }

    /// All rows.
    pub(crate) async fn fetch_all<'a>(self, target: impl Into<Target<'a>>) -> Result<Vec<Row>> {
        let rows = match target.into() {
            Target::Tx(Tx::Sqlite(t)) => t.conn().and_then(|c| sqlite_fetch(c, &self)),
            Target::Read(Db::Sqlite(s)) => s.read(|c| sqlite_fetch(c, &self)),
            Target::Tx(Tx::Pg(t)) => match pg_query(&self).fetch_all(&mut **t).await {
                Ok(rows) => pg_rows(rows),
                Err(e) => Err(e.into()),
            },
            Target::Read(Db::Pg(p)) => match pg_query(&self).fetch_all(p).await {
                Ok(rows) => pg_rows(rows),
                Err(e) => Err(e.into()),
            },
        };
        counted(self.sql, rows)
    }

    /// The first row, if any (the statement runs to completion).
    pub(crate) async fn fetch_optional<'a>(
        self,
        target: impl Into<Target<'a>>,
    ) -> Result<Option<Row>> {
        Ok(self.fetch_all(target).await?.into_iter().next())
    }

    /// The first row; an error when there is none.
    pub(crate) async fn fetch_one<'a>(self, target: impl Into<Target<'a>>) -> Result<Row> {
        self.fetch_optional(target)
            .await?
            .ok_or_else(|| StoreError::Corrupt("expected a row".into()))
    }
}

/// Count a failed statement in the server's metrics (`companion_store_errors_total`).
fn counted<T>(sql: &str, r: Result<T>) -> Result<T> {
    if r.is_err() {
        crate::observability::store_error(sql);
    }
    r
}

// ---- SQLite -------------------------------------------------------------------------------

/// Bind `$N` by number: SQLite numbers named parameters in order of first appearance,
/// which is not `N` when the SQL uses `$2` before `$1`.
fn sqlite_bind(stmt: &mut rusqlite::Statement<'_>, q: &Query<'_>) -> Result<()> {
    use rusqlite::types::{ToSqlOutput, ValueRef as V};
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("placeholder {i} is not $N")))?;
        let arg = q
            .args
            .get(n.wrapping_sub(1))
            .ok_or_else(|| StoreError::Corrupt(format!("${n} not bound")))?;
        let v = match arg {
            Arg::Int(Some(v)) => V::Integer(*v),
            Arg::Text(Some(s)) => V::Text(s.as_bytes()),
            Arg::Blob(Some(b)) => V::Blob(b),
            Arg::Int(None) | Arg::Text(None) | Arg::Blob(None) => V::Null,
        };
        stmt.raw_bind_parameter(i, ToSqlOutput::Borrowed(v))?;
    }
    Ok(())
}

fn sqlite_execute(c: &rusqlite::Connection, q: &Query<'_>) -> Result<Done> {
    let mut stmt = c.prepare_cached(q.sql)?;
    sqlite_bind(&mut stmt, q)?;
    Ok(Done(stmt.raw_execute()? as u64))
}

fn sqlite_fetch(c: &rusqlite::Connection, q: &Query<'_>) -> Result<Vec<Row>> {
    use rusqlite::types::ValueRef as V;
    let mut stmt = c.prepare_cached(q.sql)?;
    sqlite_bind(&mut stmt, q)?;
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
    let n = columns.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match r.get_ref(i)? {
                V::Null => Value::Null,
                V::Integer(v) => Value::Int(v),
                V::Real(v) => Value::Text(v.to_string()),
                V::Text(t) => Value::Text(
                    std::str::from_utf8(t)
                        .map_err(|_| StoreError::Corrupt("text column not UTF-8".into()))?
                        .to_owned(),
                ),
                V::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(Row {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

/// The SQLite side: one writer, a few readers, a checkpointer.
pub(crate) struct Sqlite {
    writer: Arc<tokio::sync::Mutex<rusqlite::Connection>>,
    /// Idle reader connections (a new one is opened when all are busy).
    readers: Mutex<Vec<rusqlite::Connection>>,
    path: String,
    /// Stops the checkpoint thread when the store goes away.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Sqlite {
    fn open(path: &str) -> Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(path)?;
        // WAL lets reads run beside the one writer; NORMAL sync is WAL's durable-on-
        // checkpoint mode (a crash loses at most the last commits, never consistency).
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        c.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted rows are overwritten with zeros, not left in free space: an erased
        // identity (docs/data.md) must not be readable from the file.
        c.pragma_update(None, "secure_delete", "ON")?;
        // Another process (a second server on the same file, a test reading it) may
        // hold the lock for a moment.
        c.busy_timeout(Duration::from_secs(5))?;
        c.set_prepared_statement_cache_capacity(128);
        Ok(c)
    }

    fn connect(path: &str) -> Result<Self> {
        // Readers and the checkpointer are separate connections: an in-memory database
        // would be a different one for each.
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(StoreError::UnsupportedUrl);
        }
        let writer = Self::open(path)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Checkpoints move WAL pages into the database file and sync it: off the request
        // path, on a thread of their own, twice a second.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Self::open(path)?;
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    let _ = checkpointer.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
                }
                let _ = checkpointer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            })
            .map_err(|e| StoreError::Corrupt(format!("checkpoint thread: {e}")))?;
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            readers: Mutex::new(Vec::new()),
            path: path.to_owned(),
            stop,
        })
    }

    /// Run a read on an idle reader connection (synchronous: no await while it is held).
    fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let readers = &self.readers;
        let idle = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => Self::open(&self.path)?,
        };
        let out = f(&conn);
        let mut idle = readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
        out
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A SQLite write transaction: the writer connection, `BEGIN IMMEDIATE` done.
pub(crate) struct SqliteTx {
    conn: Option<tokio::sync::OwnedMutexGuard<rusqlite::Connection>>,
}

impl SqliteTx {
    fn conn(&self) -> Result<&rusqlite::Connection> {
        self.conn
            .as_deref()
            .ok_or_else(|| StoreError::Corrupt("transaction already ended".into()))
    }

    fn finish(&mut self, sql: &str) -> Result<()> {
        if let Some(c) = self.conn.take() {
            c.execute_batch(sql)?;
        }
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        // Neither committed nor rolled back (an error, or the request went away).
        if let Some(c) = self.conn.take() {
            let _ = c.execute_batch("ROLLBACK");
        }
    }
}

/// A write transaction on either database.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Pg(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<()> {
        let done = match self {
            Tx::Sqlite(mut t) => t.finish("COMMIT"),
            Tx::Pg(t) => t.commit().await.map_err(StoreError::from),
        };
        counted("COMMIT", done)
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(mut t) => t.finish("ROLLBACK"),
            Tx::Pg(t) => Ok(t.rollback().await?),
        }
    }
}

/// The database.
pub(crate) enum Db {
    Sqlite(Sqlite),
    Pg(PgPool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(s) => write!(f, "Db::Sqlite({})", s.path),
            Db::Pg(_) => f.write_str("Db::Pg"),
        }
    }
}

impl Db {
    /// `sqlite:PATH` (or `sqlite://PATH`; created if missing; not in memory) or
    /// `postgres://…`.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split('?').next().unwrap_or_default();
            return Ok(Db::Sqlite(Sqlite::connect(path)?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
            return Ok(Db::Pg(pool));
        }
        Err(StoreError::UnsupportedUrl)
    }

    /// A write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so a
    /// read-then-write transaction never works on a stale snapshot; PostgreSQL's row locks
    /// make the compare-and-set updates wait and re-check.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        let tx = match self {
            Db::Sqlite(s) => {
                let conn = s.writer.clone().lock_owned().await;
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map(|()| Tx::Sqlite(SqliteTx { conn: Some(conn) }))
                    .map_err(StoreError::from)
            }
            Db::Pg(p) => p.begin().await.map(Tx::Pg).map_err(StoreError::from),
        };
        counted("BEGIN", tx)
    }

    /// SQLite: move the whole WAL into the database file and truncate it to zero bytes,
    /// so rows deleted (and zeroed, `secure_delete`) leave no older copy in the WAL.
    /// `Some(true)` when complete, `Some(false)` when a reader kept it from finishing;
    /// `None` on PostgreSQL (nothing to do).
    pub(crate) async fn checkpoint_truncate(&self) -> Result<Option<bool>> {
        match self {
            Db::Sqlite(s) => {
                // The background checkpointer or a reader may be busy a moment: a few tries.
                for _ in 0..5 {
                    let conn = s.writer.clone().lock_owned().await;
                    let busy: i64 =
                        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
                    drop(conn);
                    if busy == 0 {
                        return Ok(Some(true));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Some(false))
            }
            Db::Pg(_) => Ok(None),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.stop.store(true, std::sync::atomic::Ordering::Relaxed),
            Db::Pg(p) => p.close().await,
        }
    }
}

// ---- PostgreSQL ---------------------------------------------------------------------------

fn pg_query<'q>(q: &'q Query<'q>) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let mut out = sqlx::query(q.sql);
    for a in &q.args {
        out = match a {
            Arg::Int(v) => out.bind(*v),
            Arg::Text(v) => out.bind(v.as_deref()),
            Arg::Blob(v) => out.bind(v.as_deref()),
        };
    }
    out
}

fn pg_rows(rows: Vec<PgRow>) -> Result<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    rows.iter()
        .map(|r| {
            let mut values = Vec::with_capacity(columns.len());
            for (i, col) in r.columns().iter().enumerate() {
                if r.try_get_raw(i)?.is_null() {
                    values.push(Value::Null);
                    continue;
                }
                values.push(match col.type_info().name() {
                    "INT8" => Value::Int(r.try_get::<i64, _>(i)?),
                    "INT4" => Value::Int(i64::from(r.try_get::<i32, _>(i)?)),
                    "INT2" => Value::Int(i64::from(r.try_get::<i16, _>(i)?)),
                    "BOOL" => Value::Int(i64::from(r.try_get::<bool, _>(i)?)),
                    "BYTEA" => Value::Blob(r.try_get::<Vec<u8>, _>(i)?),
                    "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => {
                        Value::Text(r.try_get::<String, _>(i)?)
                    }
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "column {}: type {other}",
                            col.name()
                        )));
                    }
                });
            }
            Ok(Row {
                columns: columns.clone(),
                values,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn placeholders_bind_by_number_and_values_read_back_typed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        // `$2` appears first: SQLite would number it 1.
        let row = query("SELECT $2 AS b, $1 AS a, $3 AS n, $4 AS blob")
            .bind(7_i64)
            .bind("x")
            .bind(Option::<String>::None)
            .bind(vec![1_u8, 2])
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(row.try_get::<String>("b").unwrap(), "x");
        assert_eq!(row.try_get::<i64>("a").unwrap(), 7);
        assert_eq!(row.try_get::<Option<i64>>("n").unwrap(), None);
        assert_eq!(row.try_get::<Vec<u8>>("blob").unwrap(), vec![1, 2]);
        assert!(matches!(
            row.try_get::<i64>("b"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            row.try_get::<i64>("zz"),
            Err(StoreError::Corrupt(_))
        ));
        // A missing argument is an error, not a NULL.
        assert!(
            query("SELECT $2 AS x")
                .bind(1_i64)
                .fetch_one(&db)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_dropped_transaction_rolls_back_and_frees_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        query("CREATE TABLE t (v BIGINT)")
            .execute(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        {
            let mut tx = db.begin().await.unwrap();
            query("INSERT INTO t (v) VALUES ($1)")
                .bind(1_i64)
                .execute(&mut tx)
                .await
                .unwrap();
            // Dropped: a request that went away mid-transaction.
        }
        let mut tx = db.begin().await.unwrap();
        let n = query("INSERT INTO t (v) VALUES ($1)")
            .bind(2_i64)
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(n.rows_affected(), 1);
        tx.commit().await.unwrap();
        let rows = query("SELECT v FROM t").fetch_all(&db).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].try_get::<i64>("v").unwrap(), 2);
        assert!(matches!(
            Db::connect("sqlite::memory:").await,
            Err(StoreError::UnsupportedUrl)
        ));
    }
}
