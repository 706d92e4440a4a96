"""The official Weave SDK (`weave==0.54.0`) against weft.

Each scenario that calls `weave.init` runs in a subprocess of its own (`sdk_scenarios/`), so no
global client state leaks between tests, and prints one `SCENARIO_RESULT <json>` line. The tests
then check what the server stored over plain HTTP, with the same key the SDK used.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from conftest import Weft, create_key

SCENARIOS = pathlib.Path(__file__).resolve().parent / "sdk_scenarios"
MARKER = "SCENARIO_RESULT "
PROJECT = "acme/proj"
SCENARIO_TIMEOUT = 180


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def run_scenario(name: str, *args: str) -> dict[str, Any]:
    """Runs `sdk_scenarios/<name>.py ARGS` with the current environment; returns its result."""
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=SCENARIOS,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    detail = f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, f"scenario {name} exited with {proc.returncode}\n{detail}"
    assert lines, f"scenario {name} printed no result\n{detail}"
    result = json.loads(lines[-1][len(MARKER) :])
    assert result.get("ok") is not None, result
    return result


def parse_ref(uri: str) -> dict[str, str]:
    """Splits `weave:///entity/project/kind/name:digest[/extra...]`."""
    assert uri.startswith("weave:///"), uri
    entity, project, kind, name_digest, *extra = uri[len("weave:///") :].split("/")
    name, _, digest = name_digest.partition(":")
    return {
        "project_id": f"{entity}/{project}",
        "kind": kind,
        "name": name,
        "digest": digest,
        "extra": "/".join(extra),
    }


def op_short(op_name: str) -> str:
    """`weave:///e/p/op/Name:digest` → `Name` (plain names pass through)."""
    if op_name.startswith("weave:///"):
        return parse_ref(op_name)["name"]
    return op_name


def jsonl(resp: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


class Api:
    """Plain HTTP access to weft with Basic auth `("api", key)`."""

    def __init__(self, weft: Weft, key: str | None = None) -> None:
        self.http = httpx.Client(base_url=weft.base, auth=("api", key or weft.key), timeout=30)

    def close(self) -> None:
        self.http.close()

    def ok(self, resp: httpx.Response) -> httpx.Response:
        assert resp.status_code == 200, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
        return resp

    def runs(self, project: str = PROJECT, **params: Any) -> list[dict[str, Any]]:
        return jsonl(self.ok(self.http.get(f"/v2/{project}/evaluation_runs", params=params)))

    def calls(self, project: str = PROJECT) -> list[dict[str, Any]]:
        resp = self.http.post("/calls/stream_query", json={"project_id": project})
        return jsonl(self.ok(resp))

    def obj(self, uri: str) -> dict[str, Any]:
        ref = parse_ref(uri)
        body = {"project_id": ref["project_id"], "object_id": ref["name"], "digest": ref["digest"]}
        return self.ok(self.http.post("/obj/read", json=body)).json()["obj"]

    def objs(self, project: str = PROJECT) -> list[dict[str, Any]]:
        return self.ok(self.http.post("/objs/query", json={"project_id": project})).json()["objs"]

    def table_rows(self, digest: str, project: str = PROJECT) -> list[dict[str, Any]]:
        resp = self.http.post("/table/query", json={"project_id": project, "digest": digest})
        return self.ok(resp).json()["rows"]

    def feedback(self, project: str = PROJECT) -> list[dict[str, Any]]:
        resp = self.http.post("/feedback/query", json={"project_id": project})
        return self.ok(resp).json()["result"]


@pytest.fixture
def api(sdk_env: Weft):
    client = Api(sdk_env)
    yield client
    client.close()


def by_op(calls: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in calls if op_short(c["op_name"]) == name]


# ---------------------------------------------------------------------------------------------
# 1. weave.init
# ---------------------------------------------------------------------------------------------


def test_init_with_env_only_and_trace_an_op(sdk_env: Weft, api: Api) -> None:
    res = run_scenario("init", PROJECT)
    assert res["ok"], res
    assert (res["entity"], res["project"]) == ("acme", "proj")
    assert res["value"] == 42

    calls = api.calls()
    assert [c["id"] for c in calls] == [res["call_id"]]
    call = calls[0]
    assert call["op_name"] == res["op_ref"]
    assert op_short(call["op_name"]) == "add_one"
    assert call["parent_id"] is None
    assert call["inputs"] == {"x": 41}
    assert call["output"] == 42
    assert call["ended_at"] is not None and call["exception"] is None
    # The op itself was saved as an object version the ref names.
    op = api.obj(res["op_ref"])
    assert op["object_id"] == "add_one" and op["digest"] == parse_ref(res["op_ref"])["digest"]


def test_init_without_an_entity_uses_the_keys_default_entity(
    sdk_env: Weft, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key scoped to entities: its first one.
    res = run_scenario("init", "proj")
    assert res["ok"], res
    assert (res["entity"], res["project"]) == ("acme", "proj")
    assert [c["id"] for c in api.calls("acme/proj")] == [res["call_id"]]

    # An admin key: the server's default entity (`--default-entity`, "admin" unless set).
    admin_key = create_key(sdk_env.data_dir, "--admin")
    monkeypatch.setenv("WANDB_API_KEY", admin_key)
    res = run_scenario("init", "solo")
    assert res["ok"], res
    assert (res["entity"], res["project"]) == ("admin", "solo")
    admin = Api(sdk_env, admin_key)
    try:
        assert [c["id"] for c in admin.calls("admin/solo")] == [res["call_id"]]
    finally:
        admin.close()


def test_init_on_another_entity_is_refused_and_writes_nothing(sdk_env: Weft, api: Api) -> None:
    res = run_scenario("init", "other/proj")
    # weft refuses the GraphQL project lookup with 403, and weave.init raises.
    assert res["ok"] is False, res
    assert "403" in res["error"], res

    # The key scoped to `acme` cannot read or write `other` at all.
    assert api.http.get("/v2/other/proj/evaluation_runs").status_code == 403
    assert api.http.post("/calls/stream_query", json={"project_id": "other/proj"}).status_code == 403
    from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer
    from weave.vendor.weave_server_sdk import PermissionDeniedError

    srv = RemoteHTTPTraceServer(sdk_env.base)
    srv.set_auth(("api", sdk_env.key))
    with pytest.raises(PermissionDeniedError):
        srv.evaluation_run_create(
            {
                "project_id": "other/proj",
                "evaluation": "weave:///other/proj/object/Evaluation:abc",
                "model": "weave:///other/proj/object/Model:abc",
            }
        )

    # An admin key sees that nothing at all landed under `other/proj`.
    admin = Api(sdk_env, create_key(sdk_env.data_dir, "--admin"))
    try:
        assert admin.runs("other/proj") == []
        assert admin.calls("other/proj") == []
        assert admin.objs("other/proj") == []
    finally:
        admin.close()


# ---------------------------------------------------------------------------------------------
# 2. weave.Evaluation(...).evaluate(model)
# ---------------------------------------------------------------------------------------------


def test_evaluation_is_listed_traced_and_stored(sdk_env: Weft, api: Api, subtests) -> None:
    res = run_scenario("evaluate")
    eval_ref, model_ref, dataset_ref = res["evaluation_ref"], res["model_ref"], res["dataset_ref"]
    result, rows = res["result"], res["rows"]
    # The scorer said True for the first row and False for the second (wrong expected answer).
    assert result["exact_match"]["correct"] == {"true_count": 1, "true_fraction": 0.5}

    calls = api.calls()
    roots = [c for c in calls if c["parent_id"] is None]

    with subtests.test("evaluation run listed"):
        runs = api.runs()
        assert len(runs) == 1, runs
        run = runs[0]
        assert len(roots) == 1
        assert run["evaluation_run_id"] == roots[0]["id"]
        assert run["evaluation"] == eval_ref
        assert run["model"] == model_ref
        assert run["status"] == "completed"
        assert run["finished_at"] is not None and run["started_at"] <= run["finished_at"]
        assert run["source_evaluation_run_id"] is None
        for key, value in result.items():
            assert run["summary"][key] == value, (key, run["summary"])
        assert run["summary"]["weave"]["status"] == "success"

    with subtests.test("evaluation run read"):
        one = api.ok(api.http.get(f"/v2/{PROJECT}/evaluation_runs/{roots[0]['id']}")).json()
        assert one == api.runs()[0]

    with subtests.test("list filters"):
        other_eval = eval_ref.rsplit(":", 1)[0] + ":" + "A" * 43
        other_model = model_ref.rsplit(":", 1)[0] + ":" + "A" * 43
        run_id = roots[0]["id"]
        assert [r["evaluation_run_id"] for r in api.runs(evaluations=eval_ref)] == [run_id]
        assert [r["evaluation_run_id"] for r in api.runs(models=model_ref)] == [run_id]
        assert [r["evaluation_run_id"] for r in api.runs(evaluations=eval_ref, models=model_ref)] == [run_id]
        assert [r["evaluation_run_id"] for r in api.runs(evaluation_run_ids=run_id)] == [run_id]
        assert api.runs(evaluations=other_eval) == []
        assert api.runs(models=other_model) == []
        assert api.runs(evaluations=eval_ref, models=other_model) == []
        assert api.runs(evaluations=model_ref) == []

    with subtests.test("calls landed with their parent links"):
        assert len(roots) == 1, [op_short(c["op_name"]) for c in roots]
        root = roots[0]
        assert op_short(root["op_name"]) == "Evaluation.evaluate"
        assert root["inputs"] == {"self": eval_ref, "model": model_ref}
        assert root["output"] == result
        assert all(c["trace_id"] == root["trace_id"] for c in calls)
        assert all(c["ended_at"] is not None and c["exception"] is None for c in calls)

        pas = by_op(calls, "Evaluation.predict_and_score")
        predicts = by_op(calls, "MyModel.predict")
        scores = by_op(calls, "exact_match")
        summarize = by_op(calls, "Evaluation.summarize")
        assert len(calls) == 1 + 2 + 2 + 2 + 1, sorted(op_short(c["op_name"]) for c in calls)
        assert len(pas) == 2 and len(predicts) == 2 and len(scores) == 2 and len(summarize) == 1
        assert all(c["parent_id"] == root["id"] for c in pas + summarize)
        pas_ids = {c["id"] for c in pas}
        assert {c["parent_id"] for c in predicts} == pas_ids
        assert {c["parent_id"] for c in scores} == pas_ids
        assert summarize[0]["output"] == result
        assert summarize[0]["inputs"]["self"] == eval_ref

        # Each predict_and_score holds one dataset row (as a row ref), its prediction and score.
        row_prefix = dataset_ref + "/attr/rows/id/"
        by_parent = {c["parent_id"]: c for c in predicts}
        score_by_parent = {c["parent_id"]: c for c in scores}
        outputs = {}
        for p in pas:
            assert p["inputs"]["self"] == eval_ref and p["inputs"]["model"] == model_ref
            assert p["inputs"]["example"].startswith(row_prefix), p["inputs"]
            predict, score = by_parent[p["id"]], score_by_parent[p["id"]]
            assert predict["inputs"]["self"] == model_ref
            assert p["output"]["output"] == predict["output"]
            assert p["output"]["scores"] == {"exact_match": score["output"]}
            outputs[predict["output"]] = score["output"]
        assert outputs == {"2": {"correct": True}, "4": {"correct": False}}

    with subtests.test("objects readable by their ref digests"):
        evaluation = api.obj(eval_ref)
        assert evaluation["digest"] == parse_ref(eval_ref)["digest"]
        assert evaluation["val"]["_class_name"] == "Evaluation"
        assert evaluation["val"]["dataset"] == dataset_ref
        assert evaluation["val"]["scorers"] == [res["scorer_ref"]]

        model = api.obj(model_ref)
        assert model["digest"] == parse_ref(model_ref)["digest"]
        assert model["val"]["_class_name"] == "MyModel"
        assert model["val"]["offset"] == 0

        dataset = api.obj(dataset_ref)
        assert dataset["digest"] == parse_ref(dataset_ref)["digest"]
        assert dataset["val"]["_class_name"] == "Dataset"
        table_ref = parse_ref(dataset["val"]["rows"])
        assert table_ref["kind"] == "table" and table_ref["project_id"] == PROJECT

        scorer = api.obj(res["scorer_ref"])
        assert scorer["object_id"] == "exact_match"
        assert scorer["digest"] == parse_ref(res["scorer_ref"])["digest"]

    with subtests.test("dataset table rows"):
        table_digest = parse_ref(api.obj(dataset_ref)["val"]["rows"])["name"]
        table_rows = api.table_rows(table_digest)
        assert [r["val"] for r in table_rows] == rows
        # The rows the evaluation fed the model are exactly these rows, by digest.
        examples = {p["inputs"]["example"] for p in by_op(calls, "Evaluation.predict_and_score")}
        assert examples == {dataset_ref + "/attr/rows/id/" + r["digest"] for r in table_rows}

    with subtests.test("scorer feedback on the predict calls"):
        feedback = api.feedback()
        predicts = {c["id"]: c for c in by_op(calls, "MyModel.predict")}
        scores = {c["id"]: c for c in by_op(calls, "exact_match")}
        assert len(feedback) == 2, feedback
        for f in feedback:
            assert f["feedback_type"] == "wandb.runnable.exact_match"
            assert f["runnable_ref"] == res["scorer_ref"]
            predict_id = f["weave_ref"].rsplit("/", 1)[1]
            score_id = f["call_ref"].rsplit("/", 1)[1]
            assert predict_id in predicts and score_id in scores
            assert scores[score_id]["parent_id"] == predicts[predict_id]["parent_id"]
            assert f["payload"] == {"output": scores[score_id]["output"]}


def test_evaluation_predictions_and_scores_are_listed(sdk_env: Weft, api: Api) -> None:
    """`Evaluation.evaluate` logs one `predict_and_score` call per example: each is a prediction
    of the run, and each number or boolean of its scorers' results a score."""
    res = run_scenario("evaluate")
    run_id = api.runs()[0]["evaluation_run_id"]
    pas = {c["id"]: c for c in by_op(api.calls(), "Evaluation.predict_and_score")}
    url = f"/v2/{PROJECT}"

    preds = jsonl(api.ok(api.http.get(f"{url}/predictions", params={"evaluation_run_id": run_id})))
    assert len(preds) == len(res["rows"]) == 2, preds
    assert {p["prediction_id"] for p in preds} == set(pas)
    row_prefix = res["dataset_ref"] + "/attr/rows/id/"
    for p in preds:
        call = pas[p["prediction_id"]]
        assert p["model"] == res["model_ref"]
        assert p["evaluation_run_id"] == run_id
        assert p["inputs"] == call["inputs"]["example"] and p["inputs"].startswith(row_prefix)
        assert p["output"] == call["output"]["output"]
        assert api.ok(api.http.get(f"{url}/predictions/{p['prediction_id']}")).json() == p
    assert sorted(p["output"] for p in preds) == ["2", "4"]

    scores = jsonl(api.ok(api.http.get(f"{url}/scores", params={"evaluation_run_id": run_id})))
    by_pred = {s["score_id"].rsplit(":", 1)[0]: s for s in scores}
    assert len(scores) == 2 and set(by_pred) == set(pas), scores
    for pred_id, s in by_pred.items():
        correct = pas[pred_id]["output"]["scores"]["exact_match"]["correct"]
        assert s["scorer"] == "exact_match.correct"
        assert s["value"] == (1.0 if correct else 0.0)
        assert s["evaluation_run_id"] == run_id
        assert api.ok(api.http.get(f"{url}/scores/{s['score_id']}")).json() == s
    assert sorted(s["value"] for s in scores) == [0.0, 1.0]


def test_evaluation_logger_predictions_and_scores_are_listed(sdk_env: Weft, api: Api) -> None:
    res = run_scenario("eval_logger")
    run_id = res["evaluate_call_id"]
    url = f"/v2/{PROJECT}"
    preds = jsonl(api.ok(api.http.get(f"{url}/predictions", params={"evaluation_run_id": run_id})))
    got = [(p["inputs"], p["output"], p["model"]) for p in preds]
    assert got == [(p["inputs"], p["output"], res["model_ref"]) for p in res["predictions"]]
    scores = jsonl(api.ok(api.http.get(f"{url}/scores", params={"evaluation_run_id": run_id})))
    assert [(s["scorer"], s["value"]) for s in scores] == [("correct", 1.0), ("correct", 0.0)]
    assert [s["score_id"] for s in scores] == [p["prediction_id"] + ":correct" for p in preds]


# ---------------------------------------------------------------------------------------------
# 3. weave.EvaluationLogger
# ---------------------------------------------------------------------------------------------


def test_evaluation_logger_run_is_listed_and_traced(sdk_env: Weft, api: Api, subtests) -> None:
    res = run_scenario("eval_logger")
    run_id = res["evaluate_call_id"]
    calls = api.calls()

    with subtests.test("listed as a completed evaluation run"):
        runs = api.runs()
        assert [r["evaluation_run_id"] for r in runs] == [run_id]
        run = runs[0]
        assert run["status"] == "completed"
        assert run["evaluation"] == res["evaluation_ref"]
        assert run["model"] == res["model_ref"]
        assert run["finished_at"] is not None
        assert run["summary"]["correct"] == {"true_count": 1, "true_fraction": 0.5}
        assert run["summary"]["output"] == {"note": "done"}
        assert run["summary"]["weave"]["display_name"] == "logged-eval"
        assert [r["evaluation_run_id"] for r in api.runs(models=res["model_ref"])] == [run_id]
        assert [r["evaluation_run_id"] for r in api.runs(evaluations=res["evaluation_ref"])] == [run_id]

    with subtests.test("its calls exist"):
        root = [c for c in calls if c["id"] == run_id]
        assert len(root) == 1 and root[0]["parent_id"] is None
        assert op_short(root[0]["op_name"]) == "Evaluation.evaluate"
        assert root[0]["display_name"] == "logged-eval"
        assert root[0]["inputs"] == {"self": res["evaluation_ref"], "model": res["model_ref"]}
        assert root[0]["output"] == {"correct": {"true_count": 1, "true_fraction": 0.5}, "output": {"note": "done"}}
        pas = by_op(calls, "Evaluation.predict_and_score")
        predicts = by_op(calls, "Model.predict")
        scores = by_op(calls, "correct")
        summarize = by_op(calls, "Evaluation.summarize")
        assert len(calls) == 8, sorted(op_short(c["op_name"]) for c in calls)
        assert len(pas) == 2 and len(predicts) == 2 and len(scores) == 2 and len(summarize) == 1
        assert all(c["parent_id"] == run_id for c in pas + summarize)
        pas_ids = {c["id"] for c in pas}
        assert {c["parent_id"] for c in predicts} == pas_ids
        assert {c["parent_id"] for c in scores} == pas_ids
        assert all(c["ended_at"] is not None for c in calls)
        logged = sorted(
            (p["output"]["output"], p["output"]["scores"]["correct"], p["inputs"]["example"]) for p in pas
        )
        expected = sorted((p["output"], p["correct"], p["inputs"]) for p in res["predictions"])
        assert logged == expected
        assert summarize[0]["output"] == root[0]["output"]


# ---------------------------------------------------------------------------------------------
# 4. Reads through the SDK
# ---------------------------------------------------------------------------------------------


def test_sdk_reads_after_an_evaluation(sdk_env: Weft, api: Api, subtests) -> None:
    written = run_scenario("evaluate")
    dataset_ref = written["dataset_ref"]
    table_digest = parse_ref(api.obj(dataset_ref)["val"]["rows"])["name"]
    table_rows = api.table_rows(table_digest)
    row_ref = f"{dataset_ref}/attr/rows/id/{table_rows[0]['digest']}"

    res = run_scenario("reads", written["evaluation_ref"], dataset_ref, row_ref)
    server_calls = api.calls()

    with subtests.test("get_calls returns every call"):
        got = {c["id"]: c for c in res["calls"]}
        assert len(got) == len(res["calls"]) == len(server_calls) == 8
        for c in server_calls:
            assert got[c["id"]]["op_name"] == c["op_name"]
            assert got[c["id"]]["parent_id"] == c["parent_id"]
            assert got[c["id"]]["trace_id"] == c["trace_id"]

    with subtests.test("get_call returns the root"):
        root = [c for c in server_calls if c["parent_id"] is None][0]
        one = res["get_call"]
        assert one["id"] == root["id"] and one["op_name"] == root["op_name"]
        assert one["parent_id"] is None and one["trace_id"] == root["trace_id"]
        assert one["output"] == written["result"]
        assert one["ended_at"] is not None

    with subtests.test("ref.get() returns the dataset rows"):
        assert res["dataset_iterated"] == written["rows"]
        assert res["dataset_rows"] == written["rows"]

    with subtests.test("ref.get() returns the evaluation"):
        assert res["evaluation_trials"] == 1
        assert res["evaluation_dataset_ref"] == dataset_ref

    with subtests.test("refs_read_batch resolves an object ref and a row ref"):
        obj_val, row_val = res["refs_read_batch"]
        assert obj_val == api.obj(dataset_ref)["val"]
        assert obj_val["_class_name"] == "Dataset"
        assert row_val == written["rows"][0] == table_rows[0]["val"]


# ---------------------------------------------------------------------------------------------
# 5. The v2 evaluation-run, prediction and score routes through the SDK's own client
# ---------------------------------------------------------------------------------------------


def _v2_server(weft: Weft):
    from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer

    srv = RemoteHTTPTraceServer(weft.base)
    srv.set_auth(("api", weft.key))
    return srv


def _ref(kind: str, name: str, seed: str) -> str:
    return f"weave:///{PROJECT}/{kind}/{name}:{(seed * 43)[:43]}"


def test_v2_client_round_trips_runs_predictions_and_scores(sdk_env: Weft, subtests) -> None:
    from weave.vendor.weave_server_sdk import NotFoundError

    srv = _v2_server(sdk_env)
    p = {"project_id": PROJECT}
    e1, e2 = _ref("object", "Evaluation", "e1"), _ref("object", "Evaluation", "e2")
    m1, m2 = _ref("object", "MyModel", "m1"), _ref("object", "MyModel", "m2")
    s1, s2 = _ref("object", "Correct", "s1"), _ref("op", "fluency", "s2")
    before = datetime.now(timezone.utc) - timedelta(seconds=5)

    # --- evaluation runs -----------------------------------------------------------------
    run1 = srv.evaluation_run_create({**p, "evaluation": e1, "model": m1}).evaluation_run_id
    run2 = srv.evaluation_run_create(
        {**p, "evaluation": e2, "model": m2, "source_evaluation_run_id": run1}
    ).evaluation_run_id
    assert run1 and run2 and run1 != run2

    with subtests.test("evaluation_run_read"):
        r1 = srv.evaluation_run_read({**p, "evaluation_run_id": run1})
        assert (r1.evaluation_run_id, r1.evaluation, r1.model) == (run1, e1, m1)
        assert r1.status == "running"
        assert r1.finished_at is None
        assert r1.source_evaluation_run_id is None
        assert r1.started_at is not None and r1.started_at.tzinfo is not None
        assert before <= r1.started_at <= datetime.now(timezone.utc) + timedelta(seconds=5)
        assert r1.summary is not None and r1.summary["weave"]["status"] == "running"
        r2 = srv.evaluation_run_read({**p, "evaluation_run_id": run2})
        assert (r2.evaluation_run_id, r2.evaluation, r2.model) == (run2, e2, m2)
        assert r2.source_evaluation_run_id == run1
        assert r2.status == "running"

    def run_ids(**filt: Any) -> list[str]:
        window = {k: filt.pop(k) for k in ("limit", "offset") if k in filt}
        return [r.evaluation_run_id for r in srv.evaluation_run_list({**p, "filter": filt, **window})]

    with subtests.test("evaluation_run_list"):
        listed = list(srv.evaluation_run_list(p))
        assert [r.evaluation_run_id for r in listed] == [run1, run2]
        assert listed[0].model_dump() == srv.evaluation_run_read({**p, "evaluation_run_id": run1}).model_dump()
        assert listed[1].model_dump() == srv.evaluation_run_read({**p, "evaluation_run_id": run2}).model_dump()
        assert run_ids(evaluations=[e1]) == [run1]
        assert run_ids(evaluations=[e1, e2]) == [run1, run2]
        assert run_ids(models=[m2]) == [run2]
        assert run_ids(evaluation_run_ids=[run2]) == [run2]
        assert run_ids(evaluations=[e1], models=[m2]) == []
        assert run_ids(evaluations=[_ref("object", "Evaluation", "zz")]) == []
        assert run_ids(limit=1) == [run1]
        assert run_ids(limit=1, offset=1) == [run2]
        assert run_ids(offset=2) == []

    # --- predictions ---------------------------------------------------------------------
    inputs1 = {"q": "1+1", "nested": {"list": [1, 2.5, None, True], "s": "ü"}}
    output1 = {"answer": "2", "confidence": 0.75}
    pred1 = srv.prediction_create(
        {**p, "model": m1, "inputs": inputs1, "output": output1, "evaluation_run_id": run1}
    ).prediction_id
    pred2 = srv.prediction_create(
        {**p, "model": m1, "inputs": {"q": "2+2"}, "output": "5", "evaluation_run_id": run1}
    ).prediction_id
    assert pred1 and pred2 and pred1 != pred2

    with subtests.test("prediction_read"):
        r = srv.prediction_read({**p, "prediction_id": pred1})
        assert (r.prediction_id, r.model, r.inputs, r.output, r.evaluation_run_id) == (
            pred1,
            m1,
            inputs1,
            output1,
            run1,
        )
        r = srv.prediction_read({**p, "prediction_id": pred2})
        assert (r.prediction_id, r.model, r.inputs, r.output, r.evaluation_run_id) == (
            pred2,
            m1,
            {"q": "2+2"},
            "5",
            run1,
        )

    with subtests.test("prediction_list"):
        listed = list(srv.prediction_list({**p, "evaluation_run_id": run1}))
        assert [x.prediction_id for x in listed] == [pred1, pred2]
        for x in listed:
            assert x.model_dump() == srv.prediction_read({**p, "prediction_id": x.prediction_id}).model_dump()
        page = srv.prediction_list({**p, "evaluation_run_id": run1, "limit": 1, "offset": 1})
        assert [x.prediction_id for x in page] == [pred2]
        assert list(srv.prediction_list({**p, "evaluation_run_id": run2})) == []

    # --- scores --------------------------------------------------------------------------
    score1 = srv.score_create(
        {**p, "prediction_id": pred1, "scorer": s1, "value": 1.0, "evaluation_run_id": run1}
    ).score_id
    # A score's value is the scorer's raw output (the generated client: `object`), any JSON.
    value2 = {"correct": True, "f1": 0.25}
    score2 = srv.score_create(
        {**p, "prediction_id": pred1, "scorer": s2, "value": value2, "evaluation_run_id": run1}
    ).score_id
    assert score1 and score2 and score1 != score2

    with subtests.test("score_read"):
        r = srv.score_read({**p, "score_id": score1})
        assert (r.score_id, r.scorer, r.value, r.evaluation_run_id) == (score1, s1, 1.0, run1)
        r = srv.score_read({**p, "score_id": score2})
        assert (r.score_id, r.scorer, r.value, r.evaluation_run_id) == (score2, s2, value2, run1)

    with subtests.test("score_list"):
        listed = list(srv.score_list({**p, "evaluation_run_id": run1}))
        assert [x.score_id for x in listed] == [score1, score2]
        for x in listed:
            assert x.model_dump() == srv.score_read({**p, "score_id": x.score_id}).model_dump()
        assert [x.score_id for x in srv.score_list({**p, "evaluation_run_id": run1, "limit": 1})] == [score1]
        assert list(srv.score_list({**p, "evaluation_run_id": run2})) == []

    # --- finish --------------------------------------------------------------------------
    with subtests.test("prediction_finish"):
        assert srv.prediction_finish({**p, "prediction_id": pred1}).success is True
        # Finishing does not change what the prediction reads as.
        r = srv.prediction_read({**p, "prediction_id": pred1})
        assert (r.inputs, r.output, r.model) == (inputs1, output1, m1)

    with subtests.test("evaluation_run_finish"):
        summary = {"correct": {"mean": 1.0}, "note": "finished", "counts": [1, 2]}
        assert srv.evaluation_run_finish({**p, "evaluation_run_id": run1, "summary": summary}).success is True
        r1 = srv.evaluation_run_read({**p, "evaluation_run_id": run1})
        assert r1.status == "completed"
        assert r1.finished_at is not None and r1.started_at is not None
        assert r1.started_at <= r1.finished_at
        assert r1.summary is not None
        for key, value in summary.items():
            assert r1.summary[key] == value, (key, r1.summary)
        assert r1.summary["weave"]["status"] == "success"
        assert [x.status for x in srv.evaluation_run_list(p)] == ["completed", "running"]

    # --- deletes -------------------------------------------------------------------------
    with subtests.test("score_delete"):
        assert srv.score_delete({**p, "score_ids": [score2, "no-such-score"]}).num_deleted == 1
        with pytest.raises(NotFoundError):
            srv.score_read({**p, "score_id": score2})
        assert [x.score_id for x in srv.score_list({**p, "evaluation_run_id": run1})] == [score1]
        assert srv.score_delete({**p, "score_ids": [score2]}).num_deleted == 0

    with subtests.test("prediction_delete"):
        # The prediction and the predict_and_score call holding it (it has no scores).
        assert srv.prediction_delete({**p, "prediction_ids": [pred2]}).num_deleted == 2
        with pytest.raises(NotFoundError):
            srv.prediction_read({**p, "prediction_id": pred2})
        assert [x.prediction_id for x in srv.prediction_list({**p, "evaluation_run_id": run1})] == [pred1]
        assert srv.prediction_delete({**p, "prediction_ids": [pred2]}).num_deleted == 0

    with subtests.test("evaluation_run_delete"):
        # run1 with its subtree: predict_and_score, its prediction, score1, and the summarize call.
        assert srv.evaluation_run_delete({**p, "evaluation_run_ids": [run1]}).num_deleted == 5
        with pytest.raises(NotFoundError):
            srv.evaluation_run_read({**p, "evaluation_run_id": run1})
        with pytest.raises(NotFoundError):
            srv.prediction_read({**p, "prediction_id": pred1})
        with pytest.raises(NotFoundError):
            srv.score_read({**p, "score_id": score1})
        assert [r.evaluation_run_id for r in srv.evaluation_run_list(p)] == [run2]
        assert srv.evaluation_run_delete({**p, "evaluation_run_ids": [run1, "no-such-run"]}).num_deleted == 0
        assert srv.evaluation_run_delete({**p, "evaluation_run_ids": [run2]}).num_deleted == 1
        assert list(srv.evaluation_run_list(p)) == []
        with pytest.raises(NotFoundError):
            srv.evaluation_run_finish({**p, "evaluation_run_id": run2, "summary": {}})
