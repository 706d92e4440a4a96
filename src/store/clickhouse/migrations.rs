//! Bringing a ClickHouse database to this weft's schema: the migrations of [`super::schema`]
//! it lacks, recorded in `weft_migrations`.

use std::collections::HashSet;

use super::client::{Client, Query};
use super::rows::time;
use super::schema::{self, Layout, MIGRATIONS, MIGRATIONS_TABLE};
use crate::domain::call::now;
use crate::domain::error::{Error, Result};

/// Applies the migrations `client`'s database lacks (creating the database first); returns
/// those applied now.
pub fn migrate(client: &Client) -> Result<Vec<(u32, &'static str)>> {
    let db = client.database();
    schema::identifier(db, "database name")?;
    client.execute_in(&Query::new(schema::create_database(db, &Layout::Single)), None)?;
    for ddl in schema::create_table(&MIGRATIONS_TABLE, db, &Layout::Single) {
        client.execute(&Query::new(ddl))?;
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
            for ddl in schema::step_ddl(step, db, &Layout::Single) {
                client.execute(&Query::new(ddl))?;
            }
        }
        let line = serde_json::json!({"version": m.version, "name": m.name, "applied_at": time(now())?});
        client.insert("weft_migrations", format!("{line}\n").as_bytes())?;
        done.push((m.version, m.name));
    }
    Ok(done)
}
