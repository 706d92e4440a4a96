//! Objects: versions (one, or a query's), their tags and aliases, and the content-addressed
//! tables and files they refer to.

use std::collections::{HashMap, HashSet};

use super::{limit_offset, names};
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::object::{Labels, ObjectQuery, ObjectVersion, Version};
use crate::store::clickhouse::client::{Client, Query};
use crate::store::clickhouse::rows::{OBJECT_COLUMNS, file_content, object_columns, object_from_tuple};
use crate::store::object_order;

/// An object version, whether it is its object's latest live version, and its tags and
/// aliases (empty when not asked for).
type LabeledObjectTuple = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<String>,
    Option<Micros>,
    bool,
    Vec<String>,
    Vec<String>,
);

/// The version of a [`LabeledObjectTuple`], whether it is the latest, and its labels.
fn labeled_object(t: LabeledObjectTuple) -> (ObjectVersion, bool, Labels) {
    let s = object_from_tuple((t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10));
    (s.object, t.11, Labels { tags: t.12, aliases: t.13 })
}

/// The (object id, digest) pairs of a project's live rows of `table` whose `column` is one of
/// `names`, as a subquery.
fn labeled(q: &mut Query, project: &str, table: &str, column: &str, names: &[&str]) -> String {
    let (p, list) = (q.string(project), q.strings(names));
    format!(
        "(SELECT object_id, digest FROM {table} FINAL WHERE project_id = {p} AND {column} IN {list} AND NOT removed)"
    )
}

/// The live versions of a project's objects (of `object_ids`, if any) with an `is_latest`
/// column: whether each is the newest live version of its object.
fn live_objects_with_latest(q: &mut Query, project: &str, object_ids: &[String]) -> String {
    let p = q.string(project);
    let only = if object_ids.is_empty() {
        String::new()
    } else {
        format!(" AND object_id IN {}", q.strings(object_ids))
    };
    format!(
        "(SELECT project_id, object_id, digest, version_index, kind, base_object_class, leaf_object_class, \
         val, created_at, wb_user_id, deleted_at, \
         toBool(version_index = max(version_index) OVER (PARTITION BY object_id)) AS is_latest \
         FROM objects FINAL \
         WHERE project_id = {p} AND deleted_at IS NULL{only})"
    )
}

pub(super) fn object(
    client: &Client,
    project: &str,
    object_id: &str,
    version: &Version,
) -> Result<Option<(ObjectVersion, bool)>> {
    let mut q = Query::default();
    let source = live_objects_with_latest(&mut q, project, &[object_id.to_string()]);
    let (pick, order) = match version {
        Version::Latest => ("is_latest".to_string(), String::new()),
        Version::Index(i) => (format!("version_index = {}", q.int(*i)), String::new()),
        Version::Digest(d) => (format!("digest = {}", q.string(d)), String::new()),
        Version::Alias(a) => {
            let (p, o, a) = (q.string(project), q.string(object_id), q.string(a));
            (
                format!(
                    "(digest IN (SELECT digest FROM object_aliases FINAL WHERE project_id = {p} \
                     AND object_id = {o} AND alias = {a} AND NOT removed) OR digest = {a})"
                ),
                format!(" ORDER BY digest = {a}"),
            )
        }
    };
    q.push(&format!(
        "SELECT {OBJECT_COLUMNS}, is_latest, [], [] FROM {source} WHERE {pick}{order} LIMIT 1 \
         FORMAT JSONCompactEachRow"
    ));
    Ok(client
        .query_all::<LabeledObjectTuple>(&q)?
        .pop()
        .map(labeled_object)
        .map(|(o, latest, _)| (o, latest)))
}

pub(super) fn objects(
    client: &Client,
    project: &str,
    oq: &ObjectQuery,
    sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
) -> Result<()> {
    let mut q = Query::default();
    let source = live_objects_with_latest(&mut q, project, &oq.object_ids);
    let mut filters = String::from("1");
    if !oq.base_object_classes.is_empty() {
        filters.push_str(&format!(" AND base_object_class IN {}", q.strings(&oq.base_object_classes)));
    }
    if !oq.exclude_base_object_classes.is_empty() {
        filters.push_str(&format!(
            " AND base_object_class IS NOT NULL AND base_object_class NOT IN {}",
            q.strings(&oq.exclude_base_object_classes)
        ));
    }
    if !oq.leaf_object_classes.is_empty() {
        filters.push_str(&format!(" AND leaf_object_class IN {}", q.strings(&oq.leaf_object_classes)));
    }
    if !oq.tags.is_empty() {
        let tags: Vec<&str> = oq.tags.iter().map(String::as_str).collect();
        let sub = labeled(&mut q, project, "object_tags", "tag", &tags);
        filters.push_str(&format!(" AND (object_id, digest) IN {sub}"));
    }
    if !oq.aliases.is_empty() {
        let named: Vec<&str> = oq.aliases.iter().map(String::as_str).filter(|a| *a != "latest").collect();
        let latest = named.len() < oq.aliases.len();
        let by_name = if named.is_empty() {
            "0".to_string()
        } else {
            format!("(object_id, digest) IN {}", labeled(&mut q, project, "object_aliases", "alias", &named))
        };
        filters.push_str(&if latest {
            format!(" AND (is_latest OR {by_name})")
        } else {
            format!(" AND {by_name}")
        });
    }
    match oq.is_op {
        Some(true) => filters.push_str(" AND kind = 'op'"),
        Some(false) => filters.push_str(" AND kind != 'op'"),
        None => {}
    }
    if oq.latest_only {
        filters.push_str(" AND is_latest");
    }
    let (labels, joins) = if oq.with_labels {
        let p = q.string(project);
        (
            ", tags, aliases",
            format!(
                " LEFT JOIN (SELECT object_id, digest, groupArray(tag) AS tags FROM object_tags FINAL \
                 WHERE project_id = {p} AND NOT removed GROUP BY object_id, digest) AS t USING (object_id, digest) \
                 LEFT JOIN (SELECT object_id, digest, groupArray(alias) AS aliases FROM object_aliases FINAL \
                 WHERE project_id = {p} AND NOT removed GROUP BY object_id, digest) AS a USING (object_id, digest)"
            ),
        )
    } else {
        (", [], []", String::new())
    };
    let window = limit_offset(&mut q, oq.page);
    q.push(&format!(
        "SELECT {}, is_latest{labels} FROM {source} AS o{joins} WHERE {filters} \
         ORDER BY {}{window} FORMAT JSONCompactEachRow",
        object_columns(oq.metadata_only),
        object_order(oq),
    ));
    client.query_rows::<LabeledObjectTuple>(&q, &mut |t| {
        let (o, latest, labels) = labeled_object(t);
        Ok(sink(o, latest, oq.with_labels.then_some(labels)))
    })
}

/// The live names in `column` of `table` (tags or aliases) of one object version, sorted.
fn version_labels(
    client: &Client,
    project: &str,
    object_id: &str,
    digest: &str,
    table: &str,
    column: &str,
) -> Result<Vec<String>> {
    let mut q = Query::default();
    let (p, o, d) = (q.string(project), q.string(object_id), q.string(digest));
    q.push(&format!(
        "SELECT {column} FROM {table} FINAL WHERE project_id = {p} AND object_id = {o} AND digest = {d} \
         AND NOT removed ORDER BY {column} FORMAT JSONCompactEachRow"
    ));
    names(client, &q)
}

pub(super) fn labels(client: &Client, project: &str, object_id: &str, digest: &str) -> Result<Labels> {
    Ok(Labels {
        tags: version_labels(client, project, object_id, digest, "object_tags", "tag")?,
        aliases: version_labels(client, project, object_id, digest, "object_aliases", "alias")?,
    })
}

/// The distinct live names in `column` of `table` (tags or aliases) across a project, sorted.
pub(super) fn project_labels(
    client: &Client,
    project: &str,
    table: &str,
    column: &str,
) -> Result<Vec<String>> {
    let mut q = Query::default();
    let p = q.string(project);
    q.push(&format!(
        "SELECT DISTINCT {column} FROM {table} FINAL WHERE project_id = {p} AND NOT removed \
         ORDER BY {column} FORMAT JSONCompactEachRow"
    ));
    names(client, &q)
}

/// Table rows read in one query: few enough that their texts fit in memory however large rows are.
const ROW_CHUNK: usize = 256;

pub(in crate::store::clickhouse) fn table_digests(
    client: &Client,
    project: &str,
    digest: &str,
) -> Result<Option<Vec<String>>> {
    let mut q = Query::default();
    let (p, d) = (q.string(project), q.string(digest));
    q.push(&format!(
        "SELECT row_digests FROM tables WHERE project_id = {p} AND digest = {d} LIMIT 1 \
         FORMAT JSONCompactEachRow"
    ));
    Ok(client.query_all::<(Vec<String>,)>(&q)?.pop().map(|(l,)| l))
}

pub(super) fn table_row_texts(
    client: &Client,
    project: &str,
    digests: &[&str],
    sink: &mut dyn FnMut(usize, &str) -> bool,
) -> Result<()> {
    // A chunk of positions at a time: its distinct rows in one query, then sent in order.
    let mut vals: HashMap<String, String> = HashMap::new();
    for (c, chunk) in digests.chunks(ROW_CHUNK).enumerate() {
        vals.clear();
        let distinct: Vec<&str> = {
            let mut seen = HashSet::new();
            chunk.iter().copied().filter(|d| seen.insert(*d)).collect()
        };
        let mut q = Query::default();
        let (p, ds) = (q.string(project), q.strings(&distinct));
        q.push(&format!(
            "SELECT digest, val FROM table_rows WHERE project_id = {p} AND digest IN {ds} \
             LIMIT 1 BY digest FORMAT JSONCompactEachRow"
        ));
        client.query_rows::<(String, String)>(&q, &mut |(d, v)| {
            vals.insert(d, v);
            Ok(true)
        })?;
        for (k, d) in chunk.iter().enumerate() {
            if let Some(v) = vals.get(*d)
                && !sink(c * ROW_CHUNK + k, v)
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

pub(super) fn file(client: &Client, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
    let mut q = Query::default();
    let (p, d) = (q.string(project), q.string(digest));
    q.push(&format!(
        "SELECT content_base64 FROM files WHERE project_id = {p} AND digest = {d} LIMIT 1 \
         FORMAT JSONCompactEachRow"
    ));
    client.query_all::<(String,)>(&q)?.pop().map(|(b,)| file_content(&b)).transpose()
}
