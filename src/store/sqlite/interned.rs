//! Integer keys of what the calls table repeats: a project's name (`projects`), the
//! evaluation and model refs of runs (`run_refs`, per project), and calls' op names and user
//! ids (`call_names`, per project). The calls table's `project_id`, `evaluation`, `model`,
//! `op_name` and `wb_user_id` hold these keys, which are rowids: never changed nor deleted
//! once committed.
//!
//! Statements name a project by its name through the uncorrelated scalar subquery
//! [`project_key`], which SQLite evaluates once per statement: an unknown name is NULL, which
//! no row equals, so it reads as empty. Run lists bind the keys instead (an unknown name: no
//! run), found through [`ReadKeys`]. Calls are written with keys the writer
//! holds in an [`Interner`], which keeps a key made by a job only while that job (and then its
//! batch) stands: a key an undone job made is forgotten with it, since another name may take
//! it. [`ReadKeys`], which run lists read refs and op names back through too, only read
//! connections fill: they see committed keys alone.
//!
//! Op names and user ids read back as text through the SQL function [`NAME`], which each
//! connection answers from a bounded cache of its own, dropped whenever a job or batch is
//! undone (the writer may have read a key it made). Filters on them resolve the project's
//! matching keys in the statement (`op_name IN (SELECT id FROM call_names ...)`), once per
//! statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

/// The SQL function reading a key of `call_names` (an op name, a user id) as its text; NULL
/// as NULL.
pub(super) const NAME: &str = "weft_name";

/// `column` (`op_name`, `wb_user_id`) as its text.
pub(super) fn name_of(column: &str) -> String {
    format!("{NAME}({column})")
}

/// The keys of `call_names` of the project bound as `project` (a key or, see [`Project`],
/// through [`project_key`]) whose names are in the list bound as `list` (`rarray`).
pub(super) fn name_keys(project: &str, list: &str) -> String {
    format!("(SELECT n.id FROM call_names n WHERE n.project_id = {project} AND n.name IN rarray({list}))")
}

/// A hasher for integer keys: one multiplication (keys are rowids, spread by it).
#[derive(Default, Clone, Copy)]
pub(super) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map by integer key, hashed by [`KeyHasher`].
pub(super) type KeyMap<V> = HashMap<i64, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// A name [`NAME`] answers, handed to SQLite without another copy of its text.
struct NameText(Arc<str>);

impl rusqlite::ToSql for NameText {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
    }
}

/// Bumped whenever a write job or batch is undone: a key it made may be taken by another
/// name, so every connection's [`NAME`] drops the texts it keeps (the writer's may hold such
/// a key's; read connections never saw one, and merely start afresh).
static FORGOTTEN: AtomicU64 = AtomicU64::new(0);

/// The texts one connection's [`NAME`] keeps, as of a [`FORGOTTEN`] count.
#[derive(Default)]
struct SeenNames {
    texts: KeyMap<Arc<str>>,
    as_of: u64,
}

/// Registers [`NAME`] on a connection, which keeps the texts it read, at most [`MAX_KEYS`]:
/// a committed key never changes, and those an undone job made are dropped (see
/// [`FORGOTTEN`]).
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // A connection runs one statement step at a time, and reading a name calls no name.
    let seen = std::cell::RefCell::new(SeenNames::default());
    conn.create_scalar_function(
        NAME,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let key = match ctx.get_raw(0) {
                ValueRef::Null => return Ok(None),
                ValueRef::Integer(k) => k,
                _ => return Err(rusqlite::Error::UserFunctionError("a name key is not an integer".into())),
            };
            {
                let mut seen = seen.borrow_mut();
                let forgotten = FORGOTTEN.load(Ordering::Acquire);
                if seen.as_of != forgotten {
                    seen.texts.clear();
                    seen.as_of = forgotten;
                }
                if let Some(t) = seen.texts.get(&key) {
                    return Ok(Some(NameText(t.clone())));
                }
            }
            // SAFETY: the connection is used only to read a name, within this call.
            let conn = unsafe { ctx.get_connection()? };
            let text: Arc<str> = conn
                .query_row("SELECT name FROM call_names WHERE id = ?1", [key], |r| r.get::<_, String>(0))
                .optional()?
                .ok_or_else(|| rusqlite::Error::UserFunctionError(format!("name {key} is missing").into()))?
                .into();
            let mut seen = seen.borrow_mut();
            if seen.texts.len() >= MAX_KEYS {
                seen.texts.clear();
            }
            seen.texts.insert(key, text.clone());
            Ok(Some(NameText(text)))
        },
    )
}

/// The key of the project named by the statement's parameter `param` (`?1`, `?`...).
pub(super) fn project_key(param: &str) -> String {
    format!("(SELECT id FROM projects WHERE name = {param})")
}

/// A project as a statement names it: by its key (read connections, which know it from
/// [`ReadKeys`]) or by its name (the writer, and upgrades), found through [`project_key`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Project<'a> {
    Key(i64),
    Name(&'a str),
}

impl Project<'_> {
    /// What a statement compares `project_id` with, the project bound as `param`.
    pub(super) fn filter(&self, param: &str) -> String {
        match self {
            Project::Key(_) => param.to_string(),
            Project::Name(_) => project_key(param),
        }
    }
}

impl rusqlite::ToSql for Project<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Project::Key(k) => k.to_sql(),
            Project::Name(n) => n.to_sql(),
        }
    }
}

/// Makes the key of a project if it has none yet (SQL alone, for upgrades).
pub(super) const ADD_PROJECT: &str = "INSERT INTO projects (name) VALUES (?1) ON CONFLICT (name) DO NOTHING";

/// Makes the key of a run ref of project key `?1` if it has none yet.
pub(super) const ADD_REF: &str =
    "INSERT INTO run_refs (project_id, ref) VALUES (?1, ?2) ON CONFLICT (project_id, ref) DO NOTHING";

/// Makes the key of a name (an op name, a user id) of project key `?1` if it has none yet.
pub(super) const ADD_NAME: &str =
    "INSERT INTO call_names (project_id, name) VALUES (?1, ?2) ON CONFLICT (project_id, name) DO NOTHING";

/// Most keys an [`Interner`] or a [`ReadKeys`] keeps of each kind; past it, committed ones are
/// dropped and read again when met.
const MAX_KEYS: usize = 4096;

/// Where a key the writer holds was read or made: the current job, the current batch, or a
/// committed transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    Job,
    Batch,
    Committed,
}

/// The writer's keys of project names, run refs and call names.
#[derive(Default)]
pub(super) struct Interner {
    projects: HashMap<String, (i64, Made)>,
    refs: HashMap<(i64, String), (i64, Made)>,
    /// By project key, then name: a name is looked up without a copy of it (two per call).
    names: KeyMap<HashMap<String, (i64, Made)>>,
}

impl Interner {
    /// The key of project `name`, made if it has none.
    pub(super) fn project(&mut self, conn: &Connection, name: &str) -> rusqlite::Result<i64> {
        if let Some((key, _)) = self.projects.get(name) {
            return Ok(*key);
        }
        conn.prepare_cached(ADD_PROJECT)?.execute([name])?;
        let key = conn
            .prepare_cached("SELECT id FROM projects WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        if self.projects.len() >= MAX_KEYS {
            self.projects.retain(|_, (_, made)| *made != Made::Committed);
        }
        // Read or made in this job: kept as the job is.
        self.projects.insert(name.to_string(), (key, Made::Job));
        Ok(key)
    }

    /// The key of run ref `text` of the project of key `project`, made if it has none.
    pub(super) fn run_ref(&mut self, conn: &Connection, project: i64, text: &str) -> rusqlite::Result<i64> {
        // A lookup by a borrowed pair would need a key type of its own; refs are few per call.
        let wanted = (project, text.to_string());
        if let Some((key, _)) = self.refs.get(&wanted) {
            return Ok(*key);
        }
        conn.prepare_cached(ADD_REF)?.execute(rusqlite::params![project, text])?;
        let key = conn
            .prepare_cached("SELECT id FROM run_refs WHERE project_id = ?1 AND ref = ?2")?
            .query_row(rusqlite::params![project, text], |r| r.get(0))?;
        if self.refs.len() >= MAX_KEYS {
            self.refs.retain(|_, (_, made)| *made != Made::Committed);
        }
        self.refs.insert(wanted, (key, Made::Job));
        Ok(key)
    }

    /// The key of name `text` (an op name, a user id) of the project of key `project`, made if
    /// it has none.
    pub(super) fn name(&mut self, conn: &Connection, project: i64, text: &str) -> rusqlite::Result<i64> {
        if let Some((key, _)) = self.names.get(&project).and_then(|names| names.get(text)) {
            return Ok(*key);
        }
        conn.prepare_cached(ADD_NAME)?.execute(rusqlite::params![project, text])?;
        let key = conn
            .prepare_cached("SELECT id FROM call_names WHERE project_id = ?1 AND name = ?2")?
            .query_row(rusqlite::params![project, text], |r| r.get(0))?;
        if self.names.values().map(HashMap::len).sum::<usize>() >= MAX_KEYS {
            for names in self.names.values_mut() {
                names.retain(|_, (_, made)| *made != Made::Committed);
            }
            self.names.retain(|_, names| !names.is_empty());
        }
        self.names.entry(project).or_default().insert(text.to_string(), (key, Made::Job));
        Ok(key)
    }

    /// A job ended: the keys it read or made are kept with the batch, or forgotten with it.
    pub(super) fn end_job(&mut self, kept: bool) {
        if !kept {
            FORGOTTEN.fetch_add(1, Ordering::AcqRel);
        }
        self.settle(Made::Job, kept.then_some(Made::Batch));
    }

    /// The batch committed, or was rolled back: its keys are kept, or forgotten.
    pub(super) fn end_batch(&mut self, committed: bool) {
        if !committed {
            FORGOTTEN.fetch_add(1, Ordering::AcqRel);
        }
        let to = committed.then_some(Made::Committed);
        self.settle(Made::Job, to);
        self.settle(Made::Batch, to);
    }

    fn settle(&mut self, made: Made, to: Option<Made>) {
        let step = |state: &mut Made| -> bool {
            if *state != made {
                return true;
            }
            match to {
                Some(to) => {
                    *state = to;
                    true
                }
                None => false,
            }
        };
        self.projects.retain(|_, (_, state)| step(state));
        self.refs.retain(|_, (_, state)| step(state));
        for names in self.names.values_mut() {
            names.retain(|_, (_, state)| step(state));
        }
        self.names.retain(|_, names| !names.is_empty());
    }
}

/// Keys as read connections found them, shared by them: the texts of run ref keys, and the
/// keys of project names and run refs. Only reads on those connections fill it: they see
/// committed keys alone, and a committed key never changes. A name without a key is not
/// kept (a write may make one).
#[derive(Default)]
pub(super) struct ReadKeys {
    names: RwLock<HashMap<i64, Arc<str>>>,
    call_names: RwLock<HashMap<i64, Arc<str>>>,
    projects: RwLock<HashMap<String, i64>>,
    refs: RwLock<HashMap<(i64, String), i64>>,
}

/// Reads `key` in `map`, else `read` from the store and keeps what it found.
fn cached<K, V>(
    map: &RwLock<HashMap<K, V>>,
    key: &K,
    read: impl FnOnce() -> rusqlite::Result<Option<V>>,
) -> rusqlite::Result<Option<V>>
where
    K: std::hash::Hash + Eq + Clone,
    V: Clone,
{
    if let Some(v) = map.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return Ok(Some(v.clone()));
    }
    let found = read()?;
    if let Some(v) = &found {
        let mut map = map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.clear();
        }
        map.insert(key.clone(), v.clone());
    }
    Ok(found)
}

/// The text of `key` in `map`, else read by `sql` (its one parameter the key) and kept; a
/// key without a row is an error naming `what`.
fn text_of(
    map: &RwLock<HashMap<i64, Arc<str>>>,
    conn: &Connection,
    sql: &str,
    key: i64,
    what: &str,
) -> rusqlite::Result<Arc<str>> {
    cached(map, &key, || {
        conn.prepare_cached(sql)?
            .query_row([key], |r| r.get::<_, String>(0))
            .optional()
            .map(|t| t.map(Arc::from))
    })?
    .ok_or_else(|| rusqlite::Error::UserFunctionError(format!("{what} {key} is missing").into()))
}

impl ReadKeys {
    /// The text of ref `key`, read through `conn` (a read connection) when not known yet.
    pub(super) fn name(&self, conn: &Connection, key: i64) -> rusqlite::Result<Arc<str>> {
        text_of(&self.names, conn, "SELECT ref FROM run_refs WHERE id = ?1", key, "run ref")
    }

    /// The text of call name `key` (an op name, a user id), read through `conn` (a read
    /// connection) when not known yet.
    pub(super) fn call_name(&self, conn: &Connection, key: i64) -> rusqlite::Result<Arc<str>> {
        text_of(&self.call_names, conn, "SELECT name FROM call_names WHERE id = ?1", key, "name")
    }

    /// The key of project `name`, if it has one, read through `conn` (a read connection).
    pub(super) fn project(&self, conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
        cached(&self.projects, &name.to_string(), || {
            conn.prepare_cached("SELECT id FROM projects WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()
        })
    }

    /// The key of run ref `text` of the project of key `project`, if it has one.
    pub(super) fn run_ref(
        &self,
        conn: &Connection,
        project: i64,
        text: &str,
    ) -> rusqlite::Result<Option<i64>> {
        cached(&self.refs, &(project, text.to_string()), || {
            conn.prepare_cached("SELECT id FROM run_refs WHERE project_id = ?1 AND ref = ?2")?
                .query_row(rusqlite::params![project, text], |r| r.get(0))
                .optional()
        })
    }
}

/// A run row's ref texts and op name, by key, within one statement: each key's text looked
/// up once.
pub(super) struct RowRefs<'n> {
    names: &'n ReadKeys,
    seen: KeyMap<Arc<str>>,
    call_names: KeyMap<Arc<str>>,
}

impl<'n> RowRefs<'n> {
    pub(super) fn new(names: &'n ReadKeys) -> Self {
        RowRefs { names, seen: KeyMap::default(), call_names: KeyMap::default() }
    }

    /// The text of a stored key of `call_names` (an op name).
    pub(super) fn call_name(&mut self, conn: &Connection, key: i64) -> rusqlite::Result<Arc<str>> {
        let names = self.names;
        remembered(&mut self.call_names, key, || names.call_name(conn, key))
    }

    /// The text of a stored key (NULL: none).
    pub(super) fn text(&mut self, conn: &Connection, key: Option<i64>) -> rusqlite::Result<Option<Arc<str>>> {
        let Some(key) = key else {
            return Ok(None);
        };
        let names = self.names;
        remembered(&mut self.seen, key, || names.name(conn, key)).map(Some)
    }
}

/// The text of `key` in `seen`, else `read` and kept there (at most [`MAX_KEYS`]).
fn remembered(
    seen: &mut KeyMap<Arc<str>>,
    key: i64,
    read: impl FnOnce() -> rusqlite::Result<Arc<str>>,
) -> rusqlite::Result<Arc<str>> {
    if let Some(t) = seen.get(&key) {
        return Ok(t.clone());
    }
    let t = read()?;
    if seen.len() >= MAX_KEYS {
        seen.clear();
    }
    seen.insert(key, t.clone());
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE); \
             CREATE TABLE run_refs (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, \
             ref TEXT NOT NULL, UNIQUE (project_id, ref)); \
             CREATE TABLE call_names (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, \
             name TEXT NOT NULL, UNIQUE (project_id, name));",
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_key_made_by_an_undone_job_or_batch_is_forgotten() {
        let conn = store();
        let mut keys = Interner::default();
        conn.execute_batch("BEGIN; SAVEPOINT job;").unwrap();
        let a = keys.project(&conn, "e/a").unwrap();
        let r = keys.run_ref(&conn, a, "weave:///e/a/object/E:1").unwrap();
        let n = keys.name(&conn, a, "weave:///e/a/op/A:1").unwrap();
        conn.execute_batch("ROLLBACK TO job; RELEASE job;").unwrap();
        keys.end_job(false);
        // Another name takes the same keys.
        conn.execute_batch("SAVEPOINT job;").unwrap();
        let b = keys.project(&conn, "e/b").unwrap();
        let s = keys.run_ref(&conn, b, "weave:///e/b/object/M:1").unwrap();
        let m = keys.name(&conn, b, "weave:///e/b/op/B:1").unwrap();
        assert_eq!((a, r, n), (b, s, m));
        conn.execute_batch("RELEASE job;").unwrap();
        keys.end_job(true);
        assert_eq!(keys.project(&conn, "e/b").unwrap(), b);
        conn.execute_batch("ROLLBACK;").unwrap();
        keys.end_batch(false);
        assert!(keys.projects.is_empty() && keys.refs.is_empty() && keys.names.is_empty());
        conn.execute_batch("BEGIN;").unwrap();
        let c = keys.project(&conn, "e/c").unwrap();
        assert_eq!(c, a);
        conn.execute_batch("COMMIT;").unwrap();
        keys.end_batch(true);
        assert!(keys.projects.values().all(|(_, m)| *m == Made::Committed));
        assert_eq!(keys.project(&conn, "e/c").unwrap(), c);
        // The undone name's key, taken by another and committed, reads as the other.
        conn.execute_batch("BEGIN;").unwrap();
        assert_eq!(keys.name(&conn, c, "user").unwrap(), n);
        conn.execute_batch("COMMIT;").unwrap();
        keys.end_batch(true);
        assert_eq!(keys.name(&conn, c, "user").unwrap(), n);
        assert_eq!(keys.name(&conn, c, "weave:///e/a/op/A:1").unwrap(), n + 1);
    }

    #[test]
    fn an_op_name_key_an_undone_job_made_and_read_reads_as_its_next_owner() {
        use crate::domain::call::Call;
        use crate::domain::error::Error;
        use crate::domain::store::{Store, write};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(dir.path()).unwrap();
        let first = Call::new("e/p", "first", 1);
        let f = first.clone();
        write(&store, move |w| w.insert_call(&f)).unwrap();
        let mut gone = Call::new("e/p", "gone", 2);
        gone.wb_user_id = Some("gone-user".into());
        let g = gone.clone();
        let failed = write(&store, move |w| {
            w.insert_call(&g)?;
            // The writer reads the new keys' texts.
            assert_eq!(w.call("e/p", &g.id)?.as_ref(), Some(&g));
            Err::<(), _>(Error::Storage("undone".into()))
        });
        assert!(failed.is_err());
        let mut kept = Call::new("e/p", "kept", 3);
        kept.wb_user_id = Some("kept-user".into());
        let k = kept.clone();
        let read = write(&store, move |w| {
            w.insert_call(&k)?;
            w.call("e/p", &k.id)
        })
        .unwrap();
        assert_eq!(read.as_ref(), Some(&kept));
        assert_eq!(store.call("e/p", &kept.id).unwrap(), Some(kept));
        assert_eq!(store.call("e/p", &gone.id).unwrap(), None);
        assert_eq!(store.call("e/p", &first.id).unwrap(), Some(first));
    }

    #[test]
    fn names_read_back_as_their_texts_on_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE call_names (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, \
                 name TEXT NOT NULL, UNIQUE (project_id, name)); \
                 INSERT INTO call_names (project_id, name) VALUES (1, 'op');",
            )
            .unwrap();
        register(&writer).unwrap();
        let reader = Connection::open(&path).unwrap();
        register(&reader).unwrap();
        let read = |conn: &Connection, key: Option<i64>| -> rusqlite::Result<Option<String>> {
            conn.query_row(&format!("SELECT {}", name_of("?1")), [key], |r| r.get(0))
        };
        assert_eq!(read(&reader, Some(1)).unwrap().as_deref(), Some("op"));
        assert_eq!(read(&reader, None).unwrap(), None);
        assert!(read(&reader, Some(2)).is_err());
        // The writer reads a key an undone write made, and then the key's next owner.
        writer.execute_batch("BEGIN; INSERT INTO call_names (project_id, name) VALUES (1, 'gone');").unwrap();
        assert_eq!(read(&writer, Some(2)).unwrap().as_deref(), Some("gone"));
        writer.execute_batch("ROLLBACK;").unwrap();
        Interner::default().end_batch(false);
        writer.execute_batch("INSERT INTO call_names (project_id, name) VALUES (1, 'kept');").unwrap();
        assert_eq!(read(&writer, Some(2)).unwrap().as_deref(), Some("kept"));
        assert_eq!(read(&reader, Some(2)).unwrap().as_deref(), Some("kept"));
    }

    #[test]
    fn read_keys_read_committed_keys() {
        let conn = store();
        conn.execute_batch("INSERT INTO run_refs (project_id, ref) VALUES (1, 'E');").unwrap();
        let names = ReadKeys::default();
        assert_eq!(names.project(&conn, "e/p").unwrap(), None);
        conn.execute_batch("INSERT INTO projects (name) VALUES ('e/p');").unwrap();
        assert_eq!(names.project(&conn, "e/p").unwrap(), Some(1));
        assert_eq!(names.run_ref(&conn, 1, "E").unwrap(), Some(1));
        assert_eq!(names.run_ref(&conn, 1, "F").unwrap(), None);
        let mut row = RowRefs::new(&names);
        assert_eq!(row.text(&conn, Some(1)).unwrap().as_deref(), Some("E"));
        assert_eq!(row.text(&conn, None).unwrap(), None);
        assert!(row.text(&conn, Some(2)).is_err());
    }
}
