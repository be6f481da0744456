"""Lazy re-exports for package ``__init__`` modules.

A package's public names resolve on first use, so importing one light submodule (MLflow
imports ``provlink.mlflow.context`` while ``import mlflow`` runs) neither pulls in the
OpenLineage client nor runs its siblings' imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, namespace: dict[str, Any],
                 exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``exports`` (name -> module) and caching the value."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
