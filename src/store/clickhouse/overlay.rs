//! The writer's view of a batch not yet inserted: rows written by the batch's jobs (to insert at
//! commit) and rows read from ClickHouse (a cache valid while the batch runs, as this writer is
//! the only one changing them). A job's writes can be undone without touching the others'.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
struct Slot<V> {
    /// The row, or `None` when it is known not to exist.
    value: Option<V>,
    /// Written by the batch: to insert at commit.
    dirty: bool,
}

/// Rows of one table by key, over what ClickHouse holds.
#[derive(Debug)]
pub struct Overlay<K, V> {
    rows: HashMap<K, Slot<V>>,
    /// What the running job replaced, to put back if it fails.
    undo: Vec<(K, Option<Slot<V>>)>,
}

impl<K, V> Default for Overlay<K, V> {
    fn default() -> Self {
        Overlay { rows: HashMap::new(), undo: Vec::new() }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Overlay<K, V> {
    /// What the batch knows of `key`: `None` if nothing (ask ClickHouse), `Some(None)` if the
    /// row is known not to exist, else the row.
    pub fn get(&self, key: &K) -> Option<Option<&V>> {
        self.rows.get(key).map(|s| s.value.as_ref())
    }

    /// Whether the batch knows anything of `key`.
    pub fn knows(&self, key: &K) -> bool {
        self.rows.contains_key(key)
    }

    /// The row of `key` as ClickHouse holds it, when the batch has read it and not written it.
    pub fn read_only(&self, key: &K) -> Option<&V> {
        self.rows.get(key).filter(|s| !s.dirty).and_then(|s| s.value.as_ref())
    }

    /// Records what ClickHouse holds for `key`, unless the batch already knows better.
    pub fn remember(&mut self, key: K, value: Option<V>) {
        self.rows.entry(key).or_insert(Slot { value, dirty: false });
    }

    /// The row of `key` as the batch sees it: what the batch knows, or else what `read` finds
    /// in ClickHouse (remembered for the rest of the batch).
    pub fn get_or_read<E>(
        &mut self,
        key: K,
        read: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<V>, E> {
        if let Some(known) = self.get(&key) {
            return Ok(known.cloned());
        }
        let found = read()?;
        self.remember(key, found.clone());
        Ok(found)
    }

    /// Writes a row (a new one or a new version of one).
    pub fn put(&mut self, key: K, value: V) {
        let old = self.rows.insert(key.clone(), Slot { value: Some(value), dirty: true });
        self.undo.push((key, old));
    }

    /// Every row the batch knows to exist, written or read.
    pub fn rows(&self) -> impl Iterator<Item = (&K, &V)> {
        self.rows.iter().filter_map(|(k, s)| s.value.as_ref().map(|v| (k, v)))
    }

    /// Ends the running job: keeps its writes, or puts back what it replaced.
    pub fn end_job(&mut self, keep: bool) {
        if keep {
            self.undo.clear();
            return;
        }
        while let Some((key, old)) = self.undo.pop() {
            match old {
                Some(slot) => self.rows.insert(key, slot),
                None => self.rows.remove(&key),
            };
        }
    }

    /// The rows written by the batch, emptying the overlay.
    pub fn take_written(&mut self) -> Vec<V> {
        self.undo.clear();
        std::mem::take(&mut self.rows).into_values().filter(|s| s.dirty).filter_map(|s| s.value).collect()
    }
}

/// Rows only ever appended (content-addressed: a duplicate is the same row), with the running
/// job's rows droppable.
#[derive(Debug, Default)]
pub struct Appends {
    lines: Vec<String>,
    job_start: usize,
}

impl Appends {
    /// Adds an encoded row.
    pub fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Ends the running job: keeps its rows, or drops them.
    pub fn end_job(&mut self, keep: bool) {
        if !keep {
            self.lines.truncate(self.job_start);
        }
        self.job_start = self.lines.len();
    }

    /// The rows appended by the batch, emptying it.
    pub fn take(&mut self) -> Vec<String> {
        self.job_start = 0;
        std::mem::take(&mut self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_job_leaves_the_batch_as_it_was() {
        let mut o: Overlay<&str, i32> = Overlay::default();
        o.remember("read", Some(1));
        o.remember("absent", None);
        o.put("a", 1);
        o.end_job(true);
        o.put("a", 2);
        o.put("b", 3);
        o.put("read", 4);
        o.put("absent", 5);
        assert_eq!(o.get(&"a"), Some(Some(&2)));
        o.end_job(false);
        assert_eq!(o.get(&"a"), Some(Some(&1)));
        assert_eq!(o.get(&"b"), None);
        assert_eq!(o.get(&"read"), Some(Some(&1)));
        assert_eq!(o.get(&"absent"), Some(None));
        let mut written = o.take_written();
        written.sort();
        assert_eq!(written, vec![1], "only written rows are inserted, once each");
        assert_eq!(o.get(&"a"), None);
    }

    #[test]
    fn remembering_never_hides_a_write() {
        let mut o: Overlay<&str, i32> = Overlay::default();
        o.put("a", 7);
        o.remember("a", None);
        assert_eq!(o.get(&"a"), Some(Some(&7)));
        assert!(o.knows(&"a"));
        assert_eq!(o.rows().count(), 1);
    }

    #[test]
    fn appends_drop_a_failed_job_only() {
        let mut a = Appends::default();
        a.push("1".into());
        a.end_job(true);
        a.push("2".into());
        a.end_job(false);
        a.push("3".into());
        a.end_job(true);
        assert_eq!(a.take(), vec!["1".to_string(), "3".to_string()]);
        assert!(a.take().is_empty());
    }
}
