"""Tests of the ClickHouse HTTP front (front.py) against the behaviour of a ClickHouse server.

Run with the front's venv: ``target/ch-venv/bin/python -m pytest tests/clickhouse``.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode

import pytest

FRONT = Path(__file__).with_name("front.py")
ERROR_BODY = re.compile(r"^Code: (\d+)\. DB::Exception: .*\. \(([A-Z0-9_]+)\) \(version 26\.9[0-9.]*\)\n$", re.S)


class Front:
    """A running front process and a way to talk to it."""

    def __init__(self, data: Path, *args: str):
        """Start the front on a free port over the data directory."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(FRONT), "--port", "0", "--data", str(data), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        self.start_seconds = time.monotonic() - started
        m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert m, f"unexpected first line {line!r}; stderr: {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.port = int(m.group(1))
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        """Keep reading stderr so the front never blocks on it."""
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def conn(self, timeout: float = 60) -> http.client.HTTPConnection:
        """A new HTTP connection to the front."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str = "POST", params: dict | None = None, body: bytes | str | None = None,
                headers: dict | None = None, path: str = "/") -> tuple[int, http.client.HTTPMessage, bytes]:
        """Send one request; its status, headers and whole body."""
        conn = self.conn()
        url = path + ("?" + urlencode(params) if params else "")
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, url, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.headers, data

    def query(self, sql: str, **params) -> bytes:
        """Run a query by POST; its body, failing the test on any error status."""
        status, headers, data = self.request("POST", params, sql)
        assert status == 200, data
        assert headers.get("X-ClickHouse-Exception-Code") is None
        return data

    def stop(self) -> int:
        """Stop the front with SIGTERM; its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def front(tmp_path_factory) -> Front:
    """One front for the module's tests, over a fresh data directory."""
    f = Front(tmp_path_factory.mktemp("front"))
    yield f
    assert f.stop() == 0


def assert_error(status: int, headers, body: bytes, code: int, http_status: int) -> None:
    """Check an error response has ClickHouse's status, header and body for that code."""
    assert status == http_status, body
    assert headers["X-ClickHouse-Exception-Code"] == str(code)
    m = ERROR_BODY.match(body.decode())
    assert m, body
    assert body.count(b"DB::Exception") == 1, body
    assert int(m.group(1)) == code


def test_ping_and_root(front: Front) -> None:
    """/ping and a bare GET / answer Ok."""
    for path in ("/ping", "/"):
        status, _, body = front.request("GET", path=path)
        assert (status, body) == (200, b"Ok.\n")


def test_query_in_url_body_or_both(front: Front) -> None:
    """The query may come in the URL, the body, or start in one and end in the other."""
    assert front.request("GET", {"query": "SELECT 1"})[2] == b"1\n"
    assert front.request("POST", None, "SELECT 2")[2] == b"2\n"
    status, headers, body = front.request("POST", {"query": "SELECT"}, "3 AS x FORMAT JSONEachRow")
    assert (status, body) == (200, b'{"x":3}\n')
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    status, headers, body = front.request("GET", {"query": "SELECT 'a' AS s, 2 AS n"})
    assert (status, body) == (200, b"a\t2\n")
    assert headers["Content-Type"] == "text/tab-separated-values; charset=UTF-8"
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert re.fullmatch(r"[a-z]{16}", headers["X-ClickHouse-Exception-Tag"])
    summary = json.loads(headers["X-ClickHouse-Summary"])
    assert summary["result_rows"] == "1"


def test_long_url_parameters(front: Front) -> None:
    """A parameter of a few hundred KB in the URL is accepted, as up to a server's 1 MiB."""
    ids = [f"id-{i:06d}" for i in range(20000)]
    value = "[" + ",".join(f"'{i}'" for i in ids) + "]"
    assert len(value) > 200_000
    out = front.query("SELECT length({ids:Array(String)}), {ids:Array(String)}[20000]", param_ids=value)
    assert out == b"20000\tid-019999\n"


def test_default_format_and_format_clause(front: Front) -> None:
    """default_format and X-ClickHouse-Format pick the format; FORMAT in the query wins."""
    status, headers, body = front.request("POST", {"default_format": "JSONCompactEachRow"}, "SELECT 1, 'a'")
    assert body == b'[1, "a"]\n'
    assert headers["X-ClickHouse-Format"] == "JSONCompactEachRow"
    status, headers, body = front.request("POST", None, "SELECT 1 AS x", {"X-ClickHouse-Format": "CSVWithNames"})
    assert body == b'"x"\n1\n'
    assert headers["Content-Type"] == "text/csv; charset=UTF-8; header=present"
    status, headers, body = front.request(
        "POST", {"default_format": "CSV"}, "SELECT 1 AS x\n-- FORMAT TabSeparated\nFORMAT JSON"
    )
    assert json.loads(body)["data"] == [{"x": 1}]
    assert headers["X-ClickHouse-Format"] == "JSON"
    status, headers, body = front.request("POST", None, "SELECT 'format' AS format FORMAT JSONEachRow")
    assert body == b'{"format":"format"}\n'
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"


def test_params_arrays_datetime64_and_escapes(front: Front) -> None:
    """param_ values are parsed by the engine from ClickHouse's escaped form."""
    params = {
        "param_a": "['x','it\\'s',' comma, in']",
        "param_d": "2024-05-06 07:08:09.123456",
        "param_n": "\\N",
        "param_s": "tab\\there",
        "param_m": "{'k':[1,2]}",
        "param_u": "18446744073709551615",
    }
    sql = (
        "SELECT {a:Array(String)} AS a, {d:DateTime64(6, 'UTC')} AS d, {n:Nullable(Int32)} AS n, "
        "{s:String} AS s, {m:Map(String, Array(UInt8))} AS m, {u:UInt64} AS u FORMAT JSONEachRow"
    )
    status, _, body = front.request("POST", params, sql)
    assert status == 200, body
    row = json.loads(body)
    assert row == {
        "a": ["x", "it's", " comma, in"],
        "d": "2024-05-06 07:08:09.123456",
        "n": None,
        "s": "tab\there",
        "m": {"k": [1, 2]},
        "u": 18446744073709551615,
    }


def test_params_bind_in_where_and_bad_values(front: Front) -> None:
    """Parameters filter rows; a value that does not parse or a missing one is the engine's error."""
    front.query("CREATE TABLE p (id UInt64, tags Array(String), at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id")
    status, _, body = front.request(
        "POST", {"query": "INSERT INTO p FORMAT JSONEachRow"},
        '{"id":1,"tags":["a","b"],"at":"2024-01-01 00:00:00.001"}\n{"id":2,"tags":["c"],"at":"2024-01-01 00:00:00.002"}\n',
    )
    assert status == 200, body
    sql = "SELECT id FROM p WHERE hasAny(tags, {t:Array(String)}) AND at >= {since:DateTime64(3, 'UTC')} ORDER BY id"
    assert front.query(sql, param_t="['b','c']", param_since="2024-01-01 00:00:00.002") == b"2\n"
    assert front.query(sql, param_t="['b','c']", param_since="2024-01-01 00:00:00.000") == b"1\n2\n"
    status, headers, body = front.request("POST", {"param_x": "nope"}, "SELECT {x:UInt8}")
    assert_error(status, headers, body, 457, 500)
    status, headers, body = front.request("POST", None, "SELECT {x:UInt8}")
    assert_error(status, headers, body, 456, 500)
    # The value is a bound value, never SQL text.
    assert front.query("SELECT {s:String}", param_s="1'); DROP TABLE p; --") == b"1\\'); DROP TABLE p; --\n"
    assert front.query("SELECT count() FROM p") == b"2\n"


def test_insert_of_several_megabytes_then_select(front: Front) -> None:
    """A few MB of JSONEachRow go in as one insert (one part) and read back whole."""
    front.query(
        "CREATE TABLE big (id UInt64, name String, score Float64, at DateTime64(3, 'UTC'), tags Array(String)) "
        "ENGINE = MergeTree ORDER BY id"
    )
    rows = [
        {"id": i, "name": f"row {i} é \"q\"", "score": i / 4, "at": f"2024-01-01 00:00:{i % 60:02d}.{i % 1000:03d}",
         "tags": [str(i % 7), "t"]}
        for i in range(60_000)
    ]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    assert len(body) > 5_000_000
    status, headers, data = front.request("POST", {"query": "INSERT INTO big FORMAT JSONEachRow"}, body)
    assert status == 200, data
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "60000"
    assert front.query("SELECT count(), sum(id), sum(score) FROM big") == b"60000\t1799970000\t449992500\n"
    assert front.query("SELECT count() FROM system.parts WHERE table = 'big' AND active") == b"1\n"
    out = front.query("SELECT * FROM big ORDER BY id FORMAT JSONEachRow")
    back = [json.loads(line) for line in out.splitlines()]
    assert len(back) == 60_000
    assert back[12345] == rows[12345]


def test_insert_chunked_and_gzip_bodies(front: Front) -> None:
    """A chunked request body and a gzip-encoded one are read whole."""
    front.query("CREATE TABLE ch (x UInt64, s String) ENGINE = MergeTree ORDER BY x")
    conn = front.conn()
    conn.putrequest("POST", "/?" + urlencode({"query": "INSERT INTO ch FORMAT TabSeparated"}))
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for i in range(100):
        chunk = b"".join(b"%d\tv%d\n" % (i * 10 + j, j) for j in range(10))
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    resp.read()
    conn.close()
    body = gzip.compress(b"".join(b'{"x":%d,"s":"g"}\n' % i for i in range(1000, 1500)))
    status, _, data = front.request(
        "POST", {"query": "INSERT INTO ch FORMAT JSONEachRow"}, body, {"Content-Encoding": "gzip"}
    )
    assert status == 200, data
    assert front.query("SELECT count(), uniqExact(x) FROM ch") == b"1500\t1500\n"


def test_insert_converts_types_and_honours_input_settings(front: Front) -> None:
    """Inserted text is converted as by ClickHouse, and input_format_* settings apply."""
    front.query("CREATE TABLE conv (x UInt8, d Date, e Enum8('a' = 1, 'b' = 2), n Nullable(String)) ENGINE = Memory")
    status, _, data = front.request(
        "POST", {"query": "INSERT INTO conv FORMAT JSONEachRow"},
        '{"x":"7","d":"2024-02-03","e":"b","n":null,"extra":1}\n',
    )
    assert status == 200, data
    assert front.query("SELECT x, d, e, n FROM conv") == b"7\t2024-02-03\tb\t\\N\n"
    status, headers, data = front.request(
        "POST", {"query": "INSERT INTO conv FORMAT JSONEachRow", "input_format_skip_unknown_fields": "0"},
        '{"x":1,"zz":2}\n',
    )
    assert_error(status, headers, data, 117, 400)
    status, headers, data = front.request("POST", {"query": "INSERT INTO conv FORMAT JSONEachRow"}, '{"x":"abc"}\n')
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] in ("6", "27", "72"), data
    # An insert with no data writes nothing and succeeds, as over HTTP.
    status, _, data = front.request("POST", {"query": "INSERT INTO conv FORMAT JSONEachRow"}, b"")
    assert (status, data) == (200, b"")
    assert front.query("SELECT count() FROM conv") == b"1\n"


@pytest.mark.parametrize(
    "sql,code,http_status",
    [
        ("SELEC 1", 62, 400),
        ("SELECT * FROM no_such_table", 60, 404),
        ("SELECT no_such_column", 47, 404),
        ("SELECT no_such_function(1)", 46, 404),
        ("SELECT * FROM no_such_db.t", 81, 404),
        ("SELECT CAST(1 AS Array(UInt8))", 53, 400),
        ("SELECT CAST('a' AS UInt8)", 6, 400),
        ("SELECT 1 FORMAT NoSuchFormat", 73, 404),
        ("SELECT 1 SETTINGS no_such_setting = 1", 115, 404),
        ("SELECT sleep(1) SETTINGS max_execution_time = 0.1", 159, 408),
        ("SELECT throwIf(1)", 395, 500),
        ("SELECT 1; SELECT 2", 62, 400),
    ],
)
def test_errors_have_status_header_and_body(front: Front, sql: str, code: int, http_status: int) -> None:
    """Each error has the HTTP status ClickHouse maps its code to, the code header and the body."""
    status, headers, body = front.request("POST", None, sql)
    assert_error(status, headers, body, code, http_status)
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"


def test_settings_from_url(front: Front) -> None:
    """URL parameters are settings of that query only; unknown ones are refused."""
    sql = "SELECT toDateTime64('2024-01-02 03:04:05.5', 1, 'UTC') AS d, toUInt64(5) AS u FORMAT JSONEachRow"
    assert front.query(sql) == b'{"d":"2024-01-02 03:04:05.5","u":5}\n'
    out = front.query(sql, date_time_output_format="iso", output_format_json_quote_64bit_integers="1")
    assert out == b'{"d":"2024-01-02T03:04:05.5Z","u":"5"}\n'
    assert front.query(sql) == b'{"d":"2024-01-02 03:04:05.5","u":5}\n'
    status, headers, body = front.request("POST", {"no_such_setting": "1"}, "SELECT 1")
    assert_error(status, headers, body, 115, 404)
    status, headers, body = front.request("POST", {"max_execution_time": "abc"}, "SELECT 1")
    assert_error(status, headers, body, 72, 400)
    # Settings a client commonly sends are accepted; session ones are ignored.
    assert front.query(
        "SELECT 1", wait_end_of_query="1", max_execution_time="30", async_insert="0", insert_deduplicate="1",
        enable_http_compression="0", session_id="s1", session_timeout="60", query_id="q-1",
    ) == b"1\n"


def test_get_is_readonly(front: Front) -> None:
    """A GET may not change data, as on a server (readonly=2)."""
    status, headers, body = front.request("GET", {"query": "CREATE TABLE ro (x UInt8) ENGINE = Memory"})
    assert_error(status, headers, body, 164, 500)
    assert front.request("GET", {"query": "SELECT 1", "max_threads": "1"})[2] == b"1\n"


def test_database_param_and_header(front: Front) -> None:
    """database= and X-ClickHouse-Database choose the current database."""
    front.query("CREATE DATABASE IF NOT EXISTS other")
    front.query("CREATE TABLE other.only_here (x UInt8) ENGINE = Memory")
    front.query("INSERT INTO other.only_here VALUES (42)")
    assert front.query("SELECT x FROM only_here", database="other") == b"42\n"
    status, _, body = front.request("POST", None, "SELECT currentDatabase()", {"X-ClickHouse-Database": "other"})
    assert (status, body) == (200, b"other\n")
    assert front.query("SELECT currentDatabase()") == b"default\n"
    status, headers, body = front.request("POST", None, "SELECT x FROM only_here")
    assert_error(status, headers, body, 60, 404)
    status, headers, body = front.request("POST", {"database": "no_such_db"}, "SELECT 1")
    assert_error(status, headers, body, 81, 404)


def test_replacing_merge_tree_final(front: Front) -> None:
    """ReplacingMergeTree keeps the highest version under FINAL, across separate inserts."""
    front.query("CREATE TABLE rmt (id String, v UInt64, val String) ENGINE = ReplacingMergeTree(v) ORDER BY id")
    for v, val in ((1, "one"), (3, "three"), (2, "two")):
        front.request("POST", {"query": "INSERT INTO rmt FORMAT JSONEachRow"}, json.dumps({"id": "k", "v": v, "val": val}))
    assert front.query("SELECT count() FROM rmt") == b"3\n"
    assert front.query("SELECT val, v FROM rmt FINAL") == b"three\t3\n"
    front.query("OPTIMIZE TABLE rmt FINAL")
    assert front.query("SELECT count() FROM rmt") == b"1\n"


def test_large_select_is_streamed_whole(front: Front) -> None:
    """A result of many blocks arrives complete and in order."""
    out = front.query("SELECT number, toString(number) FROM numbers(300000) FORMAT TabSeparated")
    lines = out.splitlines()
    assert len(lines) == 300000
    assert lines[0] == b"0\t0" and lines[-1] == b"299999\t299999"
    out = front.query("SELECT number FROM numbers(200000) FORMAT JSON")
    assert json.loads(out)["rows"] == 200000


def test_error_after_first_block_is_tagged_in_body(front: Front) -> None:
    """An error once data was sent comes in ClickHouse's tagged block; the stream is cut."""
    sql = "SELECT number, repeat('x', 100) FROM numbers(2000000) WHERE throwIf(number = 1500000) = 0"
    conn = front.conn()
    conn.request("POST", "/?max_block_size=10000", body=sql.encode())
    resp = conn.getresponse()
    assert resp.status == 200
    tag = resp.headers["X-ClickHouse-Exception-Tag"]
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    body = cut.value.partial
    conn.close()
    m = re.search(rb"\r\n__exception__\r\n([a-z]{16})\r\n(Code: 395\..*\n)(\d+) ([a-z]{16})\r\n__exception__\r\n$", body, re.S)
    assert m, body[-600:]
    assert m.group(1).decode() == tag == m.group(4).decode()
    assert int(m.group(3)) == len(m.group(2))
    # The same query waiting for its end gets a proper error status.
    status, headers, data = front.request("POST", {"wait_end_of_query": "1", "max_block_size": "10000"}, sql)
    assert_error(status, headers, data, 395, 500)


def test_concurrent_clients_and_a_held_stream(front: Front) -> None:
    """Clients run at once; one holding a streamed read open does not block others."""
    front.query("CREATE TABLE conc (w UInt8, i UInt32) ENGINE = MergeTree ORDER BY (w, i)")
    held = front.conn()
    held.request("POST", "/", body=b"SELECT number, repeat('y', 200) FROM numbers(5000000) FORMAT TabSeparated")
    held_resp = held.getresponse()
    assert held_resp.status == 200
    first = held_resp.read(1000)
    assert first.startswith(b"0\ty")

    errors: list[BaseException] = []

    def worker(w: int) -> None:
        """Insert and read back rows of its own."""
        try:
            for k in range(5):
                rows = "".join(f"{w}\t{k * 100 + i}\n" for i in range(100))
                status, _, body = front.request("POST", {"query": "INSERT INTO conc FORMAT TabSeparated"}, rows)
                assert status == 200, body
                got = front.query("SELECT count() FROM conc WHERE w = {w:UInt8}", param_w=str(w))
                assert got == f"{(k + 1) * 100}\n".encode()
        except BaseException as e:  # noqa: BLE001  (reported by the main thread)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client was blocked"
    assert not errors, errors
    assert time.monotonic() - started < 120
    assert front.query("SELECT count() FROM conc") == b"4000\n"
    held.close()  # the held read is abandoned; the front goes on
    assert front.query("SELECT 1") == b"1\n"


def test_response_compression(front: Front) -> None:
    """gzip and deflate responses when asked for, plain when compression is off."""
    sql = "SELECT number FROM numbers(1000)"
    plain = b"".join(b"%d\n" % i for i in range(1000))
    status, headers, body = front.request("POST", None, sql, {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    status, headers, body = front.request("POST", None, sql, {"Accept-Encoding": "deflate"})
    assert zlib.decompress(body) == plain
    status, headers, body = front.request("POST", {"enable_http_compression": "0"}, sql, {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") is None and body == plain


def test_post_without_length_and_empty_query(front: Front) -> None:
    """A POST with neither length nor chunks is 411; an empty query is a syntax error."""
    status, headers, body = front.request("POST", None, None)
    assert status in (400, 411)
    status, headers, body = front.request("POST", {"database": "default"}, b"")
    assert_error(status, headers, body, 62, 400)


def test_auth(tmp_path: Path) -> None:
    """Only the configured user gets in, by any one way; others get 516 and 403."""
    f = Front(tmp_path / "auth", "--user", "weft", "--password", "s3cret")
    try:
        assert f.request("POST", None, "SELECT 1", {"X-ClickHouse-User": "weft", "X-ClickHouse-Key": "s3cret"})[2] == b"1\n"
        basic = "Basic " + base64.b64encode(b"weft:s3cret").decode()
        assert f.request("POST", None, "SELECT 2", {"Authorization": basic})[2] == b"2\n"
        assert f.request("POST", {"user": "weft", "password": "s3cret"}, "SELECT 3")[2] == b"3\n"
        refused = [
            ({}, {}),
            ({}, {"X-ClickHouse-User": "weft", "X-ClickHouse-Key": "wrong"}),
            ({}, {"X-ClickHouse-User": "default", "X-ClickHouse-Key": ""}),
            ({"user": "weft", "password": "nope"}, {}),
            ({}, {"Authorization": "Basic " + base64.b64encode(b"weft:nope").decode()}),
            ({"user": "weft", "password": "s3cret"}, {"X-ClickHouse-User": "weft", "X-ClickHouse-Key": "s3cret"}),
            ({}, {"X-ClickHouse-User": "weft", "X-ClickHouse-Key": "s3cret", "Authorization": basic}),
        ]
        for params, headers in refused:
            status, h, body = f.request("POST", params, "SELECT 1", headers)
            assert_error(status, h, body, 516, 403)
        status, h, body = f.request("POST", {"user": "weft", "password": "bad"}, "SELECT 1")
        assert b"weft: Authentication failed: password is incorrect, or there is no user with such name" in body
    finally:
        assert f.stop() == 0


def test_restart_keeps_data_and_starts_fast(tmp_path: Path) -> None:
    """Data written before a SIGTERM is there after a restart on the same directory."""
    data = tmp_path / "persist"
    f = Front(data)
    f.query("CREATE TABLE kept (id UInt64, s String) ENGINE = ReplacingMergeTree ORDER BY id")
    f.request("POST", {"query": "INSERT INTO kept FORMAT JSONEachRow"}, '{"id":1,"s":"a"}\n{"id":2,"s":"b"}\n')
    assert f.stop() == 0
    g = Front(data)
    try:
        assert g.query("SELECT id, s FROM kept FINAL ORDER BY id") == b"1\ta\n2\tb\n"
        assert g.start_seconds < 20
    finally:
        assert g.stop() == 0


def test_prints_one_line_and_stops_on_sigint(tmp_path: Path) -> None:
    """The front prints exactly one line on stdout and exits 0 on SIGINT."""
    f = Front(tmp_path / "sigint")
    assert f.query("SELECT 1") == b"1\n"
    f.proc.send_signal(signal.SIGINT)
    assert f.proc.wait(timeout=30) == 0
    assert f.proc.stdout.read() == ""


def test_keep_alive_serves_several_requests(front: Front) -> None:
    """Several requests go over one connection, errors included."""
    conn = front.conn()
    for sql, expect in ((b"SELECT 1", 200), (b"SELECT nope", 404), (b"SELECT 2", 200)):
        conn.request("POST", "/", body=sql)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == expect
    conn.close()


def test_front_logs_errors_to_stderr(front: Front) -> None:
    """A failed query is logged on stderr."""
    front.request("POST", None, "SELECT * FROM logged_missing_table")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("logged_missing_table" in x for x in front.stderr_lines):
        time.sleep(0.05)
    assert any("logged_missing_table" in x for x in front.stderr_lines)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
