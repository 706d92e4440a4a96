"""Tags and aliases of object versions with the official SDK against weft: `weave.publish` with
tags and aliases, refs and `weave.get` by alias, adding and removing tags, moving and removing
aliases, listing both, and `objs/query` filtered by tag and alias.
"""

from __future__ import annotations

from conftest import Weft
from test_sdk import PROJECT, Api, api, run_scenario  # noqa: F401  (api is a fixture)


def test_publish_tag_alias_and_read_by_alias(sdk_env: Weft, api: Api) -> None:
    r = run_scenario("objects", "labels")
    d0, d1, d2 = r["digests"]
    # Published with tags and aliases; read back by alias, as by `latest`.
    assert r["by_alias"] == {"v": 0}
    assert r["by_alias_digest"] == d0
    assert r["get_canary"] == {"v": 2}
    assert r["latest"] == {"v": 2}
    assert r["tags_v0"] == ["alpha", "reviewed"]
    assert r["aliases_v0"] == ["stable"]
    assert r["aliases_v2"] == ["latest", "canary"]
    # Tags added and removed per version, sorted; bad names refused.
    assert r["tags_after"] == [["reviewed"], ["beta", "under review"], []]
    assert r["bad_tag"] is not None
    assert r["reserved_alias"] is not None
    # Aliases move between versions and are removed by name.
    assert r["moved"] == {"v": 1}
    assert r["aliases_moved"] == [[], ["stable"]]
    assert r["removed_alias"] is not None
    assert r["tags_and_aliases_v2"] == [[], ["latest"]]
    assert r["list_tags"] == ["beta", "reviewed", "under review"]
    assert r["list_aliases"] == ["stable"]
    assert r["by_tag"] == [["cfg", 0, ["reviewed"], []], ["other", 0, ["reviewed"], ["latest"]]]
    assert r["by_alias_query"] == [["cfg", 1]]
    # What the SDK wrote is what the API answers.
    tags = api.ok(api.http.get("/tags", params={"project_id": PROJECT})).json()
    assert tags == {"tags": ["beta", "reviewed", "under review"]}
    read = api.ok(
        api.http.post(
            "/obj/read",
            json={"project_id": PROJECT, "object_id": "cfg", "digest": "stable", "include_tags_and_aliases": True},
        )
    ).json()["obj"]
    assert (read["digest"], read["tags"], read["aliases"]) == (d1, ["beta", "under review"], ["stable"])
    assert d2 != d1
