"""A small, realistic set of evaluation runs for the web UI's tests and screenshots.

Two evaluations (`capitals` and `conversions`: different datasets and scorers, each with a
boolean and a numeric scorer) and three `weave.Model`s that answer from lookup tables of
different coverage, evaluated with `Evaluation.evaluate`:

- `capitals` × `lookup-v2`, `lookup-v1` and, unless `--no-hostile`, a model named
  `<script>alert(1)</script>` whose outputs and run name carry that text too;
- `conversions` × `lookup-v2`, `lookup-v1`;
- `conversions` × `lookup-v1` once more with a scorer whose summary raises, so that run fails,
  on the conversions and one row more whose question (a list) the model fails on.

Usage: ui_demo.py PROJECT [--no-hostile]. Prints the refs of the models and evaluations, and
the display name of each run.
"""

from __future__ import annotations

import asyncio
import difflib
import sys
from typing import Any

import weave
from _common import check, emit

HOSTILE = "<script>alert(1)</script>"

CAPITALS = [
    {"question": "Capital of France?", "answer": "Paris"},
    {"question": "Capital of Japan?", "answer": "Tokyo"},
    {"question": "Capital of Canada?", "answer": "Ottawa"},
    {"question": "Capital of Australia?", "answer": "Canberra"},
    {"question": "Capital of Brazil?", "answer": "Brasília"},
    {"question": "Capital of Kenya?", "answer": "Nairobi"},
]
CONVERSIONS = [
    {"question": "10 km in miles", "answer": 6.214},
    {"question": "5 kg in pounds", "answer": 11.023},
    {"question": "100 F in C", "answer": 37.778},
    {"question": "3 ft in m", "answer": 0.914},
]
# A row the models fail on: its question is a list, which no lookup table holds as a key.
UNANSWERABLE = {"question": ["10 km", "in miles"], "answer": 6.214}

# What each model knows: lookup-v2 all but one capital and all conversions, lookup-v1 less,
# and approximately.
KNOWS = {
    "lookup-v2": {
        "Capital of France?": "Paris",
        "Capital of Japan?": "Tokyo",
        "Capital of Canada?": "Ottawa",
        "Capital of Australia?": "Canberra",
        "Capital of Brazil?": "Brasilia",
        "Capital of Kenya?": "Nairobi",
        "10 km in miles": "6.214",
        "5 kg in pounds": "11.02",
        "100 F in C": "37.78",
        "3 ft in m": "0.914",
    },
    "lookup-v1": {
        "Capital of France?": "Paris",
        "Capital of Japan?": "Kyoto",
        "Capital of Canada?": "Toronto",
        "Capital of Australia?": "Sydney",
        "Capital of Kenya?": "Nairobi",
        "10 km in miles": "6",
        "5 kg in pounds": "11",
        "100 F in C": "38",
        "3 ft in m": "1",
    },
}


class LookupModel(weave.Model):
    """Answers from a table; `prefix` is put before every answer."""

    table: dict[str, str]
    prefix: str = ""

    @weave.op
    def predict(self, question: str) -> str:
        return self.prefix + self.table.get(question, "I don't know")


@weave.op
def exact_match(answer: Any, output: str) -> dict:
    return {"correct": str(answer).strip().lower() == output.strip().lower()}


@weave.op
def similarity(answer: Any, output: str) -> dict:
    return {"ratio": round(difflib.SequenceMatcher(None, str(answer), output).ratio(), 4)}


@weave.op
def within_tolerance(answer: float, output: str) -> dict:
    try:
        return {"ok": abs(float(output) - answer) <= 0.01 * abs(answer)}
    except ValueError:
        return {"ok": False}


@weave.op
def abs_error(answer: float, output: str) -> float:
    try:
        return round(abs(float(output) - answer), 4)
    except ValueError:
        return 100.0


class BrokenSummary(weave.Scorer):
    """Scores rows, then fails to summarize them: the run it is part of fails."""

    @weave.op
    def score(self, output: str) -> dict:
        return {"length": len(output)}

    def summarize(self, score_rows: list) -> dict:
        raise RuntimeError("the summary of this scorer failed on purpose")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    hostile = "--no-hostile" not in sys.argv
    project = args[0] if args else "acme/proj"
    client = weave.init(project)

    models = {name: LookupModel(name=name, table=table) for name, table in KNOWS.items()}
    if hostile:
        models[HOSTILE] = LookupModel(name=HOSTILE, table=KNOWS["lookup-v2"], prefix=HOSTILE + " ")
    capitals = weave.Evaluation(
        name="capitals", dataset=weave.Dataset(name="capitals", rows=CAPITALS), scorers=[exact_match, similarity]
    )
    conversions = weave.Evaluation(
        name="conversions",
        dataset=weave.Dataset(name="conversions", rows=CONVERSIONS),
        scorers=[within_tolerance, abs_error],
    )
    broken = weave.Evaluation(
        name="conversions-broken",
        dataset=weave.Dataset(name="conversions-broken", rows=[*CONVERSIONS, UNANSWERABLE]),
        scorers=[within_tolerance, BrokenSummary()],
    )

    runs: list[dict[str, Any]] = []

    def run(evaluation: weave.Evaluation, model_name: str, display: str, fails: bool = False) -> None:
        model = models[model_name]
        try:
            summary = asyncio.run(evaluation.evaluate(model, __weave={"display_name": display}))
            check(not fails, f"the run {display} was expected to fail")
        except RuntimeError as e:
            check(fails, f"the run {display} failed: {e}")
            summary = None
        runs.append({"display_name": display, "model": model_name, "summary": summary})

    for name in models:
        run(capitals, name, f"capitals {name}" if name != HOSTILE else f"capitals {HOSTILE} run")
    for name in KNOWS:
        run(conversions, name, f"conversions {name}")
    run(broken, "lookup-v1", "conversions lookup-v1 (broken scorer)", fails=True)
    client.finish()

    emit(
        {
            "ok": True,
            "runs": runs,
            "models": {name: m.ref.uri() for name, m in models.items()},
            "evaluations": {e.name: e.ref.uri() for e in (capitals, conversions, broken)},
        }
    )


if __name__ == "__main__":
    main()
