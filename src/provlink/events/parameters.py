"""Run parameters as individual keys: nested mappings become dotted keys.

Airflow's ``op_kwargs``/``params``/``conf`` and Dagster's config are mappings; emitting each
as one JSON string hides the keys (nobody finds parameter ``C`` of a training task inside
``template.op_kwargs = {"C": 0.5, ...}``). Both adapters flatten with :func:`flatten`, so
``op_kwargs.C = 0.5`` and ``config.C = 0.5`` read alike.

>>> dict(flatten("op_kwargs", {"C": 0.5, "model": {"depth": 3, "tags": ["a", "b"]}}))
{'op_kwargs.C': 0.5, 'op_kwargs.model.depth': 3, 'op_kwargs.model.tags': ['a', 'b']}
>>> dict(flatten("op_args", ["raw.csv", 7], index_lists=True))
{'op_args.0': 'raw.csv', 'op_args.1': 7}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MAX_DEPTH = 8  # deeper values stay one JSON value under the key reached so far


def flatten(prefix: str, value: Any, *, index_lists: bool = False,
            max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, Any]]:
    """``(dotted key, leaf value)`` pairs of ``value`` under ``prefix``.

    Mappings are walked (string keys in sorted order, others by ``str``); an empty mapping,
    a list and every other value is a leaf. With ``index_lists`` the top-level list itself
    is indexed (positional arguments: ``op_args.0``); nested lists stay whole values.
    """
    if index_lists and isinstance(value, (list, tuple)) and value:
        for i, item in enumerate(value):
            yield from flatten(f"{prefix}.{i}", item, max_depth=max_depth - 1)
        return
    if not isinstance(value, Mapping) or not value or max_depth <= 0:
        yield prefix, value
        return
    for key in sorted(value, key=str):
        yield from flatten(f"{prefix}.{key}", value[key], max_depth=max_depth - 1)
