"""The v2 object routes (ops, datasets, scorers, evaluations, models) and `eval_results/query`
through the official SDK's own v2 client (`RemoteHTTPTraceServer`), and the paths between them
and the SDK: what the SDK publishes the v2 API lists and reads, what the v2 API creates the SDK
loads and runs, and the results of runs however they were logged."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Weft
from test_sdk import _v2_server as _v2, run_scenario

PROJECT = "acme/proj"
P = {"project_id": PROJECT}


def _ref(kind: str, object_id: str, digest: str) -> str:
    return f"weave:///{PROJECT}/{kind}/{object_id}:{digest}"


def test_each_family_round_trips_through_the_v2_client(weft: Weft, subtests) -> None:
    from weave.vendor.weave_server_sdk import NotFoundError

    srv = _v2(weft)
    with subtests.test("ops"):
        op = srv.op_create({**P, "name": "Tokenize Text", "source_code": "def tokenize(s):\n    return s.split()\n"})
        assert op.object_id == "tokenize_text" and op.version_index == 0
        read = srv.op_read({**P, "object_id": op.object_id, "digest": op.digest})
        assert read.code == "def tokenize(s):\n    return s.split()\n"
        op2 = srv.op_create({**P, "name": "Tokenize Text", "source_code": "def tokenize(s):\n    return s.split(',')\n"})
        assert op2.version_index == 1
        assert [(o.object_id, o.version_index) for o in srv.op_list(P)] == [("tokenize_text", 1)]
        assert srv.op_delete({**P, "object_id": op.object_id, "digests": [op.digest]}).num_deleted == 1
        with pytest.raises(NotFoundError):
            srv.op_read({**P, "object_id": op.object_id, "digest": op.digest})
        assert srv.op_delete({**P, "object_id": op.object_id}).num_deleted == 1
        assert list(srv.op_list(P)) == []
    with subtests.test("datasets"):
        ds = srv.dataset_create({**P, "name": "Math QA", "description": "sums", "rows": [{"q": "1+1"}, {"q": "2+2"}]})
        read = srv.dataset_read({**P, "object_id": ds.object_id, "digest": ds.digest})
        assert (read.name, read.description, read.object_id) == ("Math QA", "sums", "math_qa")
        assert read.rows.startswith(f"weave:///{PROJECT}/table/")
        assert [d.object_id for d in srv.dataset_list({**P, "limit": 1})] == ["math_qa"]
        assert srv.dataset_delete({**P, "object_id": "math_qa"}).num_deleted == 1
    with subtests.test("scorers"):
        sc = srv.scorer_create({**P, "name": "Judge", "op_source_code": "def score(output):\n    return True\n"})
        assert sc.scorer == _ref("object", "judge", sc.digest)
        read = srv.scorer_read({**P, "object_id": "judge", "digest": sc.digest})
        assert read.score_op.startswith(f"weave:///{PROJECT}/op/judge_score:")
        assert [s.object_id for s in srv.scorer_list(P)] == ["judge"]
        assert srv.scorer_delete({**P, "object_id": "judge"}).num_deleted == 1
    with subtests.test("models"):
        m = srv.model_create({**P, "name": "Small Model", "source_code": "class M: ...\n", "attributes": {"t": 1}})
        assert m.model_ref == _ref("object", "small_model", m.digest)
        read = srv.model_read({**P, "object_id": "small_model", "digest": "latest"})
        assert (read.source_code, read.attributes) == ("class M: ...\n", {"t": 1})
        assert [x.object_id for x in srv.model_list(P)] == ["small_model"]
        assert srv.model_delete({**P, "object_id": "small_model"}).num_deleted == 1
    with subtests.test("evaluations"):
        ev = srv.evaluation_create({**P, "name": "Nightly", "dataset": _ref("object", "d", "x" * 43), "trials": 3})
        read = srv.evaluation_read({**P, "object_id": ev.object_id, "digest": ev.digest})
        assert (read.name, read.trials, read.scorers) == ("Nightly", 3, [])
        assert read.evaluate_op.startswith(f"weave:///{PROJECT}/op/nightly.evaluate:")
        assert [e.object_id for e in srv.evaluation_list(P)] == ["nightly"]
        assert srv.evaluation_delete({**P, "object_id": "nightly", "digests": [ev.digest]}).num_deleted == 1
        with pytest.raises(NotFoundError):
            srv.evaluation_delete({**P, "object_id": "nightly"})


def _trials(res: Any, run: str) -> list[Any]:
    return [t for row in res.rows for e in row.evaluations if e.evaluation_call_id == run for t in e.trials]


def test_sdk_and_v2_objects_cross_over_and_results_read_every_run(sdk_env: Weft, subtests) -> None:
    srv = _v2(sdk_env)
    ds = srv.dataset_create({**P, "name": "v2 rows", "rows": [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "5"}]})
    ev = srv.evaluation_create({**P, "name": "v2 eval", "dataset": _ref("object", ds.object_id, ds.digest)})
    res = run_scenario("v2_objects", ev.evaluation_ref)

    with subtests.test("a v2 evaluation runs as the SDK's own"):
        assert "model_latency" in res["v2_result"], res["v2_result"]
        assert res["sdk_result"]["exact"]["correct"] == {"true_count": 1, "true_fraction": 0.5}

    with subtests.test("what the SDK published is listed and read by v2"):
        dataset_id, dataset_digest = res["dataset_ref"].rsplit("/", 1)[1].split(":")
        d = srv.dataset_read({**P, "object_id": dataset_id, "digest": dataset_digest})
        assert d.name == "sdk-rows" and d.rows.startswith(f"weave:///{PROJECT}/table/")
        model_id, model_digest = res["model_ref"].rsplit("/", 1)[1].split(":")
        m = srv.model_read({**P, "object_id": model_id, "digest": model_digest})
        assert m.attributes["offset"] == 0 and m.attributes["predict"].startswith(f"weave:///{PROJECT}/op/")
        op_id, op_digest = res["scorer_ref"].rsplit("/", 1)[1].split(":")
        code = srv.op_read({**P, "object_id": op_id, "digest": op_digest}).code
        assert "def exact" in code
        evaluations = {e.object_id for e in srv.evaluation_list(P)}
        assert {"v2_eval", res["sdk_eval_ref"].rsplit("/", 1)[1].split(":")[0]} <= evaluations
        assert "sdk-rows" in {x.object_id for x in srv.dataset_list(P)}
        assert model_id in {x.object_id for x in srv.model_list(P)}

    by_evaluation = {r.evaluation: r.evaluation_run_id for r in srv.evaluation_run_list(P)}
    sdk_run = by_evaluation[res["sdk_eval_ref"]]
    v2_run = by_evaluation[ev.evaluation_ref]
    logger_run = res["logger_run"]
    assert logger_run in by_evaluation.values()

    with subtests.test("eval results of the SDK evaluation"):
        out = srv.eval_results_query({**P, "evaluation_call_ids": [sdk_run], "include_summary": True,
                                      "include_raw_data_rows": True, "resolve_row_refs": True})
        assert out.total_rows == 2
        assert sorted(r.raw_data_row["q"] for r in out.rows) == ["1+1", "2+2"]
        trials = _trials(out, sdk_run)
        assert sorted(t.model_output for t in trials) == ["2", "4"]
        assert sorted(t.scores["exact"]["correct"] for t in trials) == [False, True]
        assert all(t.predict_call_id for t in trials)
        stats = out.summary.evaluations[0].scorer_stats
        assert [(s.scorer_key, s.path, s.value_type, s.pass_rate) for s in stats] == [("exact", "correct", "binary", 0.5)]
        assert out.summary.evaluations[0].evaluation_ref == res["sdk_eval_ref"]

    with subtests.test("eval results filtered, sorted and priced"):
        ordered = srv.eval_results_query({**P, "evaluation_call_ids": [sdk_run], "include_raw_data_rows": True,
                                          "resolve_row_refs": True,
                                          "sort_by": [{"field": "inputs.q", "direction": "desc"}]})
        assert [r.raw_data_row["q"] for r in ordered.rows] == ["2+2", "1+1"]
        correct = {"$expr": {"$eq": [{"$getField": "scores.exact.correct"}, {"$literal": 1}]}}
        kept = srv.eval_results_query({**P, "evaluation_call_ids": [sdk_run], "include_summary": True,
                                       "include_costs": True, "filter_logic_operator": "and",
                                       "filters": [{"evaluation_call_id": sdk_run, "query": correct}]})
        assert kept.total_rows == 1 and kept.summary.row_count == 1
        assert [t.model_output for t in _trials(kept, sdk_run)] == ["2"]
        assert kept.summary.evaluations[0].predict_total_cost is None

    with subtests.test("eval results across runs however logged"):
        out = srv.eval_results_query({**P, "evaluation_run_ids": [sdk_run, v2_run, logger_run], "include_summary": True})
        assert len(_trials(out, logger_run)) == 2
        assert len(_trials(out, v2_run)) == 2
        # The SDK's and the v2 evaluation's examples are the same rows; the logger's are others.
        both = srv.eval_results_query({**P, "evaluation_run_ids": [sdk_run, v2_run], "require_intersection": True})
        assert both.total_rows == 2
        paged = srv.eval_results_query({**P, "evaluation_run_ids": [sdk_run, v2_run, logger_run], "limit": 1, "offset": 1})
        assert paged.total_rows == out.total_rows and len(paged.rows) == 1

    with subtests.test("a predict call EvaluationLogger logged is scored"):
        pid = res["logger_predict_calls"][0]
        score = srv.score_create({**P, "prediction_id": pid, "scorer": res["scorer_ref"], "value": 1})
        read = srv.score_read({**P, "score_id": score.score_id})
        assert read.value == 1
