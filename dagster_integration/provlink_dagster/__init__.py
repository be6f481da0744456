"""Dagster lineage in one line: ``defs = with_lineage(Definitions(...))``.

Every asset materialization step (and every op step) becomes an OpenLineage run of its own
with START and COMPLETE/FAIL, inputs from the upstream materializations Dagster recorded,
outputs from the materialized asset keys; the Dagster run is their parent. See
:func:`with_lineage` and :func:`lineage_assets`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dagster import Definitions

from provlink_dagster.definitions import rewrite, wrap_assets
from provlink_dagster.sensor import backstop_sensors as backstop_sensors
from provlink_dagster.steps import LINK_METADATA as LINK_METADATA
from provlink_dagster.steps import RUN_ID_METADATA as RUN_ID_METADATA
from provlink_dagster.translator import DagsterLineageTranslator as DagsterLineageTranslator
from provlink_dagster.translator import LineageSettings as LineageSettings


def with_lineage(defs: Definitions, *, translator: DagsterLineageTranslator | None = None,
                 backstop: bool = True, backstop_interval_seconds: int = 5) -> Definitions:
    """The same Definitions, reporting lineage for every asset, op and run.

    ``backstop`` adds two ``run_status_sensor``\\ s (running by default under the daemon) that
    close the lineage of runs whose run worker died or that were canceled before starting.

    >>> defs = with_lineage(Definitions(assets=[raw, features], jobs=[nightly]))
    """
    return rewrite(defs, translator or DagsterLineageTranslator(), backstop=backstop,
                   backstop_interval_seconds=backstop_interval_seconds)


def lineage_assets(assets: Iterable[Any], *,
                   translator: DagsterLineageTranslator | None = None) -> list[Any]:
    """The assets for ``materialize()``, each step reporting lineage.

    >>> materialize(lineage_assets([raw, features]))
    """
    return wrap_assets(assets, translator or DagsterLineageTranslator())


__all__ = [
    "LINK_METADATA",
    "RUN_ID_METADATA",
    "DagsterLineageTranslator",
    "LineageSettings",
    "backstop_sensors",
    "lineage_assets",
    "with_lineage",
]
