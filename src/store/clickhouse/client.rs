//! A blocking client for ClickHouse's HTTP interface: statements, queries read line by line, and
//! inserts of JSONEachRow bodies. Values always travel as server-side query parameters, except
//! long ones, which go in the query text base64-encoded (see [`INLINE_OVER`]).

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use crate::domain::error::{Error, Result};

/// Where and as whom to reach ClickHouse.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding weft's tables (created if missing).
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (empty for none).
    pub password: String,
}

/// Longest a single request may take, sending to reading the last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an error body kept for the error message.
const ERROR_BODY_LIMIT: u64 = 8 * 1024;
/// ClickHouse's error code for a full disk.
const NOT_ENOUGH_SPACE: &str = "243";

/// Settings sent with every request: integers as JSON numbers, so rows parse as typed tuples;
/// and, for tables on a cluster (`Distributed` ones; elsewhere they change nothing): an insert
/// is acknowledged once every shard wrote its rows, so a read that follows sees them; and a
/// subquery on a `Distributed` table inside a query on one reads each shard's own table, which
/// is exact because every table is sharded by project and a query reads one project.
const SETTINGS: &[(&str, &str)] = &[
    ("output_format_json_quote_64bit_integers", "0"),
    ("output_format_json_quote_denormals", "0"),
    ("distributed_foreground_insert", "1"),
    ("distributed_product_mode", "local"),
];

/// A SQL text with its query parameters (`{name:Type}` placeholders and their values).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The SQL, with `{name:Type}` placeholders only where values go.
    pub sql: String,
    /// Values of the placeholders, by name, in ClickHouse's text form.
    pub params: Vec<(String, String)>,
}

impl Query {
    /// A query with no parameters yet.
    pub fn new(sql: impl Into<String>) -> Self {
        Query { sql: sql.into(), params: Vec::new() }
    }

    /// Appends SQL text (never user input).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds a String parameter and returns its placeholder (or, for a long value, the
    /// expression that decodes it: see [`INLINE_OVER`]).
    pub fn string(&mut self, value: &str) -> String {
        if value.len() > INLINE_OVER {
            return format!("base64Decode('{}')", base64_text(value.as_bytes()));
        }
        self.bind("String", escape_param(value))
    }

    /// Binds a UInt64 parameter and returns its placeholder.
    pub fn uint(&mut self, value: u64) -> String {
        self.bind("UInt64", value.to_string())
    }

    /// Binds an Int64 parameter and returns its placeholder.
    pub fn int(&mut self, value: i64) -> String {
        self.bind("Int64", value.to_string())
    }

    /// Binds an Array(String) parameter and returns its placeholder.
    pub fn strings<S: AsRef<str>>(&mut self, values: &[S]) -> String {
        let mut text = String::from("[");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push('\'');
            for ch in v.as_ref().chars() {
                match ch {
                    '\'' => text.push_str("\\'"),
                    '\\' => text.push_str("\\\\"),
                    '\t' => text.push_str("\\t"),
                    '\n' => text.push_str("\\n"),
                    '\r' => text.push_str("\\r"),
                    '\0' => text.push_str("\\0"),
                    c => text.push(c),
                }
            }
            text.push('\'');
        }
        text.push(']');
        // An array's text form is its literal: quoted elements, with no escaping around it.
        if text.len() > INLINE_OVER {
            // The same text, parsed by a cast, as the parameter's would be.
            return format!("CAST(base64Decode('{}') AS Array(String))", base64_text(text.as_bytes()));
        }
        self.bind("Array(String)", text)
    }

    fn bind(&mut self, ty: &str, text: String) -> String {
        let name = format!("p{}", self.params.len());
        let placeholder = format!("{{{name}:{ty}}}");
        self.params.push((name, text));
        placeholder
    }
}

/// Longest parameter value, in bytes of its text form, sent as a URL parameter. Parameters
/// travel in the URL, which ClickHouse limits to 1 MiB (`http_max_uri_size`): a longer value
/// (a list of tens of thousands of ids, say) goes in the query text instead, base64-encoded
/// (an alphabet with no quote or backslash, so no value can change the statement), with
/// `max_query_size` raised to fit the text. A query's few short parameters then fit the URL
/// whatever the values.
pub const INLINE_OVER: usize = 16 * 1024;

/// ClickHouse's default `max_query_size`: a longer query text is sent with the setting raised.
const DEFAULT_MAX_QUERY_SIZE: usize = 256 * 1024;

fn base64_text(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A String parameter's value as ClickHouse reads it: TabSeparated escaping.
fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

/// A connection pool to one ClickHouse server and database.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    config: Config,
}

fn http_error(e: ureq::Error) -> Error {
    Error::Storage(format!("ClickHouse request failed: {e}"))
}

impl Client {
    /// A client for `config` (no connection is made until the first request).
    pub fn new(config: Config) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .max_idle_connections_per_host(64)
            .build()
            .into();
        Client { agent, config }
    }

    /// The same client (user, database, connection pool) for the server at `url`.
    pub fn at(&self, url: &str) -> Client {
        Client { agent: self.agent.clone(), config: Config { url: url.to_string(), ..self.config.clone() } }
    }

    /// The same client working in `database`.
    pub fn in_database(&self, database: &str) -> Client {
        Client {
            agent: self.agent.clone(),
            config: Config { database: database.to_string(), ..self.config.clone() },
        }
    }

    /// The base URL of the server.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The database this client works in.
    pub fn database(&self) -> &str {
        &self.config.database
    }

    /// Sends `body` with the query `q` (in the body when `body` is `None`), in `database` if
    /// given; returns the response body once the status says success.
    fn send(&self, q: &Query, body: Option<&[u8]>, database: Option<&str>) -> Result<ureq::Body> {
        let url = format!("{}/", self.config.url.trim_end_matches('/'));
        let mut req = self
            .agent
            .post(&url)
            .header("X-ClickHouse-User", &self.config.user)
            .header("X-ClickHouse-Key", &self.config.password);
        if let Some(db) = database {
            req = req.query("database", db);
        }
        for (k, v) in SETTINGS {
            req = req.query(*k, *v);
        }
        if q.sql.len() > DEFAULT_MAX_QUERY_SIZE {
            req = req.query("max_query_size", (q.sql.len() + 1024).to_string());
        }
        for (name, value) in &q.params {
            req = req.query(format!("param_{name}"), value);
        }
        let resp = match body {
            Some(data) => req.query("query", &q.sql).send(data),
            None => req.send(q.sql.as_bytes()),
        }
        .map_err(http_error)?;
        let status = resp.status();
        let code = resp
            .headers()
            .get("X-ClickHouse-Exception-Code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.into_body();
        if status.is_success() && code.is_none() {
            return Ok(body);
        }
        let mut text = String::new();
        let _ = body.into_with_config().limit(ERROR_BODY_LIMIT).reader().read_to_string(&mut text);
        let text = text.trim();
        let detail = format!("ClickHouse answered {status}: {text}");
        Err(match code.as_deref() {
            Some(NOT_ENOUGH_SPACE) => Error::StorageFull(detail),
            _ => Error::Storage(detail),
        })
    }

    /// Runs a statement (DDL, or a query whose result is not needed) in the database.
    pub fn execute(&self, q: &Query) -> Result<()> {
        self.execute_in(q, Some(&self.config.database))
    }

    /// Runs a statement in `database` (`None`: the user's default database).
    pub fn execute_in(&self, q: &Query, database: Option<&str>) -> Result<()> {
        let mut body = self.send(q, None, database)?.into_reader();
        std::io::copy(&mut body, &mut std::io::sink())
            .map(drop)
            .map_err(|e| Error::Storage(format!("ClickHouse response failed: {e}")))
    }

    /// Runs a query and calls `line` with each line of its result, as it arrives, until it
    /// returns `Ok(false)`. The query names its output format (e.g. `FORMAT JSONCompactEachRow`).
    pub fn query_lines(&self, q: &Query, line: &mut dyn FnMut(&str) -> Result<bool>) -> Result<()> {
        let body = self.send(q, None, Some(&self.config.database))?;
        let mut reader = BufReader::new(body.into_reader());
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = reader
                .read_line(&mut buf)
                .map_err(|e| Error::Storage(format!("ClickHouse response failed: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            let text = buf.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                continue;
            }
            if !line(text)? {
                return Ok(());
            }
        }
    }

    /// Runs a query and parses each line of its `JSONCompactEachRow` result as a `T`.
    pub fn query_rows<T: serde::de::DeserializeOwned>(
        &self,
        q: &Query,
        row: &mut dyn FnMut(T) -> Result<bool>,
    ) -> Result<()> {
        self.query_lines(q, &mut |text| row(parse_row(text)?))
    }

    /// Runs a query and collects its `JSONCompactEachRow` rows.
    pub fn query_all<T: serde::de::DeserializeOwned>(&self, q: &Query) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.query_rows(q, &mut |r| {
            out.push(r);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Inserts `rows` (JSONEachRow lines, each ending in a newline) into `table` as one insert.
    pub fn insert(&self, table: &str, rows: &[u8]) -> Result<()> {
        let q = Query::new(format!("INSERT INTO {table} FORMAT JSONEachRow"));
        let mut body = self.send(&q, Some(rows), Some(&self.config.database))?.into_reader();
        std::io::copy(&mut body, &mut std::io::sink())
            .map(drop)
            .map_err(|e| Error::Storage(format!("ClickHouse response failed: {e}")))
    }
}

/// Parses one result line; a line that is not a row is an error ClickHouse sent mid-stream.
pub fn parse_row<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        let shown: String = text.chars().take(500).collect();
        Error::Storage(format!("unexpected ClickHouse result line ({e}): {shown}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_parameters_are_tab_separated_and_arrays_quoted_literals() {
        let mut q = Query::new("SELECT ");
        let p = q.string("a\\b\tc\nd'e");
        assert_eq!(p, "{p0:String}");
        assert_eq!(q.params[0].1, "a\\\\b\\tc\\nd'e");
        let a = q.strings(&["x'y", "z\\"]);
        assert_eq!(a, "{p1:Array(String)}");
        assert_eq!(q.params[1].1, "['x\\'y','z\\\\']");
        q.strings(&["a\tb\nc"]);
        assert_eq!(q.params[2].1, "['a\\tb\\nc']");
        let n = q.uint(7);
        assert_eq!((n.as_str(), q.params[3].1.as_str()), ("{p3:UInt64}", "7"));
    }

    #[test]
    fn long_values_go_in_the_text_base64_encoded() {
        let mut q = Query::new("SELECT ");
        let long = "x'\\".repeat(INLINE_OVER);
        let s = q.string(&long);
        assert!(s.starts_with("base64Decode('") && s.ends_with("')"), "{}", &s[..40]);
        let list = vec![long.as_str(); 3];
        let a = q.strings(&list);
        assert!(a.starts_with("CAST(base64Decode('") && a.ends_with("') AS Array(String))"));
        for text in [&s, &a] {
            let inner = text.split('\'').nth(1).unwrap_or("");
            assert!(inner.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
        }
        assert!(q.params.is_empty(), "nothing long in the URL");
        assert_eq!(q.strings(&["a"]), "{p0:Array(String)}");
    }

    #[test]
    fn result_lines_parse_or_name_the_error() {
        let row: (String, Option<i64>) = parse_row(r#"["a", null]"#).expect("row");
        assert_eq!(row, ("a".to_string(), None));
        let err = parse_row::<(String,)>("Code: 60. DB::Exception: Table x does not exist").unwrap_err();
        assert!(err.to_string().contains("Code: 60"));
    }
}
