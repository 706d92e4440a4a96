"""Schema-driven HTTP test: every operation of weft's own `/openapi.json`, with generated valid
and invalid requests, against a live server with a valid key.

For each response: no 5xx, the status is one the document lists for the operation, the
content type and headers are documented ones, and the body matches the documented schema (so
every 4xx carries its documented error body; the streamed lists are read line by line). Data
the schema allows is accepted and data it refuses is refused, invalid keys get 401 or 403, and
methods the document does not list are refused.

A few examples per operation by default (a smoke run of seconds); set `WEFT_SCHEMA_EXAMPLES`
(for example to 200) for a thorough run.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import pathlib
import re
import urllib.request
from urllib.parse import unquote
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from conftest import Weft, create_key, start_weft

EXAMPLES = int(os.environ.get("WEFT_SCHEMA_EXAMPLES", "5"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
    use_after_free,
    ensure_resource_availability,
]

# The key's entity: the `entity` path parameter and the entity part of every `project_id` are
# set to it so requests reach validation and the store (any other entity is a plain 403).
ENTITY = "acme"

# A client address per case (see `server`), so failed authentications stay under the limit.
ADDRESSES = (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in itertools.count(1))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weft]:
    """One weft for the module, with a key scoped to `acme`."""
    data_dir = tmp_path_factory.mktemp("schema") / "data"
    data_dir.mkdir()
    key = create_key(data_dir, "--entity", ENTITY)
    # The test client counts as a proxy, so each case can name a client address of its own:
    # the `ignored_auth` check sends invalid keys for every operation, and weft answers an
    # address's failed attempts past its limit with 429 rather than 401.
    srv = start_weft(data_dir, key, {"WEFT_TRUSTED_PROXIES": "127.0.0.1"})
    yield srv
    srv.proc.terminate()
    srv.proc.wait(timeout=15)


SOURCE = pathlib.Path(__file__).resolve().parents[2] / "src" / "http" / "openapi.json"

# Loaded from the source tree at collection time, so each operation is its own test item; the
# last test checks the live server serves this very document. (A schema loaded from the running
# server through a fixture would be equivalent, but that loader breaks on this pytest.)
# The smoke run generates a few cases per operation (both valid and invalid ones); the full run
# adds the coverage phase (boundary values and every documented constraint violated in turn).
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": EXAMPLES > 5}}})
schema = schemathesis.openapi.from_path(SOURCE, config=CONFIG)


@schemathesis.deserializer("application/jsonl")
def jsonl(ctx, response):
    """Streamed lists: one JSON value a line, validated as the documented array."""
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]


PROJECT_ID = re.compile(r"[^/]+/[^/]+\Z")


def in_scope(value, project=None):
    """Points every well-formed `project_id` of a body at a project of the key's entity (the
    generated project name, or `project` when given), so requests get past the access check to
    validation and the store. Malformed ids and values of other types are left as generated
    (they are the invalid cases)."""
    if isinstance(value, dict):
        return {
            k: f"{ENTITY}/{project or v.split('/', 1)[1]}"
            if k == "project_id" and isinstance(v, str) and PROJECT_ID.match(v)
            else in_scope(v, project)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [in_scope(v, project) for v in value]
    return value


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The smoke run is reproducible; the full run explores new cases each time.
    derandomize=EXAMPLES <= 5,
    # Large generated bodies and slow writes are expected here, not generator problems.
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_matches_the_schema(case: schemathesis.Case, server: Weft) -> None:
    # Keep v2 requests inside the key's entity, so they reach validation and the store rather
    # than all stopping at the 403 of the access check.
    if case.path_parameters and "entity" in case.path_parameters:
        case.path_parameters["entity"] = ENTITY
    if isinstance(case.body, (dict, list)):
        # A v2 body's `project_id`s must name the path's project.
        # (Path parameters are held percent-encoded, as they are sent.)
        project = (case.path_parameters or {}).get("project")
        case.body = in_scope(case.body, unquote(project) if isinstance(project, str) else None)
        # So must the object and version a body names beside the path's.
        if isinstance(case.body, dict):
            for name in ("object_id", "digest"):
                value = (case.path_parameters or {}).get(name)
                if isinstance(case.body.get(name), str) and isinstance(value, str):
                    case.body[name] = unquote(value)
    auth = base64.b64encode(f"api:{server.key}".encode()).decode()
    # A table made from row digests needs those rows stored, or it is a 400 (tests/api/tables.rs);
    # generated digests never are, so a valid body cannot be told to be accepted there.
    excluded = [positive_data_acceptance] if case.operation.path == "/table/create_from_digests" else []
    case.call_and_validate(
        base_url=server.base,
        headers={"Authorization": f"Basic {auth}", "X-Forwarded-For": next(ADDRESSES)},
        checks=[c for c in CHECKS if c not in excluded],
        timeout=30,
    )


def test_served_document_is_the_tested_one(server: Weft) -> None:
    """The document under test is the one the server serves."""
    with urllib.request.urlopen(server.url("/openapi.json")) as r:
        served = json.load(r)
    assert served == json.loads(SOURCE.read_text())
