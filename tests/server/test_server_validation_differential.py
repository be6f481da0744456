"""The server's ``validate_event`` against the official OpenLineage JSON Schema (2-0-2).

Over generated events (valid ones and mutations of them) the two must agree on accept/reject,
except where they differ on purpose. Each deliberate difference is named in ``DIFFERENCES``
with the direction it goes, detected by a predicate over the event, and pinned by an example
in ``test_each_named_difference_is_real``. A disagreement no named difference explains fails
the test with both verdicts.

The schema side runs with format checking (``date-time`` needs rfc3339-validator, ``uri``
rfc3986-validator, both dev dependencies). Without ``../shared/spec`` the generated
comparison skips (the schema is its oracle); the examples still assert the server's verdicts.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provlink.canonical import json_number
from provlink.errors import EventValidationError
from provlink.server.validation import _URI, _UUID, parse_time, validate_event
from tests.conformance import OPENLINEAGE, require_spec, spec_available

LAXER, STRICTER = "server accepts, schema rejects", "server rejects, schema accepts"

# name -> (direction(s), why)
DIFFERENCES: dict[str, tuple[frozenset[str], str]] = {
    "facet-contents": (frozenset({LAXER}), "facets are only checked to be objects: producers send"
                       " custom facets and the store reads standard ones defensively, so a facet"
                       " without _producer/_schemaURL (or a non-boolean _deleted) is kept"),
    "null-as-absent": (frozenset({LAXER}), "a field sent as null (eventType, inputs, outputs,"
                       " facets, run, dataset) counts as absent, as Marquez's Jackson reads it"),
    "kind-by-key": (frozenset({LAXER, STRICTER}), "the kind is told by key (run, else dataset,"
                    " else job) so errors name one kind's field; the schema's oneOf rejects an"
                    " event that is both a valid DatasetEvent and JobEvent, and accepts a"
                    " JobEvent carrying a broken dataset or a DatasetEvent with a stray run"),
    "names": (frozenset({STRICTER}), "namespaces and names must be non-blank, at most 4096"
              " characters and free of NUL: they are store keys and node ids"),
    "rfc8785": (frozenset({STRICTER}), "the event must have an RFC 8785 form (valid Unicode,"
                " integers a double holds): the store keys it by that form's hash"),
    "time-range": (frozenset({STRICTER}), "an RFC 3339 eventTime outside 0001..9999 in UTC has no"
                   " place in the store's time index"),
    "uuid-shape": (frozenset({STRICTER}), "runId must be the canonical 8-4-4-4-12 form; the"
                   " schema's uuid format also takes extra dashes or braces that UUID() strips"),
    "uri-grammar": (frozenset({LAXER}), "producer and schemaURL are checked for a scheme and URI"
                    " characters, not RFC 3986's full grammar (e.g. a broken [IPv6] host)"),
}


# the official schema -------------------------------------------------------------------------
@cache
def _schema() -> dict[str, Any]:
    return json.loads((OPENLINEAGE / "OpenLineage.json").read_text("utf-8"))


@cache
def _validator(definition: str | None = None) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    schema = _schema()
    registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    target = schema if definition is None else {"$ref": f"{schema['$id']}#/$defs/{definition}"}
    return Draft202012Validator(target, registry=registry, format_checker=FormatChecker())


def schema_errors(event: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}"[:300] for e in _validator().iter_errors(event)]


def _conforms(value: Any, fmt: str) -> bool:
    from jsonschema import FormatChecker

    return bool(FormatChecker().conforms(value, fmt))


def server_error(event: Any) -> str | None:
    try:
        validate_event(event)
    except EventValidationError as error:
        return f"{error.field}: {error.message}"
    return None


# which named differences an event shows -------------------------------------------------------
def _facet_groups(event: dict[str, Any]) -> list[tuple[Any, str]]:
    """(facets container, its facet definition), as the schema reads them."""
    groups: list[tuple[Any, str]] = []
    for key, definition in (("run", "RunFacet"), ("job", "JobFacet")):
        if isinstance(event.get(key), dict):
            groups.append((event[key].get("facets"), definition))
    for key, extra, definition in (("inputs", "inputFacets", "InputDatasetFacet"),
                                   ("outputs", "outputFacets", "OutputDatasetFacet")):
        for item in event.get(key) or [] if isinstance(event.get(key), list) else []:
            if isinstance(item, dict):
                groups += [(item.get("facets"), "DatasetFacet"), (item.get(extra), definition)]
    if isinstance(event.get("dataset"), dict):
        groups.append((event["dataset"].get("facets"), "DatasetFacet"))
    return groups


def _names(event: dict[str, Any]) -> list[Any]:
    owners = [event.get("job"), event.get("dataset")]
    for key in ("inputs", "outputs"):
        if isinstance(event.get(key), list):
            owners += event[key]
    return [o.get(k) for o in owners if isinstance(o, dict) for k in ("namespace", "name")]


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value, *(leaf for item in value.values() for leaf in _leaves(item))]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def differences(event: Any) -> set[str]:
    """The named differences ``event`` shows (all candidates; the caller checks direction)."""
    if not isinstance(event, dict):
        return set()
    found: set[str] = set()
    for facets, definition in _facet_groups(event):
        if isinstance(facets, dict) and any(
            isinstance(f, dict) and not _validator(definition).is_valid(f) for f in facets.values()
        ):
            found.add("facet-contents")
    keys = [(key, event) for key in ("eventType", "inputs", "outputs", "run", "dataset")]
    for owner_key in ("run", "job", "dataset"):
        if isinstance(event.get(owner_key), dict):
            keys.append(("facets", event[owner_key]))
    for key in ("inputs", "outputs"):
        for item in event.get(key) if isinstance(event.get(key), list) else []:
            if isinstance(item, dict):
                keys += [("facets", item), ("inputFacets", item), ("outputFacets", item)]
    if any(key in owner and owner[key] is None for key, owner in keys):
        found.add("null-as-absent")
    present = {key for key in ("run", "dataset", "job") if event.get(key) is not None}
    if {"run", "dataset"} <= present or {"dataset", "job"} <= present:
        found.add("kind-by-key")
    if any(isinstance(n, str) and (not n.strip() or len(n) > 4096 or "\x00" in n)
           for n in _names(event)):
        found.add("names")
    for leaf in _leaves(event):
        if isinstance(leaf, str):
            try:
                leaf.encode("utf-8")
            except UnicodeEncodeError:
                found.add("rfc8785")
        elif isinstance(leaf, int) and not isinstance(leaf, bool) and not json_number(leaf):
            found.add("rfc8785")
    when = event.get("eventTime")
    if isinstance(when, str) and _conforms(when, "date-time") and parse_time(when) is None:
        found.add("time-range")
    run = event.get("run")
    run_id = run.get("runId") if isinstance(run, dict) else None
    if isinstance(run_id, str) and _conforms(run_id, "uuid") and not _UUID.match(run_id):
        found.add("uuid-shape")
    for key in ("producer", "schemaURL"):
        value = event.get(key)
        if isinstance(value, str) and _URI.match(value) and not _conforms(value, "uri"):
            found.add("uri-grammar")
    return found


# generated events ------------------------------------------------------------------------------
PRODUCER = "https://github.com/provlink/provlink/tests"
BASE_FACET = {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json"}


def _bases() -> list[dict[str, Any]]:
    dataset = {"namespace": "file", "name": "/data/in.csv", "facets": {"f": dict(BASE_FACET)}}
    common = {"eventTime": "2024-05-01T00:00:00.5Z", "producer": PRODUCER,
              "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}
    return [
        {**common, "eventType": "COMPLETE",
         "run": {"runId": "3f6d5b6e-1a52-4c07-9b36-3c1f1d2b1a11",
                 "facets": {"r": dict(BASE_FACET)}},
         "job": {"namespace": "ns", "name": "job", "facets": {"j": dict(BASE_FACET)}},
         "inputs": [{**dataset, "inputFacets": {"i": dict(BASE_FACET)}}],
         "outputs": [{**dataset, "name": "/data/out.csv",
                      "outputFacets": {"o": dict(BASE_FACET)}}]},
        {**common, "job": {"namespace": "ns", "name": "job"}, "inputs": [dataset], "outputs": []},
        {**common, "dataset": dataset},
    ]


BASES = _bases()
ODD = st.sampled_from([
    None, True, 0, -1, 1.5, 2**53 + 1, 2**60, "", " ", "\x00", "\ud800", "x" * 4097, "é✓", "a:b",
    "https://x y", "https://[::1", "https://[::1]/p", "a:%zz", "urn:x", "START", "BOGUS",
    "2024-05-01T00:00:00Z", "2024-05-01T00:00:00", "2024-05-01 00:00:00Z", "20240501T000000Z",
    "2024-05-01T23:59:60Z", "2024-02-30T00:00:00Z", "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-05-01t00:00:00z",
    "3F6D5B6E-1A52-4C07-9B36-3C1F1D2B1A11", "3f6d5b6e1a524c079b363c1f1d2b1a11",
    "3f6d5b6e-1a52-4c07-9b36-3c1f-1d2b1a11", "{3f6d5b6e-1a52-4c07-9b36-3c1f1d2b1a11}",
    [], {}, [{}], {"_producer": PRODUCER}, dict(BASE_FACET), {**BASE_FACET, "_deleted": "yes"},
    {"namespace": "n", "name": "d"},
])
VALUES = st.one_of(ODD, st.text(max_size=6), st.integers(), st.floats(allow_nan=False,
                   allow_infinity=False))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def events(draw: st.DrawFn) -> Any:
    event: Any = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 2))):
        paths = _paths(event)
        path = draw(st.sampled_from(paths))
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(VALUES))
        elif isinstance(parent, dict):
            key = draw(st.sampled_from(["run", "job", "dataset", "inputs", "eventType", "facets",
                                        "x"]))
            parent[key] = copy.deepcopy(draw(VALUES | st.sampled_from(BASES)))
    return event


def test_server_and_schema_agree_but_for_named_differences() -> None:
    require_spec()
    seen: Counter[str] = Counter()

    @given(event=events())
    @settings(max_examples=1500, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def compare(event: Any) -> None:
        server, schema = server_error(event), schema_errors(event)
        if (server is None) == (not schema):
            seen["agree: accept" if server is None else "agree: reject"] += 1
            return
        direction = LAXER if server is None else STRICTER
        named = {n for n in differences(event) if direction in DIFFERENCES[n][0]}
        assert named, (
            f"{direction}, and no named difference explains it.\n"
            f"server: {server or 'accepted'}\nschema: {schema or 'accepted'}\n"
            f"event: {json.dumps(event, default=repr)[:2000]}"
        )
        seen.update(f"{direction}: {n}" for n in named)

    compare()
    # the generator reaches both verdicts on agreement, and disagreements of both directions
    assert seen["agree: accept"] > 50 and seen["agree: reject"] > 50, seen
    assert any(k.startswith(LAXER) for k in seen) and any(k.startswith(STRICTER) for k in seen)


def _set(path: tuple[Any, ...], value: Any, base: int = 0) -> dict[str, Any]:
    event = copy.deepcopy(BASES[base])
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return event


EXAMPLES: list[tuple[str, dict[str, Any], bool, bool]] = [  # name, event, server ok, schema ok
    ("facet-contents", _set(("run", "facets", "r"), {"anything": 1}), True, False),
    ("facet-contents", _set(("job", "facets", "j"), {**BASE_FACET, "_deleted": 1}), True, False),
    ("null-as-absent", _set(("eventType",), None), True, False),
    ("null-as-absent", _set(("inputs",), None, base=1), True, False),
    ("kind-by-key", {**BASES[2], "job": BASES[1]["job"]}, True, False),
    ("kind-by-key", {**BASES[1], "dataset": {"name": "no namespace"}}, False, True),
    ("kind-by-key", {**BASES[2], "run": True}, False, True),
    ("null-as-absent", {**BASES[1], "run": None}, True, False),
    ("names", _set(("job", "name"), " "), False, True),
    ("names", _set(("inputs", 0, "namespace"), "x" * 4097), False, True),
    ("rfc8785", _set(("run", "facets", "r", "n"), 2**53 + 1), False, True),
    ("rfc8785", _set(("job", "facets", "j", "s"), "\ud800"), False, True),
    ("time-range", _set(("eventTime",), "0001-01-01T00:00:00+01:00"), False, True),
    ("uuid-shape", _set(("run", "runId"), "3f6d5b6e-1a52-4c07-9b36-3c1f-1d2b1a11"), False, True),
    ("uri-grammar", _set(("producer",), "https://[::1"), True, False),
]


@pytest.mark.parametrize(("name", "event", "server_ok", "schema_ok"), EXAMPLES,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(EXAMPLES)])
def test_each_named_difference_is_real(
    name: str, event: dict[str, Any], server_ok: bool, schema_ok: bool
) -> None:
    assert name in DIFFERENCES
    assert (server_error(event) is None) is server_ok, server_error(event)
    if not spec_available():
        pytest.skip("schema side of the example skipped: ../shared/spec is absent")
    assert (not schema_errors(event)) is schema_ok, schema_errors(event)
    direction = LAXER if server_ok else STRICTER
    assert direction in DIFFERENCES[name][0]
    assert name in differences(event)


def test_every_named_difference_has_an_example() -> None:
    assert {name for name, *_ in EXAMPLES} == set(DIFFERENCES)


@pytest.mark.parametrize("when", ["2024-05-01 00:00:00Z", "20240501T000000Z",
                                  "2024-W18-3T00:00:00Z", "2024-05-01T00:00:00,5Z"])
def test_event_time_is_rfc_3339_not_any_iso_8601(when: str) -> None:
    """Fixed by this comparison: Python's ISO 8601 parser took forms RFC 3339 does not."""
    assert server_error(_set(("eventTime",), when)) is not None
    assert server_error(_set(("eventTime",), "2024-05-01t00:00:00.123456789z")) is None


@pytest.mark.parametrize("uri", ["https://x y", "é:x", "a:%zz", 'https://x/"q"', "https://x/<p>"])
def test_producer_must_be_made_of_uri_characters(uri: str) -> None:
    """Fixed by this comparison: any non-space text after a scheme was taken as a URI."""
    assert server_error(_set(("producer",), uri)) == "producer: must be a URI"
