"""Weave's own trace server over HTTP: the reference of the differential test (tests/py/test_diff.py).

Run it with scripts/refserver, which first installs what it needs (requirements.txt here):

    scripts/refserver --db FILE --port PORT

From the outside in, a request meets:
  * the HTTP routes of weave's own route generator, weave/trace_server/reference/generate.py
    (`generate_routes`: the v1 API; `generate_v2_routes`: /v2/{entity}/{project}/...). weave
    0.52.38 no longer ships that file: scripts/refserver copies it from the 0.52.22 wheel into the
    virtual environment, and `route_generator` adapts the two names that changed since. The five
    /evaluation_runs routes are replaced by ones shaped as the published OpenAPI (`evaluation_runs`
    below): 0.52.22's list route takes no filters and its delete reads the ids from a body;
  * any HTTP Basic or Bearer credentials (not checked); none is a 401. Every request runs as one
    user, whose id is written into each `wb_user_id` field of the request;
  * weave's `ExternalTraceServer` adapter, with internal project ids base64("entity/project") as in
    weave's own tests, so refs are `weave:///entity/project/...` outside and internal ids inside;
  * weave 0.52.38's `SqliteTraceServer` on the file given by --db, with one fix: its
    `evaluation_run_list` fails (500) on any filter, as it hands a list to a `LiteralOperation`
    that takes one value (`fixed_sqlite_server`);
  * errors go through weave's own error registry (404/400 `{"reason": ...}`, anything unknown a
    500 `{"reason": "Internal server error"}`); request validation stays FastAPI's (422).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import inspect
import itertools
import json
import os
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from weave.trace_server import sqlite_trace_server
from weave.trace_server import trace_server_interface as tsi
from weave.trace_server.errors import _get_error_registry, handle_server_exception
from weave.trace_server.external_to_internal_trace_server_adapter import ExternalTraceServer, IdConverter
from weave.trace_server.service_interface import ServerInfoRes
from weave.utils.project_id import to_project_id

USER_ID = base64.b64encode(b"user").decode()
GENERATOR = os.path.join(sys.prefix, "weave-0.52.22-reference-generate.py")


# ------------------------------------------------------------------------------------ the store


class Base64Projects(IdConverter):
    """Internal project id = base64 of "entity/project"; run and user ids pass unchanged."""

    def ext_to_int_project_id(self, project_id: str) -> str:
        return base64.b64encode(project_id.encode()).decode()

    def int_to_ext_project_id(self, project_id: str) -> str | None:
        try:
            return base64.b64decode(project_id, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None

    def ext_to_int_run_id(self, run_id: str) -> str:
        return run_id

    int_to_ext_run_id = ext_to_int_user_id = int_to_ext_user_id = ext_to_int_run_id


def fixed_sqlite_server() -> type:
    """SqliteTraceServer whose evaluation_run_list puts one LiteralOperation per filter value, as
    weave's ClickHouse server does, instead of one holding the whole list (which pydantic rejects)."""
    cls = sqlite_trace_server.SqliteTraceServer
    src = textwrap.dedent(inspect.getsource(cls.evaluation_run_list))
    src, n = re.subn(
        r"tsi_query\.LiteralOperation\(\s*literal_=(req\.filter\.\w+)\s*\)",
        r"[tsi_query.LiteralOperation(literal_=v) for v in \1]",
        src,
    )
    if n != 3:
        raise RuntimeError(f"the evaluation_run_list fix matched {n} filters, not 3")
    scope = dict(vars(sqlite_trace_server))
    exec(compile(src, inspect.getsourcefile(cls) or "sqlite_trace_server", "exec"), scope)
    return type("FixedSqliteTraceServer", (cls,), {"evaluation_run_list": scope["evaluation_run_list"]})


def make_trace_server(db_path: str) -> tsi.FullTraceServerInterface:
    """The store on `db_path` (tables created if absent), as the routes see it."""
    internal = fixed_sqlite_server()(db_path)
    internal.setup_tables()
    return ExternalTraceServer(internal, Base64Projects())


# ------------------------------------------------------------------------------------ HTTP


def set_user(value: Any) -> None:
    """Writes USER_ID into every `wb_user_id` field of a request model, nested ones included."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name == "wb_user_id":
                value.wb_user_id = USER_ID
            else:
                set_user(getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            set_user(item)


def jsonl(items: Iterator[Any]) -> Iterator[str]:
    """JSON lines. The first one is made before returning, so a query that fails fails the request
    (with its status) rather than the stream."""

    def line(x: Any) -> str:
        return (x.model_dump_json() if isinstance(x, BaseModel) else json.dumps(x)) + "\n"

    try:
        first = line(next(items))
    except StopIteration:
        return iter(())
    return itertools.chain([first], map(line, items))


class Service:
    """What the generated routes call: `trace_server_interface.<method>(req)`, `server_info()`,
    `read_root()`. Methods get requests with the user set; streams come back as JSON lines."""

    def __init__(self, store: tsi.FullTraceServerInterface):
        self.trace_server_interface = self
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def call(req: Any) -> Any:
            set_user(req)
            res = method(req)
            return jsonl(res) if isinstance(res, Iterator) else res

        return call

    def server_info(self) -> ServerInfoRes:
        return ServerInfoRes(min_required_weave_python_version="0.0.1")

    def read_root(self) -> dict[str, str]:
        return {"status": "ok"}


def route_generator() -> types.ModuleType:
    """weave 0.52.22's reference/generate.py, loaded against weave 0.52.38: `trace_service` is
    gone (ServerInfoRes moved to `service_interface`; TraceService is only an annotation) and
    `OtelExport*` became `OTelExport*`."""
    with open(GENERATOR) as f:
        src = f.read()
    for old, new in [
        (
            "from weave.trace_server.trace_service import ServerInfoRes, TraceService",
            "from weave.trace_server.service_interface import ServerInfoRes\n"
            "from typing import Any as TraceService",
        ),
        ("tsi.OtelExport", "tsi.OTelExport"),
    ]:
        if old not in src:
            raise RuntimeError(f"the route generator no longer contains {old!r}")
        src = src.replace(old, new)
    module = types.ModuleType("weave_reference_generate")
    exec(compile(src, GENERATOR, "exec"), module.__dict__)
    return module


def authenticated(request: Request) -> Any:
    scheme = request.headers.get("authorization", "").split(" ", 1)[0].lower()
    if scheme not in ("basic", "bearer"):
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Basic"})


def evaluation_runs(router: APIRouter, service: Any) -> None:
    """The /evaluation_runs routes as the published OpenAPI has them (query arrays in the repeated
    form; FastAPI's default operation ids)."""
    tags = ["Evaluation Runs"]
    path = "/{entity}/{project}/evaluation_runs"

    @router.post(path, tags=tags)
    def evaluation_run_create(
        entity: str, project: str, body: tsi.EvaluationRunCreateBody, s: Any = service
    ) -> tsi.EvaluationRunCreateRes:
        pid = to_project_id(entity, project)
        return s.evaluation_run_create(tsi.EvaluationRunCreateReq(project_id=pid, **body.model_dump()))

    @router.get(path + "/{evaluation_run_id}", tags=tags)
    def evaluation_run_read(
        entity: str, project: str, evaluation_run_id: str, s: Any = service
    ) -> tsi.EvaluationRunReadRes:
        pid = to_project_id(entity, project)
        req = tsi.EvaluationRunReadReq(project_id=pid, evaluation_run_id=evaluation_run_id)
        return s.evaluation_run_read(req)

    @router.get(path, tags=tags, response_class=StreamingResponse)
    def evaluation_run_list(
        entity: str,
        project: str,
        evaluations: list[str] | None = Query(None),
        models: list[str] | None = Query(None),
        evaluation_run_ids: list[str] | None = Query(None),
        limit: int | None = None,
        offset: int | None = None,
        s: Any = service,
    ) -> StreamingResponse:
        given = (evaluations, models, evaluation_run_ids) != (None, None, None)
        req = tsi.EvaluationRunListReq(
            project_id=to_project_id(entity, project),
            filter=tsi.EvaluationRunFilter(
                evaluations=evaluations, models=models, evaluation_run_ids=evaluation_run_ids
            )
            if given
            else None,
            limit=limit,
            offset=offset,
        )
        return StreamingResponse(s.evaluation_run_list(req), media_type="application/jsonl")

    @router.delete(path, tags=tags)
    def evaluation_run_delete(
        entity: str, project: str, evaluation_run_ids: list[str] = Query(...), s: Any = service
    ) -> tsi.EvaluationRunDeleteRes:
        pid = to_project_id(entity, project)
        req = tsi.EvaluationRunDeleteReq(project_id=pid, evaluation_run_ids=evaluation_run_ids)
        return s.evaluation_run_delete(req)

    @router.post(path + "/{evaluation_run_id}/finish", tags=tags)
    def evaluation_run_finish(
        entity: str,
        project: str,
        evaluation_run_id: str,
        body: tsi.EvaluationRunFinishBody,
        s: Any = service,
    ) -> tsi.EvaluationRunFinishRes:
        pid = to_project_id(entity, project)
        fields = body.model_dump()
        req = tsi.EvaluationRunFinishReq(project_id=pid, evaluation_run_id=evaluation_run_id, **fields)
        return s.evaluation_run_finish(req)


def build_app(db_path: str) -> FastAPI:
    gen = route_generator()
    service = Service(make_trace_server(db_path))
    deps = gen.ServiceDependency(service_factory=lambda _auth: service, auth_dependency=authenticated)
    # Bodies without a Content-Type are read as JSON, as FastAPI did before its strict mode
    # (weave's v1 client sends none).
    app = FastAPI(strict_content_type=False)
    v1 = gen.generate_routes(APIRouter(), deps)
    for route in v1.routes:
        if getattr(route, "path", "") == "/otel/v1/trace":
            route.include_in_schema = False  # its body holds a protobuf message: no JSON schema
    app.include_router(v1)
    v2 = gen.generate_v2_routes(APIRouter(prefix="/v2"), deps)
    v2.routes[:] = [r for r in v2.routes if "/evaluation_runs" not in getattr(r, "path", "")]
    evaluation_runs(v2, Depends(deps.get_service()))
    app.include_router(v2)

    async def weave_error(_request: Request, exc: Exception) -> JSONResponse:
        e = handle_server_exception(exc)
        return JSONResponse(e.message, status_code=e.status_code)

    # One handler per registered class keeps the expected errors out of the 500 path.
    for cls in [*_get_error_registry().get_all_definitions(), Exception]:
        app.add_exception_handler(cls, weave_error)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="the SQLite file (created if absent)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6399)
    args = ap.parse_args()

    import uvicorn

    app = build_app(args.db)
    print(f"refserver: weave 0.52.38 on http://{args.host}:{args.port}, db {args.db}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
