//! Evaluation runs as the store lists them: the query, the row (written straight to JSON from
//! the row's text) and the head that writes under a run need.

use serde_json::{Map, Value};

use super::call::{Call, DerivedWeave, Micros, counts_errors, merge_weave, write_json_str, write_time};
use super::page::Page;

/// Filters and window of the list endpoint; filters are AND-ed, an empty list is no filter.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Exact evaluation refs.
    pub evaluations: Vec<String>,
    /// Exact model refs.
    pub models: Vec<String>,
    /// Exact run ids.
    pub ids: Vec<String>,
    /// Window over the ordered result.
    pub page: Page,
    /// Newest first: `started_at`, `id` descending (the default is oldest first).
    pub newest_first: bool,
    /// Only runs strictly past this position in the list's order (keyset paging: a page
    /// starts after the last row of the one before, however deep, skipping nothing).
    pub after: Option<RunCursor>,
}

/// A position in a run list's order: a run's `(started_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCursor {
    /// Start time.
    pub started_at: Micros,
    /// Run id, breaking ties of start time.
    pub id: String,
}

impl RunCursor {
    /// The cursor as text for a link: `<micros>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.started_at, self.id)
    }

    /// Reads [`RunCursor::encode`]'s text (400 otherwise).
    pub fn decode(text: &str) -> super::error::Result<RunCursor> {
        let bad =
            || super::error::Error::BadRequest(format!("Bad cursor {text:?}: expected <micros>.<run id>"));
        let (t, id) = text.split_once('.').ok_or_else(bad)?;
        let started_at = t.parse::<Micros>().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 256 {
            return Err(bad());
        }
        Ok(RunCursor { started_at, id: id.to_string() })
    }
}

/// Which distinct values of the runs [`super::store::Store::run_values`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunDimension {
    /// The evaluation refs.
    Evaluation,
    /// The model refs.
    Model,
}

/// One evaluation run as a store reads it, borrowing the row's text.
#[derive(Debug, Clone)]
pub struct RunRow<'a> {
    /// The run's id.
    pub id: &'a str,
    /// Evaluation ref (`""` if unknown).
    pub evaluation: &'a str,
    /// Model ref (`""` if unknown).
    pub model: &'a str,
    /// The run this one re-scores, if any.
    pub source_run_id: Option<&'a str>,
    /// Display name, if set.
    pub display_name: Option<&'a str>,
    /// Op name or op ref.
    pub op_name: &'a str,
    /// Start time.
    pub started_at: Micros,
    /// End time, if finished.
    pub ended_at: Option<Micros>,
    /// The run ended with an exception.
    pub failed: bool,
    /// Some descendant call ended with an exception.
    pub descendant_failed: bool,
    /// Stored summary as JSON text, if any.
    pub summary: Option<&'a str>,
    /// For a run the SDK logged as a call (not through this API): its output as JSON text,
    /// whose keys (the scorers' aggregates) lead the summary.
    pub output: Option<&'a str>,
}

/// What the writes under a run need of it, without its JSON fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHead {
    /// The run's id.
    pub id: String,
    /// Its trace.
    pub trace_id: String,
    /// Start time.
    pub started_at: Micros,
    /// Who started it.
    pub wb_user_id: Option<String>,
    /// Evaluation ref, if known.
    pub evaluation: Option<String>,
}

impl RunHead {
    /// The head of `call`, if it is an evaluation run.
    pub fn of(call: &Call) -> Option<Self> {
        let v = super::view::ViewColumns::of(call);
        (v.kind == super::view::Kind::EvaluationRun).then(|| RunHead {
            id: call.id.clone(),
            trace_id: call.trace_id.clone(),
            started_at: call.started_at,
            wb_user_id: call.wb_user_id.clone(),
            evaluation: v.evaluation,
        })
    }
}

impl RunRow<'_> {
    /// `running`, `completed` or `failed`.
    pub fn status(&self) -> &'static str {
        match (self.ended_at, self.failed) {
            (None, _) => "running",
            (Some(_), false) => "completed",
            (Some(_), true) => "failed",
        }
    }

    /// The derived `summary.weave` object; `counted_errors` tells whether the stored summary's
    /// `status_counts.error` is above zero.
    fn weave_summary(&self, counted_errors: bool) -> DerivedWeave<'_> {
        DerivedWeave::new(
            self.started_at,
            self.ended_at,
            self.failed,
            self.descendant_failed || counted_errors,
            self.display_name,
            self.op_name,
        )
    }

    /// The response summary: the stored summary plus the derived `weave` key.
    fn write_summary(&self, out: &mut Vec<u8>) {
        let stored = self.summary.map(str::trim).unwrap_or("{}");
        let output = self.output.map(str::trim).filter(|o| o.starts_with('{'));
        let plain_object = output.is_none()
            && stored.starts_with('{')
            && stored.ends_with('}')
            && !stored.contains("\"weave\"")
            && !stored.contains("\"status_counts\"");
        if plain_object {
            let weave = self.weave_summary(false);
            // Splice the derived key into the stored text: no re-parse on the hot path.
            let body = stored[1..stored.len() - 1].trim();
            out.push(b'{');
            if !body.is_empty() {
                out.extend_from_slice(body.as_bytes());
                out.push(b',');
            }
            out.extend_from_slice(b"\"weave\":");
            weave.write_json(out);
            out.push(b'}');
        } else {
            let mut summary = match output.map(serde_json::from_str::<Value>) {
                Some(Ok(Value::Object(m))) => m,
                _ => Map::new(),
            };
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(stored) {
                summary.extend(m);
            }
            let weave = self.weave_summary(counts_errors(&summary)).to_value();
            merge_weave(&mut summary, weave);
            write_value(out, &Value::Object(summary));
        }
    }

    /// Appends this run as one `EvaluationRunReadRes` JSON object (no newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"evaluation_run_id\":");
        write_str(out, self.id);
        out.extend_from_slice(b",\"evaluation\":");
        write_str(out, self.evaluation);
        out.extend_from_slice(b",\"model\":");
        write_str(out, self.model);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(self.status().as_bytes());
        out.extend_from_slice(b"\",\"started_at\":\"");
        write_time(out, self.started_at);
        out.extend_from_slice(b"\",\"finished_at\":");
        match self.ended_at {
            Some(t) => {
                out.push(b'"');
                write_time(out, t);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"summary\":");
        self.write_summary(out);
        out.extend_from_slice(b",\"source_evaluation_run_id\":");
        match self.source_run_id {
            Some(s) => write_str(out, s),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_json_str(out, s);
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row<'a>(summary: Option<&'a str>) -> RunRow<'a> {
        RunRow {
            id: "r1",
            evaluation: "E",
            model: "M\"q",
            source_run_id: None,
            display_name: None,
            op_name: "Evaluation.evaluate",
            started_at: 1_000_000,
            ended_at: Some(1_250_000),
            failed: false,
            descendant_failed: false,
            summary,
            output: None,
        }
    }

    fn render(r: &RunRow<'_>) -> Value {
        let mut out = Vec::new();
        r.write_json(&mut out);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn rows_render_every_field() {
        let v = render(&row(Some("{\"acc\":1}")));
        assert_eq!(
            v,
            json!({
                "evaluation_run_id": "r1", "evaluation": "E", "model": "M\"q", "status": "completed",
                "started_at": "1970-01-01T00:00:01Z", "finished_at": "1970-01-01T00:00:01.250000Z",
                "summary": {"acc": 1, "weave": {"status": "success", "trace_name": "Evaluation.evaluate", "latency_ms": 250}},
                "source_evaluation_run_id": null
            })
        );
    }

    #[test]
    fn stored_weave_key_is_merged_not_duplicated() {
        let v = render(&row(Some("{\"weave\":{\"mine\":2},\"b\":[1]}")));
        assert_eq!(v["summary"]["weave"]["mine"], 2);
        assert_eq!(v["summary"]["weave"]["status"], "success");
        assert_eq!(v["summary"]["b"], json!([1]));
        let mut running = row(None);
        running.ended_at = None;
        let v = render(&running);
        assert_eq!(v["status"], "running");
        assert_eq!(
            v["summary"],
            json!({"weave": {"status": "running", "trace_name": "Evaluation.evaluate"}})
        );
        let v = render(&row(Some("{\"status_counts\":{\"success\":1,\"error\":2}}")));
        assert_eq!(v["summary"]["weave"]["status"], "descendant_error");
        let mut logged = row(Some(r#"{"status_counts":{"success":2}}"#));
        logged.output = Some(r#"{"acc":{"true_fraction":0.5}}"#);
        let v = render(&logged);
        assert_eq!(v["summary"]["acc"]["true_fraction"], 0.5);
        assert_eq!(v["summary"]["status_counts"]["success"], 2);
        assert_eq!(v["summary"]["weave"]["status"], "success");
    }
}
