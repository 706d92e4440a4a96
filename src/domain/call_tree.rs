//! A call and its descendants, as the web UI's call page shows them: read level by level
//! through the store's children lookups, each call at most once (parent links a client wrote
//! may form cycles), and at most a bounded number of calls and levels.

use std::collections::HashSet;

use super::call::Call;
use super::call_query::CallQuery;
use super::error::Result;
use super::store::Store;

/// Most calls a tree holds; deeper or wider trees are cut, and say so.
pub const MAX_NODES: usize = 500;
/// Most levels below the root read.
pub const MAX_DEPTH: usize = 32;
/// Parents asked for in one lookup.
const PARENTS_AT_ONCE: usize = 200;

/// One call of a tree and the positions of its children in [`CallTree::nodes`].
#[derive(Debug, Clone)]
pub struct Node {
    /// The call.
    pub call: Call,
    /// Its children, in start order.
    pub children: Vec<usize>,
}

/// A call (at position 0) and its descendants.
#[derive(Debug, Clone)]
pub struct CallTree {
    /// The calls; the root first.
    pub nodes: Vec<Node>,
    /// Whether calls were left out past [`MAX_NODES`] or [`MAX_DEPTH`].
    pub truncated: bool,
}

/// The tree of live call `id`; `None` if there is no such call.
pub fn read(store: &dyn Store, project: &str, id: &str) -> Result<Option<CallTree>> {
    let Some(root) = store.call(project, id)? else {
        return Ok(None);
    };
    let mut seen: HashSet<String> = HashSet::from([root.id.clone()]);
    let mut nodes = vec![Node { call: root, children: Vec::new() }];
    let mut frontier = vec![0usize];
    let mut truncated = false;
    for depth in 0.. {
        if frontier.is_empty() {
            break;
        }
        if depth >= MAX_DEPTH {
            truncated = true;
            break;
        }
        let mut next = Vec::new();
        for chunk in frontier.chunks(PARENTS_AT_ONCE) {
            let query = CallQuery {
                parent_ids: chunk.iter().map(|&i| nodes[i].call.id.clone()).collect(),
                ..CallQuery::default()
            };
            let mut found = Vec::new();
            let room = MAX_NODES.saturating_sub(nodes.len());
            store.calls(project, &query, &mut |c| {
                if seen.contains(&c.id) {
                    return true;
                }
                if found.len() >= room {
                    truncated = true;
                    return false;
                }
                seen.insert(c.id.clone());
                found.push(c);
                true
            })?;
            for c in found {
                let parent = c
                    .parent_id
                    .as_deref()
                    .and_then(|p| chunk.iter().copied().find(|&i| nodes[i].call.id == p));
                let at = nodes.len();
                nodes.push(Node { call: c, children: Vec::new() });
                if let Some(p) = parent {
                    nodes[p].children.push(at);
                }
                next.push(at);
            }
        }
        frontier = next;
    }
    Ok(Some(CallTree { nodes, truncated }))
}
