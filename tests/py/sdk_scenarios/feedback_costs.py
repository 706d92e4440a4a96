"""Feedback purges, LLM token prices and threads through the SDK: a note added and purged,
a price added with `client.add_cost` and shown on a call's `summary.weave.costs` with
`include_costs`, prices queried and purged, and the threads of `weave.thread(...)` listed.
"""

from __future__ import annotations

import datetime

import weave
from _common import check, emit

client = weave.init("acme/fc")


@weave.op
def chat(q: str) -> dict:
    return {"answer": q.upper()}


@weave.op
def llm(q: str) -> dict:
    # What an integration's op returns: the usage the client folds into `summary.usage`.
    return {"model": "house-model", "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


# A price effective before the calls.
added = client.add_cost(
    llm_id="house-model",
    prompt_token_cost=0.01,
    completion_token_cost=0.03,
    effective_date=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
)

_, call = chat.call("hello")
call.feedback.add_note("first note")
note_id = call.feedback.add_note("to purge")
llm("x")
with weave.thread("conversation-a"):
    chat("one")
    chat("two")
with weave.thread("conversation-b"):
    chat("three")
client.finish()

# Feedback: the purged note is gone.
call.feedback.purge(note_id)
notes = [f.payload.get("note") for f in client.get_call(call.id).feedback]

# Costs: on the llm call when asked for.
priced = [c for c in client.get_calls(include_costs=True) if c.op_name.split("/")[-1].startswith("llm:")]
check(len(priced) == 1, f"llm calls: {len(priced)}")
costs = (priced[0].summary or {}).get("weave", {}).get("costs", {})
queried = client.query_costs(llm_ids=["house-model"])
cost_ids = [c.id for c in queried]
client.purge_costs(cost_ids)
after_purge = client.query_costs(llm_ids=["house-model"])

# Threads, as the server lists them.
threads = list(client.server.threads_query_stream({"project_id": client.project_id}))
emit(
    {
        "ok": True,
        "added": [list(i) for i in added.ids],
        "notes": notes,
        "costs": costs,
        "queried": [c.llm_id for c in queried],
        "after_purge": len(after_purge),
        "threads": [{"thread_id": t.thread_id, "turn_count": t.turn_count} for t in threads],
    }
)
