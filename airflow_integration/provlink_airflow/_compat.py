"""Where Airflow 3.3 keeps what provlink needs; the one place to adapt for other versions.

Each entry names what it reaches and the versions it was checked against;
``tests/unit/test_compat_airflow.py`` exercises every one against the installed Airflow and
OpenLineage provider, so an upgrade that moves one fails CI.
"""

from __future__ import annotations

import importlib
import re
import sys
from types import ModuleType
from typing import Any

CHECKED_VERSIONS = {  # as pinned in pyproject.toml
    "apache-airflow": ">=3.3,<3.4",
    "apache-airflow-providers-openlineage": ">=2.20,<3",
}

# ``airflow.sdk._shared.secrets_masker`` / ``airflow._shared.secrets_masker`` (Airflow 3.3.2):
# the task SDK and the core (scheduler, API server) each vendor their own secrets masker,
# with separate registries of secrets; a process may use either.
_MASKER_MODULES = ("airflow.sdk._shared.secrets_masker", "airflow._shared.secrets_masker")


def secrets_maskers() -> list[ModuleType]:
    """The secrets-masker modules importable in this process (already-imported ones only
    for the core one, so a task process does not pull in the scheduler's stack)."""
    found = []
    for name in _MASKER_MODULES:
        if name in sys.modules or name == _MASKER_MODULES[0]:
            try:
                found.append(importlib.import_module(name))
            except ImportError:
                continue
    return found


def masked_secrets() -> list[str]:
    """Every secret value the maskers of this process have registered (they store them
    ``re.escape``d): ``_secrets_masker().patterns`` of each module (Airflow 3.3.2)."""
    out: list[str] = []
    for module in secrets_maskers():
        patterns = getattr(module._secrets_masker(), "patterns", None) or ()
        out.extend(_UNESCAPE.sub(r"\1", p) for p in patterns)
    return out


_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)  # inverse of re.escape


def extractor_manager_class() -> Any:
    """The provider's ``extractors.manager.ExtractorManager`` (provider 2.20.3; not a
    documented API), imported: the plugin's preload imports it in the scheduler/worker."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    return ExtractorManager


def extractor_manager() -> Any:
    """An ``ExtractorManager``: runs the operator's ``get_openlineage_facets_on_*`` and
    extractors."""
    return extractor_manager_class()()
