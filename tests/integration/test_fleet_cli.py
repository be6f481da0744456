"""CLI commands open the configured spool: with ``spool_url`` they read and write the
fleet's PostgreSQL spool and ledger, not this home's SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provlink.cli.main import main
from provlink.delivery.pg_spool import PgSpool
from provlink.delivery.spool import DEAD
from tests.integration import test_fleet_spool as fleet
from tests.integration.test_delivery import free_port
from tests.integration.test_sender_service import events

pg_url = fleet.pg_url  # the fixture: a fresh database per test, skipped without PostgreSQL


@pytest.fixture
def fleet_spool(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PgSpool:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROVLINK_SPOOL_URL", pg_url)
    spool = PgSpool(pg_url)
    for event in events(runs=2, per_run=4):
        spool.append(event)
    spool.mark_sent([1, 2, 3])
    spool.mark_dead(4, "422 job.name: required")
    return spool


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_status_reports_the_fleet_spool(fleet_spool: PgSpool, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "status", "--json")
    assert rc == 0
    status = json.loads(out)
    assert (status["pending"], status["sent"], status["dead_letter"]) == (4, 3, 1)
    assert status["spool"] == fleet_spool.path
    assert not (tmp_path / "home" / "spool.db").exists()  # the local spool was not opened


def test_dead_letters_requeue_and_verify_act_on_the_fleet_spool(
        fleet_spool: PgSpool, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "spool", "dead-letters", "--json")
    assert rc == 0 and [row["seq"] for row in json.loads(out)] == [4]
    rc, out, _ = run(capsys, "spool", "dead-letters", "--requeue")
    assert rc == 0 and "requeued 1" in out
    assert not list(fleet_spool.entries(state=DEAD))
    rc, out, _ = run(capsys, "verify", "--json")
    report = json.loads(out)
    assert rc == 0 and report["ok"], report
    assert report["ledger"]["path"] == fleet_spool.path


def test_an_unreachable_fleet_spool_is_an_error_not_the_local_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROVLINK_SPOOL_URL",
                       f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/nothing")
    monkeypatch.setenv("PROVLINK_SPOOL_TIMEOUT", "1")
    rc, out, err = run(capsys, "status", "--json")
    assert rc == 2 and out == ""
    assert "cannot reach the PostgreSQL spool" in err and "spool_url" in err
    assert "hunter2" not in err
