//! The page shell every view shares (header, navigation, sign-out form), the headers every
//! page carries (a Content-Security-Policy without inline script, no caching, no framing),
//! the embedded assets, and formatting helpers for what pages show.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Viewer;
use crate::domain::call::Micros;

/// The stylesheet, light and dark.
const STYLE: &str = include_str!("assets/style.css");
/// Keyboard navigation (`j` / `k` through rows, Enter opens); pages work without it.
const SCRIPT: &str = include_str!("assets/ui.js");

/// The policy every page is sent with: scripts and styles from this origin only (no inline
/// script, no inline style), no plugins, no framing, forms posting here only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /ui/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "ui.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return message_page(StatusCode::NOT_FOUND, "Not found", "No such asset."),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// A link in the breadcrumb trail.
pub struct Crumb {
    /// What it shows.
    pub label: String,
    /// Where it goes (`None` for the current page).
    pub href: Option<String>,
}

impl Crumb {
    /// A crumb linking to `href`.
    pub fn link(label: impl Into<String>, href: impl Into<String>) -> Self {
        Crumb { label: label.into(), href: Some(href.into()) }
    }
    /// The current page's crumb.
    pub fn here(label: impl Into<String>) -> Self {
        Crumb { label: label.into(), href: None }
    }
}

/// A whole page: the shell around `body`, with the viewer's sign-out form.
pub fn page(
    status: StatusCode,
    title: &str,
    viewer: Option<&Viewer>,
    crumbs: &[Crumb],
    body: Markup,
) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · weft" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "weft" }
                    nav.crumbs aria-label="Breadcrumb" {
                        @for c in crumbs {
                            span.sep { "/" }
                            @if let Some(href) = &c.href { a href=(href) { (c.label) } }
                            @else { span aria-current="page" { (c.label) } }
                        }
                    }
                    @if let Some(v) = viewer {
                        form.signout method="post" action="/ui/sign-out" {
                            input type="hidden" name="csrf" value=(v.csrf());
                            span.who { "key " (v.0.key.id) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    html_response(status, doc)
}

/// An HTML document with the headers every page carries.
pub fn html_response(status: StatusCode, doc: Markup) -> Response {
    let mut r = (status, doc.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    r
}

/// A page with only a message (errors, "nothing here").
pub fn message_page(status: StatusCode, title: &str, detail: &str) -> Response {
    page(
        status,
        title,
        None,
        &[],
        html! { section.message { h1 { (title) } p { (detail) } p { a href="/" { "Home" } } } },
    )
}

/// `s` escaped for one path segment of a URL.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs, each part escaped.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// `here` with the query string of a page's parameters `pairs`, each replaced by its value in
/// `changes` (added when new). Parameters with an empty value, an offset of 0, and those
/// `omit` names (defaults a page leaves out) are left out.
pub fn link_with<'a>(
    here: &str,
    mut pairs: Vec<(&'a str, String)>,
    changes: &[(&'a str, String)],
    omit: &dyn Fn(&str, &str) -> bool,
) -> String {
    for (k, v) in changes {
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(p) => p.1 = v.clone(),
            None => pairs.push((k, v.clone())),
        }
    }
    let kept = pairs.iter().filter(|(k, v)| !(v.is_empty() || *k == "offset" && v == "0" || omit(k, v)));
    format!("{here}?{}", query_string(kept.map(|(k, v)| (*k, v.as_str()))))
}

/// A time as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn time(t: Micros) -> String {
    let s = crate::domain::call::format_time(t);
    s.get(..19).map(|x| x.replace('T', " ")).unwrap_or(s)
}

/// A duration in seconds, shortly: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return String::new();
    }
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1e3)
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{} min {:02} s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    } else {
        format!("{} h {:02} min", (seconds / 3600.0) as u64, ((seconds % 3600.0) / 60.0) as u64)
    }
}

/// A metric's value, shortly: integers as they are, others with 4 significant digits.
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let digits = 4 - (x.abs().log10().floor() as i32 + 1);
    let digits = digits.clamp(0, 8) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// The short name of a ref (`weave:///e/p/object/Name:digest` → `Name`), or the text itself.
pub fn ref_label(r: &str) -> &str {
    crate::domain::refs::ref_name(r).unwrap_or(r)
}

/// A ref's name and the start of its digest (`Name:1a2b3c4d`), to tell versions apart; text
/// that is not a ref as it is.
pub fn ref_short(r: &str) -> String {
    let Some(name) = crate::domain::refs::ref_name(r) else {
        return r.to_string();
    };
    let digest = r
        .split('/')
        .find_map(|seg| seg.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
        .unwrap_or("");
    match digest.get(..8).or(Some(digest)).filter(|d| !d.is_empty()) {
        Some(d) => format!("{name}:{d}"),
        None => name.to_string(),
    }
}

/// Raw markup (only for text this module built, never for values from users).
pub fn trusted(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(path_segment("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(75.0), "1 min 15 s");
        assert_eq!(number(0.123456), "0.1235");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(1234.5678), "1235");
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(ref_short("weave:///e/p/object/Eval:0123456789abcdef"), "Eval:01234567");
        assert_eq!(ref_short("weave:///e/p/object/M:ab"), "M:ab");
        assert_eq!(ref_short("plain"), "plain");
    }
}
