//! Property tests of the walks over structure that clients write: random parent graphs (loops
//! and self-parents included) under subtree deletes, and random objects holding refs to each
//! other (cycles included) under ref reads. Every walk must end, within a deadline, with the
//! expected answer or a clear error. Runs on the store the tests are pointed at.
//!
//! `WEFT_WALK_CASES` sets the number of random cases (default 60; 15 on ClickHouse).

use crate::helpers::*;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use weft::domain::call::Call;
use weft::domain::error::Error;
use weft::domain::refs::Ref;
use weft::domain::store::{self, Store};

fn cases() -> u64 {
    let default = if on_clickhouse() { 15 } else { 60 };
    std::env::var("WEFT_WALK_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `f` on a thread of its own and waits at most `secs` for it: a walk that never ends
/// fails the test instead of hanging it.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).unwrap_or_else(|_| panic!("{what} did not end in {secs} s"))
}

#[test]
fn subtree_deletes_end_on_any_parent_graph() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = open_store(dir.path());
    let seed = std::env::var("WEFT_WALK_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_0001);
    let mut rng = Rng::new(seed);
    println!("seed {seed}");
    for case in 0..cases() {
        let project = format!("e/p{case}");
        let n = 1 + rng.below(12) as usize;
        // Each call's parent: none, or any call, itself included.
        let parents: Vec<Option<usize>> =
            (0..n).map(|_| (rng.below(5) > 0).then(|| rng.below(n as u64) as usize)).collect();
        let calls: Vec<Call> = (0..n)
            .map(|i| {
                let mut c = Call::with_ids(&project, "op", 1_000 + i as i64, format!("c{i}"), "t".into());
                c.parent_id = parents[i].map(|p| format!("c{p}"));
                c
            })
            .collect();
        store::write(store.as_ref(), move |w| calls.iter().try_for_each(|c| w.insert_call(c))).unwrap();
        let root = rng.below(n as u64) as usize;
        // What the delete must reach: the root and everything under it, each once.
        let mut reached = BTreeSet::from([root]);
        let mut frontier = vec![root];
        while let Some(p) = frontier.pop() {
            for (child, parent) in parents.iter().enumerate() {
                if *parent == Some(p) && reached.insert(child) {
                    frontier.push(child);
                }
            }
        }
        let (s, p) = (store.clone(), project.clone());
        let deleted = within(30, "a subtree delete", move || {
            store::write(s.as_ref(), move |w| w.delete_subtree(&p, &format!("c{root}"), 5_000))
        })
        .unwrap();
        assert_eq!(deleted, reached.len() as u64, "case {case}: parents {parents:?}, root {root}");
        for i in 0..n {
            let live = store.call(&project, &format!("c{i}")).unwrap().is_some();
            assert_eq!(
                live,
                !reached.contains(&i),
                "case {case}: call c{i}, parents {parents:?}, root {root}"
            );
        }
        // Deleting it again finds nothing live.
        let (s, p) = (store.clone(), project.clone());
        let again = within(30, "a second delete", move || {
            store::write(s.as_ref(), move |w| w.delete_subtree(&p, &format!("c{root}"), 6_000))
        });
        assert_eq!(again.unwrap(), 0);
    }
}

/// A random ref into the objects of `project`: an object, then up to three steps.
fn random_ref(rng: &mut Rng, project: &str, objects: u64) -> String {
    let mut r = format!("weave:///{project}/object/O{}:latest", rng.below(objects));
    for _ in 0..rng.below(4) {
        r.push_str(match rng.below(4) {
            0 => "/key/a",
            1 => "/key/b",
            2 => "/attr/a",
            _ => "/index/0",
        });
    }
    r
}

/// A random value of depth at most `depth`, whose strings are often refs.
fn random_value(rng: &mut Rng, project: &str, objects: u64, depth: u32) -> Value {
    match if depth == 0 { rng.below(2) } else { rng.below(5) } {
        0 => json!(rng.below(100)),
        1 => json!(random_ref(rng, project, objects)),
        2 => json!([random_value(rng, project, objects, depth - 1)]),
        _ => json!({
            "a": random_value(rng, project, objects, depth - 1),
            "b": random_value(rng, project, objects, depth - 1),
        }),
    }
}

#[test]
fn ref_reads_end_on_any_web_of_refs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = open_store(dir.path());
    let seed = std::env::var("WEFT_WALK_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_0002);
    let mut rng = Rng::new(seed);
    println!("seed {seed}");
    let mut outcomes: HashMap<&'static str, u32> = HashMap::new();
    for case in 0..cases() {
        let project = format!("e/p{case}");
        let objects = 1 + rng.below(5);
        let vals: Vec<Value> = (0..objects).map(|_| random_value(&mut rng, &project, objects, 3)).collect();
        let p = project.clone();
        store::write(store.as_ref(), move |w| {
            for (i, val) in vals.into_iter().enumerate() {
                weft::domain::writes::objects::create(w, &p, &format!("O{i}"), val, None, None, None)?;
            }
            Ok(())
        })
        .unwrap();
        let refs: Vec<Ref> =
            (0..8).map(|_| Ref::parse(&random_ref(&mut rng, &project, objects)).unwrap()).collect();
        for r in refs {
            let s = store.clone();
            let shown = format!("{r:?}");
            let read = within(30, "a ref read", move || weft::domain::resolve::read(s.as_ref(), &r));
            let kind = match read {
                Ok(_) => "read",
                Err(Error::NotFound(_)) => "not found",
                Err(Error::BadRequest(m)) if m.contains("cycle") => "cycle",
                Err(Error::BadRequest(m)) if m.contains("nested") => "too deep",
                Err(e) => panic!("case {case}: {shown}: unexpected {e:?}"),
            };
            *outcomes.entry(kind).or_default() += 1;
        }
    }
    println!("{outcomes:?}");
    // The cases are varied enough to meet both ends and cycles.
    for kind in ["read", "not found", "cycle"] {
        assert!(outcomes.get(kind).copied().unwrap_or(0) > 0, "no case gave {kind}: {outcomes:?}");
    }
}
