"""Datasets through the SDK's table calls, in a fresh process.

Usage:
  tables.py publish_large <rows> <row bytes>   publish a dataset that large with `weave.publish`
                                                (chunked by the SDK), read it back, compare
  tables.py add_rows                            publish a small dataset, `Dataset.add_rows`, read back
  tables.py sort <table digest>                 `table_query` with `sort_by` through the SDK's client

Prints the refs and digests the SDK computed and what it read back (large tables: only whether
they were equal, and the digests).
"""

from __future__ import annotations

import sys

import weave
from _common import check, emit
from weave.trace.serialization.digest import compute_row_digest, compute_table_digest


def table_digest_of(dataset_ref_uri: str) -> str:
    """The digest of a published dataset's table, from its stored value."""
    ref = weave.ref(dataset_ref_uri)
    obj = weave.get_client().server.obj_read(
        {"project_id": f"{ref.entity}/{ref.project}", "object_id": ref.name, "digest": ref.digest}
    )
    return obj.obj.val["rows"].rsplit("/", 1)[-1]


def count_calls(client: object, names: list[str]) -> dict[str, int]:
    """Counts the SDK's calls of these server methods (to tell which upload path it took)."""
    counts = dict.fromkeys(names, 0)
    server = client.server  # type: ignore[attr-defined]
    for name in names:
        inner = getattr(server, name)

        def counted(*args: object, _inner=inner, _name=name, **kwargs: object) -> object:
            counts[_name] += 1
            return _inner(*args, **kwargs)

        setattr(server, name, counted)
    return counts


def publish_large(n: int, size: int) -> None:
    client = weave.init("acme/proj")
    counts = count_calls(client, ["table_create", "table_create_from_digests", "table_update"])
    pad = "abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1)
    rows = [{"i": i, "text": pad[i % 36 : i % 36 + size], "score": (i * 7919) % 1000 / 10} for i in range(n)]
    ref = weave.publish(weave.Dataset(name="big", rows=rows))
    client.flush()
    expected_rows = [compute_row_digest(r) for r in rows]
    expected = compute_table_digest(expected_rows)
    digest = table_digest_of(ref.uri())
    back = weave.ref(ref.uri()).get()
    read = [dict(r) for r in back.rows]
    equal = read == rows
    first_diff = next((i for i, (a, b) in enumerate(zip(read, rows)) if a != b), None)
    client.finish()
    emit(
        {
            "ok": True,
            "ref": ref.uri(),
            "table_digest": digest,
            "expected_table_digest": expected,
            "expected_row_digests": expected_rows,
            "read_len": len(read),
            "equal": equal,
            "first_diff": first_diff,
            "calls": counts,
        }
    )


def add_rows() -> None:
    client = weave.init("acme/proj")
    rows = [{"q": "1+1", "a": 2}, {"q": "2+2", "a": 4}]
    more = [{"q": "3+3", "a": 6}, {"q": "4+4", "a": 8}]
    ref = weave.publish(weave.Dataset(name="grows", rows=rows))
    ds = weave.ref(ref.uri()).get()
    grown = ds.add_rows(more)
    client.flush()
    grown_ref = grown.ref.uri() if grown.ref else None
    check(grown_ref is not None, "add_rows published no new version")
    back = [dict(r) for r in weave.ref(grown_ref).get().rows]
    latest = [dict(r) for r in weave.ref("grows:latest").get().rows]
    client.finish()
    emit(
        {
            "ok": True,
            "first": ref.uri(),
            "grown": grown_ref,
            "first_table": table_digest_of(ref.uri()),
            "grown_table": table_digest_of(grown_ref),
            "expected_grown_table": compute_table_digest([compute_row_digest(r) for r in rows + more]),
            "read": back,
            "latest": latest,
        }
    )


def sort(digest: str) -> None:
    client = weave.init("acme/proj")
    res = client.server.table_query(
        {
            "project_id": "acme/proj",
            "digest": digest,
            "sort_by": [{"field": "score", "direction": "desc"}, {"field": "i", "direction": "asc"}],
            "limit": 10,
            "offset": 5,
        }
    )
    client.finish()
    emit({"ok": True, "rows": [{"i": r.val["i"], "score": r.val["score"], "index": r.original_index} for r in res.rows]})


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "publish_large":
        publish_large(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "add_rows":
        add_rows()
    elif mode == "sort":
        sort(sys.argv[2])
    else:
        check(False, f"unknown mode {mode}")
