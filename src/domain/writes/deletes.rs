//! Deletes: calls with everything under them, and the runs, predictions and scores of the
//! views. A delete walks each call's subtree once, however its parent links loop.
//!
//! The one rule: a delete soft-deletes what it names and answers how many rows it deleted;
//! ids that name nothing count 0. Object versions are the exception, kept for wire
//! compatibility with Weave's server: an `obj/delete` that finds no live version is a 404.

use crate::domain::call::now;
use crate::domain::error::{Error, Result};
use crate::domain::store::Writer;
use crate::domain::view::{Kind, ViewColumns, is_predict_and_score};

/// Soft-deletes calls with their descendants; returns how many calls were deleted.
pub fn calls(w: &mut dyn Writer, project: &str, ids: &[String]) -> Result<u64> {
    let at = now();
    let mut n = 0;
    w.prefetch_calls(project, ids)?;
    for id in ids {
        n += w.delete_subtree(project, id, at)?;
    }
    Ok(n)
}

/// Soft-deletes the live calls of `kind` named by `ids` with their subtrees (for a prediction,
/// the `predict_and_score` call holding it and its scores); returns the number of calls deleted.
/// Ids that name nothing of that kind count 0.
pub fn of_kind(w: &mut dyn Writer, project: &str, kind: Kind, ids: &[String]) -> Result<u64> {
    let at = now();
    let mut n = 0;
    w.prefetch_calls(project, ids)?;
    for id in ids {
        let Some(call) = w.call(project, id)?.filter(|c| ViewColumns::of(c).kind == kind) else {
            continue;
        };
        let mut root = call.id.clone();
        if kind == Kind::Prediction
            && let Some(parent_id) = &call.parent_id
            && let Some(parent) = w.call(project, parent_id)?
            && is_predict_and_score(&parent)
        {
            root = parent.id;
        }
        n += w.delete_subtree(project, &root, at)?;
    }
    Ok(n)
}

/// Soft-deletes versions of an object (all of them, or those with the given digests); returns
/// how many were deleted, or a 404 if none was.
pub fn object_versions(
    w: &mut dyn Writer,
    project: &str,
    object_id: &str,
    digests: Option<&[String]>,
) -> Result<u64> {
    match w.delete_objects(project, object_id, digests, now())? {
        0 => Err(Error::NotFound("Object not found".into())),
        n => Ok(n),
    }
}
