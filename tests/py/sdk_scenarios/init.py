"""`weave.init(<project>)` with only the environment pointing at the server, then one traced op.

Prints {"ok": true, "entity", "project", "call_id"} when init works, or {"ok": false,
"error_type", "error"} when init raises (the scenario itself still exits 0 then: the test
decides whether failing was expected).
"""

from __future__ import annotations

import sys

import weave
from _common import emit

project = sys.argv[1]
try:
    client = weave.init(project)
except BaseException as e:  # noqa: BLE001 - any failure of init is the observable result
    emit({"ok": False, "error_type": type(e).__name__, "error": str(e)})
    sys.exit(0)


@weave.op
def add_one(x: int) -> int:
    return x + 1


value, call = add_one.call(41)
client.finish()
emit(
    {
        "ok": True,
        "entity": client.entity,
        "project": client.project,
        "value": value,
        "call_id": call.id,
        "op_ref": add_one.ref.uri() if add_one.ref else None,
    }
)
