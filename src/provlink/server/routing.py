"""HTTP plumbing for the API: JSON in and out, Marquez-style errors, and the raw-path router.

Routes are matched on the *raw* request path, segment by segment, because dataset and
namespace names contain ``/`` and ``:`` (``models/churn/3``, ``sqlite:///x/mlflow.db``) and
clients send them percent-encoded as single segments, as Marquez expects.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from provlink.server.validation import parse_json

MAX_BODY = 32 * 1024 * 1024
MAX_PARAM = 16_384  # any query parameter; names are at most 4,096 characters


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: facets may carry lone surrogates, which UTF-8 cannot encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


class HttpError(Exception):
    """A client error, answered as Marquez does: ``{"code": ..., "message": ...}``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def response(self) -> AsciiJSONResponse:
        body: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return AsciiJSONResponse(body, status_code=self.status)


@dataclass(frozen=True, slots=True)
class Call:
    """One API request after routing: the request, its decoded path parameters, the store."""

    request: Request
    params: dict[str, str]
    store: Any

    def query(
        self, name: str, default: str | None = None, *, max_length: int = MAX_PARAM
    ) -> str | None:
        value = self.request.query_params.get(name, default)
        if value is not None and "\x00" in value:
            raise HttpError(400, f"query parameter {name!r} must not contain NUL")
        if value is not None and len(value) > max_length:
            raise HttpError(400, f"query parameter {name!r} is longer than {max_length} characters")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(400, f"query parameter {name!r} must be an integer") from None
        if value < minimum:
            raise HttpError(400, f"query parameter {name!r} must be >= {minimum}")
        return min(value, 1_000_000)

    async def store_call(self, method: str, *args: Any, **kw: Any) -> Any:
        return await run_in_threadpool(getattr(self.store, method), *args, **kw)


Handler = Callable[[Call], Awaitable[Response]]


def json_response(value: Any, status: int = 200) -> AsciiJSONResponse:
    return AsciiJSONResponse(value, status_code=status)


def found(value: Any, what: str) -> AsciiJSONResponse:
    if value is None:
        raise HttpError(404, f"{what} not found")
    return json_response(value)


async def read_json(request: Request, *, optional: bool = False) -> Any:
    """The body as JSON, refused (413) past :data:`MAX_BODY` before it is buffered.

    Non-finite numbers (``NaN``, ``Infinity``, ``1e999``) parse to floats here so that event
    validation can refuse them naming their field; ``optional`` allows an empty body (``None``).
    """
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise HttpError(413, f"request body larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpError(413, f"request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if optional and not body:
        return None
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = _gunzip(body)
    try:
        return parse_json(body)
    except (ValueError, RecursionError) as error:
        raise HttpError(400, f"malformed JSON: {str(error)[:200]}") from None


def _gunzip(body: bytes) -> bytes:
    """Inflate a gzip body (openlineage-python's ``compression: gzip``), bounded by MAX_BODY."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, MAX_BODY + 1)
    except zlib.error as error:
        raise HttpError(400, f"malformed gzip body: {error}") from None
    if len(data) > MAX_BODY:
        raise HttpError(413, f"request body larger than {MAX_BODY} bytes")
    return data


class Router:
    """Matches ``/api/v1/...`` raw paths against :data:`ROUTES`, decoding each segment once."""

    def __init__(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        self._routes = [
            (method, tuple(pattern.split("/")), handler) for method, pattern, handler in routes
        ]

    def match(self, method: str, raw_path: str) -> tuple[Handler, dict[str, str]]:
        segments = raw_path.split("/")
        allowed = False
        for route_method, pattern, handler in self._routes:
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] | None = {}
            for part, segment in zip(pattern, segments, strict=True):
                if part.startswith("{"):
                    if not segment:
                        params = None
                        break
                    params[part[1:-1]] = unquote(segment)  # type: ignore[index]
                elif part != segment:
                    params = None
                    break
            if params is None:
                continue
            if route_method != method and not (method == "HEAD" and route_method == "GET"):
                allowed = True
                continue
            if any("\x00" in value for value in params.values()):
                raise HttpError(400, "path parameters must not contain NUL")
            return handler, params
        raise HttpError(405 if allowed else 404, "method not allowed" if allowed else "not found")
