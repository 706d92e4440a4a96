//! Tables: what a table view shows, built once and rendered three ways, as HTML, CSV
//! (`?format=csv`) or JSONL (`?format=jsonl`), so that an export holds exactly the rows and
//! numbers the page shows.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::layout;
use crate::domain::error::{Error, Result};

/// How a table view answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The page.
    Html,
    /// Comma-separated values, a header line first.
    Csv,
    /// One JSON object per row.
    Jsonl,
}

impl Format {
    /// The `format` query parameter: absent or `html`, `csv`, `jsonl` (400 for anything else).
    pub fn parse(value: Option<&str>) -> Result<Format> {
        match value {
            None | Some("") | Some("html") => Ok(Format::Html),
            Some("csv") => Ok(Format::Csv),
            Some("jsonl") => Ok(Format::Jsonl),
            Some(other) => {
                Err(Error::BadRequest(format!("Unknown format {other:?}: expected html, csv or jsonl")))
            }
        }
    }
}

/// One cell.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Nothing.
    Empty,
    /// Text.
    Text(String),
    /// Text linking somewhere (exports keep the text).
    Link(String, String),
    /// A number, shown shortly, exported in full.
    Num(f64),
    /// A time in microseconds, shown and exported as UTC text.
    Time(i64),
    /// A duration in seconds.
    Seconds(f64),
    /// A value shown as compact JSON.
    Json(Value),
    /// Already-built markup for the page, with its text for exports.
    Markup(Markup, String),
    /// A number shown as built markup (e.g. coloured), exported as the number.
    MarkedNum(Markup, f64),
    /// A number linking somewhere (exports keep the number).
    NumLink(f64, String),
    /// A cell with CSS classes of its own (heat, best); exports keep the cell.
    Styled(Box<Cell>, String),
}

impl Cell {
    /// The cell's value in a JSONL export.
    fn json(&self) -> Value {
        match self {
            Cell::Empty => Value::Null,
            Cell::Text(s) | Cell::Link(s, _) | Cell::Markup(_, s) => json!(s),
            Cell::Num(x) | Cell::NumLink(x, _) | Cell::MarkedNum(_, x)
                if x.fract() == 0.0 && x.abs() < 9e15 =>
            {
                json!(*x as i64)
            }
            Cell::Num(x) | Cell::NumLink(x, _) | Cell::Seconds(x) | Cell::MarkedNum(_, x) => json!(x),
            Cell::Styled(inner, _) => inner.json(),
            Cell::Time(t) => json!(crate::domain::call::format_time(*t)),
            Cell::Json(v) => v.clone(),
        }
    }

    /// The cell's text in a CSV export.
    fn text(&self) -> String {
        match self.json() {
            Value::Null => String::new(),
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    fn html(&self) -> Markup {
        match self {
            Cell::Empty => html! {},
            Cell::Text(s) => html! { (s) },
            Cell::Link(s, href) => html! { a href=(href) { (s) } },
            Cell::Num(x) => html! { span title=(x) { (layout::number(*x)) } },
            Cell::Time(t) => {
                // Date and time each on one line; the pair wraps between them when space is short.
                let text = layout::time(*t);
                let (date, clock) = text.split_once(' ').unwrap_or((&text, ""));
                html! { time { span { (date) } " " span { (clock) } } }
            }
            Cell::Seconds(x) => html! { (layout::duration(*x)) },
            Cell::Json(v) => html! { code.json { (short_json(v, 200)) } },
            Cell::Markup(m, _) | Cell::MarkedNum(m, _) => m.clone(),
            Cell::NumLink(x, href) => html! { a href=(href) title=(x) { (layout::number(*x)) } },
            Cell::Styled(inner, _) => inner.html(),
        }
    }

    fn numeric(&self) -> bool {
        match self {
            Cell::Styled(inner, _) => inner.numeric(),
            other => {
                matches!(other, Cell::Num(_) | Cell::NumLink(..) | Cell::Seconds(_) | Cell::MarkedNum(..))
            }
        }
    }

    /// The classes of the cell's `td`.
    fn classes(&self) -> Option<String> {
        let own = match self {
            Cell::Styled(_, class) => Some(class.as_str()),
            _ => None,
        };
        match (self.numeric(), own) {
            (true, Some(c)) => Some(format!("num {c}")),
            (true, None) => Some("num".into()),
            (false, own) => own.map(String::from),
        }
    }
}

/// `v` as compact JSON, cut to about `max` characters.
pub fn short_json(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

/// A header's label, which may break after its dots (metric paths are long).
fn label(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('.').enumerate() {
            @if i > 0 { "." wbr; }
            (part)
        }
    }
}

/// A column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its key in exports and in `?sort=`.
    pub key: String,
    /// Its header.
    pub label: String,
    /// Whether the page offers to sort by it.
    pub sortable: bool,
}

impl Column {
    /// A column whose header sorts by it.
    pub fn sortable(key: impl Into<String>, label: impl Into<String>) -> Self {
        Column { key: key.into(), label: label.into(), sortable: true }
    }
    /// A column without sorting.
    pub fn plain(key: impl Into<String>, label: impl Into<String>) -> Self {
        Column { key: key.into(), label: label.into(), sortable: false }
    }
}

/// A row: its cells, and a CSS class for the row (e.g. `failed`).
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// One cell per column.
    pub cells: Vec<Cell>,
    /// A class for the row, if any.
    pub class: Option<&'static str>,
}

/// A table view's content.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// The current sort of a table, and how to link to another.
pub struct Sorting<'a> {
    /// Column key sorted by.
    pub key: &'a str,
    /// Descending?
    pub descending: bool,
    /// Builds the link of a header, given the column key and the direction.
    pub link: &'a dyn Fn(&str, bool) -> String,
}

impl Table {
    /// The table as HTML; headers of sortable columns link to their sort.
    pub fn html(&self, sorting: Option<&Sorting<'_>>) -> Markup {
        html! {
            table.data {
                thead { tr {
                    @for (i, c) in self.columns.iter().enumerate() {
                        @let numeric = self.rows.iter().any(|r| r.cells.get(i).is_some_and(Cell::numeric));
                        th scope="col" class=[numeric.then_some("num")] {
                            @match (sorting, c.sortable) {
                                (Some(s), true) => {
                                    @let current = s.key == c.key;
                                    @let next_desc = if current { !s.descending } else { false };
                                    a href=((s.link)(&c.key, next_desc)) {
                                        (label(&c.label))
                                        @if current { span.dir { @if s.descending { " ▼" } @else { " ▲" } } }
                                    }
                                }
                                _ => { (label(&c.label)) }
                            }
                        }
                    }
                } }
                tbody {
                    @for r in &self.rows {
                        tr class=[r.class] {
                            @for cell in &r.cells {
                                td class=[cell.classes()] { (cell.html()) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The table as an export (`format` is CSV or JSONL), named `name` for downloads.
    pub fn export(&self, format: Format, name: &str) -> Response {
        let (body, kind, ext) = match format {
            Format::Jsonl => {
                let mut out = String::new();
                for r in &self.rows {
                    let mut m = Map::new();
                    for (c, cell) in self.columns.iter().zip(&r.cells) {
                        m.insert(c.key.clone(), cell.json());
                    }
                    out.push_str(&Value::Object(m).to_string());
                    out.push('\n');
                }
                (out, "application/jsonl", "jsonl")
            }
            Format::Csv | Format::Html => {
                let mut out = String::new();
                let line = |out: &mut String, fields: Vec<String>| {
                    let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                    out.push_str(&quoted.join(","));
                    out.push_str("\r\n");
                };
                line(&mut out, self.columns.iter().map(|c| c.key.clone()).collect());
                for r in &self.rows {
                    line(&mut out, r.cells.iter().map(Cell::text).collect());
                }
                (out, "text/csv; charset=utf-8", "csv")
            }
        };
        let mut r = (StatusCode::OK, body).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}.{ext}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        r
    }
}

/// A CSV field, quoted when it must be. A field a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@` first, not a number) is prefixed with `'`.
fn csv_field(f: &str) -> String {
    let formula = f.starts_with(['=', '+', '-', '@', '\t', '\r']) && f.parse::<f64>().is_err();
    let f = if formula { format!("'{f}") } else { f.to_string() };
    if f.contains([',', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_hold_the_cells() {
        let t = Table {
            columns: vec![Column::plain("name", "Name"), Column::plain("score", "Score")],
            rows: vec![
                Row { cells: vec![Cell::Text("a,\"b\"".into()), Cell::Num(0.5)], class: None },
                Row { cells: vec![Cell::Text("=cmd()".into()), Cell::Num(-1.0)], class: None },
            ],
        };
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-1"), "-1");
        let html = t.html(None).into_string();
        assert!(html.contains("a,&quot;b&quot;") && html.contains("<td class=\"num\">"));
        assert!(Format::parse(Some("xml")).is_err());
        assert_eq!(Format::parse(Some("jsonl")).unwrap(), Format::Jsonl);
    }
}
