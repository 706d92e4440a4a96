"""Tags and aliases of object versions through the SDK, in a fresh process.

Usage:
  objects.py labels     publish versions with tags and aliases, read them back by alias, move,
                        add and remove tags and aliases, list them, query objects by tag

Prints what the SDK read back at each step.
"""

from __future__ import annotations

import sys
from typing import Any

import weave
from _common import emit


def error_of(f: Any) -> str | None:
    """The class name of what `f()` raises, or None."""
    try:
        f()
    except Exception as e:  # noqa: BLE001  (any failure is the answer)
        return type(e).__name__
    return None


def labels() -> None:
    client = weave.init("acme/proj")
    ref0 = weave.publish({"v": 0}, name="cfg", tags=["reviewed", "alpha"], aliases=["stable"])
    ref1 = weave.publish({"v": 1}, name="cfg")
    ref2 = weave.publish({"v": 2}, name="cfg", aliases=["canary"])
    out: dict[str, Any] = {"ok": True, "digests": [ref0.digest, ref1.digest, ref2.digest]}

    stable = weave.ref("cfg:stable").get()
    out["by_alias"] = dict(stable)
    out["by_alias_digest"] = stable.ref.digest if getattr(stable, "ref", None) else None
    out["get_canary"] = dict(weave.get("cfg:canary"))
    out["latest"] = dict(weave.ref("cfg:latest").get())
    out["tags_v0"] = weave.get_tags(ref0)
    out["aliases_v0"] = weave.get_aliases(ref0)
    out["aliases_v2"] = weave.get_aliases(ref2)

    weave.add_tags(ref1, ["under review", "beta"])
    weave.remove_tags(ref0, ["alpha", "never-added"])
    out["tags_after"] = [weave.get_tags(ref0), weave.get_tags(ref1), weave.get_tags(ref2)]
    out["bad_tag"] = error_of(lambda: weave.add_tags(ref0, ["bad.tag"]))
    out["reserved_alias"] = error_of(lambda: weave.set_aliases(ref0, "latest"))

    weave.set_aliases(ref1, "stable")
    out["moved"] = dict(weave.ref("cfg:stable").get())
    out["aliases_moved"] = [weave.get_aliases(ref0), weave.get_aliases(ref1)]
    weave.remove_aliases(ref2, "canary")
    out["removed_alias"] = error_of(lambda: weave.ref("cfg:canary").get())
    out["tags_and_aliases_v2"] = list(weave.get_tags_and_aliases(ref2))

    weave.publish({"other": True}, name="other", tags=["reviewed"])
    out["list_tags"] = weave.list_tags()
    out["list_aliases"] = weave.list_aliases()
    res = client.server.objs_query(
        {"project_id": "acme/proj", "filter": {"tags": ["reviewed"]}, "include_tags_and_aliases": True}
    )
    out["by_tag"] = [(o.object_id, o.version_index, o.tags, o.aliases) for o in res.objs]
    res = client.server.objs_query({"project_id": "acme/proj", "filter": {"aliases": ["stable"]}})
    out["by_alias_query"] = [(o.object_id, o.version_index) for o in res.objs]
    client.finish()
    emit(out)


if __name__ == "__main__":
    {"labels": labels}[sys.argv[1]]()
