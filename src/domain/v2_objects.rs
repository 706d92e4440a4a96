//! The objects an evaluation run points at, as Weave's v2 API creates, reads, lists and deletes
//! them: ops, datasets, scorers, evaluations and models. Each is an ordinary object version
//! (a table for a dataset's rows, a file for source code) shaped as the SDK publishes it, so
//! that what the v2 API writes the SDK reads (`weave.ref(...).get()`) and what the SDK
//! publishes the v2 API lists.

use serde_json::{Map, Value, json};

use super::body::refuse_unread;
use super::error::{Error, Result};
use super::object::{MAX_OBJECT_ID, ObjectQuery, ObjectVersion, Version, is_op};
use super::page::Page;
use super::refs::check_ref;
use super::store::{Store, Writer};
use super::validate::Fields;
use super::writes::objects;

/// The name of the file holding an op's (or a model's) source, as the SDK names it.
pub const SOURCE_FILE: &str = "obj.py";

/// The source stored for an op created without any.
pub const PLACEHOLDER_OP_SOURCE: &str =
    "def func(*args, **kwargs):\n    ... # Code-capture unavailable for this op\n";
/// The `summarize` op of a scorer created through the v2 API.
pub const PLACEHOLDER_SCORER_SUMMARIZE_SOURCE: &str = "def summarize(score_rows: list) -> dict | None:\n    '''Default summarize implementation that auto-summarizes score rows.'''\n    from weave.flow.scorer import auto_summarize\n    return auto_summarize(score_rows)\n";
/// The `evaluate` op of an evaluation created through the v2 API.
pub const PLACEHOLDER_EVALUATE_SOURCE: &str = "import weave\n@weave.op\ndef evaluate(evaluation, model):\n    \"\"\"Placeholder evaluate function.\"\"\"\n    # TODO: Implement actual evaluation logic\n    return {\"status\": \"not_implemented\"}\n";
/// The `predict_and_score` op of an evaluation created through the v2 API.
pub const PLACEHOLDER_PREDICT_AND_SCORE_SOURCE: &str = "import weave\n@weave.op\ndef predict_and_score(evaluation, example):\n    \"\"\"Placeholder predict_and_score function.\"\"\"\n    # TODO: Implement actual predict and score logic\n    return {\"prediction\": None, \"scores\": {}}\n";
/// The `summarize` op of an evaluation created through the v2 API.
pub const PLACEHOLDER_EVALUATION_SUMMARIZE_SOURCE: &str = "import weave\n@weave.op\ndef summarize(evaluation_results):\n    \"\"\"Placeholder summarize function.\"\"\"\n    # TODO: Implement actual summarization logic\n    return {\"summary\": \"not_implemented\"}\n";

/// One of the five kinds of object the v2 API manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/ops`: serialized ops, their source in a file.
    Op,
    /// `/datasets`: `Dataset` objects, their rows in a table.
    Dataset,
    /// `/scorers`: `Scorer` objects and their ops.
    Scorer,
    /// `/evaluations`: `Evaluation` objects and their ops.
    Evaluation,
    /// `/models`: `Model` objects, their source in a file.
    Model,
}

impl Family {
    /// The object id given to an object created without a name; also the base class of its
    /// objects (but for ops).
    pub fn class(self) -> &'static str {
        match self {
            Family::Op => "Op",
            Family::Dataset => "Dataset",
            Family::Scorer => "Scorer",
            Family::Evaluation => "Evaluation",
            Family::Model => "Model",
        }
    }

    /// Whether a stored version belongs to this family: an op, or an object of its base class.
    pub fn holds(self, o: &ObjectVersion) -> bool {
        match self {
            Family::Op => is_op(&o.val),
            _ => o.base_object_class.as_deref() == Some(self.class()) && !is_op(&o.val),
        }
    }

    /// What a list of this family reads: ops latest versions only, the others every version,
    /// as Weave lists them.
    pub fn query(self, page: Page) -> ObjectQuery {
        match self {
            Family::Op => ObjectQuery { is_op: Some(true), latest_only: true, page, ..Default::default() },
            _ => ObjectQuery {
                base_object_classes: vec![self.class().to_string()],
                is_op: Some(false),
                page,
                ..Default::default()
            },
        }
    }

    /// The 404 of an object of this family.
    pub fn missing(self, object_id: &str) -> Error {
        Error::NotFound(format!("{} {object_id} not found", self.class()))
    }

    /// The 404 of a version of this family.
    pub fn not_found(self, object_id: &str, digest: &str) -> Error {
        Error::NotFound(format!("{} {object_id}:{digest} not found", self.class()))
    }
}

/// An object id made of a name as Weave's v2 API makes it: spaces and `/` become `_`, every
/// other character that is not a letter, a digit, `_`, `.` or `-` is dropped, and letters are
/// lowercased; no name gives `default`. Object ids are ASCII here, so letters and digits
/// outside ASCII are dropped too; a name of which nothing is left gives `default`, and ids are
/// cut at [`MAX_OBJECT_ID`] characters, so that every name makes a valid id.
pub fn object_id_of(name: Option<&str>, default: &str) -> String {
    let Some(name) = name else {
        return default.to_string();
    };
    let kept: String = name
        .chars()
        .map(|c| if c == ' ' || c == '/' { '_' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(MAX_OBJECT_ID)
        .collect();
    if kept.is_empty() { default.to_string() } else { kept.to_ascii_lowercase() }
}

/// `weave:///{project}/object/{id}:{digest}`.
pub fn object_ref(project: &str, object_id: &str, digest: &str) -> String {
    format!("weave:///{project}/object/{object_id}:{digest}")
}

/// `weave:///{project}/op/{id}:{digest}`.
pub fn op_ref(project: &str, object_id: &str, digest: &str) -> String {
    format!("weave:///{project}/op/{object_id}:{digest}")
}

/// What creating an object answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The version's digest.
    pub digest: String,
    /// Its object id.
    pub object_id: String,
    /// Its version index.
    pub version_index: i64,
    /// A ref to it (scorers, evaluations, models).
    pub object_ref: String,
}

impl Created {
    fn of(project: &str, o: &ObjectVersion) -> Self {
        Created {
            digest: o.digest.clone(),
            object_id: o.object_id.clone(),
            version_index: o.version_index,
            object_ref: object_ref(project, &o.object_id, &o.digest),
        }
    }

    /// The answer of `POST /{family}`: digest, object id, version index, and for scorers,
    /// evaluations and models their ref (`scorer`, `evaluation_ref`, `model_ref`).
    pub fn to_json(&self, family: Family) -> Value {
        let mut out = json!({
            "digest": self.digest,
            "object_id": self.object_id,
            "version_index": self.version_index,
        });
        let key = match family {
            Family::Scorer => Some("scorer"),
            Family::Evaluation => Some("evaluation_ref"),
            Family::Model => Some("model_ref"),
            Family::Op | Family::Dataset => None,
        };
        if let Some(key) = key {
            out[key] = json!(self.object_ref);
        }
        out
    }
}

/// A validated create body of one family.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateBody {
    /// `OpCreateBody`.
    Op { name: Option<String>, source_code: Option<String> },
    /// `DatasetCreateBody`.
    Dataset { name: Option<String>, description: Option<String>, rows: Vec<Value> },
    /// `ScorerCreateBody`.
    Scorer { name: String, description: Option<String>, op_source_code: String },
    /// `EvaluationCreateBody`.
    Evaluation {
        name: String,
        description: Option<String>,
        dataset: String,
        scorers: Vec<String>,
        trials: i64,
        evaluation_name: Option<String>,
        eval_attributes: Option<Map<String, Value>>,
    },
    /// `ModelCreateBody`.
    Model {
        name: String,
        description: Option<String>,
        source_code: String,
        attributes: Option<Map<String, Value>>,
    },
}

/// The fields each family's create body has.
fn fields_of(family: Family) -> &'static [&'static str] {
    match family {
        Family::Op => &["name", "source_code"],
        Family::Dataset => &["name", "description", "rows"],
        Family::Scorer => &["name", "description", "op_source_code"],
        Family::Evaluation => {
            &["name", "description", "dataset", "scorers", "trials", "evaluation_name", "eval_attributes"]
        }
        Family::Model => &["name", "description", "source_code", "attributes"],
    }
}

impl CreateBody {
    /// Validates a create body of `family` (422 for a missing or mistyped field, 400 for a
    /// field it does not have, a malformed ref or a dataset row that is not an object).
    pub fn from_json(family: Family, body: &Value) -> Result<Self> {
        let mut f = Fields::of(body, &["body"])?;
        let req = match family {
            Family::Op => CreateBody::Op { name: f.opt_str("name"), source_code: f.opt_str("source_code") },
            Family::Dataset => CreateBody::Dataset {
                name: f.opt_str("name"),
                description: f.opt_str("description"),
                rows: f.req_object_list("rows"),
            },
            Family::Scorer => CreateBody::Scorer {
                name: f.req_str("name"),
                description: f.opt_str("description"),
                op_source_code: f.req_str("op_source_code"),
            },
            Family::Evaluation => CreateBody::Evaluation {
                name: f.req_str("name"),
                description: f.opt_str("description"),
                dataset: f.req_str("dataset"),
                scorers: f.opt_str_list("scorers"),
                trials: f.opt_int("trials").unwrap_or(1),
                evaluation_name: f.opt_str("evaluation_name"),
                eval_attributes: f.opt_object("eval_attributes"),
            },
            Family::Model => CreateBody::Model {
                name: f.req_str("name"),
                description: f.opt_str("description"),
                source_code: f.req_str("source_code"),
                attributes: f.opt_object("attributes"),
            },
        };
        f.finish()?;
        refuse_unread(body, fields_of(family))?;
        if let CreateBody::Evaluation { dataset, scorers, .. } = &req {
            check_ref(dataset)?;
            for s in scorers {
                check_ref(s)?;
            }
        }
        Ok(req)
    }

    /// The family this body creates.
    pub fn family(&self) -> Family {
        match self {
            CreateBody::Op { .. } => Family::Op,
            CreateBody::Dataset { .. } => Family::Dataset,
            CreateBody::Scorer { .. } => Family::Scorer,
            CreateBody::Evaluation { .. } => Family::Evaluation,
            CreateBody::Model { .. } => Family::Model,
        }
    }
}

/// The value of a serialized op whose source is the file `file_digest`, as the SDK stores one.
fn op_val(file_digest: &str) -> Value {
    json!({
        "_type": "CustomWeaveType",
        "weave_type": {"type": "Op"},
        "files": { SOURCE_FILE: file_digest },
    })
}

/// Stores an op named `name` (made an object id) with `source`; returns its version.
fn put_op(
    w: &mut dyn Writer,
    project: &str,
    name: Option<&str>,
    source: &str,
    user: Option<&str>,
) -> Result<ObjectVersion> {
    let file = objects::create_file(w, project, source.as_bytes())?;
    let id = object_id_of(name, Family::Op.class());
    objects::create(w, project, &id, op_val(&file), None, None, user)
}

/// The `_type`, `_class_name` and `_bases` of an object of a base class, as the SDK writes them.
fn class_keys(class: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_type".into(), json!(class));
    m.insert("_class_name".into(), json!(class));
    m.insert("_bases".into(), json!(["Object", "BaseModel"]));
    m
}

/// Creates an object of the body's family (with the ops, table or file it points at) in one
/// transaction, as Weave's v2 API does.
pub fn create(w: &mut dyn Writer, project: &str, req: &CreateBody, user: Option<&str>) -> Result<Created> {
    let stored = match req {
        CreateBody::Op { name, source_code } => put_op(
            w,
            project,
            name.as_deref(),
            source_code.as_deref().unwrap_or(PLACEHOLDER_OP_SOURCE),
            user,
        )?,
        CreateBody::Dataset { name, description, rows } => {
            let id = object_id_of(name.as_deref(), Family::Dataset.class());
            let (table, _) = objects::create_table(w, project, rows, None)?;
            let mut val = class_keys("Dataset");
            val.insert("name".into(), json!(name.as_deref().unwrap_or("Dataset")));
            val.insert("description".into(), json!(description));
            val.insert("rows".into(), json!(format!("weave:///{project}/table/{table}")));
            objects::create(w, project, &id, Value::Object(val), None, None, user)?
        }
        CreateBody::Scorer { name, description, op_source_code } => {
            let id = object_id_of(Some(name), Family::Scorer.class());
            let score = put_op(w, project, Some(&format!("{id}_score")), op_source_code, user)?;
            let summarize = put_op(
                w,
                project,
                Some(&format!("{id}_summarize")),
                PLACEHOLDER_SCORER_SUMMARIZE_SOURCE,
                user,
            )?;
            let mut val = class_keys("Scorer");
            val.insert("name".into(), json!(name));
            val.insert("description".into(), json!(description));
            val.insert("score".into(), json!(op_ref(project, &score.object_id, &score.digest)));
            val.insert("summarize".into(), json!(op_ref(project, &summarize.object_id, &summarize.digest)));
            val.insert("column_map".into(), Value::Null);
            objects::create(w, project, &id, Value::Object(val), None, None, user)?
        }
        CreateBody::Evaluation {
            name,
            description,
            dataset,
            scorers,
            trials,
            evaluation_name,
            eval_attributes,
        } => {
            let id = object_id_of(Some(name), Family::Evaluation.class());
            let mut ops = Vec::new();
            for (method, source) in [
                ("evaluate", PLACEHOLDER_EVALUATE_SOURCE),
                ("predict_and_score", PLACEHOLDER_PREDICT_AND_SCORE_SOURCE),
                ("summarize", PLACEHOLDER_EVALUATION_SUMMARIZE_SOURCE),
            ] {
                let op = put_op(w, project, Some(&format!("{id}.{method}")), source, user)?;
                ops.push((method, op_ref(project, &op.object_id, &op.digest)));
            }
            let mut val = class_keys("Evaluation");
            val.insert("name".into(), json!(name));
            val.insert("description".into(), json!(description));
            val.insert("dataset".into(), json!(dataset));
            val.insert("scorers".into(), json!(scorers));
            val.insert("trials".into(), json!(trials));
            val.insert("evaluation_name".into(), json!(evaluation_name));
            val.insert("metadata".into(), Value::Null);
            val.insert("preprocess_model_input".into(), Value::Null);
            for (method, r) in ops {
                val.insert(method.into(), json!(r));
            }
            if let Some(extra) = eval_attributes {
                val.extend(extra.clone());
            }
            objects::create(w, project, &id, Value::Object(val), None, None, user)?
        }
        CreateBody::Model { name, description, source_code, attributes } => {
            let id = object_id_of(Some(name), Family::Model.class());
            let file = objects::create_file(w, project, source_code.as_bytes())?;
            let mut val = class_keys("Model");
            val.insert("name".into(), json!(name));
            val.insert("description".into(), json!(description));
            val.insert("files".into(), json!({ SOURCE_FILE: file }));
            if let Some(extra) = attributes {
                val.extend(extra.clone());
            }
            objects::create(w, project, &id, Value::Object(val), None, None, user)?
        }
    };
    Ok(Created::of(project, &stored))
}

/// The text of file `digest` of a project, or `""` when it is not stored or not UTF-8.
fn file_text(store: &dyn Store, project: &str, digest: Option<&str>) -> Result<String> {
    let Some(digest) = digest else {
        return Ok(String::new());
    };
    Ok(store.file(project, digest)?.and_then(|b| String::from_utf8(b).ok()).unwrap_or_default())
}

/// The source file digest of an op or a model's value.
fn source_digest(val: &Value) -> Option<&str> {
    val.get("files")?.get(SOURCE_FILE)?.as_str()
}

/// The keys of a model's value that are not its attributes.
const MODEL_OWN_KEYS: [&str; 6] = ["_type", "_class_name", "_bases", "name", "description", "files"];

/// A stored version as its family's read answers it (`OpReadRes`, `DatasetReadRes`, ...),
/// reading the source file of an op or a model.
pub fn read_json(store: &dyn Store, family: Family, o: &ObjectVersion) -> Result<Value> {
    let created_at = super::call::format_time(o.created_at);
    let val = &o.val;
    let str_of = |k: &str| val.get(k).cloned().unwrap_or(Value::Null);
    let name = || val.get("name").filter(|n| n.is_string()).cloned().unwrap_or_else(|| json!(o.object_id));
    let mut out = json!({
        "object_id": o.object_id,
        "digest": o.digest,
        "version_index": o.version_index,
        "created_at": created_at,
    });
    match family {
        Family::Op => {
            out["code"] = json!(file_text(store, &o.project_id, source_digest(val))?);
        }
        Family::Dataset => {
            out["name"] = name();
            out["description"] = str_of("description");
            out["rows"] = val.get("rows").cloned().unwrap_or_else(|| json!(""));
        }
        Family::Scorer => {
            out["name"] = name();
            out["description"] = str_of("description");
            out["score_op"] = val.get("score").cloned().unwrap_or_else(|| json!(""));
        }
        Family::Evaluation => {
            out["name"] = name();
            out["description"] = str_of("description");
            out["dataset"] = val.get("dataset").cloned().unwrap_or_else(|| json!(""));
            out["scorers"] =
                val.get("scorers").filter(|s| s.is_array()).cloned().unwrap_or_else(|| json!([]));
            out["trials"] = val.get("trials").filter(|t| t.is_i64()).cloned().unwrap_or_else(|| json!(1));
            out["evaluation_name"] = str_of("evaluation_name");
            out["evaluate_op"] = str_of("evaluate");
            out["predict_and_score_op"] = str_of("predict_and_score");
            out["summarize_op"] = str_of("summarize");
        }
        Family::Model => {
            out["name"] = name();
            out["description"] = str_of("description");
            out["source_code"] = json!(file_text(store, &o.project_id, source_digest(val))?);
            let attributes: Map<String, Value> = val
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| !MODEL_OWN_KEYS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            out["attributes"] = if attributes.is_empty() { Value::Null } else { Value::Object(attributes) };
        }
    }
    Ok(out)
}

/// Reads version `digest` (a digest, `latest`, `v<N>` or an alias) of `object_id`, which must
/// be of `family` (else 404), as the family's read answers it.
pub fn read(
    store: &dyn Store,
    project: &str,
    family: Family,
    object_id: &str,
    digest: &str,
) -> Result<Value> {
    let found = store.object(project, object_id, &Version::parse(digest))?;
    match found {
        Some((o, _)) if family.holds(&o) => read_json(store, family, &o),
        _ => Err(family.not_found(object_id, digest)),
    }
}

/// Streams the objects of `family` in `page` (as [`Family::query`] selects them), each as its
/// read answers it, to `sink` until it returns `false`.
pub fn list(
    store: &dyn Store,
    project: &str,
    family: Family,
    page: Page,
    sink: &mut dyn FnMut(&Value) -> bool,
) -> Result<()> {
    let mut failed = None;
    store.objects(project, &family.query(page), &mut |o, _, _| match read_json(store, family, &o) {
        Ok(v) => sink(&v),
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// Whether the latest live version of `object_id` is of `family` (what a delete checks first).
pub fn is_of(store: &dyn Store, project: &str, family: Family, object_id: &str) -> Result<bool> {
    Ok(store.object(project, object_id, &Version::Latest)?.is_some_and(|(o, _)| family.holds(&o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_object_ids_as_weave_makes_them() {
        assert_eq!(object_id_of(None, "Dataset"), "Dataset");
        assert_eq!(object_id_of(Some("My Dataset"), "Dataset"), "my_dataset");
        assert_eq!(object_id_of(Some("user/model"), "Model"), "user_model");
        assert_eq!(object_id_of(Some("name:with=invalid<chars>"), "Op"), "namewithinvalidchars");
        assert_eq!(object_id_of(Some("QA-eval.v2"), "Evaluation"), "qa-eval.v2");
        assert_eq!(object_id_of(Some("?!"), "Model"), "Model");
        assert_eq!(object_id_of(Some("Été"), "Model"), "t");
        assert_eq!(object_id_of(Some(&"a".repeat(300)), "Op").len(), MAX_OBJECT_ID);
    }

    #[test]
    fn create_bodies_are_checked_field_by_field() {
        let ok = CreateBody::from_json(
            Family::Evaluation,
            &json!({"name": "e", "dataset": "weave:///a/b/object/d:x"}),
        )
        .unwrap();
        assert!(matches!(ok, CreateBody::Evaluation { trials: 1, .. }));
        assert!(matches!(
            CreateBody::from_json(Family::Scorer, &json!({"name": "s"})),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            CreateBody::from_json(Family::Op, &json!({"name": "o", "colour": "red"})),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            CreateBody::from_json(Family::Dataset, &json!({"rows": [1]})),
            Err(Error::Validation(_))
        ));
    }
}
