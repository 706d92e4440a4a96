"""Runs ClickHouse's own HTTP server (and, if asked, its native TCP server) for tests.

chdb-core ships clickhouse-local as a library. ``SYSTEM START LISTEN QUERIES ALL`` makes it
start the listeners its configuration names, with ClickHouse's own handlers (those of
clickhouse-server: HTTP interface, native protocol, users and passwords); they live as long
as the query that started them runs. This launcher writes that configuration, runs that
query on a thread that never returns, and prints ``listening on http://127.0.0.1:PORT`` once
the HTTP interface answers an authenticated query.

Users (``users.xml``):

* ``--user`` / ``--password`` (default ``weft`` / ``weft``): every privilege. Tests and weft
  use this one.
* ``default``, with no password: the user clickhouse-local itself runs as, so it must
  exist, but it may only start listeners (and use table functions). A request with no
  credentials authenticates as it and can read or write nothing.

Clusters: ``--cluster NAME --shard HOST:TCP_PORT --shard HOST:TCP_PORT ...`` writes a
``remote_servers`` entry with one replica per shard (shards talk over the native protocol, so
each process of a cluster also needs ``--tcp-port``), authenticated as ``--user``, and the
macro ``shard`` (``--shard-index``, from 1).

Not clickhouse-server: no Keeper (so no ``ON CLUSTER``, no ``Replicated*`` engines), and the
configuration is read once, at start. Pinned to the chdb-core of requirements.txt; starting
listeners from clickhouse-local is not a documented chdb entry point.

Usage: ``python server.py --port 0 --data DIR [--tcp-port N] [--user U --password P]
[--cluster NAME --shard H:P ... --shard-index I]``. Exits on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from xml.sax.saxutils import escape

# Seconds to wait for the HTTP interface to answer.
START_TIMEOUT = 120

# Runs for about 31 years: the listeners live as long as this query.
SERVE_FOREVER = (
    "SYSTEM START LISTEN QUERIES ALL; "
    "SELECT sleepEachRow(1) FROM numbers(1000000000) "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 10000000 "
    "FORMAT Null"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_xml(args: argparse.Namespace, users: str) -> str:
    remote = ""
    if args.cluster:
        shards = "".join(
            "<shard><replica>"
            f"<host>{escape(host)}</host><port>{escape(port)}</port>"
            f"<user>{escape(args.user)}</user><password>{escape(args.password)}</password>"
            "</replica></shard>"
            for host, _, port in (s.rpartition(":") for s in args.shard)
        )
        remote = (
            f"<remote_servers><{args.cluster}>{shards}</{args.cluster}></remote_servers>"
            f"<macros><shard>{args.shard_index}</shard></macros>"
        )
    return (
        "<clickhouse>"
        f"<display_name>{args.name}</display_name>"
        "<listen_host>127.0.0.1</listen_host>"
        f"<http_port>{args.port}</http_port>"
        f"<tcp_port>{args.tcp_port}</tcp_port>"
        f"<user_directories><users_xml><path>{escape(users)}</path></users_xml></user_directories>"
        f"{remote}"
        + (
            "<query_log><database>system</database><table>query_log</table>"
            "<flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>"
            if args.query_log
            else ""
        )
        + "</clickhouse>"
    )


def users_xml(args: argparse.Namespace) -> str:
    def user(name: str, password: str, grants: str) -> str:
        return (
            f"<{name}><password>{escape(password)}</password>"
            "<networks><ip>::/0</ip></networks>"
            f"<profile>default</profile><quota>default</quota>{grants}</{name}>"
        )

    starter = (
        "<grants><query>GRANT SYSTEM LISTEN ON *.*</query>"
        "<query>GRANT CREATE TEMPORARY TABLE ON *.*</query></grants>"
    )
    return (
        "<clickhouse><users>"
        + user("default", "", starter)
        + user(args.user, args.password, "")
        + "</users><profiles><default/></profiles><quotas><default/></quotas></clickhouse>"
    )


def answers(url: str, user: str, password: str, name: str) -> bool:
    """Whether this process's server (its display name is `name`) answers an authenticated
    query at `url`, and not another one already on that port."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        url + "/?query=SELECT%201", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            ours = response.headers.get("X-ClickHouse-Server-Display-Name") == name
            return ours and response.read().strip() == b"1"
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="HTTP port (0: a free one)")
    parser.add_argument("--tcp-port", type=int, default=None, help="native port (0: a free one)")
    parser.add_argument("--data", required=True, help="data directory (kept between starts)")
    parser.add_argument("--user", default="weft")
    parser.add_argument("--password", default="weft")
    parser.add_argument(
        "--query-log", action="store_true", help="keep system.query_log (each query's own time)"
    )
    parser.add_argument("--cluster", help="name of a cluster of --shard entries")
    parser.add_argument("--shard", action="append", default=[], help="HOST:TCP_PORT of a shard")
    parser.add_argument("--shard-index", type=int, default=1, help="this process's shard, from 1")
    args = parser.parse_args()
    if args.cluster and not args.shard:
        parser.error("--cluster needs at least one --shard")
    if args.port == 0:
        args.port = free_port()
    if args.tcp_port == 0:
        args.tcp_port = free_port()
    tcp = args.tcp_port is not None
    if not tcp:
        args.tcp_port = 0  # no native listener

    args.name = f"weft-test-{os.getpid()}-{secrets.token_hex(4)}"
    data = os.path.abspath(args.data)
    os.makedirs(data, exist_ok=True)
    conf = tempfile.mkdtemp(prefix="weft-clickhouse-conf-")
    users = os.path.join(conf, "users.xml")
    with open(users, "w") as f:
        f.write(users_xml(args))
    with open(os.path.join(conf, "config.xml"), "w") as f:
        f.write(config_xml(args, users))

    # chdb opens a connection when imported, reading config.xml from the working directory:
    # import it elsewhere, then run the listening query from the configuration's directory.
    os.chdir("/")
    from chdb import _chdb  # noqa: PLC0415

    os.chdir(conf)
    failure: list[str] = []

    def serve() -> None:
        try:
            result = _chdb.query(SERVE_FOREVER, "TabSeparated", path=data)
            ended = result.error_message() if result.has_error() else "the listening query ended"
        except Exception as e:  # noqa: BLE001  (reported below, then the process ends)
            ended = str(e)
        failure.append(ended)

    def stop(*_: object) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=serve, daemon=True).start()

    url = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(url, args.user, args.password, args.name):
        if failure:
            print(f"ClickHouse did not start: {failure[0]}", file=sys.stderr, flush=True)
            return 1
        if time.monotonic() > deadline:
            print("ClickHouse did not answer in time", file=sys.stderr, flush=True)
            return 1
        time.sleep(0.05)
    if tcp:
        print(f"native on 127.0.0.1:{args.tcp_port}", flush=True)
    print(f"listening on {url}", flush=True)
    while not failure:
        time.sleep(0.5)
    print(f"ClickHouse stopped: {failure[0]}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
