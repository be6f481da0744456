"""Structural validation of OpenLineage events (spec 2-0-2), naming the offending field.

Hand-written rather than driven by ``OpenLineage.json`` because ingestion is hot (thousands of
events a second) and because a client needs the *field* that is wrong, not a schema path.
Facet contents are not checked beyond "is an object": producers send custom facets, and
the store reads standard facets defensively. The whole event must have an RFC 8785 form (finite
numbers, integers that JSON's doubles hold, valid Unicode text), because the store keys it
by that form's hash (:mod:`provlink.canonical`).

>>> validate_event({"eventTime": "2024-01-01T00:00:00Z"})
Traceback (most recent call last):
...
provlink.errors.EventValidationError: producer: is required
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from provlink.canonical import json_number
from provlink.errors import EventValidationError

RUN_EVENT_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# RFC 3986: a scheme, then only URI characters (unreserved, reserved, %-escapes); the full
# grammar (authority, IPv6 literals) is not checked, see the differential test
_URI = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.-]*:"
    r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$"
)
# RFC 3339 date-time (the schema's format), before datetime's wider ISO 8601 parser
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_MAX_NAME = 4096
MAX_DEPTH = 64  # real events nest ~10 deep; ~1,000 would break Python's JSON on every read


def validate_event(event: Any) -> None:
    """Raise :class:`EventValidationError` unless ``event`` is a RunEvent, DatasetEvent or JobEvent.

    The kind is told by key: ``run`` makes a RunEvent, else ``dataset`` a DatasetEvent, else
    a JobEvent; a key sent as null counts as absent (as Marquez's Jackson reads it).
    """
    if not isinstance(event, dict):
        raise EventValidationError("event", "must be a JSON object")
    check_depth(event)
    _event_time(event)
    _uri(event, "producer", "producer")
    _uri(event, "schemaURL", "schemaURL")
    if event.get("run") is not None:
        _run_event(event)
    elif event.get("dataset") is not None:
        _dataset(event["dataset"], "dataset", facet_keys=("facets",))
    else:
        _job(_required(event, "job", "job"), "job")
        _datasets(event, "inputs", ("facets", "inputFacets"))
        _datasets(event, "outputs", ("facets", "outputFacets"))
    _i_json(event)


def _i_json(event: dict[str, Any]) -> None:
    """Refuse what RFC 8785 cannot canonicalise, naming the field (iterative: no depth limit)."""
    stack: list[tuple[Any, str]] = [(event, "")]
    while stack:
        value, field = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{field}.{key}" if field else key
                _unicode(key, path)
                stack.append((item, path))
        elif isinstance(value, list):
            stack.extend((item, f"{field}[{index}]") for index, item in enumerate(value))
        elif isinstance(value, str):
            _unicode(value, field)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not json_number(value):
                raise EventValidationError(
                    field, "is an integer no JSON number (IEEE double) holds; send it as text"
                )
        elif isinstance(value, float) and not math.isfinite(value):
            raise EventValidationError(field, "must be a finite number")


def _unicode(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EventValidationError(field, "must be valid Unicode text") from None


def check_depth(event: dict[str, Any]) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, naming the path.

    Iterative, so that a hostile depth cannot exhaust the interpreter's stack here either;
    a container's path is kept as a linked ``(parent, key)`` pair and spelt out only on error.
    """
    stack: list[tuple[Any, int, Any]] = [(event, 1, None)]
    while stack:
        value, depth, trail = stack.pop()
        if depth > MAX_DEPTH:
            raise EventValidationError(_spell(trail), f"nests deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, (dict, list)) and (item or depth >= MAX_DEPTH):
                stack.append((item, depth + 1, (trail, key)))


def _spell(trail: Any) -> str:
    keys = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    path = ""
    for key in reversed(keys):
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
    return path or "event"


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def parse_json(body: bytes | str) -> Any:
    """``json.loads`` that survives any nesting: too deep a document is parsed with each
    container nested beyond ``MAX_DEPTH + 1`` levels (one spare for a batch's array) replaced
    by ``[]``, so that :func:`check_depth` then refuses it *naming the path*, instead of the
    parser failing with a bare ``RecursionError``. The rewrite runs only on that failure."""
    try:
        return json.loads(body)
    except RecursionError:
        pass
    text = body.decode(json.detect_encoding(body)) if isinstance(body, bytes) else body
    cut, depth, start, parts, last = MAX_DEPTH + 2, 0, 0, [], 0
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth == cut:
                start = token.start()
        elif mark in "]}":
            if depth == cut:
                parts.append(text[last:start] + "[]")
                last = token.end()
            depth -= 1
    return json.loads("".join(parts) + text[last:])


def _run_event(event: dict[str, Any]) -> None:
    run = _required(event, "run", "run")
    if not isinstance(run, dict):
        raise EventValidationError("run", "must be an object")
    run_id = _required(run, "runId", "run.runId")
    if not isinstance(run_id, str) or not _UUID.match(run_id):
        raise EventValidationError("run.runId", "must be a UUID string")
    _facets(run, "run.facets")
    _job(_required(event, "job", "job"), "job")
    event_type = event.get("eventType")
    if event_type is not None and (
        not isinstance(event_type, str) or event_type not in RUN_EVENT_TYPES
    ):
        raise EventValidationError("eventType", f"must be one of {sorted(RUN_EVENT_TYPES)}")
    _datasets(event, "inputs", ("facets", "inputFacets"))
    _datasets(event, "outputs", ("facets", "outputFacets"))


def _job(job: Any, field: str) -> None:
    if not isinstance(job, dict):
        raise EventValidationError(field, "must be an object")
    _name(_required(job, "namespace", f"{field}.namespace"), f"{field}.namespace")
    _name(_required(job, "name", f"{field}.name"), f"{field}.name")
    _facets(job, f"{field}.facets")


def _datasets(event: dict[str, Any], key: str, facet_keys: tuple[str, ...]) -> None:
    items = event.get(key)
    if items is None:
        return
    if not isinstance(items, list):
        raise EventValidationError(key, "must be an array")
    for index, item in enumerate(items):
        _dataset(item, f"{key}[{index}]", facet_keys)


def _dataset(item: Any, field: str, facet_keys: tuple[str, ...]) -> None:
    if not isinstance(item, dict):
        raise EventValidationError(field, "must be an object")
    _name(_required(item, "namespace", f"{field}.namespace"), f"{field}.namespace")
    _name(_required(item, "name", f"{field}.name"), f"{field}.name")
    for key in facet_keys:
        _facets(item, f"{field}.{key}")


def _facets(owner: dict[str, Any], field: str) -> None:
    facets = owner.get(field.rsplit(".", 1)[-1])
    if facets is None:
        return
    if not isinstance(facets, dict):
        raise EventValidationError(field, "must be an object")
    for name, facet in facets.items():
        if not isinstance(facet, dict):
            raise EventValidationError(f"{field}.{name}", "must be an object")


def _required(owner: dict[str, Any], key: str, field: str) -> Any:
    value = owner.get(key)
    if value is None:
        raise EventValidationError(field, "is required")
    return value


def _name(value: Any, field: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise EventValidationError(field, "must be a non-empty string")
    if len(value) > _MAX_NAME:
        raise EventValidationError(field, f"must be at most {_MAX_NAME} characters")
    if "\x00" in value:
        raise EventValidationError(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EventValidationError(field, "must be valid Unicode text") from None


def _uri(owner: dict[str, Any], key: str, field: str) -> None:
    value = _required(owner, key, field)
    if not isinstance(value, str) or not _URI.match(value):
        raise EventValidationError(field, "must be a URI")


def _event_time(event: dict[str, Any]) -> None:
    value = _required(event, "eventTime", "eventTime")
    if not isinstance(value, str) or not _DATE_TIME.match(value) or parse_time(value) is None:
        raise EventValidationError(
            "eventTime", "must be an RFC 3339 date-time with an offset, e.g. 2024-05-01T12:00:00Z"
        )


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 timestamp in UTC; ``None`` when malformed, offset-less or out of range."""
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
