"""Shared by the Dagster tests that run steps in other processes: an isolated environment
and the events those processes appended to the durable spool."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provlink.delivery.spool import Spool

ROOT = Path(__file__).resolve().parents[2]
DEFS_MODULE = "tests.integration.dagster_defs"


@pytest.fixture()
def spooled_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DAGSTER_HOME, PROVLINK_HOME and HOME in tmp, inherited by every child process."""
    for name in ("HOME", "PROVLINK_HOME", "DAGSTER_HOME"):
        (tmp_path / name.lower()).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("LINEAGE_TEST_RELEASE_FILE", str(tmp_path / "release"))
    monkeypatch.chdir(ROOT)  # child processes import the defs module from here
    yield tmp_path


def spooled_events(home: Path) -> list[dict[str, Any]]:
    """Every event other processes appended to the spool under PROVLINK_HOME, in order
    (appends are synchronous: a finished process left all of its events there)."""
    spool = Spool(home / "provlink_home" / "spool.db")
    try:
        return [json.loads(e.payload) for e in spool.entries() if e.payload]
    finally:
        spool.close()


def wait_for(predicate: Any, timeout: float = 120.0) -> None:
    """Poll until ``predicate()`` is true; the bound only stops a hung test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(0.2)
