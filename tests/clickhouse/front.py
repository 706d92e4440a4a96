"""A small ClickHouse-compatible HTTP front over chdb, for tests.

chdb is ClickHouse running inside this Python process. This front answers the
part of ClickHouse's HTTP interface (port 8123) that a client backend uses, so a
client written against a real server works against it unchanged:

* ``GET /ping``, ``GET /`` with no query string and ``GET /replicas_status``
  answer ``Ok.``.
* Queries on ``/`` by GET or POST, the text in the ``query`` URL parameter, in
  the body, or both (the parameter, a line break, then the body: for
  ``INSERT ... FORMAT X`` in the URL the body is the data). GET runs with
  ``readonly=2`` as on a server. Several statements in one request are refused
  with code 62, as over HTTP.
* An insert goes to the engine as one statement with its data inline, so the
  engine parses the data with the named input format, converts types as any
  insert does, honours the ``input_format_*`` settings, and writes it as one
  insert (one part for a body of moderate size). An insert with no data writes
  nothing and succeeds, as over HTTP.
* ``param_<name>`` URL parameters are bound to ``{name:Type}`` placeholders by
  chdb's own query parameters: the engine parses each value from ClickHouse's
  escaped text form (``['a','b']`` for an array, ``\\N`` for NULL) as a server
  does. Nothing is ever substituted into the query text here.
* ``database`` (or the ``X-ClickHouse-Database`` header) selects the current
  database; ``default_format`` (or the ``X-ClickHouse-Format`` header) the
  format of a query without ``FORMAT``, TabSeparated by default.
* Every other URL parameter is a setting, applied with ``SET`` to the chdb
  connection of that one request, so the engine checks it: an unknown name is
  ClickHouse's UNKNOWN_SETTING error, a bad value its parse error.
  ``wait_end_of_query`` and ``buffer_size`` delay the headers as on a server.
* One user, given on the command line (default ``default`` with an empty
  password), read from the ``X-ClickHouse-User``/``X-ClickHouse-Key``
  headers, HTTP Basic, or the ``user``/``password`` URL parameters. Mixing
  those ways, or wrong credentials, is refused with code 516 and HTTP 403.
* Errors: the HTTP status ClickHouse's handler gives the exception code, the
  ``X-ClickHouse-Exception-Code`` header, and the body
  ``Code: <n>. DB::Exception: <message>. (<NAME>) (version <v>)``.
* Responses are chunked (HTTP/1.1) with ``Content-Type`` after the output
  format and the ``X-ClickHouse-Format``, ``-Query-Id``, ``-Timezone``,
  ``-Summary``, ``-Server-Display-Name`` and ``-Exception-Tag`` headers. A
  query whose output format writes rows with no header or footer
  (TabSeparated, CSV, JSONEachRow, JSONCompactEachRow, RowBinary, Native...)
  is streamed from the engine block by block once its first MiB (or
  ``buffer_size``) is ready, so a large result is never held whole; an error
  after that is written into the body as ClickHouse 26 does (the tagged
  ``__exception__`` block, then the connection closes without the last
  chunk). Other formats (JSON, Pretty, ...WithNames...) are materialised
  first, because chdb formats each streamed block of those as a whole
  document.
* ``Content-Encoding`` gzip, deflate, xz or bz2 on a request body; gzip or
  deflate on a response when ``Accept-Encoding`` asks for it and
  ``enable_http_compression`` is on (on by default in 26.9).

Each request gets its own chdb connection to the one engine of the process,
so settings and the current database never leak between requests. chdb's
connections may be used from several threads at once, so queries run in
parallel as on a server: no lock is taken, and none is ever held while a
response is sent. The data lives in the ``--data`` directory, so a restarted
front sees the old data.

Not implemented: sessions (``session_id``, ``session_timeout``,
``session_check`` and ``close_session`` are accepted and ignored, so ``SET``
and temporary tables do not outlive a request); ``compress=1`` and
``decompress=1`` (ClickHouse's own block compression) and external data sent
as ``multipart/form-data``, refused with code 48; roles and quotas (``role``
and ``quota_key`` are ignored); ``query_id`` is echoed but not given to the
engine; progress headers; ``HEAD`` and ``OPTIONS``; response encodings other
than gzip and deflate. ``Content-Type`` and ``X-ClickHouse-Format`` follow a
light scan of the query text for its ``FORMAT`` clause (the body itself always
comes from the engine). Error messages are the engine's: a read-only error,
for instance, lacks the server's hint about GET.

Usage: ``python front.py --port 0 --data DIR [--user U --password P]``. It
prints ``listening on http://127.0.0.1:<port>`` once ready, logs errors to
stderr, and exits cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import json
import lzma
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qsl, urlsplit

import chdb  # noqa: F401  (loads the engine library the way chdb expects)
from chdb import _chdb

# Bytes of output a server holds before it sends the headers (its first buffer).
FIRST_BUFFER = 1 << 20
# Seconds an idle keep-alive connection is kept open.
KEEP_ALIVE = 30
# The longest request line read, as a server's default http_max_uri_size.
MAX_URI = 1 << 20

# URL parameters that are not settings (HTTPHandler's reserved names).
RESERVED_PARAMS = {
    "query", "database", "default_format", "compress", "decompress", "user", "password",
    "quota_key", "query_id", "stacktrace", "role", "buffer_size", "wait_end_of_query",
    "session_id", "session_timeout", "session_check", "client_protocol_version", "close_session",
}

# Error names grouped by the HTTP status ClickHouse's handler gives them
# (exceptionCodeToHTTPStatus); every other code is a 500. The codes are looked
# up in the engine at start.
STATUS_BY_NAME = {
    401: ["REQUIRED_PASSWORD"],
    403: ["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
          "ACCESS_DENIED"],
    400: ["BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
          "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE",
          "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
          "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
          "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST",
          "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
          "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
          "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"],
    404: ["UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
          "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
          "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
          "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"],
    413: ["QUERY_IS_TOO_LARGE"],
    501: ["NOT_IMPLEMENTED"],
    503: ["SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"],
    411: ["HTTP_LENGTH_REQUIRED"],
    408: ["TIMEOUT_EXCEEDED"],
    415: ["UNSUPPORTED_MEDIA_TYPE"],
}

# Output formats whose streamed blocks concatenate to exactly the whole output
# (checked against chdb: no header, footer or separator between blocks).
STREAMABLE = {
    name.lower()
    for name in (
        "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "Raw", "CSV", "JSONEachRow",
        "JSONLines", "NDJSON", "JSONL", "JSONStringsEachRow", "JSONCompactEachRow",
        "JSONCompactStringsEachRow", "RowBinary", "Native", "LineAsString", "RawBLOB",
        "CustomSeparated", "TSKV", "Null",
    )
}
# Words that make blocks carry more than rows (totals, extremes, an array of rows).
NOT_STREAMED_WORDS = {"totals", "extremes", "output_format_json_array_of_rows"}

# Output formats that are binary, for the Content-Type.
BINARY_FORMATS = {
    name.lower()
    for name in (
        "Native", "RowBinary", "RowBinaryWithNames", "RowBinaryWithNamesAndTypes",
        "RowBinaryWithDefaults", "Parquet", "Arrow", "ArrowStream", "ORC", "Avro", "Protobuf",
        "ProtobufSingle", "ProtobufList", "MsgPack", "CapnProto", "BSONEachRow", "Npy",
    )
}


class Failure(Exception):
    """A ClickHouse error to send to the client: its code and its whole message text."""

    def __init__(self, code: int, text: str):
        """Keep the code and the ``Code: ...`` text."""
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class Engine:
    """The chdb engine of this process and what the front learned from it at start."""

    path: str
    user: str
    password: str
    version: str = ""
    timezone: str = "UTC"
    hostname: str = ""
    formats: dict[str, str] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    compression_default: bool = True
    master: object = None

    def start(self) -> None:
        """Open the engine on the data directory and read its version, formats and codes."""
        self.master = _chdb.connect(self.path)
        row = self.text("SELECT version(), timezone(), hostName()").rstrip("\n").split("\t")
        self.version, self.timezone, self.hostname = row
        for line in self.text("SELECT name FROM system.formats WHERE is_output").splitlines():
            self.formats[line.lower()] = line
        wanted = {name: status for status, names in STATUS_BY_NAME.items() for name in names}
        for line in self.text(
            "SELECT number, errorCodeToName(number) FROM numbers(2000) "
            "WHERE errorCodeToName(number) != ''"
        ).splitlines():
            code, name = line.split("\t")
            self.names[int(code)] = name
            if name in wanted:
                self.statuses[int(code)] = wanted[name]
        default = self.text("SELECT value FROM system.settings WHERE name = 'enable_http_compression'")
        self.compression_default = default.strip() in ("1", "true")

    def text(self, sql: str) -> str:
        """Run a query of the front's own on the master connection; its TabSeparated text."""
        return self.master.query(sql, "TabSeparated").bytes().decode()

    def connect(self):
        """A new chdb connection for one request."""
        return _chdb.connect(self.path)

    def stop(self) -> None:
        """Close the master connection, which shuts the engine down."""
        if self.master is not None:
            self.master.close()
            self.master = None

    def failure(self, code: int, message: str) -> Failure:
        """A Failure raised by the front itself, worded as the engine words its errors."""
        name = self.names.get(code, "UNKNOWN_EXCEPTION")
        return Failure(code, f"Code: {code}. DB::Exception: {message}. ({name}) (version {self.version})")

    def from_engine(self, error: BaseException) -> Failure:
        """A Failure from an exception chdb raised."""
        text = str(error).strip()
        # chdb wraps some errors in themselves: keep the innermost one.
        nested = re.compile(r"Code: \d+\. DB::Exception: (Code: \d+\. DB::Exception: .*)\. \([A-Z0-9_]+\)$", re.S)
        while (m := nested.match(text)) is not None:
            text = re.sub(r" \(version [^()]*(\([^()]*\))?\)$", "", m.group(1))
        m = re.match(r"Code: (\d+)\.", text)
        code = int(m.group(1)) if m else 1001
        if not m:
            text = f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"
        if not re.search(r"\(version [^()]*(\([^()]*\))?\)$", text):
            text += f" (version {self.version})"
        return Failure(code, text)

    def status(self, code: int) -> int:
        """The HTTP status for an exception code."""
        return self.statuses.get(code, 500)


# ---------------------------------------------------------------------------
# A light scan of the query text, for its FORMAT clause and its statements.

TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?(\*/|\Z))
    | (?P<string>'(?:[^'\\]|\\.|'')*'?)
    | (?P<quoted>"(?:[^"\\]|\\.|"")*"?|`(?:[^`\\]|\\.|``)*`?)
    | (?P<heredoc>\$(?P<tag>[A-Za-z0-9_]*)\$.*?(\$(?P=tag)\$|\Z))
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<number>[0-9][0-9A-Za-z_.]*)
    | (?P<punct>.)
    """,
    re.S | re.X,
)


def tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """The meaningful tokens of SQL text: (kind, text, offset), without spaces and comments."""
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("space", "comment"):
            continue
        yield kind, m.group(), m.start()


@dataclass
class Shape:
    """What the scan saw in a query: its output FORMAT, whether it is clear, and more."""

    format: str | None = None
    clear: bool = True
    words: set[str] = field(default_factory=set)


def scan(text: str, formats: dict[str, str]) -> Shape:
    """Find the FORMAT clause of a query (at the top level) and the words it uses."""
    shape = Shape()
    depth = 0
    seq = list(tokens(text))
    for i, (kind, tok, _) in enumerate(seq):
        if kind == "punct":
            depth += tok in "([{"
            depth -= tok in ")]}"
            continue
        if kind != "word":
            continue
        low = tok.lower()
        shape.words.add(low)
        if low != "format":
            continue
        nxt = seq[i + 1] if i + 1 < len(seq) else None
        if nxt is not None and nxt[1] == "(":
            continue  # the format() table function
        name = None
        if nxt is not None and nxt[0] in ("word", "quoted"):
            name = nxt[1].strip("\"`") if nxt[0] == "quoted" else nxt[1]
        if depth == 0 and name is not None and name.lower() in formats and shape.format is None:
            shape.format = formats[name.lower()]
        else:
            shape.clear = False
    return shape


def statement_end(text: str) -> int:
    """The offset of the semicolon that ends the first statement, or -1."""
    for kind, tok, offset in tokens(text):
        if kind == "punct" and tok == ";":
            return offset
    return -1


def content_type(fmt: str) -> str:
    """The Content-Type a server sends for an output format."""
    low = fmt.lower()
    if "json" in low:
        return "application/json; charset=UTF-8"
    if low.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if low.startswith("csv"):
        header = "present" if "withnames" in low else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if low in BINARY_FORMATS:
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def quote_string(value: str) -> str:
    """A ClickHouse string literal holding value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_name(name: str) -> str:
    """A ClickHouse identifier in backquotes naming name."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def truthy(value: str) -> bool:
    """A URL flag as ClickHouse reads a Bool: 1, true, yes, on."""
    return value.strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------
# Compression of bodies.


def decompress(data: bytes, encoding: str, engine: Engine) -> bytes:
    """The request body without its Content-Encoding."""
    enc = encoding.strip().lower()
    try:
        if enc in ("", "identity", "none"):
            return data
        if enc in ("gzip", "x-gzip"):
            return zlib.decompress(data, 16 + zlib.MAX_WBITS)
        if enc == "deflate":
            return zlib.decompress(data)
        if enc in ("xz", "lzma"):
            return lzma.decompress(data)
        if enc in ("bz2", "bzip2"):
            return bz2.decompress(data)
    except (zlib.error, lzma.LZMAError, OSError, ValueError) as e:
        raise engine.failure(271, f"Cannot decompress the request body ({enc}): {e}") from None
    raise engine.failure(48, f"Content-Encoding '{encoding}' is not supported by this front")


class Encoder:
    """Compresses a response body with gzip or deflate, or passes it through."""

    def __init__(self, method: str | None, level: int):
        """Start a compressor for method (gzip, deflate or None)."""
        self.method = method
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(method or "")
        self.zip = zlib.compressobj(max(0, min(level, 9)), zlib.DEFLATED, wbits) if wbits else None

    def feed(self, data: bytes) -> bytes:
        """Compressed bytes for data (possibly empty until more comes)."""
        return self.zip.compress(data) if self.zip else data

    def flush(self, final: bool = True) -> bytes:
        """The rest of the compressed stream; final ends it, else a sync point."""
        if not self.zip:
            return b""
        return self.zip.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def choose_encoding(accept: str) -> str | None:
    """The response encoding to use for an Accept-Encoding header, if any."""
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    for method in ("gzip", "deflate"):
        if method in offered:
            return method
    return None


# ---------------------------------------------------------------------------
# The HTTP handler.


@dataclass
class Request:
    """What one HTTP request asks, once its URL, headers and body are read."""

    method: str
    params: list[tuple[str, str]]
    headers: object
    body: bytes

    def first(self, name: str, default: str = "") -> str:
        """The first URL parameter of that name."""
        for key, value in self.params:
            if key == name:
                return value
        return default

    def has(self, name: str) -> bool:
        """Whether the URL has a parameter of that name."""
        return any(key == name for key, _ in self.params)


@dataclass
class Plan:
    """How a query runs: its SQL, parameters, settings and output handling."""

    sql: bytes
    params: dict[str, str]
    settings: list[tuple[str, str]]
    database: str
    default_format: str
    output_format: str | None
    stream: bool
    hold: int | None
    encoding: str | None
    level: int


class Handler(BaseHTTPRequestHandler):
    """Serves ClickHouse's HTTP interface for one connection."""

    protocol_version = "HTTP/1.1"
    engine: Engine  # set on the class by main()

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line and a Date header (no Server header, as ClickHouse)."""
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        """Stay quiet about each request; errors are logged where they happen."""

    def handle_one_request(self) -> None:
        """Read the next request (waiting at most KEEP_ALIVE seconds, URI up to 1 MiB) and serve it."""
        self.connection.settimeout(KEEP_ALIVE)
        try:
            self.raw_requestline = self.rfile.readline(MAX_URI + 1)
        except TimeoutError:
            self.close_connection = True
            return
        if len(self.raw_requestline) > MAX_URI:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        method()
        self.wfile.flush()

    def do_GET(self) -> None:
        """Serve a GET: a health check or a read-only query."""
        self.serve()

    def do_POST(self) -> None:
        """Serve a POST: any query."""
        self.serve()

    def serve(self) -> None:
        """Answer one request, counted among those in flight."""
        self.server.track(self.connection, +1)
        try:
            self.answer()
        finally:
            self.server.track(self.connection, -1)

    def answer(self) -> None:
        """Answer one request, turning any Failure into ClickHouse's error response."""
        self.connection.settimeout(None)
        started = time.monotonic()
        self.tag = "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))
        self.query_id = self.headers.get("X-ClickHouse-Query-Id", "") or str(uuid.uuid4())
        parts = urlsplit(self.path)
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_failure(self.engine.failure(36, "Malformed chunked request body"), started)
            return
        except Failure as failure:
            self.close_connection = True
            self.send_failure(failure, started)
            return
        if parts.path in ("/ping", "/replicas_status") or (parts.path == "/" and not parts.query and not body):
            if self.command == "GET":
                self.send_plain(200, b"Ok.\n")
                return
        if parts.path != "/":
            self.send_plain(404, f"There is no handle {parts.path}\n\nUse / or /ping for health checks.\n".encode())
            return
        request = Request(self.command, parse_qsl(parts.query, keep_blank_values=True), self.headers, body)
        if request.has("query_id"):
            self.query_id = request.first("query_id")
        try:
            self.authenticate(request)
            plan = self.plan(request)
            self.execute(plan, started)
        except Failure as failure:
            self.send_failure(failure, started)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- reading the request ---------------------------------------------------

    def read_body(self) -> bytes:
        """The request body, from Content-Length or chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("the body ended inside a chunk")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            data = b"".join(chunks)
        elif self.headers.get("Content-Length") is not None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
        elif self.command == "POST":
            raise self.engine.failure(
                381,
                "The Transfer-Encoding is not chunked and there is no Content-Length header for POST request",
            )
        else:
            data = b""
        return decompress(data, self.headers.get("Content-Encoding", ""), self.engine)

    def authenticate(self, request: Request) -> None:
        """Check the credentials as ClickHouse does, refusing with code 516."""
        engine = self.engine
        user = self.headers.get("X-ClickHouse-User", "")
        password = self.headers.get("X-ClickHouse-Key", "")
        basic = self.headers.get("Authorization")
        in_params = request.has("user") or request.has("password")

        def mixed(first: str, second: str) -> Failure:
            """The error for two ways of authenticating at once."""
            return engine.failure(
                516, f"Invalid authentication: it is not allowed to use {first} and {second} simultaneously"
            )

        if user or password:
            if not user:
                raise engine.failure(516, "Got an empty user name from X-ClickHouse HTTP headers")
            if basic is not None:
                raise mixed("X-ClickHouse HTTP headers", "Authorization HTTP header")
            if in_params:
                raise mixed("X-ClickHouse HTTP headers", "authentication via parameters")
        elif basic is not None:
            if in_params:
                raise mixed("Authorization HTTP header", "authentication via parameters")
            scheme, _, info = basic.strip().partition(" ")
            if scheme.lower() != "basic":
                raise engine.failure(
                    516, f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported"
                )
            try:
                decoded = base64.b64decode(info.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise engine.failure(516, "Invalid authentication: malformed Basic credentials") from None
            user, _, password = decoded.partition(":")
            if not user:
                raise engine.failure(516, "Got an empty user name from Authorization HTTP header")
        else:
            user = request.first("user", "default")
            password = request.first("password", "")
            if not user:
                raise engine.failure(516, "Got an empty user name from authentication via parameters")
        good = secrets.compare_digest(user.encode(), engine.user.encode())
        good &= secrets.compare_digest(password.encode(), engine.password.encode())
        if not good:
            raise engine.failure(
                516, f"{user}: Authentication failed: password is incorrect, or there is no user with such name"
            )

    def plan(self, request: Request) -> Plan:
        """Work out the SQL, parameters, settings and output handling of a query."""
        engine = self.engine
        for flag in ("compress", "decompress"):
            if truthy(request.first(flag, "0")):
                raise engine.failure(48, f"The '{flag}' parameter (ClickHouse's own compression) is not supported by this front")
        if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            raise engine.failure(48, "External data (multipart/form-data) is not supported by this front")
        query = request.first("query")
        sql = (query.encode() + b"\n" + request.body) if query else request.body
        if not sql.strip():
            raise engine.failure(62, "Empty query")
        params: dict[str, str] = {}
        settings: list[tuple[str, str]] = []
        for key, value in request.params:
            if key.startswith("param_"):
                params.setdefault(key[len("param_"):], value)
            elif key and key not in RESERVED_PARAMS:
                settings.append((key, value))
        setting = {key: value for key, value in settings}
        database = self.headers.get("X-ClickHouse-Database", "") or request.first("database")
        default_format = self.headers.get("X-ClickHouse-Format", "") or request.first("default_format") or "TabSeparated"
        if default_format.lower() not in engine.formats:
            raise engine.failure(73, f"Unknown format {default_format}")
        wait = truthy(request.first("wait_end_of_query", setting.get("http_wait_end_of_query", "0")))
        buffer_size = request.first("buffer_size", setting.get("http_response_buffer_size", "0"))
        hold = None if wait else max(int(buffer_size) if buffer_size.isdigit() else 0, FIRST_BUFFER)
        compression = setting.get("enable_http_compression")
        compress = truthy(compression) if compression is not None else engine.compression_default
        encoding = choose_encoding(self.headers.get("Accept-Encoding", "")) if compress else None
        level = setting.get("http_zlib_compression_level", "3")
        return Plan(
            sql=sql,
            params=params,
            settings=settings,
            database=database,
            default_format=engine.formats[default_format.lower()],
            output_format=None,
            stream=False,
            hold=hold,
            encoding=encoding,
            level=int(level) if level.lstrip("-").isdigit() else 3,
        )

    # -- running the query -------------------------------------------------------

    def prepare(self, conn, plan: Plan) -> None:
        """Apply the request's settings and database to its own connection."""
        statements = ["SET throw_if_no_data_to_insert = 0"]
        if self.command != "POST":
            statements.append("SET readonly = 2")
        if plan.settings:
            statements.append("SET " + ", ".join(f"{quote_name(k)} = {quote_string(v)}" for k, v in plan.settings))
        if plan.database:
            statements.append("USE " + quote_name(plan.database))
        for statement in statements:
            conn.query(statement, "TabSeparated")

    def classify(self, conn, plan: Plan) -> bool:
        """Refuse several statements; decide the output format and streaming. True if it has output."""
        engine = self.engine
        kind = conn.classify_query(plan.sql)
        if kind["statement_count"] > 1:
            text = plan.sql.decode(errors="replace")
            at = statement_end(text)
            line = text.count("\n", 0, at) + 1
            column = at - (text.rfind("\n", 0, at) + 1) + 1
            raise engine.failure(
                62,
                f"Syntax error (Multi-statements are not allowed): failed at position {at + 1} "
                f"(line {line}, col {column}): {text[at:at + 100]}",
            )
        reads = kind["query_class"] == _chdb.query_class.READ_ONLY
        if not reads:
            return False
        shape = scan(plan.sql.decode(errors="replace"), engine.formats)
        plan.output_format = shape.format or plan.default_format
        setting_names = {key.lower() for key, _ in plan.settings}
        plan.stream = (
            shape.clear
            and plan.output_format.lower() in STREAMABLE
            and not (shape.words | setting_names) & NOT_STREAMED_WORDS
        )
        return True

    def execute(self, plan: Plan, started: float) -> None:
        """Run the query on a connection of its own and send the answer."""
        engine = self.engine
        conn = engine.connect()
        try:
            try:
                self.prepare(conn, plan)
                has_output = self.classify(conn, plan)
                if plan.stream:
                    handle = conn.send_query(plan.sql, plan.default_format, params=plan.params)
                    self.send_stream(conn, handle, plan, started)
                    return
                result = conn.query(plan.sql, plan.default_format, params=plan.params)
                data = result.bytes()
                summary = summarize(result, len(data), started)
            except RuntimeError as error:
                raise engine.from_engine(error) from None
        finally:
            conn.close()
        self.send_result(plan, has_output, data, summary)

    # -- writing the answer -----------------------------------------------------

    def common_headers(self, summary: dict) -> None:
        """Headers every query answer carries."""
        self.send_header("X-ClickHouse-Server-Display-Name", self.engine.hostname)
        self.send_header("X-ClickHouse-Query-Id", self.query_id)
        self.send_header("X-ClickHouse-Timezone", self.engine.timezone)
        self.send_header("X-ClickHouse-Exception-Tag", self.tag)
        self.send_header("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":")))
        self.send_header("Keep-Alive", f"timeout={KEEP_ALIVE}")

    def begin(self, status: int, ctype: str, fmt: str | None, summary: dict, encoding: str | None, extra: dict | None = None) -> bool:
        """Send the status line and headers; True when the body is chunked."""
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if fmt:
            self.send_header("X-ClickHouse-Format", fmt)
        self.common_headers(summary)
        self.end_headers()
        self.chunked = chunked
        return chunked

    def write(self, data: bytes) -> None:
        """Send part of the body (as a chunk when chunked)."""
        if not data:
            return
        if self.chunked:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.wfile.write(data)

    def end(self) -> None:
        """End the body."""
        if self.chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_result(self, plan: Plan, has_output: bool, data: bytes, summary: dict) -> None:
        """Send a materialised result."""
        fmt = plan.output_format if has_output else None
        ctype = content_type(fmt) if fmt else "text/plain; charset=UTF-8"
        encoder = Encoder(plan.encoding, plan.level)
        self.begin(200, ctype, fmt, summary, plan.encoding)
        self.write(encoder.feed(data) + encoder.flush())
        self.end()

    def send_stream(self, conn, handle, plan: Plan, started: float) -> None:
        """Stream a result: hold its first bytes (so early errors get a status), then relay blocks."""
        engine = self.engine
        held: list[bytes] = []
        size = 0
        rows = [0, 0]
        done = False

        def next_block() -> bytes | None:
            """The next block of output from the engine, or None at the end."""
            result = conn.streaming_fetch_result(handle)
            if result is None:
                return None
            data = result.bytes()
            if not data and result.rows_read() == 0:
                return None
            rows[0] += result.rows_read()
            rows[1] += result.storage_rows_read() if hasattr(result, "storage_rows_read") else 0
            return data

        try:
            while plan.hold is None or size < plan.hold:
                block = next_block()
                if block is None:
                    done = True
                    break
                held.append(block)
                size += len(block)
        except RuntimeError as error:
            raise engine.from_engine(error) from None
        summary = {
            "read_rows": str(rows[1]), "read_bytes": "0", "written_rows": "0", "written_bytes": "0",
            "total_rows_to_read": str(rows[1]), "result_rows": str(rows[0]), "result_bytes": str(size),
            "elapsed_ns": str(int((time.monotonic() - started) * 1e9)), "memory_usage": "0",
        }
        encoder = Encoder(plan.encoding, plan.level)
        self.begin(200, content_type(plan.output_format), plan.output_format, summary, plan.encoding)
        try:
            for block in held:
                self.write(encoder.feed(block))
            held.clear()
            while not done:
                try:
                    block = next_block()
                except RuntimeError as error:
                    failure = engine.from_engine(error)
                    log(f"query failed after its first block: {failure.text}")
                    self.write(encoder.feed(self.exception_block(failure)) + encoder.flush(final=False))
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if block is None:
                    break
                self.write(encoder.feed(block))
            self.write(encoder.flush())
            self.end()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            try:
                conn.streaming_cancel_query(handle)
            except RuntimeError:
                pass

    def exception_block(self, failure: Failure) -> bytes:
        """ClickHouse's tagged block for an error after the headers were sent."""
        message = failure.text.encode() + b"\n"
        tag = self.tag.encode()
        return (
            b"\r\n__exception__\r\n" + tag + b"\r\n" + message
            + str(len(message)).encode() + b" " + tag + b"\r\n__exception__\r\n"
        )

    def send_failure(self, failure: Failure, started: float) -> None:
        """Send an error response the way ClickHouse does."""
        if failure.code != 516:
            log(f"query failed: {failure.text}")
        summary = {
            "read_rows": "0", "read_bytes": "0", "written_rows": "0", "written_bytes": "0",
            "total_rows_to_read": "0", "result_rows": "0", "result_bytes": "0",
            "elapsed_ns": str(int((time.monotonic() - started) * 1e9)), "memory_usage": "0",
        }
        extra = {"X-ClickHouse-Exception-Code": str(failure.code)}
        self.begin(self.engine.status(failure.code), "text/plain; charset=UTF-8", None, summary, None, extra)
        self.write(failure.text.encode() + b"\n")
        self.end()

    def send_plain(self, status: int, body: bytes) -> None:
        """Send a small plain-text answer with a Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", f"timeout={KEEP_ALIVE}")
        self.end_headers()
        self.wfile.write(body)


def summarize(result, result_bytes: int, started: float) -> dict:
    """The X-ClickHouse-Summary of a finished query."""
    return {
        "read_rows": str(result.storage_rows_read()),
        "read_bytes": str(result.storage_bytes_read()),
        "written_rows": str(result.rows_written()),
        "written_bytes": str(result.bytes_written()),
        "total_rows_to_read": str(result.storage_rows_read()),
        "result_rows": str(result.rows_read()),
        "result_bytes": str(result_bytes),
        "elapsed_ns": str(int((time.monotonic() - started) * 1e9)),
        "memory_usage": "0",
    }


def log(message: str) -> None:
    """Write one line to stderr."""
    print(message.replace("\n", " "), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Start and stop.


class Server(ThreadingHTTPServer):
    """A threading HTTP server whose request threads do not block exit."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # a server's listen backlog, so bursts of connections wait instead of failing

    def __init__(self, *args, **kwargs):
        """Start with no request in flight."""
        super().__init__(*args, **kwargs)
        self.in_flight: dict[socket.socket, int] = {}
        self.changed = threading.Condition()

    def track(self, sock: socket.socket, step: int) -> None:
        """Count a request on a socket in (+1) or out (-1)."""
        with self.changed:
            count = self.in_flight.get(sock, 0) + step
            if count:
                self.in_flight[sock] = count
            else:
                self.in_flight.pop(sock, None)
            self.changed.notify_all()

    def drain(self, seconds: float) -> None:
        """Cut the connections of requests in flight and wait for them to end, at most seconds."""
        with self.changed:
            for sock in list(self.in_flight):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.changed.wait_for(lambda: not self.in_flight, timeout=seconds)

    def handle_error(self, request, client_address) -> None:
        """Log an unexpected error of a request thread on one line."""
        kind, value = sys.exc_info()[:2]
        if kind in (BrokenPipeError, ConnectionResetError, TimeoutError, socket.timeout):
            return
        log(f"request from {client_address[0]} failed: {kind.__name__}: {value}")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, open the engine, serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="ClickHouse HTTP front over chdb, for tests")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--data", required=True, help="directory that holds the data")
    parser.add_argument("--user", default="default", help="the one user name accepted")
    parser.add_argument("--password", default="", help="its password")
    args = parser.parse_args(argv)

    engine = Engine(path=args.data, user=args.user, password=args.password)
    engine.start()
    Handler.engine = engine
    server = Server((args.host, args.port), Handler)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()
    # Queries still running end when their clients are cut off; then the engine closes.
    server.drain(10)
    engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
