"""Datasets through the official SDK's table calls against weft: `Dataset.add_rows`
(`table/update`), a dataset too large for one request published with `weave.publish` (the SDK
uploads it in chunks and joins them with `table/create_from_digests`, or, with parallel upload
off, grows it with `table/update`), and `table/query` sorted with `sort_by`.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Weft
from test_sdk import PROJECT, Api, api, parse_ref, run_scenario  # noqa: F401  (api is a fixture)

LARGE_ROWS = 5000
LARGE_ROW_BYTES = 4000


def table_of(api: Api, uri: str) -> str:
    rows_ref = api.obj(uri)["val"]["rows"]
    assert rows_ref.startswith(f"weave:///{PROJECT}/table/"), rows_ref
    return rows_ref.rsplit("/", 1)[-1]


def test_add_rows_makes_a_new_version_with_weaves_digest(sdk_env: Weft, api: Api) -> None:
    r = run_scenario("tables", "add_rows")
    assert r["grown_table"] == r["expected_grown_table"]
    assert r["grown_table"] != r["first_table"]
    expected = [{"q": "1+1", "a": 2}, {"q": "2+2", "a": 4}, {"q": "3+3", "a": 6}, {"q": "4+4", "a": 8}]
    assert r["read"] == expected
    assert r["latest"] == expected
    assert parse_ref(r["grown"])["name"] == "grows"
    rows = api.table_rows(table_of(api, r["grown"]))
    assert [row["val"] for row in rows] == expected
    assert [row["original_index"] for row in rows] == [0, 1, 2, 3]
    # The first version still has its two rows.
    assert len(api.table_rows(table_of(api, r["first"]))) == 2


@pytest.mark.parametrize("parallel", ["true", "false"], ids=["create_from_digests", "table_update"])
def test_a_20_mb_dataset_is_published_and_read_back_equal(
    sdk_env: Weft, api: Api, monkeypatch: pytest.MonkeyPatch, parallel: str
) -> None:
    monkeypatch.setenv("WEAVE_USE_PARALLEL_TABLE_UPLOAD", parallel)
    r = run_scenario("tables", "publish_large", str(LARGE_ROWS), str(LARGE_ROW_BYTES))
    assert r["read_len"] == LARGE_ROWS
    assert r["equal"], f"first differing row: {r['first_diff']}"
    assert r["table_digest"] == r["expected_table_digest"]
    calls = r["calls"]
    if parallel == "true":
        # Chunks, one probe with no rows, then the table from the chunks' row digests.
        assert calls["table_create"] >= 2, calls
        assert calls["table_create_from_digests"] == 2, calls
    else:
        # The first chunk, then one update per further chunk.
        assert calls["table_create"] == 1 and calls["table_update"] >= 1, calls
    digest = table_of(api, r["ref"])
    assert digest == r["expected_table_digest"]
    count = api.ok(api.http.post("/table/query_stats", json={"project_id": PROJECT, "digest": digest}))
    assert count.json() == {"count": LARGE_ROWS}
    rows = api.table_rows(digest)
    assert [row["digest"] for row in rows] == r["expected_row_digests"]
    assert [row["original_index"] for row in rows] == list(range(LARGE_ROWS))

    # Sorted through the SDK's own client: by score descending, then position; windowed.
    s = run_scenario("tables", "sort", digest)
    order = sorted(range(LARGE_ROWS), key=lambda i: (-((i * 7919) % 1000 / 10), i))[5:15]
    assert [row["i"] for row in s["rows"]] == order
    assert [row["index"] for row in s["rows"]] == order


def test_sort_by_with_a_bad_direction_is_refused_by_name(sdk_env: Weft, api: Api) -> None:
    created = api.ok(api.http.post("/table/create", json={"table": {"project_id": PROJECT, "rows": [{"a": 1}]}}))
    body: dict[str, Any] = {
        "project_id": PROJECT,
        "digest": created.json()["digest"],
        "sort_by": [{"field": "a", "direction": "sideways"}],
    }
    resp = api.http.post("/table/query", json=body)
    assert resp.status_code == 400, resp.text
    assert "sideways" in resp.json()["reason"] and "sort_by" in resp.json()["reason"]
