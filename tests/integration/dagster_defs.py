"""Definitions the Dagster tests load by module name: reconstructable jobs run by the
multiprocess executor, a run worker or the daemon import this module in child processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import (
    AssetMaterialization,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)
from provlink_dagster import with_lineage

RELEASE_FILE = "LINEAGE_TEST_RELEASE_FILE"  # env: the blocking asset waits for this file


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


@asset
def blocking(numbers: list[int]) -> int:
    """Waits until the test creates the release file (or is interrupted)."""
    release = Path(os.environ[RELEASE_FILE])
    while not release.exists():
        time.sleep(0.1)
    return len(numbers)


@asset
def after_blocking(blocking: int) -> int:
    return blocking + 1


def _data_file(name: str) -> str:
    return str(Path(os.environ[RELEASE_FILE]).parent / name)


@asset
def source(context) -> MaterializeResult:  # type: ignore[no-untyped-def]
    return MaterializeResult(metadata={"path": MetadataValue.path(
        _data_file(f"source-{context.run_id}.csv"))})


@asset(deps=[source])
def interloper(context) -> None:  # type: ignore[no-untyped-def]
    """Another run's materialization of ``source`` lands between this run's steps."""
    context.instance.report_runless_asset_event(AssetMaterialization(
        "source", metadata={"path": MetadataValue.path(_data_file("source-another-run.csv"))}))


@asset(deps=[source, interloper])
def sink() -> None:
    return None


sums = define_asset_job("sums", selection=[numbers, total])
held = define_asset_job("held", selection=[numbers, blocking, after_blocking])
interleaved = define_asset_job("interleaved", selection=[source, interloper, sink])

defs = with_lineage(Definitions(
    assets=[numbers, total, blocking, after_blocking, source, interloper, sink],
    jobs=[sums, held, interleaved]))


def sums_job():  # type: ignore[no-untyped-def]
    """The job factory ``reconstructable`` points child processes at."""
    return defs.resolve_job_def("sums")


def held_job():  # type: ignore[no-untyped-def]
    return defs.resolve_job_def("held")


def interleaved_job():  # type: ignore[no-untyped-def]
    return defs.resolve_job_def("interleaved")
