//! Bringing a ClickHouse database to this weft's schema: the migrations of [`super::schema`]
//! it lacks, recorded in `weft_migrations`.

use std::collections::HashSet;

use super::client::{Client, Query};
use super::rows::{CALL_COLUMNS, CallTuple, call_from_tuple, call_line, time, view_lines};
use super::schema::{self, Ddl, Layout, MIGRATIONS, MIGRATIONS_TABLE, Place, Step};
use crate::domain::call::now;
use crate::domain::error::{Error, Result};
use crate::domain::view::{is_predict_and_score, mark_holds_prediction};

/// Rows per insert of a data migration.
const INSERT_ROWS: usize = 10_000;

/// Where weft's tables are: how they are laid out, and for a cluster without Keeper
/// ([`Layout::Shards`]) the HTTP URL of each shard, where its own tables are made.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The layout of the tables.
    pub layout: Layout,
    /// The shards' URLs (with [`Layout::Shards`] only).
    pub shards: Vec<String>,
}

impl Topology {
    /// One server.
    pub fn single() -> Topology {
        Topology { layout: Layout::Single, shards: Vec::new() }
    }

    /// The topology `--clickhouse-cluster` and `--clickhouse-shard` name: one server without a
    /// cluster; a cluster with Keeper without shards; a cluster without Keeper with them.
    pub fn new(cluster: Option<&str>, shards: &[String]) -> Result<Topology> {
        let Some(cluster) = cluster else {
            if !shards.is_empty() {
                return Err(Error::BadRequest("--clickhouse-shard needs --clickhouse-cluster".into()));
            }
            return Ok(Topology::single());
        };
        schema::identifier(cluster, "--clickhouse-cluster")?;
        let layout =
            if shards.is_empty() { Layout::Cluster(cluster.into()) } else { Layout::Shards(cluster.into()) };
        Ok(Topology { layout, shards: shards.to_vec() })
    }

    fn is_cluster(&self) -> bool {
        self.layout != Layout::Single
    }
}

/// Sends a statement of the schema where it goes: to the entry node (`client`), to each shard,
/// or to each shard and the entry node.
fn apply(client: &Client, topology: &Topology, (place, sql): &Ddl, in_database: bool) -> Result<()> {
    let q = Query::new(sql.clone());
    let run = |c: &Client| if in_database { c.execute(&q) } else { c.execute_in(&q, None) };
    let shards = || topology.shards.iter().map(|url| client.at(url));
    match place {
        Place::Entry => run(client),
        Place::EachShard => shards().try_for_each(|c| run(&c)),
        Place::EveryNode => {
            shards().try_for_each(|c| run(&c))?;
            let entry = client.url().trim_end_matches('/');
            if topology.shards.iter().any(|s| s.trim_end_matches('/') == entry) {
                Ok(())
            } else {
                run(client)
            }
        }
    }
}

/// Applies the migrations `client`'s database lacks (creating the database first), laid out
/// as `topology` says; returns those applied now. A database laid out otherwise than
/// `topology` says (on a cluster or not) is an error, not a second schema.
pub fn migrate(client: &Client, topology: &Topology) -> Result<Vec<(u32, &'static str)>> {
    let db = client.database();
    schema::identifier(db, "database name")?;
    let layout = &topology.layout;
    let mut q = Query::default();
    let name = q.string(db);
    q.push(&format!(
        "SELECT engine FROM system.tables WHERE database = {name} AND name = 'weft_migrations' \
         FORMAT JSONCompactEachRow"
    ));
    let engine: Vec<(String,)> = client.in_database("system").query_all(&q)?;
    if let Some((engine,)) = engine.first() {
        let distributed = engine == "Distributed";
        if distributed != topology.is_cluster() {
            return Err(Error::Storage(if distributed {
                format!("database {db} is laid out on a cluster: name it with --clickhouse-cluster")
            } else {
                format!("database {db} is laid out for one server, not for --clickhouse-cluster")
            }));
        }
    }
    apply(client, topology, &schema::create_database(db, layout), false)?;
    for ddl in schema::create_table(&MIGRATIONS_TABLE, db, layout) {
        apply(client, topology, &ddl, true)?;
    }
    let applied: Vec<(u32,)> =
        client.query_all(&Query::new("SELECT version FROM weft_migrations FORMAT JSONCompactEachRow"))?;
    let applied: HashSet<u32> = applied.into_iter().map(|(v,)| v).collect();
    let latest = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newer) = applied.iter().copied().find(|v| *v > latest) {
        return Err(Error::Storage(format!(
            "database schema version {newer} is newer than this weft ({latest})"
        )));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for step in m.steps {
            match step {
                Step::DeriveLoggedPredictions => derive_logged_predictions(client, topology)?,
                Step::DeriveFlaggedPredictions => derive_flagged_predictions(client)?,
                _ => {}
            }
            for ddl in schema::step_ddl(step, db, layout) {
                apply(client, topology, &ddl, true)?;
            }
            if let Step::FillCallViews = step {
                fill_call_views(client)?;
            }
        }
        let line = serde_json::json!({"version": m.version, "name": m.name, "applied_at": time(now())?});
        client.insert("weft_migrations", format!("{line}\n").as_bytes())?;
        done.push((m.version, m.name));
    }
    Ok(done)
}

/// Writes again, a new version of each row with the view columns `ViewColumns::of` derives,
/// the calls `condition` selects (and `keep` keeps, as it edits them).
fn rederive(
    client: &Client,
    condition: &str,
    keep: impl Fn(&mut super::rows::StoredCall) -> bool,
) -> Result<()> {
    let version = u64::try_from(now()).unwrap_or(0);
    rewrite_calls(client, "calls", condition, |mut s| {
        Ok(if keep(&mut s) { vec![call_line(&s, version)?] } else { Vec::new() })
    })
}

/// Reads the calls `condition` selects (the newest version of each) and inserts into `table`
/// the rows `lines` makes of each, [`INSERT_ROWS`] at a time.
fn rewrite_calls(
    client: &Client,
    table: &str,
    condition: &str,
    mut lines: impl FnMut(super::rows::StoredCall) -> Result<Vec<String>>,
) -> Result<()> {
    let mut body = String::new();
    let mut rows = 0;
    let flush = |body: &mut String| -> Result<()> {
        if !body.is_empty() {
            client.insert(table, body.as_bytes())?;
            body.clear();
        }
        Ok(())
    };
    let q = Query::new(format!(
        "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE {condition} FORMAT JSONCompactEachRow"
    ));
    client.query_rows::<CallTuple>(&q, &mut |t| {
        for line in lines(call_from_tuple(t))? {
            body.push_str(&line);
            body.push('\n');
            rows += 1;
            if rows % INSERT_ROWS == 0 {
                flush(&mut body)?;
            }
        }
        Ok(true)
    })?;
    flush(&mut body)
}

/// A call flagged `weave.prediction` with JSON `true` is a prediction, as one flagged `"true"`
/// is: those calls are derived again.
fn derive_flagged_predictions(client: &Client) -> Result<()> {
    rederive(
        client,
        "JSONType(attributes, 'weave', 'prediction') = 'Bool' \
         AND JSONExtractBool(attributes, 'weave', 'prediction')",
        |_| true,
    )
}

/// A `predict_and_score` child of a run is a prediction unless `POST /predictions` wrote it
/// around a flagged prediction. The parents that route wrote before are recognised by such a
/// child (deleted or not) and marked as it marks them now; then every `predict_and_score` call
/// is written again, a new version of its row with the view columns `ViewColumns::of` derives.
fn derive_logged_predictions(client: &Client, topology: &Topology) -> Result<()> {
    for ddl in schema::step_ddl(&schema::CALL_THREAD_COLUMNS, client.database(), &topology.layout) {
        apply(client, topology, &ddl, true)?;
    }
    let holding: Vec<(String, String)> = client.query_all(&Query::new(
        "SELECT DISTINCT project_id, assumeNotNull(parent_id) FROM calls FINAL \
         WHERE kind = 'prediction' AND parent_id IS NOT NULL FORMAT JSONCompactEachRow",
    ))?;
    let holding: HashSet<(String, String)> = holding.into_iter().collect();
    rederive(
        client,
        "parent_id IS NOT NULL \
         AND (positionCaseInsensitive(op_name, 'predict_and_score') > 0 \
           OR positionCaseInsensitive(op_name, 'predictAndScore') > 0)",
        |s| {
            if !is_predict_and_score(&s.call) {
                return false;
            }
            if holding.contains(&(s.call.project_id.clone(), s.call.id.clone())) {
                mark_holds_prediction(&mut s.call);
            }
            true
        },
    )
}

/// Fills `call_views` with the view rows of every call stored (the newest version of each),
/// as the writer writes them (`rows::view_lines`); run where queries enter, so that on a
/// cluster each row goes to its project's shard.
fn fill_call_views(client: &Client) -> Result<()> {
    let version = u64::try_from(now()).unwrap_or(0);
    rewrite_calls(client, "call_views", "kind IS NOT NULL OR exception IS NOT NULL", |s| {
        view_lines(&s, &[], version)
    })
}
