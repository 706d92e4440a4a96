//! Weave refs (`weave:///{entity}/{project}/{kind}/{name}:{digest}...`): the parts the views need.

/// The name part of an object or op ref (`weave:///e/p/object/Name:digest` → `Name`).
pub fn ref_name(r: &str) -> Option<&str> {
    let rest = r
        .strip_prefix("weave:///")
        .or_else(|| r.strip_prefix("weave-trace-internal:///"))?;
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
        assert_eq!(
            ref_name("weave:///e/p/op/Evaluation.evaluate:abc"),
            Some("Evaluation.evaluate")
        );
        assert_eq!(
            ref_name("weave-trace-internal:///UFJPSg==/object/S:1"),
            Some("S")
        );
        assert_eq!(ref_name("weave:///e/p/table/abc"), None);
        assert_eq!(ref_name("not a ref"), None);
        assert_eq!(method_op("plain", "Model", "predict"), "Model.predict");
    }
}
