//! The embedded store: one SQLite file in WAL mode, one writer connection and a pool of readers.
//!
//! Here the store itself: opening it and its pool of read connections. Its schema and
//! migrations are in `schema`, the writer's transaction and the writes of a job (the domain's
//! `Writer`) in `writes`, the reads (the domain's `Store`, run lists among them) in `reads`,
//! each split by resource, API keys in `keys` (those found lately in `key_cache`), backups in
//! `backup`, the columns and rows both reads and writes use in `rows`, the packing of JSON
//! columns in `packed`, call ids as they are stored (a UUID as 16 bytes) in `ids`, the integer
//! keys of project names and run refs in `interned`, and SQLite's allocator (mimalloc) in
//! `alloc`.

mod alloc;
mod backup;
mod ids;
mod interned;
mod key_cache;
mod keys;
mod packed;
mod reads;
mod rows;
mod schema;
mod writes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

pub use self::alloc::{install_mimalloc, uses_mimalloc};
use self::writes::WriteConnection;
use super::writer::WriterThread;
use crate::domain::error::{Error, Result};

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

/// SQLite-backed [`Store`](crate::domain::store::Store). One thread owns the write connection and commits queued write
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
    /// The keys found unrevoked lately (see `key_cache`).
    key_cache: Arc<key_cache::KeyCache>,
    /// Bytes of the file each read connection may memory-map (0: none).
    read_mmap: u64,
    /// The committed dictionaries calls are packed with before their job is queued.
    dicts: Arc<packed::Dicts>,
    /// The keys of projects and run refs and the texts of run refs, as read connections
    /// found them.
    read_keys: interned::ReadKeys,
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
        packed::register(&writer).map_err(at)?;
        ids::register(&writer).map_err(at)?;
        interned::register(&writer).map_err(at)?;
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
        schema::upgrade(&writer, at)?;
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
        let dicts = Arc::new(packed::Dicts::default());
        let key_cache = Arc::new(key_cache::KeyCache::default());
        Ok(SqliteStore {
            writer: WriterThread::start(WriteConnection(
                writer,
                packed::Packer::new(dicts.clone()),
                interned::Interner::default(),
                key_cache.clone(),
            ))?,
            dicts,
            key_cache,
            read_keys: interned::ReadKeys::default(),
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
        packed::register(&c).map_err(storage)?;
        ids::register(&c).map_err(storage)?;
        interned::register(&c).map_err(storage)?;
        c.execute_batch(&format!(
            "PRAGMA busy_timeout = 10000; PRAGMA cache_size = -{READER_CACHE_KIB}; \
             PRAGMA mmap_size = {};",
            self.read_mmap
        ))
        .map_err(storage)?;
        Ok(c)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::Call;
    use crate::domain::run_rows::RunQuery;
    use crate::domain::store::Store;

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
}
