"""The calls API as the official SDK reads it: `Evaluation.get_evaluate_calls()` and
`get_scores()`, `get_calls(scored_by=...)`, sorting by an input, and `weave.thread(...)`.
The scenario runs in a subprocess of its own (see test_sdk.py)."""

from __future__ import annotations

from conftest import Weft
from test_sdk import run_scenario


def test_sdk_reads_of_the_calls_surface(sdk_env: Weft) -> None:
    r = run_scenario("calls_surface")
    # Each evaluation finds only its own run (it filters by input_refs).
    assert len(r["first_runs"]) == 1 and len(r["second_runs"]) == 1
    assert r["first_runs"] != r["second_runs"]
    # get_scores: one run, its scorer's outputs.
    assert len(r["scores"]) == 1, r["scores"]
    (per_scorer,) = r["scores"].values()
    assert per_scorer == {"exact_match": [{"correct": True}]}, per_scorer
    # scored_by: the predictions the scorer's feedback is on (one per example: 3), by name or ref.
    assert r["scored_ops"] == ["MyModel.predict"] * 3, r["scored_ops"]
    assert r["scored_by_ref"] == 3
    assert r["feedback_counts"] == [1, 1, 1]
    assert r["by_x"] == [11, 10, 3, 2, 1]
    assert r["threaded"] == [10, 11]
    assert r["thread_ids"] == ["conversation-1", "conversation-1"]
