//! What Weave's table queries (`feedback/query`, `cost/query`) do to rows once they match:
//! `fields` (which columns, or paths into a JSON column, each answered under its own name),
//! `sort_by` (columns as values; paths into a JSON column as Weave orders them: rows holding
//! the path first, then by number, then by text), and the one query shape their purges accept
//! (rows named by id).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::call_query::SortBy;
use super::error::{Error, Result};
use super::query::get_path;

/// The columns of a kind of row, and which of them hold JSON (that a path may go into).
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub all: &'static [&'static str],
    pub json: &'static [&'static str],
}

impl Columns {
    /// Checks that `field` is a column or a path into a JSON column (a 400 naming it if not);
    /// `true` for a path.
    fn check(&self, field: &str) -> Result<bool> {
        if self.all.contains(&field) {
            return Ok(false);
        }
        let path = field
            .split_once('.')
            .filter(|(head, rest)| self.json.contains(head) && rest.split('.').all(|p| !p.is_empty()));
        match path {
            Some(_) => Ok(true),
            None => Err(Error::BadRequest(format!("Unknown field: {field}"))),
        }
    }

    /// The `fields` of a query, checked; `None` asks for every column.
    pub fn fields(&self, fields: Option<&[String]>) -> Result<Option<Vec<String>>> {
        let Some(fields) = fields.filter(|f| !f.is_empty()) else { return Ok(None) };
        for f in fields {
            self.check(f)?;
        }
        Ok(Some(fields.to_vec()))
    }

    /// The order a `sort_by` asks for, checked.
    pub fn sort(&self, sort_by: Option<&[SortBy]>) -> Result<Vec<RowSort>> {
        let mut out = Vec::new();
        for s in sort_by.unwrap_or_default() {
            let descending = s.descending()?;
            let dynamic = self.check(&s.field)?;
            out.push(RowSort { field: s.field.clone(), dynamic, descending });
        }
        Ok(out)
    }
}

/// A row with only `fields` (each under its name: `payload.note` is a key of the answer), or
/// whole when `fields` is `None`.
pub fn select(row: Value, fields: Option<&[String]>) -> Value {
    let Some(fields) = fields else { return row };
    let mut out = Map::new();
    for f in fields {
        out.insert(f.clone(), get_path(&row, f));
    }
    Value::Object(out)
}

/// One key of a row order.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSort {
    field: String,
    /// A path into a JSON column.
    dynamic: bool,
    descending: bool,
}

/// How a column's values order: null first, then booleans and numbers by value, then text.
fn value_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) | Value::Number(_) => 1,
            _ => 2,
        }
    }
    let num = |v: &Value| match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    rank(a).cmp(&rank(b)).then_with(|| match (num(a), num(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => text(a).cmp(&text(b)),
    })
}

/// Compares two rows by `sort` (stable: equal rows keep their order).
pub fn compare(a: &Value, b: &Value, sort: &[RowSort]) -> Ordering {
    for s in sort {
        let (x, y) = (get_path(a, &s.field), get_path(b, &s.field));
        let dir = |o: Ordering| if s.descending { o.reverse() } else { o };
        let o = if s.dynamic {
            // Rows holding the path first (whatever the direction), then by number (numbers
            // before what is not one), then by text.
            let num = |v: &Value| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(t) => t.trim().parse::<f64>().ok(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            };
            let text = |v: &Value| match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            x.is_null().cmp(&y.is_null()).then_with(|| match (num(&x), num(&y)) {
                (Some(p), Some(q)) => dir(p.total_cmp(&q)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => dir(text(&x).cmp(&text(&y))),
            })
        } else {
            dir(value_order(&x, &y))
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The ids a purge's query names, in Weave's only accepted shapes: `$eq` of the `id` field and
/// a string literal, or an `$or` of those (and, where `allow_in`, `$in` of `id` and string
/// literals). Any other query is a 400 with `message`.
pub fn purge_ids(query: &Value, allow_in: bool, message: &str) -> Result<Vec<String>> {
    let refuse = || Error::BadRequest(message.to_string());
    let one_key = |v: &Value, key: &str| -> Option<Value> {
        let m = v.as_object()?;
        if m.len() != 1 {
            return None;
        }
        m.get(key).cloned()
    };
    let is_id = |v: &Value| one_key(v, "$getField").is_some_and(|f| f == "id");
    let literal = |v: &Value| one_key(v, "$literal").and_then(|l| l.as_str().map(String::from));
    let eq = |v: &Value| -> Option<String> {
        let pair = one_key(v, "$eq")?;
        match pair.as_array().map(Vec::as_slice) {
            Some([field, lit]) if is_id(field) => literal(lit),
            _ => None,
        }
    };
    let expr = one_key(query, "$expr").ok_or_else(refuse)?;
    if let Some(id) = eq(&expr) {
        return Ok(vec![id]);
    }
    if let Some(items) = one_key(&expr, "$or") {
        let items = items.as_array().ok_or_else(refuse)?;
        return items.iter().map(|i| eq(i).ok_or_else(refuse)).collect();
    }
    if allow_in
        && let Some(pair) = one_key(&expr, "$in")
        && let Some([field, Value::Array(lits)]) = pair.as_array().map(Vec::as_slice)
        && is_id(field)
    {
        return lits.iter().map(|l| literal(l).ok_or_else(refuse)).collect();
    }
    Err(refuse())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLS: Columns = Columns { all: &["id", "created_at", "payload"], json: &["payload"] };

    #[test]
    fn purges_name_rows_by_id_only() {
        let eq = |id: &str| json!({"$eq": [{"$getField": "id"}, {"$literal": id}]});
        assert_eq!(purge_ids(&json!({"$expr": eq("a")}), false, "m").unwrap(), ["a"]);
        assert_eq!(
            purge_ids(&json!({"$expr": {"$or": [eq("a"), eq("b")]}}), false, "m").unwrap(),
            ["a", "b"]
        );
        let by_in = json!({"$expr": {"$in": [{"$getField": "id"}, [{"$literal": "a"}]]}});
        assert!(purge_ids(&by_in, false, "m").is_err());
        assert_eq!(purge_ids(&by_in, true, "m").unwrap(), ["a"]);
        for bad in [
            json!({"$expr": {"$eq": [{"$getField": "weave_ref"}, {"$literal": "a"}]}}),
            json!({"$expr": {"$eq": [{"$getField": "id"}, {"$literal": 1}]}}),
            json!({"$expr": {"$and": [eq("a")]}}),
            json!({"$expr": {"$or": [eq("a"), {"$gt": [{"$getField": "id"}, {"$literal": "b"}]}]}}),
            json!({}),
        ] {
            assert!(matches!(purge_ids(&bad, true, "m"), Err(Error::BadRequest(m)) if m == "m"), "{bad}");
        }
    }

    #[test]
    fn fields_and_sorts_are_columns_or_json_paths() {
        assert!(COLS.fields(Some(&["id".into(), "payload.note".into()])).is_ok());
        assert!(COLS.fields(Some(&["nope".into()])).is_err());
        assert!(COLS.fields(Some(&["id.x".into()])).is_err());
        let row = json!({"id": "a", "payload": {"note": "n"}});
        assert_eq!(
            select(row, Some(&["id".into(), "payload.note".into()])),
            json!({"id": "a", "payload.note": "n"})
        );
        let sort = COLS
            .sort(Some(&[SortBy { field: "payload.score".into(), direction: Some("desc".into()) }]))
            .unwrap();
        let mut rows =
            [json!({"payload": {}}), json!({"payload": {"score": 1}}), json!({"payload": {"score": 3}})];
        rows.sort_by(|a, b| compare(a, b, &sort));
        assert_eq!(rows[0]["payload"]["score"], 3);
        assert_eq!(rows[1]["payload"]["score"], 1);
        assert!(rows[2]["payload"]["score"].is_null());
    }
}
