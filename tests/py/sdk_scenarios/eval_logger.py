"""`weave.EvaluationLogger`: two predictions, one boolean score each, then a summary.

Prints the id of the logger's `Evaluation.evaluate` call and the refs of its pseudo
evaluation and model.
"""

from __future__ import annotations

import weave
from _common import check, emit
from weave import EvaluationLogger

client = weave.init("acme/proj")
ev = EvaluationLogger(name="logged-eval", model="my-model", dataset="my-dataset")
first = ev.log_prediction(inputs={"q": "1+1"}, output="2")
first.log_score("correct", True)
first.finish()
second = ev.log_prediction(inputs={"q": "2+2"}, output="5")
second.log_score("correct", False)
second.finish()
ev.log_summary({"note": "done"})
client.finish()

evaluate_call = ev._evaluate_call
check(evaluate_call is not None and evaluate_call.id is not None, "no evaluate call")
check(ev.model.ref is not None, "the logger's model has no ref")
check(ev._pseudo_evaluation.ref is not None, "the logger's evaluation has no ref")
emit(
    {
        "ok": True,
        "evaluate_call_id": evaluate_call.id,
        "evaluation_ref": ev._pseudo_evaluation.ref.uri(),
        "model_ref": ev.model.ref.uri(),
        "predictions": [
            {"inputs": {"q": "1+1"}, "output": "2", "correct": True},
            {"inputs": {"q": "2+2"}, "output": "5", "correct": False},
        ],
    }
)
