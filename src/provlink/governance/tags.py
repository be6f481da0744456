"""Dataset tags as governance reads them, and which of them mark sensitive data.

A tag reaches the backend two ways: OpenLineage's ``tags`` dataset facet (key, value,
source) on the event, or a backend tag (``POST .../datasets/{name}/tags/{tag}``, Marquez's
``tags`` list). Both are folded into one spelling: the backend tag as it is, a facet tag as
``key`` or ``key:value``. Tags pass downstream: a model version carries every tag of every
dataset upstream of it (:func:`inherited`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SENSITIVE_MARKERS: tuple[str, ...] = ("pii", "sensitive", "confidential", "restricted", "phi",
                                      "secret", "personal")
_NEUTRAL_VALUES = frozenset({"", "true", "yes", "1"})
_NOT_SENSITIVE_VALUES = frozenset({"false", "no", "0", "none", "public"})


def dataset_tags(payload: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Tags of a Marquez ``Dataset``/``DatasetVersion`` payload or an event's dataset."""
    if not payload:
        return ()
    found: list[str] = [str(t) for t in payload.get("tags") or () if isinstance(t, str)]
    facet = (payload.get("facets") or {}).get("tags") or {}
    for item in facet.get("tags") or ():
        if not isinstance(item, Mapping) or not item.get("key"):
            continue
        value = str(item.get("value") or "")
        found.append(str(item["key"]) if value.lower() in _NEUTRAL_VALUES
                     else f"{item['key']}:{value}")
    return tuple(dict.fromkeys(found))


def is_sensitive(tag: str, markers: Iterable[str] = SENSITIVE_MARKERS) -> bool:
    """``pii``, ``PII``, ``sensitivity:confidential``, ``classification:pii`` are; so is any
    key or value named in ``markers``; ``pii:false`` and ``sensitivity:public`` are not."""
    key, _, value = tag.lower().partition(":")
    wanted = {m.lower() for m in markers}
    if value in _NOT_SENSITIVE_VALUES and value:
        return False
    return key in wanted or value in wanted or (
        key in ("sensitivity", "classification") and value not in _NOT_SENSITIVE_VALUES)


def inherited(datasets: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """tag → names of the upstream datasets that carry it (objects with ``name``, ``tags``)."""
    out: dict[str, list[str]] = {}
    for dataset in datasets:
        for tag in getattr(dataset, "tags", ()):
            out.setdefault(tag, []).append(dataset.name)
    return {tag: tuple(dict.fromkeys(names)) for tag, names in sorted(out.items())}
