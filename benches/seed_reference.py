"""Load calls into a reference-server SQLite file through weave's own bulk path.

Used by the compare bench (benches/compare/reference.rs): the bench generates the data once
and writes it into both stores, weft's through its library and the reference's through this
script, so both hold the same calls (same ids, timestamps and payloads).

    python seed_reference.py --db FILE --refserver-dir DIR < calls.jsonl

Each stdin line is one call: project_id, id, trace_id, parent_id, op_name, started_at,
ended_at (null while running), exception, attributes, inputs, output, summary,
wb_user_id. Ended calls go through `calls_complete` (weave's batch insert: one
transaction per batch); running calls through `call_start` (one commit each). Both run
behind the same `ExternalTraceServer` adapter as the server (refserver's
`make_trace_server`), so project ids and refs are stored as the server expects them.
As in the reference's own seed script, the seeding connection runs with
`synchronous=OFF` (not persistent: the server later opens the file with SQLite's
defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

START_KEYS = (
    "project_id",
    "id",
    "trace_id",
    "parent_id",
    "op_name",
    "display_name",
    "started_at",
    "attributes",
    "inputs",
    "wb_user_id",
)
COMPLETE_KEYS = START_KEYS + ("ended_at", "exception", "output", "summary")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--refserver-dir", required=True)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()

    sys.path.insert(0, args.refserver_dir)
    from refserver import make_trace_server  # noqa: E402
    from weave.trace_server import trace_server_interface as tsi  # noqa: E402
    from weave.trace_server.sqlite_trace_server import get_conn_cursor  # noqa: E402

    ts = make_trace_server(args.db)
    conn, _ = get_conn_cursor(args.db)
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("PRAGMA synchronous=OFF")

    t0 = time.perf_counter()
    batch: list = []
    complete = started = 0

    def flush() -> None:
        nonlocal batch
        if batch:
            ts.calls_complete(tsi.CallsUpsertCompleteReq(batch=batch))
            batch = []

    for line in sys.stdin:
        c = json.loads(line)
        if c.get("ended_at") is not None:
            if c.get("summary") is None:
                c["summary"] = {}
            batch.append(
                tsi.CompletedCallSchemaForInsert(
                    **{k: c[k] for k in COMPLETE_KEYS if c.get(k) is not None}
                )
            )
            complete += 1
            if len(batch) >= args.batch:
                flush()
        else:
            start = {k: c[k] for k in START_KEYS if c.get(k) is not None}
            ts.call_start(tsi.CallStartReq(start=tsi.StartedCallSchemaForInsert(**start)))
            started += 1
    flush()
    conn.commit()
    el = time.perf_counter() - t0
    print(
        f"seeded {complete} ended and {started} running calls in {el:.1f}s",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
