//! Weave's query expressions (`{"$expr": {"$eq": [{"$getField": "op_name"}, {"$literal": "x"}]}}`),
//! evaluated against a row's JSON.

use serde_json::Value;

use super::error::{Error, Result};

/// A parsed-on-demand query expression; [`Expr::matches`] tests a row.
#[derive(Debug, Clone)]
pub struct Expr(Value);

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(format!("Unsupported query: {}", msg.into()))
}

impl Expr {
    /// Takes a wire query (`{"$expr": ...}`); `None` or `null` is no query.
    pub fn from_query(q: Option<&Value>) -> Result<Option<Expr>> {
        match q {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) if m.len() > 1 => Err(bad("expected an object with only \"$expr\"")),
            Some(Value::Object(m)) => match m.get("$expr") {
                Some(e) => {
                    let expr = Expr(e.clone());
                    // Validate once against an empty row so bad queries fail up front.
                    expr.eval(e, &Value::Null)?;
                    Ok(Some(expr))
                }
                None => Err(bad("expected an object with \"$expr\"")),
            },
            Some(_) => Err(bad("expected an object")),
        }
    }

    /// Whether the expression reads a call's feedback (`feedback.[type].path` fields).
    pub fn uses_feedback(&self) -> bool {
        fn walk(v: &Value) -> bool {
            match v {
                Value::Object(m) => m.iter().any(|(k, v)| {
                    (k == "$getField" && v.as_str().is_some_and(|f| f.starts_with("feedback."))) || walk(v)
                }),
                Value::Array(items) => items.iter().any(walk),
                _ => false,
            }
        }
        walk(&self.0)
    }

    /// Whether `row` satisfies the expression.
    pub fn matches(&self, row: &Value) -> Result<bool> {
        Ok(truthy(&self.eval(&self.0, row)?))
    }

    fn eval(&self, e: &Value, row: &Value) -> Result<Value> {
        let Value::Object(m) = e else { return Err(bad("an operand must be an object")) };
        let (op, arg) = m.iter().next().ok_or_else(|| bad("empty operation"))?;
        if m.len() > 1 {
            return Err(bad("an operation has one operator"));
        }
        let list = |arg: &Value| -> Result<Vec<Value>> {
            match arg {
                Value::Array(items) => items.iter().map(|i| self.eval(i, row)).collect(),
                _ => Err(bad(format!("{op} takes a list"))),
            }
        };
        let pair = |arg: &Value| -> Result<(Value, Value)> {
            let mut v = list(arg)?;
            if v.len() != 2 {
                return Err(bad(format!("{op} takes two operands")));
            }
            let b = v.pop().unwrap_or(Value::Null);
            Ok((v.pop().unwrap_or(Value::Null), b))
        };
        Ok(match op.as_str() {
            "$literal" => arg.clone(),
            "$getField" => {
                let path = arg.as_str().ok_or_else(|| bad("$getField takes a string"))?;
                match path.strip_prefix("feedback.") {
                    Some(rest) => feedback_field(row, rest)?,
                    None => get_path(row, path),
                }
            }
            // SQL's logic of three values, as Weave's stores evaluate these: `null` is unknown.
            "$and" => {
                let items = list(arg)?;
                if items.iter().any(|v| !v.is_null() && !truthy(v)) {
                    Value::Bool(false)
                } else if items.iter().any(Value::is_null) {
                    Value::Null
                } else {
                    Value::Bool(true)
                }
            }
            "$or" => {
                let items = list(arg)?;
                if items.iter().any(truthy) {
                    Value::Bool(true)
                } else if items.iter().any(Value::is_null) {
                    Value::Null
                } else {
                    Value::Bool(false)
                }
            }
            "$not" => {
                let items = list(arg)?;
                match items.first() {
                    Some(Value::Null) => Value::Null,
                    _ => Value::Bool(!items.iter().all(truthy)),
                }
            }
            "$eq" => {
                let (a, b) = pair(arg)?;
                match (&a, &b) {
                    // `= null` is `IS NULL`; any other comparison with null is unknown.
                    (_, Value::Null) => Value::Bool(a.is_null()),
                    (Value::Null, _) => Value::Null,
                    _ => Value::Bool(loose_eq(&a, &b)),
                }
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let (a, b) = pair(arg)?;
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                let ord = compare(&a, &b);
                Value::Bool(match (op.as_str(), ord) {
                    (_, None) => false,
                    ("$gt", Some(o)) => o.is_gt(),
                    ("$gte", Some(o)) => o.is_ge(),
                    ("$lt", Some(o)) => o.is_lt(),
                    (_, Some(o)) => o.is_le(),
                })
            }
            "$in" => {
                let Value::Array(items) = arg else { return Err(bad("$in takes a list")) };
                let [needle, haystack] = items.as_slice() else { return Err(bad("$in takes two operands")) };
                let needle = self.eval(needle, row)?;
                let Value::Array(options) = haystack else { return Err(bad("$in takes a list of options")) };
                let mut found = false;
                for o in options {
                    found |= loose_eq(&needle, &self.eval(o, row)?);
                }
                Value::Bool(found)
            }
            "$contains" => {
                let input = self.eval(arg.get("input").ok_or_else(|| bad("$contains needs input"))?, row)?;
                let substr =
                    self.eval(arg.get("substr").ok_or_else(|| bad("$contains needs substr"))?, row)?;
                let ci = match arg.get("case_insensitive") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(bad("$contains takes a boolean case_insensitive")),
                };
                let (hay, needle) = (as_text(&input), as_text(&substr));
                Value::Bool(if ci {
                    hay.to_lowercase().contains(&needle.to_lowercase())
                } else {
                    hay.contains(&needle)
                })
            }
            "$convert" => {
                let input = self.eval(arg.get("input").ok_or_else(|| bad("$convert needs input"))?, row)?;
                match arg.get("to").and_then(Value::as_str) {
                    Some("double" | "int") => as_number(&input).map_or(Value::Null, Value::from),
                    Some("string") => Value::String(as_text(&input)),
                    Some("bool") => Value::Bool(truthy(&input)),
                    _ => return Err(bad("$convert to an unknown type")),
                }
            }
            other => return Err(bad(format!("operator {other}"))),
        })
    }
}

/// A feedback field of a call (`[type].path`, the part after `feedback.`), read from the
/// feedback rows in the row's `summary.weave.feedback`: `path` in the first row of that
/// `feedback_type`, or every row's values joined by `,` for `[*]`. As in Weave, booleans
/// read as `"true"` / `"false"` and objects as their JSON text.
fn feedback_field(row: &Value, rest: &str) -> Result<Value> {
    let invalid = || {
        bad(format!(
            "feedback field feedback.{rest}: expected feedback.[type].payload..., .runnable_ref or .trigger_ref"
        ))
    };
    let inner = rest.strip_prefix('[').ok_or_else(invalid)?;
    let (kind, path) = inner.split_once("].").ok_or_else(invalid)?;
    let head = path.split('.').next().unwrap_or("");
    let leaf = !path.contains('.');
    if !(head == "payload" || (leaf && (head == "runnable_ref" || head == "trigger_ref"))) {
        return Err(invalid());
    }
    let rows = get_path(row, "summary.weave.feedback");
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let text = |v: Value| match v {
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Object(_) | Value::Array(_) => Value::String(v.to_string()),
        other => other,
    };
    let mut values = rows
        .iter()
        .filter(|f| kind == "*" || f.get("feedback_type").and_then(Value::as_str) == Some(kind))
        .map(|f| text(get_path(f, path)))
        .filter(|v| !v.is_null());
    if kind != "*" {
        return Ok(values.next().unwrap_or(Value::Null));
    }
    let all: Vec<String> = values.map(|v| as_text(&v)).collect();
    Ok(if all.is_empty() { Value::Null } else { Value::String(all.join(",")) })
}

/// A dotted path into a JSON value (`summary.weave.status`); missing parts are `null`.
pub fn get_path(v: &Value, path: &str) -> Value {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => match m.get(part) {
                Some(next) => next,
                None => return Value::Null,
            },
            Value::Array(items) => match part.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(next) => next,
                None => return Value::Null,
            },
            _ => return Value::Null,
        };
    }
    cur.clone()
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), _) | (_, Value::Number(_)) => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        (Value::String(_), Value::Bool(_)) | (Value::Bool(_), Value::String(_)) => as_text(a) == as_text(b),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => match (a, b) {
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(e: Value) -> Expr {
        Expr::from_query(Some(&json!({ "$expr": e }))).unwrap().unwrap()
    }

    #[test]
    fn expressions_filter_rows() {
        let row = json!({"op_name": "a", "summary": {"weave": {"status": "success"}}, "n": 3});
        assert!(q(json!({"$eq": [{"$getField": "op_name"}, {"$literal": "a"}]})).matches(&row).unwrap());
        assert!(
            q(json!({"$eq": [{"$getField": "summary.weave.status"}, {"$literal": "success"}]}))
                .matches(&row)
                .unwrap()
        );
        assert!(!q(json!({"$gt": [{"$getField": "n"}, {"$literal": 3}]})).matches(&row).unwrap());
        assert!(q(json!({"$gte": [{"$convert": {"input": {"$getField": "n"}, "to": "double"}}, {"$literal": 3}]})).matches(&row).unwrap());
        assert!(
            q(json!({"$in": [{"$getField": "op_name"}, [{"$literal": "b"}, {"$literal": "a"}]]}))
                .matches(&row)
                .unwrap()
        );
        assert!(q(json!({"$not": [{"$contains": {"input": {"$getField": "op_name"}, "substr": {"$literal": "z"}}}]})).matches(&row).unwrap());
        assert!(
            q(json!({"$and": [{"$literal": true}, {"$or": [{"$literal": false}, {"$literal": 1}]}]}))
                .matches(&row)
                .unwrap()
        );
    }

    #[test]
    fn unknown_operators_are_rejected() {
        assert!(Expr::from_query(Some(&json!({"$expr": {"$regex": []}}))).is_err());
        assert!(Expr::from_query(Some(&json!({"nope": 1}))).is_err());
        assert!(Expr::from_query(None).unwrap().is_none());
    }
}
