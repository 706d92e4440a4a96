"""Fixtures for the Python suites: a real weft server on a fresh data directory.

With WEFT_TEST_STORE=clickhouse and WEFT_TEST_CLICKHOUSE_URL set, every server (and every
`weft` command) runs on ClickHouse instead, each data directory with its own fresh database.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("WEFT_BIN", ROOT / "target" / "debug" / "weft"))


@dataclass
class Weft:
    """A running weft server."""

    base: str
    key: str
    data_dir: pathlib.Path
    proc: subprocess.Popen

    def url(self, path: str) -> str:
        return self.base + path


def store_env(data_dir: pathlib.Path) -> dict[str, str]:
    """The environment selecting the store of `data_dir`: SQLite in it, or its own ClickHouse
    database (named in the directory, so restarts and commands share it)."""
    if os.environ.get("WEFT_TEST_STORE") != "clickhouse":
        return {}
    marker = data_dir / ".clickhouse-database"
    if not marker.exists():
        marker.write_text(f"weft_py_{uuid.uuid4().hex}")
    return {
        "WEFT_STORE": "clickhouse",
        "WEFT_CLICKHOUSE_URL": os.environ["WEFT_TEST_CLICKHOUSE_URL"],
        "WEFT_CLICKHOUSE_DATABASE": marker.read_text().strip(),
    }


def create_key(data_dir: pathlib.Path, *args: str) -> str:
    """Creates an API key with `weft keys create ARGS` and returns its secret."""
    out = subprocess.run(
        [str(BIN), "--data-dir", str(data_dir), "keys", "create", *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **store_env(data_dir)},
    )
    return out.stdout.strip()


def start_weft(data_dir: pathlib.Path, key: str, env: dict[str, str] | None = None) -> Weft:
    """Starts `weft serve` on a free port and waits until it listens (with `env` added to its
    environment)."""
    proc = subprocess.Popen(
        [str(BIN), "--data-dir", str(data_dir), "serve", "--bind", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **store_env(data_dir), "WEFT_LOG": "info", **(env or {})},
    )
    assert proc.stderr is not None
    addr = None
    for line in proc.stderr:
        m = re.search(r"addr=(\S+)", line)
        if m:
            addr = m.group(1)
            break
    if addr is None:
        proc.kill()
        raise RuntimeError("weft did not start")
    # Keep draining the log so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return Weft(base=f"http://{addr}", key=key, data_dir=data_dir, proc=proc)


@pytest.fixture
def weft(tmp_path: pathlib.Path) -> Iterator[Weft]:
    """A fresh weft server with a key scoped to entity `acme`."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key = create_key(data_dir, "--entity", "acme")
    server = start_weft(data_dir, key)
    yield server
    server.proc.terminate()
    server.proc.wait(timeout=15)


@pytest.fixture
def sdk_env(weft: Weft, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Weft:
    """Points the official SDK at `weft` through environment variables only."""
    monkeypatch.setenv("WF_TRACE_SERVER_URL", weft.base)
    monkeypatch.setenv("WANDB_BASE_URL", weft.base)
    monkeypatch.setenv("WANDB_API_KEY", weft.key)
    # No telemetry, no client-side cache shared between tests, no writes to the real home.
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("WEAVE_USE_SERVER_CACHE", "false")
    monkeypatch.setenv("WEAVE_PRINT_CALL_LINK", "false")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    return weft
