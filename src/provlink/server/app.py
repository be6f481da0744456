"""The ASGI app: Marquez's ``/api/v1`` over a store, plus the lineage page at ``/``.

>>> app = create_app(open_store(), api_keys=["s3cret-key"])   # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from provlink.errors import EventValidationError
from provlink.server.auth import KeyRing
from provlink.server.guard import ASGIApp, Guard, HostPolicy
from provlink.server.ingest import iso
from provlink.server.lineage import NodeNotFound
from provlink.server.mlflow_webhook import PATH as WEBHOOK_PATH
from provlink.server.mlflow_webhook import MlflowWebhook
from provlink.server.mlflow_webhook import routes as webhook_routes
from provlink.server.routing import (
    AsciiJSONResponse,
    Call,
    Handler,
    HttpError,
    Router,
    found,
    json_response,
    read_json,
)
from provlink.server.validation import parse_time, validate_event
from provlink.server.witness import LEDGER_FACET, Witness
from provlink.server.witness import routes as witness_routes

MAX_BATCH = 10_000
MAX_QUERY = 4096  # no name is longer, so a longer search can match nothing
MAX_NODE_ID = 3 * 4096 + len("datasetField") + 3
STATIC = Path(__file__).parent / "static"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# lineage ------------------------------------------------------------------------------------
async def _observe(call: Call, events: list[dict[str, Any]]) -> None:
    """Hand ledger checkpoints carried by the events to the witness (server/witness.py)."""
    wit = call.request.app.state.witness
    if any(LEDGER_FACET in ((e.get("run") or {}).get("facets") or {}) for e in events):
        await run_in_threadpool(wit.observe, call.store, events)


async def post_lineage(call: Call) -> Response:
    event = await read_json(call.request)
    try:
        validate_event(event)
    except EventValidationError as error:
        raise HttpError(422, str(error), error.field) from None
    await call.store_call("ingest_many", [event], validated=True)
    await _observe(call, [event])
    return Response(status_code=201)


async def post_lineage_batch(call: Call) -> Response:
    """provlink's own batch endpoint (Marquez has none): stores valid events, lists bad ones."""
    events = await read_json(call.request)
    if not isinstance(events, list):
        raise HttpError(422, "body must be a JSON array of OpenLineage events", "(body)")
    if len(events) > MAX_BATCH:
        raise HttpError(413, f"at most {MAX_BATCH} events per batch")
    valid, errors = [], []
    for index, event in enumerate(events):
        try:
            validate_event(event)
            valid.append(event)
        except EventValidationError as error:
            errors.append({"index": index, "field": error.field, "message": error.message})
    flags = await call.store_call("ingest_many", valid, validated=True) if valid else []
    await _observe(call, [e for e, new in zip(valid, flags, strict=True) if new])
    stored = sum(flags)
    return json_response(
        {
            "received": len(events),
            "stored": stored,
            "duplicates": len(valid) - stored,
            "errors": errors,
        }
    )


def _node_id(call: Call) -> str:
    node_id = call.query("nodeId", max_length=MAX_NODE_ID)
    if not node_id:
        raise HttpError(400, "query parameter 'nodeId' is required")
    return node_id


async def get_lineage(call: Call) -> Response:
    node_id = _node_id(call)
    depth = call.integer("depth", 20)
    try:
        return json_response(await call.store_call("lineage", node_id, depth))
    except ValueError as error:
        raise HttpError(400, str(error)) from None
    except NodeNotFound:
        raise HttpError(404, f"node {node_id!r} not found") from None


async def get_column_lineage(call: Call) -> Response:
    node_id = _node_id(call)
    depth = call.integer("depth", 20)
    downstream = (call.query("withDownstream") or "false").lower() == "true"
    try:
        return json_response(await call.store_call("column_lineage", node_id, depth, downstream))
    except ValueError as error:
        raise HttpError(400, str(error)) from None
    except NodeNotFound:
        raise HttpError(404, f"node {node_id!r} not found") from None


def _time_param(call: Call, name: str) -> str | None:
    raw = call.query(name)
    if not raw:
        return None
    parsed = parse_time(raw.replace(" ", "+"))
    if parsed is None:
        raise HttpError(400, f"query parameter {name!r} must be an ISO-8601 date-time with offset")
    return iso(parsed)


async def list_events(call: Call) -> Response:
    direction = (call.query("sortDirection") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise HttpError(400, "sortDirection must be asc or desc")
    return json_response(
        await call.store_call(
            "list_events",
            before=_time_param(call, "before"),
            after=_time_param(call, "after"),
            ascending=direction == "asc",
            limit=call.integer("limit", 100),
            offset=call.integer("offset", 0),
        )
    )


# namespaces, datasets, jobs, runs, tags, search ----------------------------------------------
async def list_namespaces(call: Call) -> Response:
    return json_response(
        await call.store_call("namespaces", call.integer("limit", 100), call.integer("offset", 0))
    )


async def get_namespace(call: Call) -> Response:
    return found(await call.store_call("namespace", call.params["namespace"]), "namespace")


async def list_datasets(call: Call) -> Response:
    return json_response(
        await call.store_call(
            "datasets",
            call.params["namespace"],
            call.integer("limit", 100),
            call.integer("offset", 0),
        )
    )


async def get_dataset(call: Call) -> Response:
    p = call.params
    return found(await call.store_call("dataset", p["namespace"], p["dataset"]), "dataset")


async def delete_dataset(call: Call) -> Response:
    p = call.params
    return found(await call.store_call("delete_dataset", p["namespace"], p["dataset"]), "dataset")


async def list_dataset_versions(call: Call) -> Response:
    p = call.params
    result = await call.store_call(
        "dataset_versions",
        p["namespace"],
        p["dataset"],
        call.integer("limit", 100),
        call.integer("offset", 0),
    )
    return found(result, "dataset")


async def get_dataset_version(call: Call) -> Response:
    p = call.params
    result = await call.store_call("dataset_version", p["namespace"], p["dataset"], p["version"])
    return found(result, "dataset version")


def _tagger(add: bool, field: bool) -> Handler:
    async def handler(call: Call) -> Response:
        p = call.params
        result = await call.store_call(
            "tag_dataset",
            p["namespace"],
            p["dataset"],
            p["tag"],
            p["field"] if field else None,
            add,
        )
        return found(result, "dataset field" if field else "dataset")

    return handler


def _job_tagger(add: bool) -> Handler:
    async def handler(call: Call) -> Response:
        p = call.params
        return found(
            await call.store_call("tag_job", p["namespace"], p["job"], p["tag"], add), "job"
        )

    return handler


def _run_states(call: Call) -> list[str]:
    raw = call.request.query_params.getlist("lastRunStates")
    states = [s.strip().upper() for value in raw for s in value.split(",") if s.strip()]
    allowed = {"NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}
    if not set(states) <= allowed:
        raise HttpError(400, f"lastRunStates must be among {sorted(allowed)}")
    return states


async def list_jobs(call: Call) -> Response:
    return json_response(
        await call.store_call(
            "jobs",
            call.params.get("namespace"),
            _run_states(call),
            call.integer("limit", 100),
            call.integer("offset", 0),
        )
    )


async def get_job(call: Call) -> Response:
    p = call.params
    return found(await call.store_call("job", p["namespace"], p["job"]), "job")


async def delete_job(call: Call) -> Response:
    p = call.params
    return found(await call.store_call("delete_job", p["namespace"], p["job"]), "job")


async def list_job_runs(call: Call) -> Response:
    p = call.params
    result = await call.store_call(
        "job_runs", p["namespace"], p["job"], call.integer("limit", 100), call.integer("offset", 0)
    )
    return found(result, "job")


async def get_run(call: Call) -> Response:
    return found(await call.store_call("run", call.params["id"]), "run")


async def get_run_facets(call: Call) -> Response:
    kind = (call.query("type") or "run").lower()
    if kind not in ("run", "job"):
        raise HttpError(400, "type must be run or job")
    return found(await call.store_call("run_facets", call.params["id"], kind), "run")


async def list_tags(call: Call) -> Response:
    return json_response(
        await call.store_call("tags", call.integer("limit", 100), call.integer("offset", 0))
    )


async def put_tag(call: Call) -> Response:
    description = None
    body = await read_json(call.request, optional=True)
    if isinstance(body, dict) and isinstance(body.get("description"), str):
        description = body["description"].replace("\x00", "")[:MAX_QUERY]
    return json_response(await call.store_call("put_tag", call.params["tag"], description))


def _date_param(call: Call, name: str) -> str | None:
    raw = call.query(name)
    if not raw:
        return None
    if not _DATE.match(raw):
        raise HttpError(400, f"query parameter {name!r} must be a date YYYY-MM-DD")
    return raw


async def search(call: Call) -> Response:
    q = call.query("q", max_length=MAX_QUERY)
    if not q:
        raise HttpError(400, "query parameter 'q' is required")
    kind = call.query("filter")
    if kind is not None and kind.upper() not in ("DATASET", "JOB"):
        raise HttpError(400, "filter must be DATASET or JOB")
    sort = (call.query("sort") or "NAME").upper()
    if sort not in ("NAME", "UPDATE_AT"):
        raise HttpError(400, "sort must be NAME or UPDATE_AT")
    return json_response(
        await call.store_call(
            "search",
            q=q,
            kind=kind.upper() if kind else None,
            sort=sort,
            limit=call.integer("limit", 10),
            namespace=call.query("namespace") or None,
            before=_date_param(call, "before"),
            after=_date_param(call, "after"),
        )
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "lineage", post_lineage),
    ("POST", "lineage/batch", post_lineage_batch),
    ("GET", "lineage", get_lineage),
    ("GET", "column-lineage", get_column_lineage),
    ("GET", "events/lineage", list_events),
    ("GET", "namespaces", list_namespaces),
    ("GET", "namespaces/{namespace}", get_namespace),
    ("GET", "namespaces/{namespace}/datasets", list_datasets),
    ("GET", "namespaces/{namespace}/datasets/{dataset}", get_dataset),
    ("DELETE", "namespaces/{namespace}/datasets/{dataset}", delete_dataset),
    ("GET", "namespaces/{namespace}/datasets/{dataset}/versions", list_dataset_versions),
    ("GET", "namespaces/{namespace}/datasets/{dataset}/versions/{version}", get_dataset_version),
    ("POST", "namespaces/{namespace}/datasets/{dataset}/tags/{tag}", _tagger(True, False)),
    ("DELETE", "namespaces/{namespace}/datasets/{dataset}/tags/{tag}", _tagger(False, False)),
    (
        "POST",
        "namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}",
        _tagger(True, True),
    ),
    (
        "DELETE",
        "namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}",
        _tagger(False, True),
    ),
    ("GET", "namespaces/{namespace}/jobs", list_jobs),
    ("GET", "jobs", list_jobs),
    ("GET", "namespaces/{namespace}/jobs/{job}", get_job),
    ("DELETE", "namespaces/{namespace}/jobs/{job}", delete_job),
    ("POST", "namespaces/{namespace}/jobs/{job}/tags/{tag}", _job_tagger(True)),
    ("DELETE", "namespaces/{namespace}/jobs/{job}/tags/{tag}", _job_tagger(False)),
    ("GET", "namespaces/{namespace}/jobs/{job}/runs", list_job_runs),
    ("GET", "jobs/runs/{id}", get_run),
    ("GET", "jobs/runs/{id}/facets", get_run_facets),
    ("GET", "tags", list_tags),
    ("PUT", "tags/{tag}", put_tag),
    ("GET", "search", search),
]


def create_app(
    store: Any,
    *,
    api_keys: Iterable[str] | KeyRing | None = None,
    witness: Witness | None = None,
    allowed_hosts: Iterable[str] = (),
    webhook: MlflowWebhook | None = None,
) -> ASGIApp:
    """Build the app over ``store``; ``api_keys`` (``KEY`` or ``KEY:read``...) turn on auth;
    ``witness`` cosigns ledger checkpoints (default: the configured witness key);
    ``allowed_hosts`` are the ``Host`` names served besides loopback ones (see :mod:`guard`);
    ``webhook`` receives MLflow's registry webhooks (default: the configured secret and home).
    """
    keys = api_keys if isinstance(api_keys, KeyRing) else KeyRing.from_specs(api_keys or [])
    wit = witness or Witness()
    hook = webhook or MlflowWebhook()
    router = Router([*ROUTES, *witness_routes(wit), *webhook_routes(hook)])

    async def api(request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        try:
            # MLflow cannot send a bearer key: the webhook's HMAC is its authentication
            if keys and path.removeprefix("/api/v1/") != WEBHOOK_PATH:
                scope = "read" if request.method in ("GET", "HEAD") else "write"
                granted = keys.scopes(request.headers.get("authorization"))
                if granted is None:
                    return AsciiJSONResponse(
                        {
                            "code": 401,
                            "message": "missing or unknown API key (Authorization: Bearer <key>)",
                        },
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                if scope not in granted:
                    raise HttpError(403, f"this API key lacks the {scope!r} scope")
            handler, params = router.match(request.method, path.removeprefix("/api/v1/"))
            return await handler(Call(request, params, store))
        except HttpError as error:
            return error.response()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    app = Starlette(
        routes=[
            Route("/api/v1/{rest:path}", api, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
            Route("/", index),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    app.state.witness = wit
    return Guard(app, hosts=HostPolicy(allowed_hosts), open_api=not keys)
