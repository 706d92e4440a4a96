//! Objects: versions (one, or a query's), their tags and aliases, and the content-addressed
//! tables and files they refer to.

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::domain::error::Result;
use crate::domain::object::{Labels, ObjectQuery, ObjectVersion, Version};
use crate::store::object_order;
use crate::store::sqlite::rows::{
    Arg, IS_LATEST, LABEL_COLUMNS, OBJECT_COLUMNS, for_rows, limit_offset, object_columns,
    object_with_latest, string_list, texts,
};
use crate::store::sqlite::storage;

pub(super) fn object(
    conn: &Connection,
    project: &str,
    object_id: &str,
    version: &Version,
) -> Result<Option<(ObjectVersion, bool)>> {
    let (clause, arg) = match version {
        Version::Latest => ("ORDER BY version_index DESC LIMIT 1", None),
        Version::Index(i) => ("AND version_index = ?3", Some(i.to_string())),
        Version::Digest(d) => ("AND digest = ?3", Some(d.clone())),
        Version::Alias(a) => (
            "AND digest IN (SELECT digest FROM object_aliases WHERE project_id = ?1 \
             AND object_id = ?2 AND alias = ?3 UNION ALL SELECT ?3) \
             ORDER BY digest = ?3 LIMIT 1",
            Some(a.clone()),
        ),
    };
    let sql = format!(
        "SELECT {OBJECT_COLUMNS}, {IS_LATEST} FROM objects o WHERE project_id = ?1 AND object_id = ?2 \
         AND deleted_at IS NULL {}",
        if arg.is_some() { clause.to_string() } else { format!("AND ?3 IS NULL {clause}") }
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
    stmt.query_row(params![project, object_id, arg], object_with_latest).optional().map_err(storage)
}

pub(super) fn objects(
    conn: &Connection,
    project: &str,
    q: &ObjectQuery,
    sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
) -> Result<()> {
    let labels = if q.with_labels { format!(", {LABEL_COLUMNS}") } else { String::new() };
    let mut sql = format!(
        "SELECT {}, {IS_LATEST}{labels} FROM objects o WHERE project_id = ? AND deleted_at IS NULL",
        object_columns(q.metadata_only)
    );
    let mut args: Vec<Arg<'_>> = vec![Arg::Text(project)];
    for (column, values) in [
        ("object_id", &q.object_ids),
        ("base_object_class", &q.base_object_classes),
        ("leaf_object_class", &q.leaf_object_classes),
    ] {
        if !values.is_empty() {
            sql.push_str(&format!(" AND {column} IN rarray(?)"));
            args.push(Arg::list(values.iter().map(String::as_str)));
        }
    }
    if !q.exclude_base_object_classes.is_empty() {
        sql.push_str(" AND base_object_class NOT IN rarray(?)");
        args.push(Arg::list(q.exclude_base_object_classes.iter().map(String::as_str)));
    }
    if !q.tags.is_empty() {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM object_tags t WHERE t.project_id = o.project_id \
             AND t.object_id = o.object_id AND t.digest = o.digest AND t.tag IN rarray(?))",
        );
        args.push(Arg::list(q.tags.iter().map(String::as_str)));
    }
    if !q.aliases.is_empty() {
        let named: Vec<&str> = q.aliases.iter().map(String::as_str).filter(|a| *a != "latest").collect();
        let by_name = "EXISTS (SELECT 1 FROM object_aliases a WHERE a.project_id = o.project_id \
             AND a.object_id = o.object_id AND a.digest = o.digest AND a.alias IN rarray(?))";
        let latest = named.len() < q.aliases.len();
        sql.push_str(&match (latest, named.is_empty()) {
            (true, true) => format!(" AND {IS_LATEST}"),
            (true, false) => format!(" AND ({IS_LATEST} OR {by_name})"),
            (false, _) => format!(" AND {by_name}"),
        });
        if !named.is_empty() {
            args.push(Arg::list(named));
        }
    }
    match q.is_op {
        Some(true) => sql.push_str(" AND kind = 'op'"),
        Some(false) => sql.push_str(" AND kind != 'op'"),
        None => {}
    }
    if q.latest_only {
        sql.push_str(&format!(" AND {IS_LATEST}"));
    }
    let (limit, offset) = limit_offset(q.page);
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit} OFFSET {offset}", object_order(q)));
    let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
    for_rows(stmt.query(params_from_iter(args)).map_err(storage)?, &mut |r| {
        let (o, latest) = object_with_latest(r)?;
        let labels = if q.with_labels {
            Some(Labels { tags: string_list(r, 11)?, aliases: string_list(r, 12)? })
        } else {
            None
        };
        Ok(sink(o, latest, labels))
    })
}

pub(super) fn labels(conn: &Connection, project: &str, object_id: &str, digest: &str) -> Result<Labels> {
    let read = |table: &str, column: &str| {
        let sql = format!(
            "SELECT {column} FROM {table} WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 \
             ORDER BY {column}"
        );
        texts(conn, &sql, params![project, object_id, digest])
    };
    Ok(Labels { tags: read("object_tags", "tag")?, aliases: read("object_aliases", "alias")? })
}

/// The distinct names in `column` of `table` (tags or aliases) across a project, sorted.
pub(super) fn project_labels(
    conn: &Connection,
    project: &str,
    table: &str,
    column: &str,
) -> Result<Vec<String>> {
    let sql = format!("SELECT DISTINCT {column} FROM {table} WHERE project_id = ?1 ORDER BY {column}");
    texts(conn, &sql, [project])
}

pub(super) fn table_row_texts(
    conn: &Connection,
    project: &str,
    digests: &[&str],
    sink: &mut dyn FnMut(usize, &str) -> bool,
) -> Result<()> {
    let mut stmt = conn
        .prepare_cached("SELECT val FROM table_rows WHERE project_id = ?1 AND digest = ?2")
        .map_err(storage)?;
    for (k, d) in digests.iter().enumerate() {
        let mut rows = stmt.query(params![project, d]).map_err(storage)?;
        if let Some(r) = rows.next().map_err(storage)?
            && !sink(k, r.get_ref(0).and_then(|v| v.as_str().map_err(Into::into)).map_err(storage)?)
        {
            break;
        }
    }
    Ok(())
}

pub(super) fn file(conn: &Connection, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT content FROM files WHERE project_id = ?1 AND digest = ?2")
        .map_err(storage)?
        .query_row(params![project, digest], |r| r.get(0))
        .optional()
        .map_err(storage)
}
