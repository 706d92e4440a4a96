"""The official Weave TypeScript SDK (`weave@0.11.1` on npm) against weft.

Each scenario is a script of `tests/ts/` run with node against a fresh server; it prints one
`RESULT <json>` line, and the test checks what weft stored through its API. The packages are
installed with `npm ci` in `tests/ts/` when `node_modules` is missing or older than the
lockfile (scripts/test does it first); without node the tests skip, saying so.

The SDK is pointed at weft by the environment alone: `WF_TRACE_SERVER_URL` (the trace API),
`WANDB_BASE_URL` (only its host is used: the SDK sends its one GraphQL request, the default
entity of `weave.init("project")`, to `https://<that host>/graphql`) and `WANDB_API_KEY`.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Weft, create_key

TS = pathlib.Path(__file__).resolve().parents[1] / "ts"
MARKER = "RESULT "
SCENARIO_TIMEOUT = 120
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/test installs it)")


def npm_installed() -> None:
    """Installs the pinned packages (`npm ci`) unless `node_modules` matches the lockfile."""
    lock = TS / "package-lock.json"
    stamp = TS / "node_modules" / ".weft-installed"
    if stamp.exists() and stamp.read_bytes() == lock.read_bytes():
        return
    npm = shutil.which("npm")
    assert npm is not None, "node is installed but npm is not"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TS, check=True, timeout=600
    )
    stamp.write_bytes(lock.read_bytes())


@pytest.fixture(scope="module", autouse=True)
def _packages() -> None:
    if NODE is not None:
        npm_installed()


def run_ts(
    name: str, weft: Weft, tmp_path: pathlib.Path, project: str, key: str | None = None, **env: str
) -> tuple[dict[str, Any], str]:
    """Runs `tests/ts/<name>.js`; returns its result and everything it printed."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "WF_TRACE_SERVER_URL": weft.base,
        "WANDB_BASE_URL": weft.base,
        "WANDB_API_KEY": key or weft.key,
        "WEFT_PROJECT": project,
        "WEAVE_PRINT_CALL_LINK": "false",
        **env,
    }
    started = time.monotonic()
    proc = subprocess.run(
        [str(NODE), str(TS / f"{name}.js")],
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
        env=full_env,
        cwd=home,  # the SDK writes weaveErrors.log in its working directory
    )
    output = f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, f"{name}.js exited with {proc.returncode}\n{output}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    assert lines, f"{name}.js printed no result\n{output}"
    # Anything the SDK failed to send it reports on stderr, and carries on.
    for failure in ("Error processing batch", "Error saving file", "Retrying fetch"):
        assert failure not in proc.stdout + proc.stderr, output
    result = json.loads(lines[-1][len(MARKER) :])
    result["_seconds"] = time.monotonic() - started
    return result, proc.stdout + proc.stderr


class Api:
    """weft's API with Basic auth `("api", key)`."""

    def __init__(self, weft: Weft, key: str | None = None) -> None:
        self.http = httpx.Client(base_url=weft.base, auth=("api", key or weft.key), timeout=30)

    def ok(self, resp: httpx.Response) -> httpx.Response:
        assert resp.status_code == 200, f"{resp.request.url}: {resp.status_code} {resp.text}"
        return resp

    def jsonl(self, resp: httpx.Response) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ok(resp).text.splitlines() if line.strip()]

    def calls(self, project: str) -> list[dict[str, Any]]:
        return self.jsonl(self.http.post("/calls/stream_query", json={"project_id": project}))

    def v2(self, project: str, path: str, **params: Any) -> list[dict[str, Any]]:
        return self.jsonl(self.http.get(f"/v2/{project}{path}", params=params))

    def obj(self, uri: str) -> dict[str, Any]:
        entity, project, _, name_digest = uri[len("weave:///") :].split("/")[:4]
        name, _, digest = name_digest.partition(":")
        body = {"project_id": f"{entity}/{project}", "object_id": name, "digest": digest}
        return self.ok(self.http.post("/obj/read", json=body)).json()["obj"]


@pytest.fixture
def api(weft: Weft) -> Iterator[Api]:
    client = Api(weft)
    yield client
    client.http.close()


def op_short(op_name: str) -> str:
    """`weave:///e/p/op/Name:digest` → `Name`."""
    return op_name.rsplit("/", 1)[-1].split(":", 1)[0]


def by_op(calls: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in calls if op_short(c["op_name"]) == name]


def test_ops_are_traced_and_a_call_renamed_at_once_keeps_its_name(
    weft: Weft, api: Api, tmp_path: pathlib.Path
) -> None:
    res, _ = run_ts("ops", weft, tmp_path, "acme/ts")
    assert (res["total"], res["thrown"], res["sum"]) == (14, "boom", 42)
    calls = api.calls("acme/ts")
    (root,) = by_op(calls, "sumSquares")
    assert root["parent_id"] is None and root["output"] == 14
    adds = by_op(calls, "add")
    under_root = [c for c in adds if c["parent_id"] == root["id"]]
    assert sorted(c["output"] for c in under_root) == [1, 5, 14]
    assert all(c["trace_id"] == root["trace_id"] for c in under_root)
    (failed,) = by_op(calls, "fails")
    assert "boom" in failed["exception"] and failed["ended_at"] is not None
    # `call.setDisplayName()` right after the op returned: sent before the call's start.
    (renamed,) = [c for c in calls if c["id"] == res["renamed_id"]]
    assert renamed["display_name"] == "renamed-at-once"
    assert op_short(renamed["op_name"]) == "add" and renamed["output"] == 42
    assert all(c["op_name"] for c in calls), "no call is left waiting for its start"


def test_objects_and_datasets_are_published_and_read_back(
    weft: Weft, api: Api, tmp_path: pathlib.Path
) -> None:
    res, _ = run_ts("objects", weft, tmp_path, "acme/ts")
    assert res["object_read"] == {"temperature": 0.5, "stops": ["\n", "END"]}
    rows = [
        {"country": "France", "capital": "Paris"},
        {"country": "Japan", "capital": "Tokyo"},
        {"country": "Peru", "capital": "Lima"},
    ]
    assert res["rows_read"] == rows
    obj = api.obj(res["object_ref"])
    assert obj["object_id"] == "settings" and obj["val"]["temperature"] == 0.5
    dataset = api.obj(res["dataset_ref"])
    assert dataset["object_id"] == "capitals" and dataset["base_object_class"] == "Dataset"
    table = dataset["val"]["rows"]
    digest = table.rsplit("/", 1)[-1]
    got = api.ok(api.http.post("/table/query", json={"project_id": "acme/ts", "digest": digest}))
    assert [{k: r["val"][k] for k in ("country", "capital")} for r in got.json()["rows"]] == rows


def test_files_are_uploaded_and_referenced_by_digest(
    weft: Weft, api: Api, tmp_path: pathlib.Path
) -> None:
    res, _ = run_ts("files", weft, tmp_path, "acme/ts")
    assert res["out"] == {"image_bytes": res["png_bytes"], "audio_bytes": res["wav_bytes"]}
    (call,) = by_op(api.calls("acme/ts"), "describe")
    sizes = {}
    for arg in call["inputs"].values():
        assert arg["_type"] == "CustomWeaveType", call["inputs"]
        ((name, digest),) = arg["files"].items()
        body = {"project_id": "acme/ts", "digest": digest}
        sizes[name] = len(api.ok(api.http.post("/file/content", json=body)).content)
    assert sizes == {"image.png": res["png_bytes"], "audio.wav": res["wav_bytes"]}


def test_a_refused_upload_is_answered_401_not_a_broken_connection(
    weft: Weft, tmp_path: pathlib.Path
) -> None:
    # Every request of a key weft does not know is refused; the file upload's 401 used to come
    # as a reset connection (EPIPE in Node), which the SDK retried for seconds.
    proc = subprocess.run(
        [str(NODE), str(TS / "files.js")],
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "WF_TRACE_SERVER_URL": weft.base,
            "WANDB_BASE_URL": weft.base,
            "WANDB_API_KEY": "0" * 40,
            "WEFT_PROJECT": "acme/ts",
            "WEAVE_PRINT_CALL_LINK": "false",
        },
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert "Error saving file" in out and "status: 401" in out, out[-4000:]
    assert "fetch failed" not in out and "EPIPE" not in out and "Retrying" not in out, out[-4000:]


def test_evaluation_is_listed_with_its_predictions_and_scores(
    weft: Weft, api: Api, tmp_path: pathlib.Path
) -> None:
    res, _ = run_ts("evaluation", weft, tmp_path, "acme/ts")
    summary = res["summary"]
    assert summary["exact"] == {"true_count": 2, "true_fraction": 2 / 3}
    (run,) = api.v2("acme/ts", "/evaluation_runs")
    assert run["status"] == "completed" and run["finished_at"] is not None
    assert op_short(run["evaluation"]) == "sums-eval" and "/object/" in run["evaluation"]
    assert op_short(run["model"]) == "adder" and "/op/" in run["model"]
    assert run["summary"]["exact"] == summary["exact"]
    assert run["summary"]["weave"]["display_name"] == "sums-eval_adder"
    rid = run["evaluation_run_id"]
    preds = api.v2("acme/ts", "/predictions", evaluation_run_id=rid)
    assert sorted(p["output"] for p in preds) == ["2", "4", "7"]
    assert all(p["evaluation_run_id"] == rid and "/attr/rows/id/" in p["inputs"] for p in preds)
    scores = api.v2("acme/ts", "/scores", evaluation_run_id=rid)
    exact = sorted(s["value"] for s in scores if s["scorer"] == "exact")
    diffs = sorted(s["value"] for s in scores if s["scorer"] == "closeness.diff")
    assert (exact, diffs) == ([0.0, 1.0, 1.0], [0.0, 0.0, 1.0])


def test_evaluation_logger_is_listed_with_its_predictions_and_scores(
    weft: Weft, api: Api, tmp_path: pathlib.Path
) -> None:
    res, _ = run_ts("evaluation_logger", weft, tmp_path, "acme/ts")
    assert res["logged"] == 2
    (run,) = api.v2("acme/ts", "/evaluation_runs")
    assert run["status"] == "completed"
    assert op_short(run["evaluation"]) == "logged-eval" and op_short(run["model"]) == "echo-model"
    assert run["summary"]["note"] == "done"
    rid = run["evaluation_run_id"]
    preds = api.v2("acme/ts", "/predictions", evaluation_run_id=rid)
    assert [(p["inputs"], p["output"]) for p in preds] == [({"prompt": "a"}, "a"), ({"prompt": "b"}, "b")]
    scores = api.v2("acme/ts", "/scores", evaluation_run_id=rid)
    assert sorted((s["scorer"], s["value"]) for s in scores) == [("match", 0.0), ("match", 1.0)]


# ---------------------------------------------------------------------------------------------
# weave.init("project"): the SDK asks `https://<WANDB_BASE_URL's host>/graphql` for the default
# entity, so the test puts weft behind a small TLS proxy, as a deployment behind HTTPS would be.
# ---------------------------------------------------------------------------------------------


class TlsProxy:
    """Accepts TLS on 127.0.0.1 and relays the bytes to weft in plain HTTP."""

    def __init__(self, target: str, cert: pathlib.Path, key: pathlib.Path) -> None:
        host, port = target.removeprefix("http://").rsplit(":", 1)
        self.target = (host, int(port))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(conn,), daemon=True).start()

    def relay(self, conn: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            upstream = socket.create_connection(self.target)
        except (OSError, ssl.SSLError):
            conn.close()
            return

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
        pump(tls, upstream)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_proxy(weft: Weft, tmp_path: pathlib.Path) -> Iterator[tuple[TlsProxy, pathlib.Path]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the TLS proxy")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    proxy = TlsProxy(weft.base, cert, key)
    yield proxy, cert
    proxy.close()


def test_init_without_an_entity_uses_the_keys_default_entity(
    weft: Weft, tls_proxy: tuple[TlsProxy, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    proxy, cert = tls_proxy
    env = {"WANDB_BASE_URL": f"http://127.0.0.1:{proxy.port}", "NODE_EXTRA_CA_CERTS": str(cert)}
    # A key scoped to entities: its first one.
    res, _ = run_ts("no_entity", weft, tmp_path, "ts-solo", **env)
    assert res["project_id"] == "acme/ts-solo"
    acme = Api(weft)
    assert [op_short(c["op_name"]) for c in acme.calls("acme/ts-solo")] == ["hello"]
    # An admin key: the server's default entity, "admin" unless `--default-entity` says otherwise.
    admin_key = create_key(weft.data_dir, "--admin")
    res, _ = run_ts("no_entity", weft, tmp_path, "ts-solo", key=admin_key, **env)
    assert res["project_id"] == "admin/ts-solo"
    admin = Api(weft, admin_key)
    assert [op_short(c["op_name"]) for c in admin.calls("admin/ts-solo")] == ["hello"]
    acme.http.close()
    admin.http.close()
