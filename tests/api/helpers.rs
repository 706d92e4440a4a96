//! Test harness: runs the real `weft` binary on a temporary data directory and talks HTTP to it.
//!
//! With `WEFT_TEST_STORE=clickhouse` and `WEFT_TEST_CLICKHOUSE_URL=http://HOST:PORT`, every
//! server (and every `weft` command) runs on ClickHouse instead, each data directory with its
//! own fresh database; otherwise on SQLite in the data directory. ClickHouse's user and password
//! are those weft itself reads, `WEFT_CLICKHOUSE_USER` and `WEFT_CLICKHOUSE_PASSWORD`, and so is
//! a cluster: `WEFT_CLICKHOUSE_CLUSTER` and `WEFT_CLICKHOUSE_SHARDS`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Path of the built `weft` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_weft");

/// A running weft server on its own data directory; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The admin key printed on first start.
    pub key: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

/// The ClickHouse URL when the tests run on ClickHouse.
pub fn clickhouse_url() -> Option<String> {
    match std::env::var("WEFT_TEST_STORE").as_deref() {
        Ok("clickhouse") => Some(
            std::env::var("WEFT_TEST_CLICKHOUSE_URL")
                .expect("WEFT_TEST_STORE=clickhouse needs WEFT_TEST_CLICKHOUSE_URL"),
        ),
        _ => None,
    }
}

/// The HTTP URLs of the shards when the tests run on a cluster of ClickHouse shards
/// (`WEFT_CLICKHOUSE_SHARDS`), else none.
pub fn clickhouse_shards() -> Vec<String> {
    match clickhouse_url() {
        Some(_) => std::env::var("WEFT_CLICKHOUSE_SHARDS")
            .map(|s| s.split(',').filter(|u| !u.is_empty()).map(String::from).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Whether the tests run on ClickHouse.
pub fn on_clickhouse() -> bool {
    clickhouse_url().is_some()
}

/// `true` (after saying why) when a test of the SQLite store itself should not run here.
/// The reason is also appended to the file `WEFT_SKIP_LOG` names, if set, so that the test
/// command can list every skip and count it as skipped rather than passed.
pub fn skip_on_clickhouse(reason: &str) -> bool {
    if on_clickhouse() {
        log_skip(&format!("on ClickHouse: {reason}"));
        return true;
    }
    false
}

/// `true` (after saying why, as [`skip_on_clickhouse`] does) unless the tests run on ClickHouse
/// (`shards`: on a cluster of shards).
pub fn skip_unless_clickhouse(shards: bool, reason: &str) -> bool {
    let here = if shards { !clickhouse_shards().is_empty() } else { on_clickhouse() };
    if here {
        return false;
    }
    let place = if shards { "a cluster of ClickHouse shards" } else { "ClickHouse" };
    log_skip(&format!("off {place}: {reason}"));
    true
}

/// Says why a test skips, and appends it to the file `WEFT_SKIP_LOG` names, if set.
fn log_skip(why: &str) {
    println!("skipped {why}");
    if let Some(path) = std::env::var_os("WEFT_SKIP_LOG") {
        use std::io::Write;
        let line = format!("{}: skipped {why}\n", current_test());
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// The name of the running test (the harness names each test's thread after it).
fn current_test() -> String {
    std::thread::current().name().unwrap_or("a test").to_string()
}

/// The ClickHouse database of data directory `dir`: a new unique name on first use, kept in
/// the directory so restarts and `weft` commands on it share the database.
pub fn clickhouse_database(dir: &Path) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let marker = dir.join(".clickhouse-database");
    if let Ok(name) = std::fs::read_to_string(&marker) {
        return name.trim().to_string();
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("weft_test_{}_{}_{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed));
    std::fs::create_dir_all(dir).expect("data dir");
    std::fs::write(&marker, &name).expect("write database marker");
    name
}

/// The global arguments selecting the store of data directory `dir`.
pub fn store_args(dir: &Path) -> Vec<String> {
    let mut args = vec!["--data-dir".to_string(), dir.display().to_string()];
    if let Some(url) = clickhouse_url() {
        args.extend([
            "--store".into(),
            "clickhouse".into(),
            "--clickhouse-url".into(),
            url,
            "--clickhouse-database".into(),
            clickhouse_database(dir),
        ]);
    }
    args
}

/// Opens the store of data directory `dir` in this process (to fill it before a server starts).
pub fn open_store(dir: &Path) -> std::sync::Arc<dyn weft::domain::store::Store> {
    match clickhouse_url() {
        Some(url) => {
            let config = weft::store::clickhouse::client::Config {
                url,
                database: clickhouse_database(dir),
                user: std::env::var("WEFT_CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
                password: std::env::var("WEFT_CLICKHOUSE_PASSWORD").unwrap_or_default(),
            };
            let cluster = std::env::var("WEFT_CLICKHOUSE_CLUSTER").ok().filter(|c| !c.is_empty());
            let shards = clickhouse_shards();
            let topology =
                weft::store::clickhouse::Topology::new(cluster.as_deref(), &shards).expect("topology");
            std::sync::Arc::new(
                weft::store::clickhouse::ClickHouseStore::open_on(config, &topology)
                    .expect("open ClickHouse store"),
            )
        }
        None => std::sync::Arc::new(weft::store::sqlite::SqliteStore::open(dir).expect("open store")),
    }
}

/// Runs `weft --data-dir DIR ARGS...` (on the tests' store) to completion; returns (success,
/// stdout, stderr).
pub fn weft(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(store_args(dir)).args(args).output().expect("run weft");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

impl Server {
    /// Starts a server on a new data directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir)
    }

    /// Starts a server on `dir` (which may hold data already).
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Self::start_with(dir, &[])
    }

    /// Starts a server on `dir` with extra `serve` arguments.
    pub fn start_with(dir: tempfile::TempDir, args: &[&str]) -> Server {
        let (child, base, key) = spawn(dir.path(), args);
        let client = reqwest::Client::builder().build().expect("client");
        Server { child, base, key: key.unwrap_or_default(), dir, client }
    }

    /// Starts another weft process on this server's ClickHouse database (at `url`, another node
    /// of the same cluster, when given), with this server's admin key: a second instance
    /// behind the same load balancer.
    pub fn sibling(&self, url: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = clickhouse_database(self.dir.path());
        std::fs::write(dir.path().join(".clickhouse-database"), &database).expect("write database marker");
        let mut args = store_args(dir.path());
        if let (Some(url), Some(i)) = (url, args.iter().position(|a| a == "--clickhouse-url")) {
            args[i + 1] = url.to_string();
        }
        let (child, base, _) = spawn_with(args, &[]);
        let client = reqwest::Client::builder().build().expect("client");
        Server { child, base, key: self.key.clone(), dir, client }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// URL of a path under `/v2/acme/proj`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/acme/proj{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).basic_auth("api", Some(&self.key))
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .basic_auth("api", Some(&self.key))
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    pub fn post_raw(&self, path: &str, body: &'static str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).basic_auth("api", Some(&self.key)).body(body)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).basic_auth("api", Some(&self.key))
    }

    /// Creates a run and returns its id.
    pub async fn create_run(&self, evaluation: &str, model: &str) -> String {
        let v = json_ok(
            self.post("/evaluation_runs", &serde_json::json!({"evaluation": evaluation, "model": model})),
        )
        .await;
        v["evaluation_run_id"].as_str().expect("run id").to_string()
    }

    /// Creates a key scoped to `entity` with the CLI and returns its secret.
    pub fn entity_key(&self, entity: &str) -> String {
        let (ok, out, err) = weft(self.dir.path(), &["keys", "create", "--entity", entity]);
        assert!(ok, "keys create failed: {err}");
        out.trim().to_string()
    }

    /// The base URL of the server (no path).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client that does not follow redirects, for the web UI's pages.
    pub fn ui_client() -> reqwest::Client {
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
    }

    /// Signs in to the web UI with the key `secret` through its form; returns the session's
    /// cookie pair (`weft_session=...`) to send with page requests.
    pub async fn ui_sign_in(&self, secret: &str) -> String {
        let ui = Self::ui_client();
        let page = ui.get(format!("{}/", self.base)).send().await.expect("sign-in page");
        let csrf = set_cookie(&page, "weft_signin").expect("sign-in cookie");
        let r = ui
            .post(format!("{}/ui/sign-in", self.base))
            .header("cookie", format!("weft_signin={csrf}"))
            .form(&[("api_key", secret), ("next", "/"), ("csrf", csrf.as_str())])
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 303, "sign-in answered {}", r.status());
        format!("weft_session={}", set_cookie(&r, "weft_session").expect("session cookie"))
    }

    /// GET a web UI page (or export) with a session cookie, not following redirects.
    pub fn ui_get(&self, path: &str, cookie: &str) -> reqwest::RequestBuilder {
        Self::ui_client().get(format!("{}{path}", self.base)).header("cookie", cookie)
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `weft serve` on a free port; returns the child, its base URL and the admin key it
/// printed (only on a first start).
fn spawn(dir: &Path, args: &[&str]) -> (Child, String, Option<String>) {
    spawn_with(store_args(dir), args)
}

/// [`spawn`] with the given global (store) arguments.
fn spawn_with(store_args: Vec<String>, args: &[&str]) -> (Child, String, Option<String>) {
    let mut child = Command::new(BIN)
        .args(store_args)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("WEFT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft serve");
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let (ktx, krx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = ktx.send(first.trim().to_string());
        }
        for _ in lines {}
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("server did not report its address");
    let key = krx.recv_timeout(Duration::from_millis(200)).ok();
    (child, format!("http://{addr}"), key)
}

/// A v1 request: `POST` of `body` as JSON to `path` at the server's root, with the admin key.
pub fn post_v1(s: &Server, path: &str, body: &Value) -> reqwest::RequestBuilder {
    s.client.post(format!("{}{path}", s.base)).basic_auth("api", Some(&s.key)).json(body)
}

/// A v1 `PUT` of `body` as JSON to `path` at the server's root, with the admin key.
pub fn put_v1(s: &Server, path: &str, body: &Value) -> reqwest::RequestBuilder {
    s.client.put(format!("{}{path}", s.base)).basic_auth("api", Some(&s.key)).json(body)
}

/// A v1 `GET` of `path` (with its query string) at the server's root, with the admin key.
pub fn get_v1(s: &Server, path: &str) -> reqwest::RequestBuilder {
    s.client.get(format!("{}{path}", s.base)).basic_auth("api", Some(&s.key))
}

/// Asserts that the server still answers its health check.
pub async fn health_ok(s: &Server) {
    let r = s.client.get(format!("{}/health", s.base)).send().await.expect("the server is still up");
    assert_eq!(r.status(), 200);
}

/// Sends a request, asserts a 200, and returns the JSON body.
pub async fn json_ok(req: reqwest::RequestBuilder) -> Value {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(status, 200, "body: {text}");
    serde_json::from_str(&text).expect("JSON body")
}

/// Sends a request and returns (status, JSON body).
pub async fn status_json(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Sends a request, asserts a 200 with `application/jsonl`, and returns the parsed lines.
pub async fn jsonl(req: reqwest::RequestBuilder) -> Vec<Value> {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_string());
    let text = resp.text().await.expect("body");
    assert_eq!(status, 200, "body: {text}");
    assert_eq!(ctype.as_deref(), Some("application/jsonl"));
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

/// xorshift64*: reproducible choices without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The fields of `EvaluationRunReadRes`, all of which must be present.
pub const RUN_FIELDS: [&str; 8] = [
    "evaluation_run_id",
    "evaluation",
    "model",
    "status",
    "started_at",
    "finished_at",
    "summary",
    "source_evaluation_run_id",
];

/// Sends a request and returns (status, raw body text).
pub async fn status_text(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The value a response sets for cookie `name`, if it sets one.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Creates a table of `rows` in `project`; returns its digest and its row digests.
pub async fn create_table(s: &Server, project: &str, rows: &[Value]) -> (String, Vec<String>) {
    let t = json_ok(post_v1(
        s,
        "/table/create",
        &serde_json::json!({"table": {"project_id": project, "rows": rows}}),
    ))
    .await;
    let digests =
        t["row_digests"].as_array().expect("row digests").iter().map(|d| d.as_str().unwrap().to_string());
    (t["digest"].as_str().expect("digest").to_string(), digests.collect())
}

/// The rows `POST /table/query` answers for `body` (asserting a 200).
pub async fn table_rows(s: &Server, body: &Value) -> Vec<Value> {
    let r = json_ok(post_v1(s, "/table/query", body)).await;
    r["rows"].as_array().expect("rows").clone()
}

/// Whether `refused` comes true within the bound on revocation: on SQLite within a quarter of
/// a second, on ClickHouse once each process's cached lookup of the key expires
/// ([`weft::store::clickhouse::KEY_CACHE_TTL`]), plus a margin for a loaded machine.
pub async fn refused_within_revocation_bound<F, Fut>(mut refused: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now()
        + weft::store::clickhouse::KEY_CACHE_TTL
        + std::time::Duration::from_secs(5);
    loop {
        if refused().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
