"""A `weave.Evaluation` over two dataset rows with one scorer, evaluated on a `weave.Model`.

The second row's expected answer is wrong on purpose, so the scorer returns one `True` and one
`False`. Prints the result dict `evaluate` returned and the refs of the objects involved.
"""

from __future__ import annotations

import asyncio
import sys

import weave
from _common import check, emit

ROWS = [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "5"}]

project = sys.argv[1] if len(sys.argv) > 1 else "acme/proj"
client = weave.init(project)


class MyModel(weave.Model):
    offset: int = 0

    @weave.op
    def predict(self, q: str) -> str:
        a, b = q.split("+")
        return str(int(a) + int(b) + self.offset)


@weave.op
def exact_match(a: str, output: str) -> dict:
    return {"correct": a == output}


model = MyModel()
evaluation = weave.Evaluation(dataset=ROWS, scorers=[exact_match])
result = asyncio.run(evaluation.evaluate(model))
client.finish()

check(evaluation.ref is not None, "the Evaluation has no ref after evaluate")
check(model.ref is not None, "the Model has no ref after evaluate")
check(evaluation.dataset.ref is not None, "the Dataset has no ref after evaluate")
check(exact_match.ref is not None, "the scorer op has no ref after evaluate")
emit(
    {
        "ok": True,
        "rows": ROWS,
        "result": result,
        "evaluation_ref": evaluation.ref.uri(),
        "model_ref": model.ref.uri(),
        "dataset_ref": evaluation.dataset.ref.uri(),
        "scorer_ref": exact_match.ref.uri(),
    }
)
