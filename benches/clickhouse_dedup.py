"""FINAL against argMax for reading the calls table: 100k calls as 205k row versions.

Run with chdb (ClickHouse in process): `python3 benches/clickhouse_dedup.py`, in the virtual
environment `scripts/clickhouse` makes.
"""
import json, random, statistics, tempfile, time
from chdb import session

DDL = """CREATE TABLE b.calls (project_id String, id String, trace_id String, parent_id Nullable(String), op_name String, display_name Nullable(String), started_at DateTime64(6, 'UTC'), ended_at Nullable(DateTime64(6, 'UTC')), exception Nullable(String), attributes String, inputs String, output Nullable(String), summary Nullable(String), wb_user_id Nullable(String), deleted_at Nullable(DateTime64(6, 'UTC')), kind LowCardinality(Nullable(String)), evaluation Nullable(String), model Nullable(String), run_id Nullable(String), logged_run Bool, version UInt64, INDEX calls_kind kind TYPE set(8) GRANULARITY 1, INDEX calls_trace trace_id TYPE bloom_filter GRANULARITY 1, INDEX calls_parent parent_id TYPE bloom_filter GRANULARITY 1, INDEX calls_run run_id TYPE bloom_filter GRANULARITY 1) ENGINE = ReplacingMergeTree(version) ORDER BY (project_id, id) SETTINGS parts_to_throw_insert=100000"""

s = session.Session(tempfile.mkdtemp())
q = lambda x, f="CSV": str(s.query(x, f))
q("CREATE DATABASE b")
q(DDL)
N = 100_000
random.seed(1)
def row(i, v, ended=False, deleted=False):
    kind = "run" if i % 10 == 0 else ("prediction" if i % 10 < 6 else "score")
    return json.dumps({"project_id": f"e/p{i%4}", "id": f"{i:08d}", "trace_id": f"t{i//10}", "parent_id": None if i%10==0 else f"{(i//10)*10:08d}",
        "op_name": "Evaluation.evaluate" if kind=="run" else "x.predict", "display_name": None,
        "started_at": f"2026-01-01 00:00:{(i%60):02d}.{i:06d}"[:26], "ended_at": "2026-01-02 00:00:00.000000" if ended else None,
        "exception": None, "attributes": '{"weave":{}}', "inputs": json.dumps({"q": "x"*200}), "output": '{"a":1}' if ended else None,
        "summary": '{"s":1}' if ended else None, "wb_user_id": "u", "deleted_at": "2026-01-03 00:00:00.000000" if deleted else None,
        "kind": kind, "evaluation": "weave:///e/p/object/E:1" if kind=="run" else None, "model": f"weave:///e/p/object/M{i%5}:1",
        "run_id": None if kind=="run" else f"{(i//10)*10:08d}", "logged_run": False, "version": v})
# starts in 10 inserts, then ends for all in 10 more inserts, deletes for 5%
for b in range(10):
    q("INSERT INTO b.calls FORMAT JSONEachRow " + "\n".join(row(i, 1) for i in range(b*N//10, (b+1)*N//10)))
for b in range(10):
    q("INSERT INTO b.calls FORMAT JSONEachRow " + "\n".join(row(i, 2, ended=True) for i in range(b*N//10, (b+1)*N//10)))
q("INSERT INTO b.calls FORMAT JSONEachRow " + "\n".join(row(i, 3, ended=True, deleted=True) for i in range(0, N, 20)))
print("rows stored", q("SELECT count() FROM b.calls"), "parts", q("SELECT count() FROM system.parts WHERE database='b' AND table='calls' AND active"))
COLS = "project_id, id, trace_id, parent_id, op_name, display_name, started_at, ended_at, exception, attributes, inputs, output, summary, wb_user_id"
AM = ", ".join(f"argMax(tuple({c}), version).1 AS {c}" if c not in ("project_id","id") else c for c in COLS.split(", "))
queries = {
 "runs list (project, kind=run, live, order, limit 100)": (
   f"SELECT {COLS} FROM b.calls FINAL WHERE project_id='e/p2' AND kind='run' AND deleted_at IS NULL ORDER BY started_at, id LIMIT 100",
   f"SELECT {COLS} FROM (SELECT {AM}, argMax(tuple(kind), version).1 AS k, argMax(tuple(deleted_at), version).1 AS d FROM b.calls WHERE project_id='e/p2' GROUP BY project_id, id) WHERE k='run' AND d IS NULL ORDER BY started_at, id LIMIT 100"),
 "all live calls of a project (25k)": (
   f"SELECT {COLS} FROM b.calls FINAL WHERE project_id='e/p1' AND deleted_at IS NULL ORDER BY started_at, id",
   f"SELECT {COLS} FROM (SELECT {AM}, argMax(tuple(deleted_at), version).1 AS d FROM b.calls WHERE project_id='e/p1' GROUP BY project_id, id) WHERE d IS NULL ORDER BY started_at, id"),
 "point read by id": (
   f"SELECT {COLS} FROM b.calls FINAL WHERE project_id='e/p2' AND id='00050002' AND deleted_at IS NULL",
   f"SELECT {COLS} FROM (SELECT {AM}, argMax(tuple(deleted_at), version).1 AS d FROM b.calls WHERE project_id='e/p2' AND id='00050002' GROUP BY project_id, id) WHERE d IS NULL"),
}
for name, (f, a) in queries.items():
    rf, ra = q(f), q(a)
    assert rf == ra, (name, len(rf), len(ra))
    tf, ta = [], []
    for _ in range(7):
        t=time.perf_counter(); q(f); tf.append(time.perf_counter()-t)
        t=time.perf_counter(); q(a); ta.append(time.perf_counter()-t)
    print(f"{name}: rows {rf.count(chr(10))}  FINAL median {statistics.median(tf)*1000:.1f} ms   argMax median {statistics.median(ta)*1000:.1f} ms")
