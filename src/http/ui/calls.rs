//! The call page (`/{entity}/{project}/weave/calls/{call_id}`): a call's inputs, output,
//! timing and error, and its tree of child calls. The SDK's printed call links
//! (`/{entity}/{project}/r/call/{call_id}`) land here, or on the run page for a run.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{self, Crumb};
use super::{ProjectPath, UiError, Viewer, blocking, see_other};
use crate::domain::call::Call;
use crate::domain::call_tree::{self, CallTree, MAX_NODES};
use crate::domain::error::Error;
use crate::domain::view::{Kind, ViewColumns};
use crate::http::AppState;

/// A project path with a call id.
#[derive(serde::Deserialize)]
pub struct CallPath {
    entity: String,
    project: String,
    call_id: String,
}

impl CallPath {
    fn project(&self) -> ProjectPath {
        ProjectPath { entity: self.entity.clone(), project: self.project.clone() }
    }
}

/// `GET /{entity}/{project}/r/call/{call_id}`: the run page for a run, else the call page.
pub async fn redirect(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(path): Path<CallPath>,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let (project, id) = (path.project().id(), path.call_id.clone());
    let call = blocking(&state, move |s| s.call(&project, &id)).await?;
    let Some(call) = call else {
        return Err(Error::NotFound(format!("Call {} not found", path.call_id)).into());
    };
    let base = path.project().base();
    let id = layout::path_segment(&call.id);
    Ok(match ViewColumns::of(&call).kind {
        Kind::EvaluationRun => see_other(&format!("{base}/runs/{id}")),
        _ => see_other(&format!("{base}/calls/{id}")),
    })
}

/// A call's status word.
pub fn status(c: &Call) -> &'static str {
    match (c.ended_at, &c.exception) {
        (None, _) => "running",
        (Some(_), None) => "success",
        (Some(_), Some(_)) => "error",
    }
}

/// Seconds a call took, if it ended.
pub fn seconds(c: &Call) -> Option<f64> {
    c.ended_at.map(|e| (e - c.started_at) as f64 / 1e6)
}

/// A JSON value, pretty-printed and cut to `max` characters.
pub fn pretty(v: &Value, max: usize) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let shown = match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}\n… ({} characters in all)", &text[..cut], text.chars().count()),
        None => text,
    };
    html! { pre.json { (shown) } }
}

/// The label of a call: its display name, else its op's short name.
pub fn label(c: &Call) -> String {
    c.display_name.clone().unwrap_or_else(|| c.op_short_name().to_string())
}

fn node(tree: &CallTree, at: usize, base: &str, depth: usize) -> Markup {
    let n = &tree.nodes[at];
    let c = &n.call;
    html! {
        details.tree open[depth < 2] {
            summary {
                a href=(format!("{base}/calls/{}", layout::path_segment(&c.id))) { (label(c)) }
                @if c.display_name.is_some() { " " code { (c.op_short_name()) } }
                " · " span class=(if status(c) == "error" { "bad" } else { "muted" }) { (status(c)) }
                @if let Some(s) = seconds(c) { " · " (layout::duration(s)) }
            }
            @if let Some(e) = &c.exception { p.bad { (e) } }
            dl.kv {
                dt { "inputs" } dd { (pretty(&c.inputs, 2_000)) }
                @if let Some(o) = &c.output { dt { "output" } dd { (pretty(o, 2_000)) } }
            }
            @for &child in &n.children { (node(tree, child, base, depth + 1)) }
        }
    }
}

/// The tree of calls under a call, as nested disclosures.
pub fn tree_markup(tree: &CallTree, base: &str) -> Markup {
    html! {
        @for &child in &tree.nodes[0].children { (node(tree, child, base, 0)) }
        @if tree.nodes[0].children.is_empty() { p.empty { "No child calls." } }
        @if tree.truncated { p.hint { "Only the first " (MAX_NODES) " calls of this tree are shown." } }
    }
}

/// `GET /{entity}/{project}/weave/calls/{call_id}`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(path): Path<CallPath>,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let (project, id) = (path.project().id(), path.call_id.clone());
    let tree = blocking(&state, move |s| call_tree::read(s, &project, &id)).await?;
    let Some(tree) = tree else {
        return Err(Error::NotFound(format!("Call {} not found", path.call_id)).into());
    };
    let base = path.project().base();
    let c = &tree.nodes[0].call;
    let body = html! {
        h1 { (label(c)) }
        dl.kv {
            dt { "op" } dd { code { (c.op_name) } }
            dt { "id" } dd { code { (c.id) } }
            dt { "status" } dd { (status(c)) }
            dt { "started" } dd { (layout::time(c.started_at)) }
            @if let Some(s) = seconds(c) { dt { "duration" } dd { (layout::duration(s)) } }
            @if let Some(p) = &c.parent_id {
                dt { "parent" } dd { a href=(format!("{base}/calls/{}", layout::path_segment(p))) { (p) } }
            }
        }
        @if let Some(e) = &c.exception { h2 { "Error" } pre.json.bad { (e) } }
        h2 { "Inputs" } (pretty(&c.inputs, 20_000))
        @if let Some(o) = &c.output { h2 { "Output" } (pretty(o, 20_000)) }
        h2 { "Child calls" } (tree_markup(&tree, &base))
        @if let Some(s) = &c.summary { h2 { "Summary" } (pretty(s, 5_000)) }
    };
    let crumbs = [Crumb::link(path.project().id(), format!("{base}/runs")), Crumb::here(label(c))];
    Ok(layout::page(StatusCode::OK, &label(c), Some(&viewer), &crumbs, body))
}
