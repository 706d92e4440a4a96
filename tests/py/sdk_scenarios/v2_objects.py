"""The SDK's side of the v2 object routes: publishes a dataset, a model, a scorer op and an
evaluation; runs the evaluation created through the v2 API (its ref in argv[1]) as loaded by
`weave.ref(...).get()`; runs an SDK evaluation and an `EvaluationLogger` on the same rows; and
scores the logger's first predict call through the v2 client (any call may be scored).

Prints the refs it published, the logger's run id and its predict calls.
"""

from __future__ import annotations

import asyncio
import sys

import weave
from _common import check, emit
from weave import EvaluationLogger

ROWS = [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "5"}]

client = weave.init("acme/proj")


class Adder(weave.Model):
    offset: int = 0

    @weave.op
    def predict(self, q: str) -> str:
        return str(sum(int(x) for x in q.split("+")) + self.offset)


@weave.op
def exact(a: str, output: str) -> dict:
    return {"correct": a == output}


dataset = weave.Dataset(name="sdk-rows", rows=ROWS)
dataset_ref = weave.publish(dataset).uri()
model = Adder()
model_ref = weave.publish(model, name="Adder").uri()
scorer_ref = weave.publish(exact).uri()

# The evaluation the v2 API created, loaded and run as the SDK's own.
v2_eval = weave.ref(sys.argv[1]).get()
check(isinstance(v2_eval, weave.Evaluation), f"not an Evaluation: {type(v2_eval)}")
check(len(v2_eval.dataset.rows) == 2, "the v2 dataset's rows")
v2_result = asyncio.run(v2_eval.evaluate(model))

sdk_eval = weave.Evaluation(name="sdk-eval", dataset=dataset, scorers=[exact])
sdk_result = asyncio.run(sdk_eval.evaluate(model))
sdk_eval_ref = sdk_eval.ref.uri()

logger = EvaluationLogger(name="logged-eval", model="logged-model", dataset="logged-rows")
for row in ROWS:
    pred = logger.log_prediction(inputs={"q": row["q"]}, output=str(sum(int(x) for x in row["q"].split("+"))))
    pred.log_score("exact", pred.output == row["a"])
    pred.finish()
logger.log_summary({})
client.flush()

logger_call = logger._evaluate_call
predict_calls = [
    c.id for c in client.get_calls(filter={"trace_ids": [logger_call.trace_id]}) if "predict" in c.op_name and "predict_and_score" not in c.op_name
]
client.finish()
emit(
    {
        "ok": True,
        "dataset_ref": dataset_ref,
        "model_ref": model_ref,
        "scorer_ref": scorer_ref,
        "sdk_eval_ref": sdk_eval_ref,
        "v2_result": v2_result,
        "sdk_result": sdk_result,
        "logger_run": logger_call.id,
        "logger_predict_calls": predict_calls,
    }
)
