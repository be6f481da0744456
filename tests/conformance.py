"""Validate events against the official OpenLineage JSON Schemas in ../shared/spec.

Every facet is checked against the schema its ``_schemaURL`` names: standard facets
against ``../shared/spec/openlineage/facets``, provlink's own against the schemas shipped in
``provlink/events/facet_schemas``. A facet whose schema cannot be found is an error, not a pass.

The specs are optional: without them (a fresh clone with no ``../shared``) :func:`validate_event`
skips only the schema assertion, with a :class:`ConformanceSkipped` warning, and returns, so
every behaviour assertion of the calling test still runs; the run's summary counts the
skipped checks. ``SHARED_SPEC_DIR`` points at another spec folder (``/nonexistent`` shows
what a clone without the specs runs; not a ``PROVLINK_*`` name, since provlink refuses
unknown settings under its prefix); ``REQUIRE_SHARED_SPEC=1`` turns a missing spec into a
failure, for CI that has it. Tests that check nothing but the schema call
:func:`require_spec` and are skipped whole.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SPEC = Path(
    os.environ.get("SHARED_SPEC_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "spec"
)
OPENLINEAGE = SPEC / "openlineage"
skipped_checks = 0  # schema assertions skipped in this session (read by tests/conftest.py)


class ConformanceSkipped(UserWarning):
    """The OpenLineage schema assertion was skipped: the specs are absent."""


def spec_available() -> bool:
    return (OPENLINEAGE / "OpenLineage.json").is_file()


def _missing() -> str:
    return f"OpenLineage spec not found at {OPENLINEAGE} (../shared/spec or $SHARED_SPEC_DIR)"


def require_spec() -> Path:
    """The spec folder, or skip the calling test with the reason (only for tests that check
    nothing but conformance)."""
    if not spec_available():
        if os.environ.get("REQUIRE_SHARED_SPEC") == "1":
            pytest.fail(_missing() + " and REQUIRE_SHARED_SPEC=1")
        pytest.skip(_missing())
    return SPEC


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    """Every known schema by file name (e.g. ``SchemaDatasetFacet.json``)."""
    from provlink.events.facets import SCHEMA_FILES, load_schema

    found: dict[str, dict[str, Any]] = {}
    facets = sorted((OPENLINEAGE / "facets").glob("*.json"))
    for path in [OPENLINEAGE / "OpenLineage.json", *facets]:
        found[path.name] = json.loads(path.read_text("utf-8"))
    for name in SCHEMA_FILES:
        found[f"{name}.json"] = load_schema(name)
    return found


@cache
def _registry() -> Any:
    from referencing import Registry, Resource

    resources = [(s["$id"], Resource.from_contents(s)) for s in _schemas().values()]
    return Registry().with_resources(resources)


def _validator(schema_file: str, definition: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = _schemas()[schema_file]
    ref = {"$ref": f"{schema['$id']}#/$defs/{definition}"}
    return Draft202012Validator(ref, registry=_registry(), format_checker=FormatChecker())


def validate_event(event: dict[str, Any]) -> None:
    """Raise ``AssertionError`` listing every violation of the event and its facets.

    Without the specs this warns and returns (see the module docstring): the caller's
    behaviour assertions must not depend on the schema being there.
    """
    global skipped_checks
    if not spec_available():
        if os.environ.get("REQUIRE_SHARED_SPEC") == "1":
            pytest.fail(_missing() + " and REQUIRE_SHARED_SPEC=1")
        skipped_checks += 1
        warnings.warn(ConformanceSkipped("schema assertion skipped: " + _missing()), stacklevel=2)
        return
    kind = "RunEvent" if "run" in event else ("DatasetEvent" if "dataset" in event else "JobEvent")
    errors = [f"{kind}: {e.json_path}: {e.message}"
              for e in _validator("OpenLineage.json", kind).iter_errors(event)]
    for where, facet in _facets(event):
        url = facet.get("_schemaURL", "")
        location, _, fragment = url.partition("#")
        file_name = location.rpartition("/")[2]
        definition = fragment.rpartition("/")[2]
        if file_name not in _schemas() or not definition:
            errors.append(f"{where}: no schema found for _schemaURL {url!r}")
            continue
        errors += [f"{where}: {e.json_path}: {e.message}"
                   for e in _validator(file_name, definition).iter_errors(facet)]
    assert not errors, "OpenLineage conformance errors:\n" + "\n".join(errors)


def _facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    groups = [("run.facets", event.get("run", {}).get("facets")),
              ("job.facets", event.get("job", {}).get("facets"))]
    for side in ("inputs", "outputs"):
        for i, ds in enumerate(event.get(side, []) or []):
            for key in ("facets", "inputFacets", "outputFacets"):
                groups.append((f"{side}[{i}].{key}", ds.get(key)))
    for where, group in groups:
        for name, facet in (group or {}).items():
            if isinstance(facet, dict):
                out.append((f"{where}.{name}", facet))
    return out
