"""The official SDK through a load balancer in front of three weft processes on one ClickHouse.

A round-robin proxy sends each request to the next process, so an evaluation's calls are
started on one process, ended on another and read on a third. What the SDK logged must then
read the same through every process: nothing lost, nothing twice. ClickHouse only (SQLite is
one process's file).
"""

from __future__ import annotations

import http.client
import itertools
import os
import pathlib
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import Weft, create_key, start_weft
from test_sdk import PROJECT, by_op, jsonl, run_scenario

pytestmark = pytest.mark.skipif(
    os.environ.get("WEFT_TEST_STORE") != "clickhouse",
    reason="several weft processes share a ClickHouse database; SQLite is one process's file",
)

# Hop-by-hop headers a proxy does not forward.
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class RoundRobin:
    """An HTTP proxy sending each request to the next of `backends` (base URLs)."""

    def __init__(self, backends: list[str]):
        self.backends = [urlsplit(b) for b in backends]
        self.next = itertools.cycle(range(len(backends)))
        self.lock = threading.Lock()
        self.served: Counter[int] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def forward(self) -> None:
                with proxy.lock:
                    i = next(proxy.next)
                    proxy.served[i] += 1
                target = proxy.backends[i]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host"}}
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP | {"content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def balanced(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RoundRobin, list[Weft]]]:
    """Three weft processes on one database behind a round-robin proxy, the SDK pointed at it."""
    first = tmp_path / "data0"
    first.mkdir()
    key = create_key(first, "--entity", "acme")
    servers = [start_weft(first, key)]
    # The marker naming the database, shared by the other processes' data directories.
    marker = (first / ".clickhouse-database").read_text()
    for i in (1, 2):
        d = tmp_path / f"data{i}"
        d.mkdir()
        (d / ".clickhouse-database").write_text(marker)
        servers.append(start_weft(d, key))
    proxy = RoundRobin([s.base for s in servers])
    for name, value in {
        "WF_TRACE_SERVER_URL": proxy.url,
        "WANDB_BASE_URL": proxy.url,
        "WANDB_API_KEY": key,
        "WANDB_ERROR_REPORTING": "false",
        "WEAVE_USE_SERVER_CACHE": "false",
        "WEAVE_PRINT_CALL_LINK": "false",
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"),
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    yield proxy, servers
    proxy.close()
    for s in servers:
        s.proc.terminate()
        s.proc.wait(timeout=15)


def read_all(s: Weft) -> dict[str, list]:
    """Runs, calls (id and op), predictions and scores, as one process answers them."""
    auth = ("api", s.key)
    with httpx.Client(base_url=s.base, auth=auth, timeout=60) as http:
        runs = jsonl(http.get(f"/v2/{PROJECT}/evaluation_runs"))
        calls = jsonl(http.post("/calls/stream_query", json={"project_id": PROJECT}))
        preds = jsonl(http.get(f"/v2/{PROJECT}/predictions"))
        scores = jsonl(http.get(f"/v2/{PROJECT}/scores"))
    return {
        "runs": sorted((r["evaluation_run_id"], r["status"], r["model"]) for r in runs),
        "calls": sorted((c["id"], c["op_name"], c["ended_at"] is not None) for c in calls),
        "predictions": sorted(p["prediction_id"] for p in preds),
        "scores": sorted((x["score_id"], x["value"]) for x in scores),
    }


def test_the_sdk_through_a_load_balancer_over_three_processes(balanced) -> None:
    proxy, servers = balanced
    evaluate = run_scenario("evaluate")
    logger = run_scenario("eval_logger")
    assert all(proxy.served[i] > 3 for i in range(3)), f"requests spread over every process: {proxy.served}"

    seen = [read_all(s) for s in servers]
    assert seen[0] == seen[1] == seen[2], "every process reads the same"
    got = seen[0]
    ids = [c[0] for c in got["calls"]]
    assert len(ids) == len(set(ids)), "no call twice"
    assert all(ended for _, _, ended in got["calls"]), "every call's end arrived, wherever it went"
    assert len(got["runs"]) == 2 and all(status == "completed" for _, status, _ in got["runs"]), got["runs"]
    assert logger["evaluate_call_id"] in {r for r, _, _ in got["runs"]}
    (run_id,) = [r for r, _, m in got["runs"] if m == evaluate["model_ref"]]
    for s in servers:
        with httpx.Client(base_url=s.base, auth=("api", s.key), timeout=60) as http:
            preds = jsonl(http.get(f"/v2/{PROJECT}/predictions", params={"evaluation_run_id": run_id}))
        assert sorted(p["output"] for p in preds) == ["2", "4"], preds
    calls = [{"id": i, "op_name": op} for i, op, _ in got["calls"]]
    assert len(by_op(calls, "Evaluation.evaluate")) == len(got["runs"]) == 2
    assert len(got["predictions"]) == len(by_op(calls, "Evaluation.predict_and_score")), got
    assert len(got["scores"]) >= len(got["predictions"]), got
