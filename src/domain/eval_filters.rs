//! `filters` and `sort_by` of `eval_results/query`, as Weave's server applies them to the rows
//! it groups by row digest.
//!
//! A field names a value of a trial: `scores.<path>` (a score; booleans as 1 and 0),
//! `output.<path>` (the trial's output: `output` the model's, `scores`, `model_latency.mean`),
//! `inputs.<path>` (the example, a dataset row read when the example is a ref to one), or
//! `row_digest`. A row's value of a field is its first trial's (of the filter's or sort's
//! evaluation when it names one), as Weave's ClickHouse server takes `any` trial's; a score
//! sorts by its mean over those trials. Values are compared as Weave's server compares the
//! text it extracts from JSON: a number, a string, `"true"` / `"false"` for a boolean, `""` for
//! what is missing or is an object, a list or `null`.
//!
//! What is kept of each trial is the values of the fields named, never the trial: memory holds
//! keys, as `table/query`'s sorts do.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::body::refuse_unread;
use super::error::{Error, Issue, Result};
use super::examples::Example;
use super::query::Expr;
use super::validate::Fields;

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The row's digest.
    RowDigest,
    /// The example (the dataset row when the example is a ref).
    Inputs,
    /// The trial's output: the model's output, the scores, the model's latency.
    Output,
    /// The trial's scores, booleans as 1 and 0.
    Scores,
}

/// A field of a filter or sort, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The name as sent.
    pub name: String,
    /// Where its value comes from.
    pub source: Source,
    /// The keys under the source (`\.` a dot inside a key).
    pub path: Vec<String>,
}

/// Splits a field path at the dots that are not escaped (`a\.b.c` is `a.b` then `c`).
fn split_path(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('.' | '\\')) => parts.last_mut().unwrap_or(&mut String::new()).push(n),
                Some(n) => {
                    if let Some(p) = parts.last_mut() {
                        p.push('\\');
                        p.push(n);
                    }
                }
                None => parts.last_mut().unwrap_or(&mut String::new()).push('\\'),
            },
            '.' => parts.push(String::new()),
            c => parts.last_mut().unwrap_or(&mut String::new()).push(c),
        }
    }
    parts
}

impl Field {
    /// A filter's field; an unknown prefix is a 400 in Weave's words.
    pub fn parse(name: &str) -> Result<Field> {
        let (source, rest) = if name == "row_digest" {
            (Source::RowDigest, None)
        } else if let Some(r) = name.strip_prefix("inputs.") {
            (Source::Inputs, Some(r))
        } else if let Some(r) = name.strip_prefix("output.") {
            (Source::Output, Some(r))
        } else if let Some(r) = name.strip_prefix("scores.") {
            (Source::Scores, Some(r))
        } else {
            return Err(Error::BadRequest(format!(
                "Unsupported eval results field: '{name}'. Supported prefixes: scores.*, inputs.*, output.*, row_digest."
            )));
        };
        Ok(Field { name: name.to_string(), source, path: rest.map(split_path).unwrap_or_default() })
    }

    /// The value of the field in `v` (a score, the output object or the example).
    fn read(&self, v: &Value) -> Value {
        let mut cur = v;
        for key in &self.path {
            cur = match cur {
                Value::Object(m) => match m.get(key) {
                    Some(next) => next,
                    None => return Value::String(String::new()),
                },
                Value::Array(items) => match key.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(next) => next,
                    None => return Value::String(String::new()),
                },
                _ => return Value::String(String::new()),
            };
        }
        scalar(cur, self.source == Source::Scores)
    }

    /// The field's value in a dataset row (for `inputs.*`).
    pub fn of_row(&self, row: &Value) -> Value {
        self.read(row)
    }
}

/// The digest of the dataset row an example names, when it is a ref to one.
pub fn row_ref_digest(example: &Value) -> Option<&str> {
    let r = example.as_str()?;
    let (_, d) = r.rsplit_once("/attr/rows/id/")?;
    (r.starts_with("weave:///") && !d.is_empty() && !d.contains('/')).then_some(d)
}

/// A value as Weave's server extracts it from JSON: numbers and strings as they are, booleans
/// as text (as 1 and 0 for scores, `"true"` and `"false"` strings too), anything else `""`.
fn scalar(v: &Value, score: bool) -> Value {
    match v {
        Value::Bool(b) if score => json!(u8::from(*b)),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::String(s) if score && (s == "true" || s == "false") => json!(u8::from(s == "true")),
        Value::Number(_) | Value::String(_) => v.clone(),
        _ => Value::String(String::new()),
    }
}

/// A value as a number, as ClickHouse's `toFloat64OrNull` reads its text.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if !s.is_empty() && s.trim() == s => s.parse().ok(),
        _ => None,
    }
}

/// A value's text, for the string order of a sort (`None` when no trial had it).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// One filter: an expression over the fields, scoped to an evaluation or not.
#[derive(Debug, Clone)]
struct Filter {
    scope: Option<String>,
    expr: Expr,
}

/// One sort.
#[derive(Debug, Clone)]
struct Sort {
    field: usize,
    descending: bool,
    scope: Option<String>,
    difference: bool,
}

/// A trial as the plan reads it: its run and the values of the plan's fields.
pub struct Trial<'a> {
    /// The trial's evaluation run.
    pub run: &'a str,
    /// The values of [`Plan::fields`], in order.
    pub values: &'a [Value],
}

/// One part of a row's sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// A number (a score's mean, a difference); `None` last in either direction.
    Number(Option<f64>),
    /// Numbers first in either direction, by value, then by text (`None` last).
    Mixed(Option<f64>, Option<String>),
    /// The row digest.
    Text(String),
}

/// The filters and sorts of a query, with the fields they name.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The distinct fields named.
    pub fields: Vec<Field>,
    filters: Vec<Filter>,
    /// Filters combine as Weave's `filter_logic_operator` says: `or` (the default) keeps a row
    /// that matches every filter of one evaluation; `and` one that matches every filter.
    match_any: bool,
    sorts: Vec<Sort>,
}

fn literal_error(loc: Vec<Value>, expected: &str, input: &Value) -> Error {
    let options: Vec<String> = expected.split('|').map(|o| format!("'{o}'")).collect();
    let msg = format!("Input should be {}", options.join(" or "));
    Error::invalid(Issue {
        kind: "literal_error",
        loc,
        msg,
        input: input.clone(),
        ctx: Some(json!({"expected": options.join(" or ")})),
    })
}

impl Plan {
    /// Reads `filters`, `sort_by` and `filter_logic_operator` of a body: 422 for shapes, 400
    /// for fields Weave refuses.
    pub fn from_body(body: &Value, logic: Option<&str>) -> Result<Plan> {
        let mut plan = Plan { match_any: logic != Some("and"), ..Plan::default() };
        let list = |name: &str| -> Result<Vec<Value>> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(_) => {
                    let mut f = Fields::of(body, &["body"])?;
                    let items = f.req_object_list(name);
                    f.finish()?;
                    Ok(items)
                }
            }
        };
        for (i, item) in list("filters")?.iter().enumerate() {
            let mut f = Fields::of(item, &["body", "filters", &i.to_string()])?;
            let query = f.req_object("query");
            let scope = f.opt_str("evaluation_call_id");
            f.finish()?;
            refuse_unread(item, &["query", "evaluation_call_id"])?;
            let mut expr = query.get("$expr").cloned().unwrap_or(Value::Null);
            plan.rename_fields(&mut expr)?;
            let mut renamed = query.clone();
            renamed.insert("$expr".into(), expr);
            let Some(expr) = Expr::from_query(Some(&Value::Object(renamed)))? else { continue };
            plan.filters.push(Filter { scope, expr });
        }
        for (i, item) in list("sort_by")?.iter().enumerate() {
            let loc = |k: &str| vec![json!("body"), json!("sort_by"), json!(i), json!(k)];
            let mut f = Fields::of(item, &["body", "sort_by", &i.to_string()])?;
            let name = f.req_str("field");
            let direction = f.req_str("direction");
            let scope = f.opt_str("evaluation_call_id");
            let mode = f.opt_str("mode");
            f.finish()?;
            refuse_unread(item, &["field", "direction", "evaluation_call_id", "mode"])?;
            let descending = match direction.as_str() {
                "asc" => false,
                "desc" => true,
                _ => return Err(literal_error(loc("direction"), "asc|desc", &json!(direction))),
            };
            let difference = match mode.as_deref() {
                None | Some("value") => false,
                Some("difference") => true,
                Some(other) => return Err(literal_error(loc("mode"), "value|difference", &json!(other))),
            };
            if !["scores.", "inputs.", "output."].iter().any(|p| name.starts_with(p)) {
                return Err(Error::BadRequest(format!(
                    "Unsupported sort field: '{name}'. Supported: scores.*, inputs.*, output.*."
                )));
            }
            if difference && !name.starts_with("scores.") {
                return Err(Error::BadRequest(format!(
                    "mode='difference' only supports numeric fields (scores.*), got '{name}'."
                )));
            }
            let field = plan.field(&name)?;
            plan.sorts.push(Sort { field, descending, scope, difference });
        }
        Ok(plan)
    }

    /// The index of the field named `name`, added if new.
    fn field(&mut self, name: &str) -> Result<usize> {
        if let Some(i) = self.fields.iter().position(|f| f.name == name) {
            return Ok(i);
        }
        self.fields.push(Field::parse(name)?);
        Ok(self.fields.len() - 1)
    }

    /// Names each `$getField` of an expression by its field's index (`f<i>`), so that the
    /// expression reads a row of the fields' values; literals are left as they are.
    fn rename_fields(&mut self, e: &mut Value) -> Result<()> {
        match e {
            Value::Object(m) => {
                if m.contains_key("$literal") {
                    return Ok(());
                }
                if let Some(Value::String(name)) = m.get("$getField") {
                    let i = self.field(&name.clone())?;
                    m.insert("$getField".into(), json!(format!("f{i}")));
                    return Ok(());
                }
                for v in m.values_mut() {
                    self.rename_fields(v)?;
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.rename_fields(v)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the plan filters or sorts at all.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty() && self.sorts.is_empty()
    }

    /// Whether rows are reordered.
    pub fn sorts(&self) -> bool {
        !self.sorts.is_empty()
    }

    /// Whether a field reads a trial's inputs or output (which a first pass must then keep).
    pub fn reads_payloads(&self) -> bool {
        self.fields.iter().any(|f| matches!(f.source, Source::Inputs | Source::Output))
    }

    /// Whether a field reads the example.
    pub fn reads_inputs(&self) -> bool {
        self.fields.iter().any(|f| f.source == Source::Inputs)
    }

    /// The values of the fields in a trial's example; `inputs.*` fields of an example that is
    /// a ref are `Null`, for [`Plan::set_row_inputs`] to fill from the row.
    pub fn values_of(&self, ex: &Example) -> Box<[Value]> {
        let mut output: Option<Value> = None;
        let scores = Value::Object(ex.scores.clone());
        self.fields
            .iter()
            .map(|f| match f.source {
                Source::RowDigest => Value::Null,
                Source::Scores => f.read(&scores),
                Source::Inputs if row_ref_digest(&ex.inputs).is_some() => Value::Null,
                Source::Inputs => f.read(&ex.inputs),
                Source::Output => {
                    let o = output.get_or_insert_with(|| {
                        json!({"output": ex.output, "scores": scores, "model_latency": {"mean": ex.latency}})
                    });
                    f.read(o)
                }
            })
            .collect()
    }

    /// Sets the `inputs.*` values of a trial from its example's dataset row.
    pub fn set_row_inputs(&self, values: &mut [Value], row: &Value) {
        for (f, v) in self.fields.iter().zip(values.iter_mut()) {
            if f.source == Source::Inputs {
                *v = f.of_row(row);
            }
        }
    }

    /// A row's value of field `i`: its first trial's in `scope` (`Null` when there is none).
    fn value(&self, i: usize, digest: &str, trials: &[Trial<'_>], scope: Option<&str>) -> Value {
        if self.fields[i].source == Source::RowDigest {
            return Value::String(digest.to_string());
        }
        trials.iter().find(|t| scope.is_none_or(|s| s == t.run)).map_or(Value::Null, |t| t.values[i].clone())
    }

    /// Whether a row passes the filters.
    pub fn keeps(&self, digest: &str, trials: &[Trial<'_>]) -> Result<bool> {
        if self.filters.is_empty() {
            return Ok(true);
        }
        let mut groups: Vec<(Option<&str>, bool)> = Vec::new();
        for f in &self.filters {
            let scope = f.scope.as_deref();
            let mut row = Map::new();
            for i in 0..self.fields.len() {
                row.insert(format!("f{i}"), self.value(i, digest, trials, scope));
            }
            let ok = f.expr.matches(&Value::Object(row))?;
            if !self.match_any {
                if !ok {
                    return Ok(false);
                }
                continue;
            }
            match groups.iter_mut().find(|(s, _)| *s == scope) {
                Some((_, all)) => *all &= ok,
                None => groups.push((scope, ok)),
            }
        }
        Ok(!self.match_any || groups.iter().any(|(_, ok)| *ok))
    }

    /// A score's mean over a row's trials in `scope`.
    fn mean(i: usize, trials: &[Trial<'_>], scope: Option<&str>) -> Option<f64> {
        let nums: Vec<f64> = trials
            .iter()
            .filter(|t| scope.is_none_or(|s| s == t.run))
            .filter_map(|t| number(&t.values[i]))
            .collect();
        (!nums.is_empty()).then(|| nums.iter().sum::<f64>() / nums.len() as f64)
    }

    /// A row's sort key (one part per sort); `runs` are the query's evaluations, which a
    /// difference spans.
    pub fn sort_key(&self, digest: &str, trials: &[Trial<'_>], runs: &[String]) -> Vec<SortKey> {
        self.sorts
            .iter()
            .map(|s| {
                let scores = self.fields[s.field].source == Source::Scores;
                if s.difference && runs.len() > 1 {
                    let per_run: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| {
                            if scores {
                                Self::mean(s.field, trials, Some(r))
                            } else {
                                number(&self.value(s.field, digest, trials, Some(r)))
                            }
                        })
                        .collect();
                    let max = per_run.iter().copied().reduce(f64::max);
                    let min = per_run.iter().copied().reduce(f64::min);
                    return SortKey::Number(max.zip(min).map(|(a, b)| a - b));
                }
                if scores {
                    return SortKey::Number(Self::mean(s.field, trials, s.scope.as_deref()));
                }
                let v = self.value(s.field, digest, trials, s.scope.as_deref());
                if self.fields[s.field].source == Source::RowDigest {
                    return SortKey::Text(digest.to_string());
                }
                SortKey::Mixed(number(&v), text(&v))
            })
            .collect()
    }

    /// Orders two rows' sort keys (ties are left to the caller: rows by digest).
    pub fn compare(&self, a: &[SortKey], b: &[SortKey]) -> Ordering {
        fn nulls_last<T>(
            a: &Option<T>,
            b: &Option<T>,
            desc: bool,
            cmp: impl Fn(&T, &T) -> Ordering,
        ) -> Ordering {
            match (a, b) {
                (Some(x), Some(y)) => {
                    let o = cmp(x, y);
                    if desc { o.reverse() } else { o }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        for ((x, y), s) in a.iter().zip(b).zip(&self.sorts) {
            let desc = s.descending;
            let o = match (x, y) {
                (SortKey::Number(p), SortKey::Number(q)) => nulls_last(p, q, desc, f64::total_cmp),
                (SortKey::Mixed(p, t), SortKey::Mixed(q, u)) => p
                    .is_none()
                    .cmp(&q.is_none())
                    .then_with(|| nulls_last(p, q, desc, f64::total_cmp))
                    .then_with(|| nulls_last(t, u, desc, String::cmp)),
                (SortKey::Text(p), SortKey::Text(q)) => {
                    if desc {
                        q.cmp(p)
                    } else {
                        p.cmp(q)
                    }
                }
                _ => Ordering::Equal,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: Value) -> Plan {
        Plan::from_body(&body, body.get("filter_logic_operator").and_then(Value::as_str)).unwrap()
    }

    #[test]
    fn fields_are_checked_and_paths_split_at_unescaped_dots() {
        assert_eq!(split_path(r"a\.b.c"), ["a.b", "c"]);
        assert!(matches!(Field::parse("bogus.x"), Err(Error::BadRequest(_))));
        let bad = |body: Value| Plan::from_body(&body, None).unwrap_err();
        assert!(matches!(
            bad(json!({"sort_by": [{"field": "row_digest", "direction": "asc"}]})),
            Error::BadRequest(_)
        ));
        assert!(matches!(
            bad(json!({"sort_by": [{"field": "output.x", "direction": "asc", "mode": "difference"}]})),
            Error::BadRequest(_)
        ));
        assert!(matches!(
            bad(json!({"sort_by": [{"field": "scores.x", "direction": "up"}]})),
            Error::Validation(_)
        ));
        assert!(matches!(bad(json!({"sort_by": [{"field": "scores.x"}]})), Error::Validation(_)));
        assert!(matches!(bad(json!({"filters": [{}]})), Error::Validation(_)));
        assert!(matches!(
            bad(json!({"filters": [{"query": {"$expr": {"$eq": [{"$getField": "x"}, {"$literal": 1}]}}}]})),
            Error::BadRequest(_)
        ));
        assert!(matches!(
            bad(json!({"filters": [{"query": {"$expr": {}}, "extra": 1}]})),
            Error::BadRequest(_)
        ));
    }

    #[test]
    fn filters_match_any_evaluation_unless_asked_to_match_all() {
        let gte = |run: &str, min: f64| json!({"evaluation_call_id": run, "query": {"$expr": {"$gte": [{"$getField": "scores.acc"}, {"$literal": min}]}}});
        let body = json!({"filters": [gte("a", 0.5), gte("b", 0.5)]});
        let any = plan(body.clone());
        let mut all_body = body;
        all_body["filter_logic_operator"] = json!("and");
        let all = plan(all_body);
        let (hi, lo) = ([json!(0.9)], [json!(0.1)]);
        let trials = [Trial { run: "a", values: &hi }, Trial { run: "b", values: &lo }];
        assert!(any.keeps("d", &trials).unwrap());
        assert!(!all.keeps("d", &trials).unwrap());
        // A score read as a boolean counts as 1 or 0.
        let f = Field::parse("scores.ok").unwrap();
        assert_eq!(f.read(&json!({"ok": true})), json!(1));
        assert_eq!(Field::parse("output.ok").unwrap().read(&json!({"ok": true})), json!("true"));
        assert_eq!(f.read(&json!({})), json!(""));
    }

    #[test]
    fn sorts_put_numbers_first_and_missing_values_last() {
        let p = plan(json!({"sort_by": [{"field": "output.x", "direction": "desc"}]}));
        let key = |v: Value| {
            let vals = [v];
            p.sort_key("d", &[Trial { run: "a", values: &vals }], &["a".into()])
        };
        let mut keys = [key(json!("b")), key(json!(2)), key(json!(10)), key(json!("a"))];
        keys.sort_by(|a, b| p.compare(a, b));
        assert_eq!(keys[0], key(json!(10)));
        assert_eq!(keys[1], key(json!(2)));
        assert_eq!(keys[2], key(json!("b")));
        let d = plan(json!({"sort_by": [{"field": "scores.x", "direction": "desc", "mode": "difference"}]}));
        let (one, three) = ([json!(1)], [json!(3)]);
        let k = d.sort_key(
            "d",
            &[Trial { run: "a", values: &one }, Trial { run: "b", values: &three }],
            &["a".into(), "b".into()],
        );
        assert_eq!(k, [SortKey::Number(Some(2.0))]);
    }
}
