//! weft on ClickHouse: ClickHouse's own server (from chdb-core), and one round of the bench on it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weft::store::clickhouse::ClickHouseStore;
use weft::store::clickhouse::client::{Client, Config, Query};

use crate::data::fill_weft;
use crate::options::Plan;
use crate::reference::tail;
use crate::server::{Impl, Launch, basic_auth};
use crate::workloads::{Measured, bench_server};

/// ClickHouse's user (and password) for weft, on the server the bench starts.
const USER: &str = "weft";
const PASSWORD: &str = "weft-bench";

/// ClickHouse 26.9's own HTTP server (`scripts/clickhouse`), with `system.query_log` on,
/// started by the bench and stopped when dropped.
pub(crate) struct ChServer {
    child: Child,
    pub(crate) url: String,
    /// ClickHouse's version, as the engine reports it.
    pub(crate) version: String,
}

impl ChServer {
    /// Starts ClickHouse on the data directory `data` and waits for its listening line (its
    /// first start ever makes its virtualenv, which takes minutes).
    pub(crate) fn start(root: &Path, data: &Path, log: &Path) -> Result<ChServer, String> {
        let script = root.join("scripts/clickhouse");
        let mut child = Command::new(&script)
            .args(["--port", "0", "--query-log", "--user", USER, "--password", PASSWORD, "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let mut ch = ChServer { child, url: String::new(), version: String::new() };
        ch.url = rx
            .recv_timeout(Duration::from_secs(900))
            .map_err(|_| format!("ClickHouse did not start: {}", tail(log, 5)))?;
        let client = Client::new(ch.config("default"));
        let q = Query::new("SELECT version() FORMAT JSONCompactEachRow");
        let rows: Vec<(String,)> = client.query_all(&q).map_err(|e| format!("ClickHouse: {e}"))?;
        ch.version = rows.into_iter().next().map(|(v,)| v).unwrap_or_default();
        Ok(ch)
    }

    fn config(&self, database: &str) -> Config {
        Config {
            url: self.url.clone(),
            database: database.into(),
            user: USER.into(),
            password: PASSWORD.into(),
        }
    }

    /// weft's global options for this server and `database`.
    fn weft_args(&self, database: &str) -> Vec<String> {
        [
            "--store",
            "clickhouse",
            "--clickhouse-url",
            &self.url,
            "--clickhouse-database",
            database,
            "--clickhouse-user",
            USER,
            "--clickhouse-password",
            PASSWORD,
        ]
        .map(String::from)
        .to_vec()
    }

    /// Bytes on disk of a database's active parts.
    fn database_bytes(&self, database: &str) -> Result<u64, String> {
        let client = Client::new(self.config(database));
        let mut q = Query::default();
        let db = q.string(database);
        q.push(&format!(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db} AND active \
             FORMAT JSONCompactEachRow"
        ));
        let rows: Vec<(u64,)> = client.query_all(&q).map_err(|e| e.to_string())?;
        Ok(rows.first().map_or(0, |(b,)| *b))
    }

    /// ClickHouse's clock, in µs.
    fn now_micros(&self) -> u64 {
        let client = Client::new(self.config("default"));
        let q = Query::new("SELECT toUnixTimestamp64Micro(now64(6)) FORMAT JSONCompactEachRow");
        client.query_all::<(u64,)>(&q).ok().and_then(|r| r.first().map(|(t,)| *t)).unwrap_or(0)
    }

    /// ClickHouse's own time per normalised query of `database` since `since` (µs), the shapes
    /// that took the most time in all first, as table rows: count, total s, p50 and p99 ms,
    /// rows read, the query.
    fn own_times(&self, database: &str, since: u64) -> Result<Vec<String>, String> {
        let client = Client::new(self.config("default"));
        client.execute(&Query::new("SYSTEM FLUSH LOGS")).map_err(|e| e.to_string())?;
        let mut q = Query::default();
        let (db, t) = (q.string(database), q.uint(since));
        q.push(&format!(
            "SELECT count(), sum(query_duration_ms) / 1000, quantile(0.5)(query_duration_ms), \
               quantile(0.99)(query_duration_ms), toUInt64(quantile(0.5)(read_rows)), \
               any(substring(normalizeQuery(query), greatest(1, position(normalizeQuery(query), ' FROM ')), 200)) \
             FROM system.query_log WHERE type = 'QueryFinish' AND current_database = {db} \
               AND event_time_microseconds >= fromUnixTimestamp64Micro(toInt64({t})) \
             GROUP BY normalizedQueryHash(query) ORDER BY sum(query_duration_ms) DESC LIMIT 24 \
             FORMAT JSONCompactEachRow"
        ));
        let rows: Vec<(u64, f64, f64, f64, u64, String)> = client.query_all(&q).map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|(n, total, p50, p99, read, sql)| {
                let sql = sql.replace('|', "\\|").replace('`', "'");
                format!("| {n} | {total:.2} | {p50:.1} | {p99:.1} | {read} | `{sql}` |")
            })
            .collect())
    }

    fn drop_database(&self, database: &str) {
        let client = Client::new(self.config(database));
        let q = Query::new(format!("DROP DATABASE IF EXISTS {database}"));
        if let Err(e) = client.execute_in(&q, None) {
            eprintln!("  clickhouse: dropping {database}: {e}");
        }
    }
}

impl Drop for ChServer {
    fn drop(&mut self) {
        // SIGTERM lets ClickHouse close its engine cleanly; SIGKILL if it lingers.
        let _ =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Results of weft on ClickHouse at one N.
pub(crate) struct ChRound {
    pub(crate) m: Measured,
    pub(crate) gen_secs: f64,
    /// ClickHouse's own time per query shape, as table rows.
    pub(crate) own: Vec<String>,
}

/// Fills a fresh database on `ch` with the data for `n` runs (the library's bulk path),
/// then benchmarks `weft --store clickhouse` on it.
pub(crate) async fn clickhouse_round(
    ch: &ChServer,
    weft_bin: &Path,
    n: usize,
    plan: &Plan,
    work: &Path,
) -> Result<ChRound, String> {
    let database = format!("weft_bench_{n}");
    ch.drop_database(&database);
    let store = ClickHouseStore::open(ch.config(&database)).map_err(|e| format!("open: {e}"))?;
    let filled = fill_weft(&store, "weft store on ClickHouse", n);
    drop(store);
    let (data, gen_secs) = filled?;
    let size = ch.database_bytes(&database);
    if let Err(e) = &size {
        eprintln!("  clickhouse: size of {database}: {e}");
    }
    let secret = crate::keys::admin_key(weft_bin, &ch.weft_args(&database))?;
    let mut args = ch.weft_args(&database);
    args.extend(["serve".into(), "--bind".into(), "127.0.0.1:{port}".into()]);
    let launch = Launch {
        which: Impl::WeftClickHouse,
        program: weft_bin.to_path_buf(),
        args,
        auth: basic_auth("api", &secret),
        log: work.join(format!("weft-clickhouse-{n}.log")),
        backend_pid: Some(ch.child.id()),
    };
    let store_mb = size.ok().map(|b| b as f64 / 1e6);
    let since = ch.now_micros();
    let m = bench_server(&launch, &data, plan, plan.cold_weft, store_mb).await;
    let own = ch.own_times(&database, since).unwrap_or_else(|e| vec![format!("| | | | | not read: {e} |")]);
    ch.drop_database(&database);
    Ok(ChRound { m, gen_secs, own })
}
