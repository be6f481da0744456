"""Definitions the Dagster tests load by module name: reconstructable jobs run by the
multiprocess executor, a run worker or the daemon import this module in child processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import Definitions, asset, define_asset_job
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


sums = define_asset_job("sums", selection=[numbers, total])
held = define_asset_job("held", selection=[numbers, blocking, after_blocking])

defs = with_lineage(Definitions(assets=[numbers, total, blocking, after_blocking],
                                jobs=[sums, held]))


def sums_job():  # type: ignore[no-untyped-def]
    """The job factory ``reconstructable`` points child processes at."""
    return defs.resolve_job_def("sums")


def held_job():  # type: ignore[no-untyped-def]
    return defs.resolve_job_def("held")
