//! The ClickHouse schema: tables, versioned migrations, and their DDL for a single server or a
//! cluster: with Keeper (`ON CLUSTER`, replicated local tables behind `Distributed` ones) or
//! without (plain local tables made on each shard, `Distributed` ones on every node).
//!
//! Every table is a `ReplacingMergeTree(version)` ordered by its key: a change to a row (an
//! end, a soft delete, a revocation) is a new version of the whole row, and reads deduplicate
//! with `FINAL`. On a cluster, rows are sharded by `cityHash64(project_id)` (API keys by
//! `cityHash64(id)`), so every version of a row lives on one shard and `FINAL` stays exact.

use crate::domain::error::{Error, Result};

/// One table of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// Column and index definitions, as in `CREATE TABLE`.
    pub columns: &'static str,
    /// The table's key: its `ORDER BY`, which is also what rows are deduplicated on.
    pub order_by: &'static str,
    /// The version column of `ReplacingMergeTree`, or `None` for an append-only `MergeTree`.
    pub version: Option<&'static str>,
    /// The sharding expression on a cluster.
    pub shard_by: &'static str,
}

/// Calls, with the view columns (kind, evaluation, model, run_id, logged_run) the list
/// endpoints filter on.
pub const CALLS: Table = Table {
    name: "calls",
    columns: "project_id String, id String, trace_id String, parent_id Nullable(String), \
        op_name String, display_name Nullable(String), started_at DateTime64(6, 'UTC'), \
        ended_at Nullable(DateTime64(6, 'UTC')), exception Nullable(String), attributes String, \
        inputs String, output Nullable(String), summary Nullable(String), wb_user_id Nullable(String), \
        deleted_at Nullable(DateTime64(6, 'UTC')), kind LowCardinality(Nullable(String)), \
        evaluation Nullable(String), model Nullable(String), run_id Nullable(String), \
        logged_run Bool, thread_id Nullable(String), turn_id Nullable(String), \
        wb_run_id Nullable(String), wb_run_step Nullable(Int64), wb_run_step_end Nullable(Int64), \
        version UInt64, \
        INDEX calls_kind kind TYPE set(8) GRANULARITY 1, \
        INDEX calls_trace trace_id TYPE bloom_filter GRANULARITY 1, \
        INDEX calls_parent parent_id TYPE bloom_filter GRANULARITY 1, \
        INDEX calls_run run_id TYPE bloom_filter GRANULARITY 1",
    order_by: "project_id, id",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// The index of the views' rows (migration 8): one row per call and view key, ordered so that
/// a list reads only the rows of its kind, in its order. A call's keys are its kind (`run`,
/// `prediction`, `score`) when it has one, and `failed` when it raised, each with its start
/// time. The writer inserts these rows with the call's, each a new version of its row
/// (`deleted` set when the call is deleted), and when a call loses a key (its kind derived
/// anew, its start time merged) a version of the old key's row with `deleted` set. A run's row
/// carries what a run list shows (its summary, and its output when it was logged through the
/// trace API), so run lists read this table only; the lists of predictions and scores read
/// ids here, then the calls by the primary key of `calls`, checking them again. A bloom filter
/// of each granule's ids lets a read of a few runs by id (one run, a cursor's position) skip
/// the granules that cannot hold them.
pub const CALL_VIEWS: Table = Table {
    name: "call_views",
    columns: "project_id String, kind LowCardinality(String), started_at DateTime64(6, 'UTC'), \
        id String, trace_id String, evaluation Nullable(String), model Nullable(String), \
        run_id Nullable(String), op_name String, display_name Nullable(String), \
        ended_at Nullable(DateTime64(6, 'UTC')), failed Bool, summary Nullable(String), \
        output Nullable(String), deleted Bool, version UInt64, \
        INDEX call_views_id id TYPE bloom_filter GRANULARITY 1",
    order_by: "project_id, kind, started_at, id",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Object versions (ops included).
pub const OBJECTS: Table = Table {
    name: "objects",
    columns: "project_id String, object_id String, digest String, version_index Int64, \
        kind LowCardinality(String), base_object_class Nullable(String), \
        leaf_object_class Nullable(String), val String, created_at DateTime64(6, 'UTC'), \
        wb_user_id Nullable(String), deleted_at Nullable(DateTime64(6, 'UTC')), version UInt64",
    order_by: "project_id, object_id, digest",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Tags of object versions: removing one is a new version of its row, marked `removed`.
pub const OBJECT_TAGS: Table = Table {
    name: "object_tags",
    columns: "project_id String, object_id String, digest String, tag String, removed Bool, version UInt64",
    order_by: "project_id, object_id, digest, tag",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Aliases of objects, each naming one version (`digest`); moving or removing one is a new
/// version of its row.
pub const OBJECT_ALIASES: Table = Table {
    name: "object_aliases",
    columns: "project_id String, object_id String, alias String, digest String, removed Bool, version UInt64",
    order_by: "project_id, object_id, alias",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Table rows, content-addressed.
pub const TABLE_ROWS: Table = Table {
    name: "table_rows",
    columns: "project_id String, digest String, val String, version UInt64",
    order_by: "project_id, digest",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Tables: each one's ordered row digests.
pub const TABLES: Table = Table {
    name: "tables",
    columns: "project_id String, digest String, row_digests Array(String), version UInt64",
    order_by: "project_id, digest",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Files, content-addressed; the bytes are kept base64-encoded (rows travel as JSON).
pub const FILES: Table = Table {
    name: "files",
    columns: "project_id String, digest String, content_base64 String CODEC(ZSTD(3)), version UInt64",
    order_by: "project_id, digest",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// Feedback on calls and objects.
pub const FEEDBACK: Table = Table {
    name: "feedback",
    columns: "project_id String, id String, weave_ref String, feedback_type String, payload String, \
        creator Nullable(String), created_at DateTime64(6, 'UTC'), wb_user_id Nullable(String), \
        annotation_ref Nullable(String), runnable_ref Nullable(String), call_ref Nullable(String), \
        trigger_ref Nullable(String), version UInt64",
    order_by: "project_id, id",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// The soft-delete time of feedback rows (migration 5): `feedback/purge` and
/// `feedback/replace` write a new version of the row with it set.
pub const FEEDBACK_DELETED: Step =
    Step::AddColumns("feedback", &["deleted_at Nullable(DateTime64(6, 'UTC'))"]);

/// LLM token prices per project (`cost/create`); a purge writes a new version of the row with
/// `deleted_at` set.
pub const LLM_TOKEN_PRICES: Table = Table {
    name: "llm_token_prices",
    columns: "project_id String, id String, llm_id String, provider_id String, \
        effective_date DateTime64(6, 'UTC'), prompt_token_cost Float64, completion_token_cost Float64, \
        cache_read_input_token_cost Float64, cache_creation_input_token_cost Float64, \
        prompt_token_cost_unit String, completion_token_cost_unit String, created_by Nullable(String), \
        created_at DateTime64(6, 'UTC'), deleted_at Nullable(DateTime64(6, 'UTC')), version UInt64",
    order_by: "project_id, id",
    version: Some("version"),
    shard_by: "cityHash64(project_id)",
};

/// API keys: hashes of secrets, never secrets.
pub const API_KEYS: Table = Table {
    name: "api_keys",
    columns: "id String, hash String, entities Array(String), admin Bool, \
        created_at DateTime64(6, 'UTC'), revoked_at Nullable(DateTime64(6, 'UTC')), version UInt64",
    order_by: "id",
    version: Some("version"),
    shard_by: "cityHash64(id)",
};

/// Web UI sessions: hashes of tokens, never tokens; ending one is a new version of its row.
pub const UI_SESSIONS: Table = Table {
    name: "ui_sessions",
    columns: "hash String, key_hash String, csrf String, created_at DateTime64(6, 'UTC'), \
        expires_at DateTime64(6, 'UTC'), ended_at Nullable(DateTime64(6, 'UTC')), version UInt64, \
        INDEX ui_sessions_expiry expires_at TYPE minmax GRANULARITY 1",
    order_by: "hash",
    version: Some("version"),
    shard_by: "cityHash64(hash)",
};

/// The record of applied migrations.
pub const MIGRATIONS_TABLE: Table = Table {
    name: "weft_migrations",
    columns: "version UInt32, name String, applied_at DateTime64(6, 'UTC')",
    order_by: "version",
    version: None,
    shard_by: "version",
};

/// A step of a migration.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Creates a table (if it does not exist).
    Create(&'static Table),
    /// Adds columns to a table (if it lacks them): its name and the columns' definitions.
    AddColumns(&'static str, &'static [&'static str]),
    /// Derives the view columns of the `predict_and_score` calls again: a call of a run logged
    /// through the trace API became a prediction (data, not DDL: `migrate` runs it).
    DeriveLoggedPredictions,
    /// Derives the view columns of the calls flagged `weave.prediction` with JSON `true` again:
    /// they became predictions (data, not DDL: `migrate` runs it).
    DeriveFlaggedPredictions,
    /// Fills [`CALL_VIEWS`] from the calls already stored (data, not DDL: `migrate` runs it).
    /// A later migration that writes calls again must write their view rows too.
    FillCallViews,
}

/// The thread, turn and W&B run columns of calls (migration 4). Reading calls needs them, so
/// a data migration before 4 adds them first.
pub const CALL_THREAD_COLUMNS: Step = Step::AddColumns(
    "calls",
    &[
        "thread_id Nullable(String)",
        "turn_id Nullable(String)",
        "wb_run_id Nullable(String)",
        "wb_run_step Nullable(Int64)",
        "wb_run_step_end Nullable(Int64)",
    ],
);

/// A numbered change to the schema, applied once, in order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number; migrations apply in increasing order.
    pub version: u32,
    /// What it does.
    pub name: &'static str,
    /// Its steps.
    pub steps: &'static [Step],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        steps: &[
            Step::Create(&CALLS),
            Step::Create(&OBJECTS),
            Step::Create(&TABLE_ROWS),
            Step::Create(&TABLES),
            Step::Create(&FILES),
            Step::Create(&FEEDBACK),
            Step::Create(&API_KEYS),
        ],
    },
    Migration { version: 2, name: "predictions of logged runs", steps: &[Step::DeriveLoggedPredictions] },
    Migration { version: 3, name: "web UI sessions", steps: &[Step::Create(&UI_SESSIONS)] },
    Migration { version: 4, name: "threads, turns and W&B runs of calls", steps: &[CALL_THREAD_COLUMNS] },
    Migration {
        version: 5,
        name: "feedback purges and LLM token prices",
        steps: &[FEEDBACK_DELETED, Step::Create(&LLM_TOKEN_PRICES)],
    },
    Migration {
        version: 6,
        name: "tags and aliases of objects",
        steps: &[Step::Create(&OBJECT_TAGS), Step::Create(&OBJECT_ALIASES)],
    },
    Migration {
        version: 7,
        name: "predictions flagged with JSON true",
        steps: &[Step::DeriveFlaggedPredictions],
    },
    Migration {
        version: 8,
        name: "an index of the views' rows",
        steps: &[Step::Create(&CALL_VIEWS), Step::FillCallViews],
    },
];

/// Where the schema goes: one server, or every node of a named cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One server: plain `ReplacingMergeTree` tables.
    Single,
    /// A cluster with Keeper: `Replicated*MergeTree` tables named `<table>_local` on every
    /// node (`ON CLUSTER`), and `Distributed` tables of the plain names over them, sharded by
    /// [`Table::shard_by`].
    Cluster(String),
    /// A cluster without Keeper (one replica per shard): plain `<table>_local` tables made on
    /// each shard, and the same `Distributed` tables made on every node queries enter by; no
    /// `ON CLUSTER`, so whoever applies the schema sends each statement to each node
    /// ([`Place`]).
    Shards(String),
}

/// Which nodes a statement of the schema is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The node weft connects to (on a cluster with Keeper, `ON CLUSTER` takes it further).
    Entry,
    /// Each shard ([`Layout::Shards`]).
    EachShard,
    /// Each shard and the entry node ([`Layout::Shards`]).
    EveryNode,
}

/// A statement of the schema and where it is sent.
pub type Ddl = (Place, String);

/// Checks that `name` is a plain identifier (database and cluster names go into DDL as is).
pub fn identifier(name: &str, what: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!("{what} {name:?} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")))
    }
}

fn on_cluster(layout: &Layout) -> String {
    match layout {
        Layout::Cluster(c) => format!(" ON CLUSTER {c}"),
        Layout::Single | Layout::Shards(_) => String::new(),
    }
}

/// Where a statement on every node goes in `layout`.
fn everywhere(layout: &Layout) -> Place {
    match layout {
        Layout::Shards(_) => Place::EveryNode,
        Layout::Single | Layout::Cluster(_) => Place::Entry,
    }
}

/// `CREATE DATABASE` for `database`.
pub fn create_database(database: &str, layout: &Layout) -> Ddl {
    (everywhere(layout), format!("CREATE DATABASE IF NOT EXISTS {database}{}", on_cluster(layout)))
}

/// The statements creating `table` in `database`.
pub fn create_table(table: &Table, database: &str, layout: &Layout) -> Vec<Ddl> {
    let Table { name, columns, order_by, version, shard_by } = *table;
    let plain = match version {
        Some(v) => format!("ReplacingMergeTree({v})"),
        None => "MergeTree".to_string(),
    };
    let (cluster, local) = match layout {
        Layout::Single => {
            return vec![(
                Place::Entry,
                format!(
                    "CREATE TABLE IF NOT EXISTS {database}.{name} ({columns}) ENGINE = {plain} ORDER BY ({order_by})"
                ),
            )];
        }
        Layout::Cluster(cluster) => {
            let path = format!("'/clickhouse/tables/{{shard}}/{database}/{name}', '{{replica}}'");
            let engine = match version {
                Some(v) => format!("ReplicatedReplacingMergeTree({path}, {v})"),
                None => format!("ReplicatedMergeTree({path})"),
            };
            (cluster, (Place::Entry, engine))
        }
        Layout::Shards(cluster) => (cluster, (Place::EachShard, plain)),
    };
    let on = on_cluster(layout);
    let (place, engine) = local;
    vec![
        (
            place,
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.{name}_local{on} ({columns}) \
                 ENGINE = {engine} ORDER BY ({order_by})"
            ),
        ),
        (
            everywhere(layout),
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.{name}{on} AS {database}.{name}_local \
                 ENGINE = Distributed({cluster}, {database}, {name}_local, {shard_by})"
            ),
        ),
    ]
}

/// The statements of a migration step.
pub fn step_ddl(step: &Step, database: &str, layout: &Layout) -> Vec<Ddl> {
    match step {
        Step::Create(table) => create_table(table, database, layout),
        Step::AddColumns(table, columns) => {
            let add = columns
                .iter()
                .map(|c| format!("ADD COLUMN IF NOT EXISTS {c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let on = on_cluster(layout);
            match layout {
                Layout::Single => vec![(Place::Entry, format!("ALTER TABLE {database}.{table} {add}"))],
                Layout::Cluster(_) | Layout::Shards(_) => {
                    let local = if let Layout::Shards(_) = layout { Place::EachShard } else { Place::Entry };
                    vec![
                        (local, format!("ALTER TABLE {database}.{table}_local{on} {add}")),
                        (everywhere(layout), format!("ALTER TABLE {database}.{table}{on} {add}")),
                    ]
                }
            }
        }
        Step::DeriveLoggedPredictions | Step::DeriveFlaggedPredictions | Step::FillCallViews => Vec::new(),
    }
}

/// The whole schema as DDL, for `weft migrate --print`: the database, the migrations table,
/// then every migration's statements.
pub fn full_ddl(database: &str, layout: &Layout) -> Vec<Ddl> {
    let mut out = vec![create_database(database, layout)];
    out.extend(create_table(&MIGRATIONS_TABLE, database, layout));
    for m in MIGRATIONS {
        for step in m.steps {
            out.extend(step_ddl(step, database, layout));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_server_tables_replace_by_version() {
        let ddl: Vec<String> =
            create_table(&CALLS, "weft", &Layout::Single).into_iter().map(|d| d.1).collect();
        assert_eq!(ddl.len(), 1);
        assert!(ddl[0].starts_with("CREATE TABLE IF NOT EXISTS weft.calls ("));
        assert!(ddl[0].ends_with("ENGINE = ReplacingMergeTree(version) ORDER BY (project_id, id)"));
        let m = create_table(&MIGRATIONS_TABLE, "weft", &Layout::Single);
        assert!(m[0].1.ends_with("ENGINE = MergeTree ORDER BY (version)"));
    }

    #[test]
    fn cluster_tables_are_replicated_and_distributed_by_project() {
        let ddl: Vec<String> =
            create_table(&CALLS, "w", &Layout::Cluster("main".into())).into_iter().map(|d| d.1).collect();
        assert_eq!(ddl.len(), 2);
        assert!(ddl[0].starts_with("CREATE TABLE IF NOT EXISTS w.calls_local ON CLUSTER main ("));
        assert!(ddl[0].contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/w/calls', '{replica}', version)"
        ));
        assert_eq!(
            ddl[1],
            "CREATE TABLE IF NOT EXISTS w.calls ON CLUSTER main AS w.calls_local \
             ENGINE = Distributed(main, w, calls_local, cityHash64(project_id))"
        );
        let keys = create_table(&API_KEYS, "w", &Layout::Cluster("main".into()));
        assert!(keys[1].1.ends_with("cityHash64(id))"));
    }

    #[test]
    fn shards_without_keeper_get_plain_local_tables_on_each_shard_and_distributed_everywhere() {
        let ddl = create_table(&CALLS, "w", &Layout::Shards("two".into()));
        assert_eq!(ddl.len(), 2);
        assert_eq!(ddl[0].0, Place::EachShard);
        assert!(ddl[0].1.starts_with("CREATE TABLE IF NOT EXISTS w.calls_local ("));
        assert!(ddl[0].1.ends_with("ENGINE = ReplacingMergeTree(version) ORDER BY (project_id, id)"));
        assert_eq!(
            ddl[1],
            (
                Place::EveryNode,
                "CREATE TABLE IF NOT EXISTS w.calls AS w.calls_local \
                 ENGINE = Distributed(two, w, calls_local, cityHash64(project_id))"
                    .to_string()
            )
        );
        let add = step_ddl(&CALL_THREAD_COLUMNS, "w", &Layout::Shards("two".into()));
        assert_eq!(add.iter().map(|d| d.0).collect::<Vec<_>>(), [Place::EachShard, Place::EveryNode]);
        assert!(add[0].1.starts_with("ALTER TABLE w.calls_local ADD COLUMN IF NOT EXISTS thread_id"));
        assert_eq!(create_database("w", &Layout::Shards("two".into())).0, Place::EveryNode);
        assert!(full_ddl("w", &Layout::Shards("two".into())).iter().all(|d| !d.1.contains("ON CLUSTER")));
    }

    #[test]
    fn full_ddl_starts_with_the_database_and_covers_every_table() {
        let ddl: Vec<String> = full_ddl("weft", &Layout::Single).into_iter().map(|d| d.1).collect();
        assert_eq!(ddl[0], "CREATE DATABASE IF NOT EXISTS weft");
        for t in [
            "weft_migrations",
            "calls",
            "objects",
            "table_rows",
            "tables",
            "files",
            "feedback",
            "api_keys",
            "ui_sessions",
            "llm_token_prices",
            "object_tags",
            "object_aliases",
            "call_views",
        ] {
            assert!(ddl.iter().any(|s| s.contains(&format!("weft.{t} ("))), "{t}");
        }
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "migrations in order");
    }

    #[test]
    fn names_must_be_identifiers() {
        assert!(identifier("weft_test_1", "database").is_ok());
        for bad in ["", "1abc", "a-b", "a;DROP", "a b", "a.b"] {
            assert!(identifier(bad, "database").is_err(), "{bad}");
        }
    }
}
