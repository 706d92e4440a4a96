"""Reads through the SDK, in a fresh process, of what an earlier evaluation wrote.

Usage: reads.py <evaluation ref> <dataset ref> <row ref>. Prints what `get_calls`, `get_call`,
`weave.ref(...).get()` and `refs_read_batch` returned.
"""

from __future__ import annotations

import sys

import weave
from _common import check, emit

evaluation_uri, dataset_uri, row_uri = sys.argv[1:4]
client = weave.init("acme/proj")

calls = list(client.get_calls())
listed = [
    {"id": c.id, "op_name": c.op_name, "parent_id": c.parent_id, "trace_id": c.trace_id}
    for c in calls
]
roots = [c for c in calls if c.parent_id is None]
check(len(roots) == 1, f"expected one root call, got {len(roots)}")
one = client.get_call(roots[0].id)
got_call = {
    "id": one.id,
    "op_name": one.op_name,
    "parent_id": one.parent_id,
    "trace_id": one.trace_id,
    "output": one.output,
    "ended_at": one.ended_at,
}

dataset = weave.ref(dataset_uri).get()
iterated = [dict(row) for row in dataset]
via_rows = [dict(row) for row in dataset.rows]

# objectify=False: objectifying an Evaluation imports weave.scorers, an optional extra.
evaluation = weave.ref(evaluation_uri).get(objectify=False)
evaluation_dataset_ref = evaluation.dataset.ref.uri() if getattr(evaluation.dataset, "ref", None) else None

batch = client.server.refs_read_batch({"refs": [dataset_uri, row_uri]})
client.finish()
emit(
    {
        "ok": True,
        "calls": listed,
        "get_call": got_call,
        "dataset_iterated": iterated,
        "dataset_rows": via_rows,
        "evaluation_trials": evaluation.trials,
        "evaluation_dataset_ref": evaluation_dataset_ref,
        "refs_read_batch": batch.vals,
    }
)
