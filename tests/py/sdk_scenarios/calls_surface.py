"""Reads of the calls API through the SDK: an evaluation's own runs, their scores, calls
scored by a scorer, calls sorted by an input, and the calls of a `weave.thread`.

Two evaluations run on the same model; each must find only its own run.
"""

from __future__ import annotations

import asyncio

import weave
from _common import check, emit

client = weave.init("acme/proj")


class MyModel(weave.Model):
    @weave.op
    def predict(self, q: str) -> str:
        a, b = q.split("+")
        return str(int(a) + int(b))


@weave.op
def exact_match(a: str, output: str) -> dict:
    return {"correct": a == output}


@weave.op
def square(x: int) -> int:
    return x * x


model = MyModel()
first = weave.Evaluation(name="first", dataset=[{"q": "1+1", "a": "2"}], scorers=[exact_match])
second = weave.Evaluation(name="second", dataset=[{"q": "2+2", "a": "5"}, {"q": "3+3", "a": "6"}], scorers=[exact_match])
asyncio.run(first.evaluate(model))
asyncio.run(second.evaluate(model))
for x in [3, 1, 2]:
    square(x)
with weave.thread("conversation-1"):
    square(10)
    square(11)
client.finish()

first_runs = list(first.get_evaluate_calls())
second_runs = list(second.get_evaluate_calls())
check(len(first_runs) == 1 and len(second_runs) == 1, f"runs: {len(first_runs)}, {len(second_runs)}")
scores = first.get_scores()
scored = list(client.get_calls(scored_by="exact_match"))
scored_by_ref = list(client.get_calls(scored_by=[exact_match.ref.uri()]))
by_x = list(client.get_calls(filter={"op_names": [square.ref.uri()]}, sort_by=[{"field": "inputs.x", "direction": "desc"}]))
threaded = list(client.get_calls(filter={"thread_ids": ["conversation-1"]}))
with_feedback = list(client.get_calls(scored_by="exact_match", include_feedback=True))
emit(
    {
        "ok": True,
        "first_runs": [c.id for c in first_runs],
        "second_runs": [c.id for c in second_runs],
        "first_run_inputs_self": first_runs[0].inputs["self"].ref.uri() if hasattr(first_runs[0].inputs["self"], "ref") else None,
        "first_ref": first.ref.uri(),
        "scores": scores,
        "scored_ops": sorted(c.op_name.split("/")[-1].split(":")[0] for c in scored),
        "scored_by_ref": len(scored_by_ref),
        "by_x": [c.inputs["x"] for c in by_x],
        "threaded": [c.inputs["x"] for c in threaded],
        "thread_ids": [c.thread_id for c in threaded],
        "feedback_counts": [len((c.summary or {}).get("weave", {}).get("feedback", [])) for c in with_feedback],
    }
)
