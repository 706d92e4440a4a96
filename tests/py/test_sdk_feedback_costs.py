"""Feedback purges, LLM token prices and threads as the official SDK uses them. The scenario
runs in a subprocess of its own (see test_sdk.py)."""

from __future__ import annotations

from conftest import Weft
from test_sdk import run_scenario


def test_sdk_feedback_purge_costs_and_threads(sdk_env: Weft) -> None:
    r = run_scenario("feedback_costs")
    # The purged note is gone, the other kept.
    assert r["notes"] == ["first note"], r["notes"]
    # `add_cost` answers (price id, model id) pairs.
    assert len(r["added"]) == 1 and r["added"][0][1] == "house-model", r["added"]
    # The call's usage priced with the project's price.
    cost = r["costs"]["house-model"]
    assert cost["prompt_tokens"] == 100 and cost["completion_tokens"] == 20, cost
    assert abs(cost["prompt_tokens_total_cost"] - 1.0) < 1e-9, cost
    assert abs(cost["completion_tokens_total_cost"] - 0.6) < 1e-9, cost
    assert cost["prompt_token_cost_unit"] == "USD" and cost["provider_id"] == "default", cost
    assert r["queried"] == ["house-model"]
    assert r["after_purge"] == 0
    # Each `weave.thread` is a thread of its turns, the latest updated first.
    assert r["threads"] == [
        {"thread_id": "conversation-b", "turn_count": 1},
        {"thread_id": "conversation-a", "turn_count": 2},
    ], r["threads"]
