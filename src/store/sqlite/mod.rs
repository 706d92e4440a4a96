//! The embedded store: one SQLite file in WAL mode, one writer connection and a pool of readers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, ToSql, params, params_from_iter};
use serde_json::Value;

use super::json_from_text;
use super::writer::{Backend, Batch, WriterThread};
use crate::domain::call::{Call, Micros};
use crate::domain::error::{Error, Result};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::{ObjectQuery, ObjectVersion, TableRow, Version};
use crate::domain::page::Page;
use crate::domain::run_rows::{RunHead, RunQuery, RunRow};
use crate::domain::store::{CallEndFields, Store, WriteJob, Writer};
use crate::domain::trace::CallQuery;
use crate::domain::view::{Kind, ViewColumns};

const SCHEMA: &str = include_str!("schema.sql");
const SCHEMA_VERSION: i64 = 2;
/// What opening a store of an older schema version drops before [`SCHEMA`] recreates it,
/// by the version that changed it: 2 narrowed `calls_views` to predictions and scores (runs
/// are looked up by id in the new `calls_runs_ids`).
const MIGRATIONS: &[(i64, &str)] = &[(2, "DROP INDEX IF EXISTS calls_views;")];
/// Most read connections open at once; a read waits for a free one beyond that. Each keeps
/// its prepared statements and a page cache of [`READER_CACHE_KIB`].
const MAX_READERS: usize = 32;
/// Page cache of each read connection, in KiB: room for the pages a repeated lookup of a
/// hundred runs touches, so that it does not read them from the file again.
const READER_CACHE_KIB: usize = 8 * 1024;
/// Memory of all SQLite connections together past which their page caches recycle pages
/// instead of growing, in MiB: many busy readers cannot add up to more.
const SQLITE_HEAP_MIB: u64 = 48;
/// Longest wait for a free read connection; past it the read is refused as a busy server's
/// (503), so that a client retries instead of hanging on a pool held by long streams.
const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Prepared statements each connection keeps: room for every statement of a busy mix.
const STATEMENT_CACHE: usize = 64;

/// SQLite-backed [`Store`]. One thread owns the write connection and commits queued write
/// jobs in batches (group commit); reads use a pool of read-only connections.
pub struct SqliteStore {
    /// The writer thread; first, so that dropping the store stops it before anything else.
    writer: WriterThread,
    path: PathBuf,
    readers: Mutex<ReaderPool>,
    reader_freed: Condvar,
    /// The connection API keys are looked up on, apart from the pool: authentication never
    /// waits behind data reads, however many of them hold the pool's connections.
    keys_reader: Mutex<Option<Connection>>,
    /// Bytes of the file each read connection may memory-map (0: none).
    read_mmap: u64,
}

/// Read connections: the idle ones, and how many are open in all.
#[derive(Default)]
struct ReaderPool {
    idle: Vec<Connection>,
    open: usize,
}

fn storage(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull | C::ReadOnly | C::CannotOpen | C::SystemIoFailure) => {
            Error::StorageFull(e.to_string())
        }
        _ => Error::Storage(e.to_string()),
    }
}

/// A value's JSON text, written straight into a byte buffer (`Display` goes through a
/// formatter, a call per token).
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file `weft.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_quota(dir, None)
    }

    /// Opens the store, refusing writes (507) that would grow the database file past
    /// `quota_mib` MiB, as a full disk would.
    pub fn open_with_quota(dir: &Path, quota_mib: Option<u64>) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::StorageFull(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("weft.db");
        // Errors while opening name the file: a read-only or full disk is then plain to see.
        let at = |e: rusqlite::Error| match storage(e) {
            Error::StorageFull(m) => Error::StorageFull(format!("{}: {m}", path.display())),
            Error::Storage(m) => Error::Storage(format!("{}: {m}", path.display())),
            other => other,
        };
        let writer = Connection::open(&path).map_err(at)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        stable_plans(&writer).map_err(at)?;
        // `rarray`: a bound list of values as a table (object deletes by digest join from it).
        rusqlite::vtab::array::load_module(&writer).map_err(at)?;
        // Statement journals (one savepoint per write job) stay in memory: a batch of jobs
        // would otherwise spill them to a temporary file.
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA temp_store = MEMORY;
                 PRAGMA busy_timeout = 10000;",
            )
            .map_err(at)?;
        let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(at)?;
        if version > SCHEMA_VERSION {
            return Err(Error::Storage(format!(
                "database schema version {version} is newer than this weft ({SCHEMA_VERSION})"
            )));
        }
        // One transaction: a store is left at its old version or fully at the new one.
        let mut upgrade = String::from("BEGIN IMMEDIATE;");
        for (_, sql) in MIGRATIONS.iter().filter(|(to, _)| version < *to) {
            upgrade.push_str(sql);
        }
        upgrade.push_str(SCHEMA);
        upgrade.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"));
        writer.execute_batch(&upgrade).map_err(at)?;
        if let Some(mib) = quota_mib {
            let page: i64 = writer.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(at)?;
            let pages = (mib.saturating_mul(1 << 20) / page.max(1) as u64).max(1);
            // SQLite never shrinks the limit below the current size: the quota then only
            // stops growth.
            writer.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).map_err(at)?;
        }
        writer
            .execute_batch(&format!(
                "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002; \
                 PRAGMA soft_heap_limit = {};",
                SQLITE_HEAP_MIB << 20
            ))
            .map_err(at)?;
        Ok(SqliteStore {
            writer: WriterThread::start(WriteConnection(writer))?,
            path,
            readers: Mutex::new(ReaderPool::default()),
            reader_freed: Condvar::new(),
            keys_reader: Mutex::new(None),
            read_mmap: 0,
        })
    }

    /// The same store, its reads memory-mapping up to `mib` MiB of the file: lookups and deep
    /// pages skip the kernel's page copies, and every page read counts in the server's RSS.
    pub fn with_read_mmap(mut self, mib: u64) -> Self {
        self.read_mmap = mib.saturating_mul(1 << 20);
        self
    }

    /// A read connection: an idle one, a new one while fewer than [`MAX_READERS`] are open,
    /// else the next one freed within [`READER_WAIT`] (503 past it).
    fn reader(&self) -> Result<Reader<'_>> {
        let deadline = std::time::Instant::now() + READER_WAIT;
        let mut pool = lock(&self.readers);
        loop {
            match self.free_reader(pool) {
                Ok(reader) => return reader,
                Err(busy) => pool = busy,
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Unavailable(
                    "The server is busy: no database connection was free in time; retry shortly".into(),
                ));
            }
            pool = self.reader_freed.wait_timeout(pool, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// A read connection without waiting: an idle one, or a new one while fewer than
    /// [`MAX_READERS`] are open; `None` if all are in use.
    fn reader_now(&self) -> Option<Result<Reader<'_>>> {
        self.free_reader(lock(&self.readers)).ok()
    }

    /// An idle or new read connection, or the pool back if all are in use.
    fn free_reader<'a>(
        &'a self,
        mut pool: MutexGuard<'a, ReaderPool>,
    ) -> std::result::Result<Result<Reader<'a>>, MutexGuard<'a, ReaderPool>> {
        if let Some(conn) = pool.idle.pop() {
            return Ok(Ok(Reader { store: self, conn: Some(conn) }));
        }
        if pool.open >= MAX_READERS {
            return Err(pool);
        }
        pool.open += 1;
        drop(pool);
        Ok(match self.open_reader() {
            Ok(conn) => Ok(Reader { store: self, conn: Some(conn) }),
            Err(e) => {
                lock(&self.readers).open -= 1;
                self.reader_freed.notify_one();
                Err(e)
            }
        })
    }

    fn open_reader(&self) -> Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage)?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        stable_plans(&c).map_err(storage)?;
        // `rarray`: a bound list of values as a table, which id lookups join from.
        rusqlite::vtab::array::load_module(&c).map_err(storage)?;
        c.execute_batch(&format!(
            "PRAGMA busy_timeout = 10000; PRAGMA cache_size = -{READER_CACHE_KIB}; \
             PRAGMA mmap_size = {};",
            self.read_mmap
        ))
        .map_err(storage)?;
        Ok(c)
    }

    /// Writes a consistent copy of the database to `target` while the store stays in use
    /// (SQLite's online backup, all pages in one step from one read snapshot).
    pub fn backup(&self, target: &Path) -> Result<()> {
        if target.exists() {
            return Err(Error::BadRequest(format!("{} exists already", target.display())));
        }
        let result = self.backup_to(target);
        if result.is_err() {
            // Leave no partial copy behind.
            let _ = std::fs::remove_file(target);
        }
        result
    }

    fn backup_to(&self, target: &Path) -> Result<()> {
        let src = self.reader()?;
        let mut dst = Connection::open(target).map_err(storage)?;
        {
            use rusqlite::backup::{Backup, StepResult};
            let backup = Backup::new(&src, &mut dst).map_err(storage)?;
            // -1: every page in one step, so the copy is one snapshot; retry while busy.
            let mut done = false;
            for _ in 0..1000 {
                if matches!(backup.step(-1).map_err(storage)?, StepResult::Done) {
                    done = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if !done {
                return Err(Error::Storage("the database stayed busy: backup not taken".into()));
            }
        }
        dst.execute_batch("PRAGMA journal_mode = DELETE;").map_err(storage)?;
        let ok: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(storage)?;
        if ok != "ok" {
            return Err(Error::Storage(format!("backup failed its integrity check: {ok}")));
        }
        Ok(())
    }

    /// Refreshes the query planner's statistics (cheap when nothing changed much).
    pub fn optimize(&self) -> Result<()> {
        let conn = Connection::open(&self.path).map_err(storage)?;
        conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA analysis_limit = 1000; PRAGMA optimize;")
            .map_err(storage)
    }
}

/// The write connection, owned by the writer thread.
struct WriteConnection(Connection);

impl Backend for WriteConnection {
    type Batch<'a> = Transaction<'a>;

    fn begin(&mut self) -> Result<Transaction<'_>> {
        exec(&self.0, "BEGIN IMMEDIATE")?;
        Ok(Transaction { tx: Tx(&self.0), last_error: None })
    }
}

/// A batch of jobs in one transaction, each job in its own savepoint so that one job's error
/// undoes only its own writes.
struct Transaction<'a> {
    tx: Tx<'a>,
    /// The error of the batch's last failed job.
    last_error: Option<Error>,
}

impl Batch for Transaction<'_> {
    fn begin_job(&mut self) -> Result<()> {
        let begun = exec(&self.tx, "SAVEPOINT job");
        if let Err(e) = &begun {
            self.last_error = Some(e.clone());
        }
        begun
    }

    fn writer(&mut self) -> &mut dyn Writer {
        &mut self.tx
    }

    fn end_job(&mut self, outcome: Result<()>) -> Result<()> {
        let conn = self.tx.0;
        let ended = if outcome.is_ok() {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        // The job's own error says more than a failure to undo it.
        let outcome = outcome.and(ended);
        if let Err(e) = &outcome {
            self.last_error = Some(e.clone());
        }
        outcome
    }

    fn commit(self) -> Result<()> {
        let conn = self.tx.0;
        // Some errors (a full disk, say) make SQLite roll the whole transaction back: then
        // every job of the batch is lost, and each is told so.
        let committed = if conn.is_autocommit() {
            Err(self.last_error.unwrap_or_else(|| Error::Storage("the transaction was rolled back".into())))
        } else {
            exec(conn, "COMMIT")
        };
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        committed
    }
}

/// Runs a statement of the writer's transaction control, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut s| s.raw_execute()).map(drop).map_err(storage)
}

/// The write connection inside a transaction, as the domain's [`Writer`].
struct Tx<'a>(&'a Connection);

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0
    }
}

/// Plans each statement once: without this, a statement whose bound values might change its
/// plan is planned again on every execution, which cost a fifth of the CPU of a filtered page.
fn stable_plans(c: &Connection) -> rusqlite::Result<()> {
    c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(|_| ())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the connection usable: SQLite rolls back.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pooled read connection, returned to the pool on drop.
struct Reader<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("reader connection present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            lock(&self.store.readers).idle.push(c);
            self.store.reader_freed.notify_one();
        }
    }
}

const CALL_COLUMNS: &str = "project_id, id, trace_id, parent_id, op_name, display_name, started_at, \
     ended_at, exception, attributes, inputs, output, summary, wb_user_id";

fn call_from_row(r: &Row<'_>) -> rusqlite::Result<Call> {
    let json = |i: usize| -> rusqlite::Result<Option<Value>> {
        Ok(r.get_ref(i)?.as_str_or_null()?.map(json_from_text))
    };
    Ok(Call {
        project_id: r.get(0)?,
        id: r.get(1)?,
        trace_id: r.get(2)?,
        parent_id: r.get(3)?,
        op_name: r.get(4)?,
        display_name: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        exception: r.get(8)?,
        attributes: json(9)?.unwrap_or(Value::Null),
        inputs: json(10)?.unwrap_or(Value::Null),
        output: json(11)?,
        summary: json(12)?,
        wb_user_id: r.get(13)?,
    })
}

fn read_call(conn: &Connection, project: &str, id: &str) -> Result<Option<Call>> {
    conn.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL"
    ))
    .map_err(storage)?
    .query_row(params![project, id], call_from_row)
    .optional()
    .map_err(storage)
}

fn limit_offset(page: Page) -> (i64, i64) {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    (page.limit.map_or(-1, clamp), clamp(page.offset))
}

/// The columns of a run row, in `RunRow` order; `started_at` is the 7th and `id` the 1st.
const RUN_COLUMNS: &str = "c.id, evaluation, model, run_id, display_name, op_name, started_at, ended_at, \
     exception IS NOT NULL, \
     EXISTS (SELECT 1 FROM calls f WHERE f.project_id = c.project_id \
       AND f.trace_id = c.trace_id AND f.id != c.id \
       AND f.exception IS NOT NULL AND f.deleted_at IS NULL), \
     summary, \
     CASE WHEN logged_run THEN output END";

/// The largest offset an unfiltered list reads through `calls_runs_rows`, whose entries hold
/// whole rows; deeper pages skip entries in the narrow `calls_runs` (about 4× fewer pages).
const WIDE_INDEX_MAX_OFFSET: u64 = 1_000;

/// Most arms of a run list's merge: SQLite takes at most 500 in one compound statement.
const MAX_ARMS: usize = 100;

/// An argument of a statement: a text value, or a list bound as one value (read with
/// `rarray(?)`).
enum Arg<'a> {
    Text(&'a str),
    Ids(Rc<Vec<rusqlite::types::Value>>),
}

impl Arg<'_> {
    /// A list of texts, bound as one value for `rarray(?)`.
    fn list<'v>(values: impl IntoIterator<Item = &'v str>) -> Self {
        Arg::Ids(Rc::new(values.into_iter().map(|v| v.to_string().into()).collect()))
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Text(s) => s.to_sql(),
            Arg::Ids(ids) => ids.to_sql(),
        }
    }
}

/// The SQL and arguments of a run list. A filter on several evaluations or models is a
/// merge of one ordered index range per value (SQLite merges `UNION ALL` arms that each
/// come sorted), so a page reads about as many rows as it returns, however the filtered
/// runs are spread over time.
fn run_list_sql<'a>(project: &'a str, q: &'a RunQuery) -> (String, Vec<Arg<'a>>) {
    let dedup = |v: &'a [String]| {
        let mut seen = HashSet::with_capacity(v.len());
        v.iter().map(String::as_str).filter(|s| seen.insert(*s)).collect::<Vec<&str>>()
    };
    let (evaluations, models, ids) = (dedup(&q.evaluations), dedup(&q.models), dedup(&q.ids));
    let unfiltered = ids.is_empty() && models.is_empty() && evaluations.is_empty();
    let index = if !ids.is_empty() {
        // Looking runs up by id is one point lookup per id, joined from the list of ids as
        // given (no index of the ids is built first), whatever the statistics say.
        "INDEXED BY calls_runs_ids"
    } else if unfiltered && q.page.offset <= WIDE_INDEX_MAX_OFFSET {
        "INDEXED BY calls_runs_rows"
    } else if unfiltered {
        // The planner would rather read the covering index; skipping is cheaper in this one.
        "INDEXED BY calls_runs"
    } else {
        ""
    };
    // The dimension split into merged arms: the models, else the evaluations (not for ids,
    // nor for more values than a statement may have arms: those are looked up in a set).
    let (arm_column, arms): (&str, Vec<&str>) = if !ids.is_empty() {
        ("", vec![""])
    } else if (1..=MAX_ARMS).contains(&models.len()) {
        ("model", models.clone())
    } else if (1..=MAX_ARMS).contains(&evaluations.len()) {
        ("evaluation", evaluations.clone())
    } else {
        ("", vec![""])
    };
    let mut sql = String::new();
    let mut args = Vec::new();
    for (n, arm) in arms.iter().enumerate() {
        if n > 0 {
            sql.push_str(" UNION ALL ");
        }
        if ids.is_empty() {
            sql.push_str(&format!("SELECT {RUN_COLUMNS} FROM calls c {index} WHERE"));
        } else {
            sql.push_str(&format!(
                "SELECT {RUN_COLUMNS} FROM rarray(?) ids CROSS JOIN calls c {index} WHERE c.id = ids.value AND"
            ));
            args.push(Arg::Ids(Rc::new(ids.iter().map(|id| id.to_string().into()).collect())));
        }
        sql.push_str(" c.project_id = ? AND kind = 'run' AND deleted_at IS NULL");
        args.push(Arg::Text(project));
        if !arm_column.is_empty() {
            sql.push_str(&format!(" AND {arm_column} = ?"));
            args.push(Arg::Text(arm));
        }
        for (column, values) in [("evaluation", &evaluations), ("model", &models)] {
            if !values.is_empty() && column != arm_column {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::list(values.iter().copied()));
            }
        }
    }
    sql.push_str(" ORDER BY 7, 1");
    // Without a LIMIT clause, rows that need sorting (a lookup by ids) go through SQLite's
    // sorter; with one, through a temporary b-tree, an insert per row.
    if q.page != Page::default() {
        let (limit, offset) = limit_offset(q.page);
        sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    (sql, args)
}

/// Streams the runs of a run list through `conn`.
fn eval_runs_on(
    conn: &Connection,
    project: &str,
    q: &RunQuery,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    let (sql, args) = run_list_sql(project, q);
    let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
    while let Some(r) = rows.next().map_err(storage)? {
        let text = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?));
        let row = (|| -> rusqlite::Result<RunRow<'_>> {
            Ok(RunRow {
                id: text(0)?.unwrap_or(""),
                evaluation: text(1)?.unwrap_or(""),
                model: text(2)?.unwrap_or(""),
                source_run_id: text(3)?,
                display_name: text(4)?,
                op_name: text(5)?.unwrap_or(""),
                started_at: r.get(6)?,
                ended_at: r.get(7)?,
                failed: r.get(8)?,
                descendant_failed: r.get(9)?,
                summary: text(10)?,
                output: text(11)?,
            })
        })()
        .map_err(storage)?;
        if !sink(&row) {
            break;
        }
    }
    Ok(())
}

/// Inserts a call's row, `conflict` saying what a taken id does; returns the rows inserted.
fn insert_call_row(conn: &Connection, c: &Call, conflict: &str) -> rusqlite::Result<usize> {
    let v = ViewColumns::of(c);
    conn.prepare_cached(&format!(
        "INSERT INTO calls (project_id, id, trace_id, parent_id, op_name, display_name, \
         started_at, ended_at, exception, attributes, inputs, output, summary, wb_user_id, \
         kind, evaluation, model, run_id, logged_run) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) {conflict}"
    ))?
    .execute(params![
        c.project_id,
        c.id,
        c.trace_id,
        c.parent_id,
        c.op_name,
        c.display_name,
        c.started_at,
        c.ended_at,
        c.exception,
        json_text(&c.attributes),
        json_text(&c.inputs),
        c.output.as_ref().map(json_text),
        c.summary.as_ref().map(json_text),
        c.wb_user_id,
        v.kind.tag(),
        v.evaluation,
        v.model,
        v.run_id,
        v.logged_run,
    ])
}

/// The ordered row digests of a table, if it exists.
fn table_digests(conn: &Connection, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT row_digests FROM tables WHERE project_id = ?1 AND digest = ?2")
        .map_err(storage)?
        .query_row(params![project, digest], |r| r.get(0))
        .optional()
        .map_err(storage)?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or_default()))
}

impl Writer for Tx<'_> {
    fn insert_call(&mut self, c: &Call) -> Result<()> {
        match insert_call_row(self, c, "") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::BadRequest(format!("Call {} already exists", c.id)))
            }
            other => other.map(drop).map_err(storage),
        }
    }

    fn insert_new_call(&mut self, c: &Call) -> Result<bool> {
        // One probe of the id index, the insert's own, instead of a lookup before it.
        insert_call_row(self, c, "ON CONFLICT (project_id, id) DO NOTHING").map(|n| n > 0).map_err(storage)
    }

    fn update_call(&mut self, c: &Call) -> Result<()> {
        let v = ViewColumns::of(c);
        self.prepare_cached(
            "UPDATE calls SET op_name = ?3, display_name = ?4, started_at = ?5, ended_at = ?6, \
             exception = ?7, attributes = ?8, inputs = ?9, output = ?10, summary = ?11, \
             kind = ?12, evaluation = ?13, model = ?14, run_id = ?15, trace_id = ?16, \
             parent_id = ?17, wb_user_id = ?18, logged_run = ?19 \
             WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        )
        .map_err(storage)?
        .execute(params![
            c.project_id,
            c.id,
            c.op_name,
            c.display_name,
            c.started_at,
            c.ended_at,
            c.exception,
            json_text(&c.attributes),
            json_text(&c.inputs),
            c.output.as_ref().map(json_text),
            c.summary.as_ref().map(json_text),
            v.kind.tag(),
            v.evaluation,
            v.model,
            v.run_id,
            c.trace_id,
            c.parent_id,
            c.wb_user_id,
            v.logged_run,
        ])
        .map(drop)
        .map_err(storage)
    }

    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>> {
        read_call(self, project, id)
    }

    fn run_head(&mut self, project: &str, id: &str) -> Result<Option<RunHead>> {
        // The view columns are derived on every write, so `kind` tells a run as
        // `RunHead::of` would, without reading the JSON fields.
        self.prepare_cached(
            "SELECT trace_id, started_at, wb_user_id, evaluation FROM calls \
             WHERE project_id = ?1 AND id = ?2 AND kind = 'run' AND deleted_at IS NULL",
        )
        .map_err(storage)?
        .query_row(params![project, id], |r| {
            Ok(RunHead {
                id: id.to_string(),
                trace_id: r.get(0)?,
                started_at: r.get(1)?,
                wb_user_id: r.get(2)?,
                evaluation: r.get(3)?,
            })
        })
        .optional()
        .map_err(storage)
    }

    fn call_exists(&mut self, project: &str, id: &str) -> Result<bool> {
        self.prepare_cached("SELECT 1 FROM calls WHERE project_id = ?1 AND id = ?2")
            .map_err(storage)?
            .exists(params![project, id])
            .map_err(storage)
    }

    fn end_call(&mut self, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
        self.prepare_cached(
            "UPDATE calls SET ended_at = ?3, exception = ?4, output = ?5, summary = ?6 \
             WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        )
        .map_err(storage)?
        .execute(params![
            project,
            id,
            end.ended_at,
            end.exception,
            json_text(end.output),
            json_text(end.summary)
        ])
        .map(|n| n > 0)
        .map_err(storage)
    }

    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>> {
        let mut stmt = self
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1 AND parent_id = ?2 \
                 AND deleted_at IS NULL ORDER BY started_at, id"
            ))
            .map_err(storage)?;
        let rows = stmt.query_map(params![project, parent_id], call_from_row).map_err(storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
    }

    fn put_object(&mut self, o: &ObjectVersion) -> Result<ObjectVersion> {
        let existing = self
            .prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3"
            ))
            .map_err(storage)?
            .query_row(params![o.project_id, o.object_id, o.digest], object_from_row)
            .optional()
            .map_err(storage)?;
        if let Some(found) = existing {
            self.execute(
                "UPDATE objects SET deleted_at = NULL WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3",
                params![o.project_id, o.object_id, o.digest],
            )
            .map_err(storage)?;
            return Ok(found);
        }
        let next: i64 = self
            .prepare_cached(
                "SELECT COALESCE(MAX(version_index) + 1, 0) FROM objects WHERE project_id = ?1 AND object_id = ?2",
            )
            .map_err(storage)?
            .query_row(params![o.project_id, o.object_id], |r| r.get(0))
            .map_err(storage)?;
        self.prepare_cached(&format!(
            "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))
        .map_err(storage)?
        .execute(params![
            o.project_id,
            o.object_id,
            o.digest,
            next,
            o.kind,
            o.base_object_class,
            o.leaf_object_class,
            json_text(&o.val),
            o.created_at,
            o.wb_user_id,
        ])
        .map_err(storage)?;
        Ok(ObjectVersion { version_index: next, ..o.clone() })
    }

    fn delete_objects(
        &mut self,
        project: &str,
        object_id: &str,
        digests: Option<&[String]>,
        at: Micros,
    ) -> Result<u64> {
        let mut sql = String::from(
            "UPDATE objects SET deleted_at = ? WHERE project_id = ? AND object_id = ? AND deleted_at IS NULL",
        );
        let at = at.to_string();
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(&at), Arg::Text(project), Arg::Text(object_id)];
        if let Some(d) = digests {
            sql.push_str(" AND digest IN rarray(?)");
            args.push(Arg::list(d.iter().map(String::as_str)));
        }
        let n =
            self.prepare_cached(&sql).and_then(|mut s| s.execute(params_from_iter(args))).map_err(storage)?;
        Ok(n as u64)
    }

    fn put_table(
        &mut self,
        project: &str,
        digest: &str,
        rows: &[(String, String)],
        row_digests: &[String],
    ) -> Result<()> {
        let mut insert_row = self
            .prepare_cached("INSERT OR IGNORE INTO table_rows (project_id, digest, val) VALUES (?1, ?2, ?3)")
            .map_err(storage)?;
        for (d, val) in rows {
            insert_row.execute(params![project, d, val]).map_err(storage)?;
        }
        let digests = serde_json::to_string(row_digests).map_err(|e| Error::Storage(e.to_string()))?;
        self.prepare_cached(
            "INSERT OR IGNORE INTO tables (project_id, digest, row_digests) VALUES (?1, ?2, ?3)",
        )
        .map_err(storage)?
        .execute(params![project, digest, digests])
        .map(drop)
        .map_err(storage)
    }

    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()> {
        self.prepare_cached("INSERT OR IGNORE INTO files (project_id, digest, content) VALUES (?1, ?2, ?3)")
            .map_err(storage)?
            .execute(params![project, digest, content])
            .map(drop)
            .map_err(storage)
    }

    fn insert_feedback(&mut self, f: &Feedback) -> Result<()> {
        self.prepare_cached(&format!("INSERT OR IGNORE INTO feedback ({FEEDBACK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"))
            .map_err(storage)?
            .execute(params![
                f.project_id,
                f.id,
                f.weave_ref,
                f.feedback_type,
                json_text(&f.payload),
                f.creator,
                f.created_at,
                f.wb_user_id,
                f.annotation_ref,
                f.runnable_ref,
                f.call_ref,
                f.trigger_ref,
            ])
            .map(drop)
            .map_err(storage)
    }

    fn put_key(&mut self, k: &ApiKey) -> Result<()> {
        let entities = serde_json::to_string(&k.entities).map_err(|e| Error::Storage(e.to_string()))?;
        self.execute(
            &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![k.id, k.hash, entities, k.admin, k.created_at, k.revoked_at],
        )
        .map(drop)
        .map_err(storage)
    }

    fn revoke_key(&mut self, id: &str, at: Micros) -> Result<bool> {
        self.execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, at],
        )
        .map(|n| n > 0)
        .map_err(storage)
    }

    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64> {
        // `UNION`, not `UNION ALL`: a call reached twice is walked once, so parent links that
        // form a cycle (which a client can write) end the walk instead of looping forever.
        let n = self
            .prepare_cached(
                "WITH RECURSIVE sub(id) AS ( \
                   SELECT id FROM calls WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL \
                   UNION \
                   SELECT c.id FROM calls c JOIN sub ON c.project_id = ?1 AND c.parent_id = sub.id \
                   WHERE c.deleted_at IS NULL) \
                 UPDATE calls SET deleted_at = ?3 WHERE project_id = ?1 AND id IN (SELECT id FROM sub)",
            )
            .map_err(storage)?
            .execute(params![project, id, at])
            .map_err(storage)?;
        Ok(n as u64)
    }
}

const FEEDBACK_COLUMNS: &str = "project_id, id, weave_ref, feedback_type, payload, creator, created_at, \
     wb_user_id, annotation_ref, runnable_ref, call_ref, trigger_ref";

fn feedback_from_row(r: &Row<'_>) -> rusqlite::Result<Feedback> {
    Ok(Feedback {
        project_id: r.get(0)?,
        id: r.get(1)?,
        weave_ref: r.get(2)?,
        feedback_type: r.get(3)?,
        payload: json_from_text(r.get_ref(4)?.as_str()?),
        creator: r.get(5)?,
        created_at: r.get(6)?,
        wb_user_id: r.get(7)?,
        annotation_ref: r.get(8)?,
        runnable_ref: r.get(9)?,
        call_ref: r.get(10)?,
        trigger_ref: r.get(11)?,
    })
}

const OBJECT_COLUMNS: &str = "project_id, object_id, digest, version_index, kind, base_object_class, \
     leaf_object_class, val, created_at, wb_user_id";

fn object_from_row(r: &Row<'_>) -> rusqlite::Result<ObjectVersion> {
    Ok(ObjectVersion {
        project_id: r.get(0)?,
        object_id: r.get(1)?,
        digest: r.get(2)?,
        version_index: r.get(3)?,
        kind: r.get(4)?,
        base_object_class: r.get(5)?,
        leaf_object_class: r.get(6)?,
        val: json_from_text(r.get_ref(7)?.as_str()?),
        created_at: r.get(8)?,
        wb_user_id: r.get(9)?,
    })
}

/// An object version and whether it is its object's latest live version.
fn object_with_latest(r: &Row<'_>) -> rusqlite::Result<(ObjectVersion, bool)> {
    Ok((object_from_row(r)?, r.get(10)?))
}

const IS_LATEST: &str = "version_index = (SELECT MAX(l.version_index) FROM objects l \
     WHERE l.project_id = o.project_id AND l.object_id = o.object_id AND l.deleted_at IS NULL)";

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let entities: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        hash: r.get(1)?,
        entities: serde_json::from_str(&entities).unwrap_or_default(),
        admin: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

const KEY_COLUMNS: &str = "id, hash, entities, admin, created_at, revoked_at";

impl Store for SqliteStore {
    fn submit(&self, job: WriteJob) {
        self.writer.submit(job);
    }

    fn eval_runs(
        &self,
        project: &str,
        q: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        eval_runs_on(&*self.reader()?, project, q, sink)
    }

    fn eval_runs_now(
        &self,
        project: &str,
        q: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Option<Result<()>> {
        Some(self.reader_now()?.and_then(|conn| eval_runs_on(&conn, project, q, sink)))
    }

    fn view_calls(
        &self,
        project: &str,
        kind: Kind,
        run_id: Option<&str>,
        page: Page,
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        let (limit, offset) = limit_offset(page);
        let run_filter = if run_id.is_some() { "AND run_id = ?2" } else { "AND ?2 IS NULL" };
        // The kind is a literal (one of a few static tags): plans are made once, before any
        // value is bound, and only a literal lets the planner pick the partial `calls_views`.
        let Some(kind) = kind.tag() else {
            return Ok(());
        };
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1 AND kind = '{kind}' \
                 AND deleted_at IS NULL {run_filter} ORDER BY started_at, id LIMIT ?3 OFFSET ?4"
            ))
            .map_err(storage)?;
        let mut rows = stmt.query(params![project, run_id, limit, offset]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(call_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn calls(&self, project: &str, q: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ? AND deleted_at IS NULL");
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(project)];
        // Each list is bound as one value (`rarray`): the statement's text does not grow with
        // the list, so no list is too long for SQLite's limits on a statement.
        for (column, values) in [
            ("id", &q.call_ids),
            ("trace_id", &q.trace_ids),
            ("parent_id", &q.parent_ids),
            ("wb_user_id", &q.wb_user_ids),
        ] {
            if !values.is_empty() {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::list(values.iter().map(String::as_str)));
            }
        }
        if !q.op_names.is_empty() {
            let (mut exact, mut prefixes) = (Vec::new(), Vec::new());
            for op in &q.op_names {
                match op.strip_suffix(":*") {
                    Some(prefix) => prefixes.push(format!("{prefix}:")),
                    None => exact.push(op.as_str()),
                }
            }
            sql.push_str(
                " AND (op_name IN rarray(?) OR EXISTS (SELECT 1 FROM rarray(?) p \
                 WHERE substr(op_name, 1, length(p.value)) = p.value))",
            );
            args.push(Arg::list(exact));
            args.push(Arg::list(prefixes.iter().map(String::as_str)));
        }
        if q.trace_roots_only {
            sql.push_str(" AND parent_id IS NULL");
        }
        let (limit, offset) = limit_offset(q.page);
        let dir = if q.descending { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY started_at {dir}, id {dir} LIMIT {limit} OFFSET {offset}"));
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(call_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn call(&self, project: &str, id: &str) -> Result<Option<Call>> {
        read_call(&*self.reader()?, project, id)
    }

    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>> {
        let (clause, arg) = match version {
            Version::Latest => ("ORDER BY version_index DESC LIMIT 1", None),
            Version::Index(i) => ("AND version_index = ?3", Some(i.to_string())),
            Version::Digest(d) => ("AND digest = ?3", Some(d.clone())),
        };
        let sql = format!(
            "SELECT {OBJECT_COLUMNS}, {IS_LATEST} FROM objects o WHERE project_id = ?1 AND object_id = ?2 \
             AND deleted_at IS NULL {}",
            if arg.is_some() { clause.to_string() } else { format!("AND ?3 IS NULL {clause}") }
        );
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        stmt.query_row(params![project, object_id, arg], object_with_latest).optional().map_err(storage)
    }

    fn objects(
        &self,
        project: &str,
        q: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool) -> bool,
    ) -> Result<()> {
        let mut sql = format!(
            "SELECT {OBJECT_COLUMNS}, {IS_LATEST} FROM objects o WHERE project_id = ? AND deleted_at IS NULL"
        );
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(project)];
        for (column, values) in [("object_id", &q.object_ids), ("base_object_class", &q.base_object_classes)]
        {
            if !values.is_empty() {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::list(values.iter().map(String::as_str)));
            }
        }
        match q.is_op {
            Some(true) => sql.push_str(" AND kind = 'op'"),
            Some(false) => sql.push_str(" AND kind != 'op'"),
            None => {}
        }
        if q.latest_only {
            sql.push_str(&format!(" AND {IS_LATEST}"));
        }
        let (limit, offset) = limit_offset(q.page);
        sql.push_str(&format!(" ORDER BY object_id, version_index LIMIT {limit} OFFSET {offset}"));
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            let (o, latest) = object_with_latest(r).map_err(storage)?;
            if !sink(o, latest) {
                break;
            }
        }
        Ok(())
    }

    fn table_rows(
        &self,
        project: &str,
        digest: &str,
        only: Option<&[String]>,
        page: Page,
    ) -> Result<Option<Vec<TableRow>>> {
        let conn = self.reader()?;
        let Some(list) = table_digests(&conn, project, digest)? else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached("SELECT val FROM table_rows WHERE project_id = ?1 AND digest = ?2")
            .map_err(storage)?;
        let mut rows = Vec::new();
        let wanted = super::wanted_rows(&list, only, page);
        for (i, d) in wanted {
            let val: Option<String> =
                stmt.query_row(params![project, d], |r| r.get(0)).optional().map_err(storage)?;
            if let Some(val) = val {
                rows.push(TableRow {
                    digest: d.clone(),
                    val: json_from_text(&val),
                    original_index: i as i64,
                });
            }
        }
        Ok(Some(rows))
    }

    fn table_len(&self, project: &str, digest: &str) -> Result<Option<u64>> {
        Ok(table_digests(&*self.reader()?, project, digest)?.map(|l| l.len() as u64))
    }

    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        self.reader()?
            .prepare_cached("SELECT content FROM files WHERE project_id = ?1 AND digest = ?2")
            .map_err(storage)?
            .query_row(params![project, digest], |r| r.get(0))
            .optional()
            .map_err(storage)
    }

    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE project_id = ?1 ORDER BY created_at, id"
            ))
            .map_err(storage)?;
        let mut rows = stmt.query([project]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(feedback_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn keys_read_at_once(&self) -> bool {
        true
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let mut conn = lock(&self.keys_reader);
        if conn.is_none() {
            *conn = Some(self.open_reader()?);
        }
        let Some(conn) = conn.as_ref() else {
            return Err(Error::Storage("the keys connection is not open".into()));
        };
        conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL"
        ))
        .map_err(storage)?
        .query_row([hash], key_from_row)
        .optional()
        .map_err(storage)
    }

    fn keys(&self) -> Result<Vec<ApiKey>> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"))
            .map_err(storage)?;
        let rows = stmt.query_map([], key_from_row).map_err(storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, q: &RunQuery) -> String {
        let (sql, args) = run_list_sql("e/p", q);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    fn opcodes(conn: &Connection, q: &RunQuery) -> Vec<String> {
        let (sql, args) = run_list_sql("e/p", q);
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(1)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_lookup_by_ids_sorts_in_the_sorter_unless_paged() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let mut q = RunQuery { ids: vec!["a".into(), "b".into()], ..Default::default() };
        let ops = opcodes(&conn, &q);
        assert!(
            ops.iter().any(|o| o == "SorterOpen") && !ops.iter().any(|o| o == "OpenEphemeral"),
            "{ops:?}"
        );
        q.page = Page { limit: Some(1), offset: 1 };
        assert!(opcodes(&conn, &q).iter().any(|o| o == "OpenEphemeral"));
    }

    #[test]
    fn a_run_head_is_read_as_it_is_derived_from_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 5);
        run.attributes =
            serde_json::json!({"weave": {"evaluation_run": "true", "evaluation": "weave:///e/p/object/E:1"}});
        run.wb_user_id = Some("u".into());
        let other = Call::new("e/p", "Model.predict", 6);
        let gone = Call::new("e/p", "Evaluation.evaluate", 7);
        let (r, o, g) = (run.clone(), other.clone(), gone.clone());
        let heads = crate::domain::store::write(&store, move |w| {
            for c in [&r, &o, &g] {
                w.insert_call(c)?;
            }
            w.delete_subtree("e/p", &g.id, 8)?;
            Ok([&r.id, &o.id, &g.id].map(|id| w.run_head("e/p", id)))
        })
        .unwrap();
        let expected = RunHead::of(&run);
        assert!(
            expected.as_ref().is_some_and(|h| h.evaluation.as_deref() == Some("weave:///e/p/object/E:1"))
        );
        assert_eq!(heads[0].as_ref().unwrap(), &expected);
        assert_eq!(heads[1].as_ref().unwrap(), &None);
        assert_eq!(heads[2].as_ref().unwrap(), &None);
        let in_other_project =
            crate::domain::store::write(&store, move |w| w.run_head("e/q", &run.id)).unwrap();
        assert_eq!(in_other_project, None);
        assert_eq!(RunHead::of(&other), None);
        assert!(RunHead::of(&gone).is_some());
    }

    #[test]
    fn prediction_and_score_lists_read_the_views_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        for kind in ["prediction", "score"] {
            for run_filter in ["AND run_id = ?2", "AND ?2 IS NULL"] {
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT id FROM calls WHERE project_id = ?1 AND kind = '{kind}' \
                     AND deleted_at IS NULL {run_filter} ORDER BY started_at, id LIMIT ?3 OFFSET ?4"
                );
                let plan: String = conn.query_row(&sql, params!["e/p", "r", 10, 0], |r| r.get(3)).unwrap();
                assert!(plan.contains("USING INDEX calls_views"), "{kind} {run_filter}: {plan}");
            }
        }
    }

    #[test]
    fn a_version_1_store_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 5);
        run.attributes = serde_json::json!({"weave": {"evaluation_run": "true"}});
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let r = run.clone();
            crate::domain::store::write(&store, move |w| w.insert_call(&r)).unwrap();
        }
        {
            // The version 1 schema: `calls_views` over every kind, no `calls_runs_ids`.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch(
                "DROP INDEX calls_views; DROP INDEX calls_runs_ids; \
                 CREATE INDEX calls_views ON calls (project_id, kind, run_id, started_at, id) \
                 WHERE kind IS NOT NULL AND deleted_at IS NULL; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let views: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'calls_views'", [], |r| r.get(0))
            .unwrap();
        assert!(views.contains("kind = 'prediction' OR kind = 'score'"), "{views}");
        let entries: i64 =
            conn.query_row("SELECT count(*) FROM calls INDEXED BY calls_runs_ids WHERE id = ?1 AND kind = 'run' AND deleted_at IS NULL", [&run.id], |r| r.get(0)).unwrap();
        assert_eq!(entries, 1);
        let mut found = Vec::new();
        let q = RunQuery { ids: vec![run.id.clone()], ..Default::default() };
        store
            .eval_runs("e/p", &q, &mut |row| {
                found.push(row.id.to_string());
                true
            })
            .unwrap();
        assert_eq!(found, [run.id.clone()]);
    }

    #[test]
    fn a_read_at_once_never_waits_for_a_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let run = Call::new("e/p", "Evaluation.evaluate", 5);
        let r = run.clone();
        crate::domain::store::write(&store, move |w| w.insert_call(&r)).unwrap();
        let q = RunQuery { ids: vec![run.id.clone()], ..Default::default() };
        let count = |store: &SqliteStore| {
            let mut n = 0;
            store
                .eval_runs_now("e/p", &q, &mut |_| {
                    n += 1;
                    true
                })
                .map(|r| r.map(|()| n).unwrap())
        };
        assert_eq!(count(&store), Some(1));
        let held: Vec<_> = (0..MAX_READERS).map(|_| store.reader().unwrap()).collect();
        assert_eq!(count(&store), None, "every connection in use: no wait, no read");
        drop(held);
        assert_eq!(count(&store), Some(1));
    }

    #[test]
    fn connections_plan_each_statement_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        assert!(conn.db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
    }

    #[test]
    fn run_lists_read_the_index_that_suits_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let page = |limit, offset| Page { limit, offset };
        let first = plan(&conn, &RunQuery { page: page(Some(100), 0), ..Default::default() });
        assert!(first.contains("calls_runs_rows"), "{first}");
        let all = plan(&conn, &RunQuery { page: page(None, 0), ..Default::default() });
        assert!(all.contains("calls_runs_rows"), "{all}");
        let deep = plan(&conn, &RunQuery { page: page(Some(100), 50_000), ..Default::default() });
        assert!(deep.contains("calls_runs ") && !deep.contains("calls_runs_rows"), "{deep}");
        let models = RunQuery { models: vec!["m1".into(), "m2".into()], ..Default::default() };
        let filtered = plan(&conn, &models);
        assert!(filtered.contains("calls_runs_model") && !filtered.contains("TEMP B-TREE"), "{filtered}");
        let ids = plan(&conn, &RunQuery { ids: vec!["a".into(), "b".into()], ..Default::default() });
        let (scan, search) =
            (ids.find("SCAN ids"), ids.find("SEARCH c USING INDEX calls_runs_ids (id=? AND project_id=?)"));
        assert!(matches!((scan, search), (Some(a), Some(b)) if a < b), "{ids}");
    }
}
