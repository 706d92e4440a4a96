//! The scale-out store: ClickHouse over its HTTP interface.
//!
//! Tables are `ReplacingMergeTree(version)`: every change (an end, a soft delete, a revocation)
//! is a new version of the whole row, and reads take the newest version of each row with
//! `FINAL`. One writer thread runs queued write jobs in batches: each job's rows are held in
//! memory (reads inside the writer see them over ClickHouse's rows; a failed job's rows are
//! dropped), then each table's rows of the batch go in as one insert before the jobs are told
//! they are done, so readers never see part of a batch's rows of a table.
//!
//! Here the store itself. The HTTP client is in [`client`], the schema's DDL in [`schema`] and
//! applying its migrations in `migrations`, the writer's batch and the writes of a job in
//! `writes`, the reads in `reads` (each split by resource), API keys in `keys` (with a
//! short-lived cache of verified keys in `key_cache`), rows as
//! ClickHouse's JSON in `rows`, and the batch's in-memory rows in `overlay`.

pub mod client;
mod key_cache;
mod keys;
mod migrations;
mod overlay;
mod reads;
mod rows;
pub mod schema;
mod writes;

use std::sync::Arc;

use self::client::Client;
pub use self::client::Config;
pub use self::key_cache::KEY_CACHE_TTL;
use self::key_cache::KeyCache;
pub use self::migrations::{Topology, migrate};
pub use self::schema::identifier as check_identifier;
use self::writes::WriteClient;
use super::writer::WriterThread;
use crate::domain::error::Result;

/// Most ids sent in one `IN` list (parameters travel in the URL).
const IN_CHUNK: usize = 1000;

/// ClickHouse-backed [`Store`](crate::domain::store::Store).
pub struct ClickHouseStore {
    /// The writer thread; first, so that dropping the store stops it before anything else.
    writer: WriterThread,
    client: Client,
    /// Keys verified lately (see [`key_cache`]).
    keys: Arc<KeyCache>,
}

impl ClickHouseStore {
    /// Connects to one server, applies pending migrations and starts the writer.
    pub fn open(config: Config) -> Result<Self> {
        Self::open_on(config, &Topology::single())
    }

    /// Connects (to the entry node of `topology`), applies pending migrations as `topology`
    /// lays tables out, and starts the writer.
    pub fn open_on(config: Config, topology: &Topology) -> Result<Self> {
        let client = Client::new(config);
        let applied = migrate(&client, topology)?;
        for (version, name) in applied {
            tracing::info!(version, name, "applied ClickHouse migration");
        }
        let keys = Arc::new(KeyCache::default());
        let writer =
            WriterThread::start(WriteClient { client: client.clone(), version: 0, keys: keys.clone() })?;
        Ok(ClickHouseStore { writer, client, keys })
    }
}

/// Brings the configured database to this weft's schema without starting a store (what
/// `weft migrate` does); returns the migrations applied now.
pub fn migrate_database(config: Config, topology: &Topology) -> Result<Vec<(u32, &'static str)>> {
    migrate(&Client::new(config), topology)
}

/// The schema's DDL for `database` laid out as `topology` says, each statement with where it
/// is sent.
pub fn schema_ddl(database: &str, topology: &Topology) -> Result<Vec<schema::Ddl>> {
    schema::identifier(database, "--clickhouse-database")?;
    Ok(schema::full_ddl(database, &topology.layout))
}
