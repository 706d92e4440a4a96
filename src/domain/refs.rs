//! Weave refs: `weave:///{entity}/{project}/{kind}/{name}:{digest}[/{edge}/{value}...]`.

use super::error::{Error, Result};

/// What a ref points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An object version (`object/{name}:{digest}`).
    Object { name: String, digest: String },
    /// An op version (`op/{name}:{digest}`).
    Op { name: String, digest: String },
    /// A table (`table/{digest}`).
    Table { digest: String },
    /// A call (`call/{id}`).
    Call { id: String },
}

/// One step into a referenced value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Edge {
    /// A dictionary key.
    Key(String),
    /// A list index.
    Index(usize),
    /// An object attribute.
    Attr(String),
    /// A table row, by digest.
    Id(String),
}

/// A parsed external ref.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ref {
    /// `"{entity}/{project}"`.
    pub project_id: String,
    /// What it points at.
    pub target: Target,
    /// Steps into the value.
    pub path: Vec<Edge>,
}

fn bad(r: &str) -> Error {
    Error::BadRequest(format!("Invalid ref: {r}"))
}

/// Percent-decodes one part of a ref (`+` stays `+`).
fn decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Ref {
    /// Parses a `weave:///` ref; anything else is a 400.
    pub fn parse(r: &str) -> Result<Ref> {
        let rest = r.strip_prefix("weave:///").ok_or_else(|| bad(r))?;
        let mut parts = rest.split('/');
        let entity = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| bad(r))?;
        let project = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| bad(r))?;
        let kind = parts.next().ok_or_else(|| bad(r))?;
        let head = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| bad(r))?;
        let named = |head: &str| -> Result<(String, String)> {
            let (name, digest) = head.split_once(':').ok_or_else(|| bad(r))?;
            if name.is_empty() || digest.is_empty() {
                return Err(bad(r));
            }
            Ok((decode(name), decode(digest)))
        };
        let target = match kind {
            "object" => {
                let (name, digest) = named(head)?;
                Target::Object { name, digest }
            }
            "op" => {
                let (name, digest) = named(head)?;
                Target::Op { name, digest }
            }
            "table" => Target::Table { digest: decode(head) },
            "call" => Target::Call { id: decode(head) },
            _ => return Err(bad(r)),
        };
        let rest: Vec<&str> = parts.collect();
        if !rest.len().is_multiple_of(2) {
            return Err(bad(r));
        }
        let mut path = Vec::with_capacity(rest.len() / 2);
        for pair in rest.chunks(2) {
            let value = decode(pair[1]);
            path.push(match pair[0] {
                "key" => Edge::Key(value),
                "attr" => Edge::Attr(value),
                "id" => Edge::Id(value),
                "index" => Edge::Index(value.parse().map_err(|_| bad(r))?),
                _ => return Err(bad(r)),
            });
        }
        Ok(Ref { project_id: format!("{}/{}", decode(entity), decode(project)), target, path })
    }
}

/// Longest ref accepted where a request names one (an evaluation, model or scorer).
pub const MAX_REF_LEN: usize = 4096;

/// Checks a value the API takes as a ref: anything may be sent, but a `weave:///` URI must
/// be a well-formed ref (a 400 otherwise, as in Weave), and no value may be longer than
/// [`MAX_REF_LEN`] (a 400 too).
pub fn check_ref(value: &str) -> Result<()> {
    if value.len() > MAX_REF_LEN {
        return Err(Error::BadRequest(format!("Ref too long: at most {MAX_REF_LEN} bytes")));
    }
    if value.starts_with("weave:///") {
        Ref::parse(value).map_err(|_| Error::BadRequest(format!("Invalid URI: {value}")))?;
    }
    Ok(())
}

/// The name part of an object or op ref (`weave:///e/p/object/Name:digest` → `Name`).
pub fn ref_name(r: &str) -> Option<&str> {
    let rest = r.strip_prefix("weave:///").or_else(|| r.strip_prefix("weave-trace-internal:///"))?;
    let mut parts = rest.split('/');
    // entity and project (the internal form has a single project id segment)
    let kind_at = if r.starts_with("weave:///") { 2 } else { 1 };
    let kind = parts.nth(kind_at)?;
    if kind != "object" && kind != "op" {
        return None;
    }
    let name = parts.next()?.split(':').next()?;
    (!name.is_empty()).then_some(name)
}

/// The op name for a method of the object `r` names: `Name.method`, or `fallback.method`.
pub fn method_op(r: &str, fallback: &str, method: &str) -> String {
    format!("{}.{method}", ref_name(r).unwrap_or(fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_object_and_op_refs() {
        assert_eq!(ref_name("weave:///e/p/object/MyModel:abc"), Some("MyModel"));
        assert_eq!(ref_name("weave:///e/p/op/Evaluation.evaluate:abc"), Some("Evaluation.evaluate"));
        assert_eq!(ref_name("weave-trace-internal:///UFJPSg==/object/S:1"), Some("S"));
        assert_eq!(ref_name("weave:///e/p/table/abc"), None);
        assert_eq!(ref_name("not a ref"), None);
        assert_eq!(method_op("plain", "Model", "predict"), "Model.predict");
    }

    #[test]
    fn refs_parse_with_their_paths() {
        let r = Ref::parse("weave:///acme/proj/object/Ds:abc/attr/rows/id/r1/key/a%2Fb/index/2").unwrap();
        assert_eq!(r.project_id, "acme/proj");
        assert_eq!(r.target, Target::Object { name: "Ds".into(), digest: "abc".into() });
        assert_eq!(
            r.path,
            [Edge::Attr("rows".into()), Edge::Id("r1".into()), Edge::Key("a/b".into()), Edge::Index(2)]
        );
        assert_eq!(
            Ref::parse("weave:///a/b/table/t1").unwrap().target,
            Target::Table { digest: "t1".into() }
        );
        for bad in [
            "weave:///x",
            "weave:///a/b/object/noversion",
            "weave:///a/b/thing/x:y",
            "http://x",
            "weave:///a/b/object/n:d/key",
        ] {
            assert!(Ref::parse(bad).is_err(), "{bad}");
        }
    }
}
