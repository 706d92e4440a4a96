"""Tests of the ClickHouse launcher (server.py): ClickHouse's own server, with real users.

Run with the launcher's venv: ``target/ch-venv/bin/python -m pytest tests/clickhouse``.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("server.py")


class ClickHouse:
    """A running launcher process."""

    def __init__(self, data: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--data", str(data), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.native = None
        line = self.proc.stdout.readline()
        if m := re.fullmatch(r"native on 127\.0\.0\.1:(\d+)\n", line):
            self.native = int(m.group(1))
            line = self.proc.stdout.readline()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert m, f"unexpected line {line!r}; stderr: {self.stderr() if self.proc.poll() is not None else ''}"
        self.url, self.port = m.group(1), int(m.group(2))

    def stderr(self) -> str:
        return self.proc.stderr.read()

    def query(self, sql: str, user: str | None = "weft", password: str = "weft") -> tuple[int, str]:
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(self.url + "/", data=sql.encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(timeout=10) == 0


@pytest.fixture
def clickhouse(tmp_path: Path):
    ch = ClickHouse(tmp_path / "data")
    yield ch
    ch.stop()


def test_it_is_clickhouses_own_server(clickhouse: ClickHouse):
    status, version = clickhouse.query("SELECT version()")
    assert status == 200 and version.startswith("26.9"), version
    status, body = clickhouse.query("SELECT 41 + 1 AS n FORMAT JSONEachRow")
    assert (status, body.strip()) == (200, '{"n":42}')


def test_credentials_are_checked(clickhouse: ClickHouse):
    status, body = clickhouse.query("SELECT 1", password="wrong")
    assert status in (401, 403) and "AUTHENTICATION_FAILED" in body, body
    # No credentials: the passwordless user clickhouse-local runs as, which may only start
    # listeners; it reads and writes nothing.
    assert clickhouse.query("CREATE DATABASE d")[0] == 200
    assert clickhouse.query("CREATE TABLE d.t (a Int32) ENGINE = MergeTree ORDER BY a")[0] == 200
    assert clickhouse.query("INSERT INTO d.t VALUES (1)")[0] == 200
    for sql in ["SELECT * FROM d.t", "INSERT INTO d.t VALUES (2)", "DROP TABLE d.t", "CREATE DATABASE e"]:
        status, body = clickhouse.query(sql, user=None)
        assert status == 403 and "ACCESS_DENIED" in body, (sql, body)
    assert clickhouse.query("SELECT sum(a) FROM d.t") == (200, "1\n")


def test_data_outlives_a_restart(tmp_path: Path):
    first = ClickHouse(tmp_path / "data")
    first.query("CREATE DATABASE d")
    first.query("CREATE TABLE d.t (a Int32) ENGINE = MergeTree ORDER BY a")
    first.query("INSERT INTO d.t VALUES (7)")
    first.stop()
    second = ClickHouse(tmp_path / "data")
    try:
        assert second.query("SELECT a FROM d.t") == (200, "7\n")
    finally:
        second.stop()


def test_a_taken_port_is_an_error_not_someone_elses_server(clickhouse: ClickHouse, tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(SERVER), "--data", str(tmp_path / "other"), "--port", str(clickhouse.port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == "", "it never says it listens"
    assert "did not start" in proc.stderr and "Address already in use" in proc.stderr, proc.stderr


def test_a_cluster_of_two_shards_answers_distributed_queries(tmp_path: Path):
    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    ports = [free(), free()]
    shards = [a for p in ports for a in ("--shard", f"127.0.0.1:{p}")]
    nodes = [
        ClickHouse(tmp_path / f"s{i}", "--tcp-port", str(p), "--cluster", "two", *shards, "--shard-index", str(i + 1))
        for i, p in enumerate(ports)
    ]
    try:
        for i, node in enumerate(nodes):
            assert node.native == ports[i]
            assert node.query("SELECT getMacro('shard')") == (200, f"{i + 1}\n")
            node.query("CREATE DATABASE d")
            node.query("CREATE TABLE d.t_local (k String, a Int32) ENGINE = MergeTree ORDER BY k")
        nodes[0].query("CREATE TABLE d.t AS d.t_local ENGINE = Distributed(two, d, t_local, cityHash64(k))")
        status, body = nodes[0].query(
            "INSERT INTO d.t SETTINGS distributed_foreground_insert = 1 "
            "SELECT toString(number), 1 FROM numbers(100)"
        )
        assert status == 200, body
        counts = [int(n.query("SELECT count() FROM d.t_local")[1]) for n in nodes]
        assert sum(counts) == 100 and all(c > 0 for c in counts), counts
        assert nodes[0].query("SELECT sum(a) FROM d.t") == (200, "100\n")
    finally:
        for node in nodes:
            node.stop()
