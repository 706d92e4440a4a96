//! Bringing a ClickHouse database to this weft's schema: the migrations of [`super::schema`]
//! it lacks, recorded in `weft_migrations`.

use std::collections::HashSet;

use super::client::{Client, Query};
use super::rows::{CALL_COLUMNS, CallTuple, call_from_tuple, call_line, time};
use super::schema::{self, Layout, MIGRATIONS, MIGRATIONS_TABLE, Step};
use crate::domain::call::now;
use crate::domain::error::{Error, Result};
use crate::domain::view::{is_predict_and_score, mark_holds_prediction};

/// Rows per insert of a data migration.
const INSERT_ROWS: usize = 10_000;

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
            if let Step::DeriveLoggedPredictions = step {
                derive_logged_predictions(client)?;
            }
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

/// A `predict_and_score` child of a run is a prediction unless `POST /predictions` wrote it
/// around a flagged prediction. The parents that route wrote before are recognised by such a
/// child (deleted or not) and marked as it marks them now; then every `predict_and_score` call
/// is written again, a new version of its row with the view columns `ViewColumns::of` derives.
fn derive_logged_predictions(client: &Client) -> Result<()> {
    for ddl in schema::step_ddl(&schema::CALL_THREAD_COLUMNS, client.database(), &Layout::Single) {
        client.execute(&Query::new(ddl))?;
    }
    let holding: Vec<(String, String)> = client.query_all(&Query::new(
        "SELECT DISTINCT project_id, assumeNotNull(parent_id) FROM calls FINAL \
         WHERE kind = 'prediction' AND parent_id IS NOT NULL FORMAT JSONCompactEachRow",
    ))?;
    let holding: HashSet<(String, String)> = holding.into_iter().collect();
    let version = u64::try_from(now()).unwrap_or(0);
    let mut lines = Vec::new();
    let q = Query::new(format!(
        "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE parent_id IS NOT NULL \
         AND (positionCaseInsensitive(op_name, 'predict_and_score') > 0 \
           OR positionCaseInsensitive(op_name, 'predictAndScore') > 0) FORMAT JSONCompactEachRow"
    ));
    client.query_rows::<CallTuple>(&q, &mut |t| {
        let mut s = call_from_tuple(t);
        if is_predict_and_score(&s.call) {
            if holding.contains(&(s.call.project_id.clone(), s.call.id.clone())) {
                mark_holds_prediction(&mut s.call);
            }
            lines.push(call_line(&s, version)?);
        }
        Ok(true)
    })?;
    for chunk in lines.chunks(INSERT_ROWS) {
        let mut body = chunk.join("\n");
        body.push('\n');
        client.insert("calls", body.as_bytes())?;
    }
    Ok(())
}
