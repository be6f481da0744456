"""The PostgreSQL fleet spool: a SIGKILLed worker loses nothing, an unreachable database
never fails a task (local fallback, adopted later into the one fleet log)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provlink.config import ProvlinkConfig
from provlink.delivery.pg_spool import FALLBACK, PgSpool
from provlink.delivery.sender import Sender
from provlink.delivery.spool import Spool
from provlink.delivery.spool_open import drain_fallback
from provlink.governance.ledger import verify
from provlink.testing import RecordingEndpoint
from tests.integration.test_delivery import FAST_RETRY, free_port
from tests.server.support import SilentRelay, postgres_url

psycopg = pytest.importorskip("psycopg")
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

CHILD = """
import sys, time, provlink
for i in range(5):
    with provlink.capture(f"fleet_job_{i}", capture_files=False):
        provlink.add_parameters(i=i)
print("appended", flush=True)
time.sleep(120)
"""


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database per test; skipped, with the reason, without PostgreSQL."""
    yield from postgres_url()


def run_worker(home: Path, spool_url: str, backend_port: int) -> None:
    env = {**__import__("os").environ, **FAST_RETRY, "PROVLINK_HOME": str(home),
           "PROVLINK_SPOOL_URL": spool_url, "PROVLINK_SPOOL_TIMEOUT": "1",
           "OPENLINEAGE_URL": f"http://127.0.0.1:{backend_port}"}
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "appended"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def deliver(spool: PgSpool, home: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{port}")
    endpoint = RecordingEndpoint(port=port).start()
    try:
        sender = Sender.from_config(spool, ProvlinkConfig(home=home))
        assert sender.flush(30.0)
        sender.close(5.0)
    finally:
        endpoint.stop()
    return list(endpoint.events)


def test_sigkilled_workers_with_backend_down_lose_nothing(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens: the backend is down
    for worker in ("a", "b"):  # two workers, each its own home, one fleet spool
        run_worker(tmp_path / worker, pg_url, port)
    spool = PgSpool(pg_url)
    assert spool.status().pending == 20
    events = deliver(spool, tmp_path / "sender", port, monkeypatch)
    assert len(events) == 20
    assert len({(e["run"]["runId"], e["eventType"]) for e in events}) == 20
    assert spool.status().pending == 0 and spool.status().sent == 20
    report = verify(spool)
    assert report.ok, [str(p) for p in report.problems]
    assert not (tmp_path / "a" / "spool.db").exists()  # nothing fell back


def test_unreachable_postgres_falls_back_and_is_adopted_later(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listening
    home = tmp_path / "worker"
    run_worker(home, down, port)  # the task succeeded within the bounded wait
    local = Spool(home / "spool.db")
    assert local.status().pending == 10
    local.close()
    moved = drain_fallback(ProvlinkConfig(home=home, spool_url=pg_url))
    assert moved == 10
    spool = PgSpool(pg_url)
    fallback = spool.read(lambda t: [r for r in t.leaves(0, 100) if r[1] == FALLBACK])
    assert len(fallback) == 1
    events = deliver(spool, tmp_path / "sender", port, monkeypatch)
    assert len(events) == 10
    report = verify(spool)
    assert report.ok, [str(p) for p in report.problems]
    assert Spool(home / "spool.db").status().pending == 0


def backends(url: str) -> list[int]:
    """The server processes connected to this test's database (its spool's pool)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                            (name,)).fetchall()
    return [r[0] for r in rows]


def test_the_spool_uses_a_bounded_pool_and_replaces_dropped_connections(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from provlink.delivery import pg_spool

    monkeypatch.setattr(pg_spool, "IDLE_CHECK", 0.05)  # checked once idle this long
    spool = PgSpool(pg_url, pool_size=2)
    for i in range(30):
        spool.append({"run": {"runId": f"run-{i % 3}"}, "i": i})
        assert spool.status().pending == i + 1
    assert 1 <= len(backends(pg_url)) <= 2  # pooled: not one connection per use
    with psycopg.connect(ADMIN, autocommit=True) as conn:  # as a PostgreSQL restart would
        for pid in backends(pg_url):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.1)  # idle past IDLE_CHECK: the next checkout checks its connection
    spool.append({"run": {"runId": "run-0"}, "i": 30})  # a fresh connection, no lost append
    assert spool.status().pending == 31
    assert verify(spool).ok
    spool.close()


def test_a_database_that_never_answers_fails_the_open_within_the_timeout() -> None:
    import socket
    import time

    from provlink.errors import SpoolError

    with socket.socket() as silent:  # accepts TCP, never speaks PostgreSQL: a hung server
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/nothing"
        started = time.monotonic()
        with pytest.raises(SpoolError, match="cannot reach the PostgreSQL spool"):
            PgSpool(url, timeout=1.0)
        # bounded by the 1 s timeout, not psycopg_pool's 30 s default (slack for a loaded box)
        assert time.monotonic() - started < 10


def test_a_database_that_stops_answering_fails_an_append_within_the_timeout(pg_url: str) -> None:
    import threading

    from provlink.errors import SpoolError

    relay = SilentRelay(pg_url)
    spool = PgSpool(relay.url, timeout=1.0)
    spool.append({"run": {"runId": "run-0"}, "i": 0})
    relay.fall_silent()  # the connection stays open; nothing comes back on it any more
    failed: list[BaseException] = []

    def append() -> None:
        try:
            spool.append({"run": {"runId": "run-0"}, "i": 1})
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            failed.append(exc)

    try:
        appending = threading.Thread(target=append, daemon=True)
        appending.start()
        appending.join(30)  # bounded by the 1 s timeout (slack for a loaded box), not forever
        assert not appending.is_alive(), "the append waits forever on a silent database"
        assert len(failed) == 1 and isinstance(failed[0], SpoolError), failed
        assert "cannot append to the spool" in str(failed[0])
    finally:
        spool.close()
        relay.close()
    assert PgSpool(pg_url).status().pending == 1  # the silent append never committed


def test_a_database_lost_mid_life_sends_the_process_to_its_local_spool(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provlink
    from provlink.delivery.runtime import Runtime, set_runtime

    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{free_port()}")  # backend down
    relay = SilentRelay(pg_url)
    home = tmp_path / "worker"
    runtime = Runtime(ProvlinkConfig(home=home, spool_url=relay.url, spool_timeout=1.0))
    old = set_runtime(runtime)
    try:
        with provlink.capture("before_the_loss", capture_files=False):
            pass
        relay.fall_silent()  # PostgreSQL hangs with the process's connections open
        for i in range(2):  # the first append waits out the timeout; the next go local
            with provlink.capture(f"after_the_loss_{i}", capture_files=False):
                provlink.add_parameters(i=i)
    finally:
        set_runtime(old)
        runtime.close()
        relay.close()
    local = Spool(home / "spool.db")
    assert local.status().pending == 4  # nothing lost: both later points kept on this host
    local.close()
    assert drain_fallback(ProvlinkConfig(home=home, spool_url=pg_url)) == 4
    spool = PgSpool(pg_url)
    events = deliver(spool, tmp_path / "sender", free_port(), monkeypatch)
    names = sorted((e["job"]["name"], e["eventType"]) for e in events)
    assert names == sorted((job, kind) for job in ("before_the_loss", "after_the_loss_0",
                                                   "after_the_loss_1")
                           for kind in ("START", "COMPLETE"))
    report = verify(spool)
    assert report.ok, [str(p) for p in report.problems]


def test_an_event_whose_commit_answer_was_lost_is_adopted_once(
        pg_url: str, tmp_path: Path) -> None:
    """The append committed in PostgreSQL but its answer never came, so the process spooled
    the event locally too (a terminal event again, anchored to the local log): adopting the
    local spool leaves one copy of each event in the fleet log, and says which it left out."""
    import json
    import uuid

    spool = PgSpool(pg_url)
    run = str(uuid.uuid4())
    start = {"eventType": "START", "eventTime": "2026-12-02T10:00:00Z", "run": {"runId": run},
             "job": {"namespace": "ns", "name": "train"}}
    complete = {**start, "eventType": "COMPLETE", "eventTime": "2026-12-02T10:01:00Z"}
    spool.append(start)
    spool.append({**complete, "run": {"runId": run, "facets": {"ledger": {"origin": "fleet"}}}})
    local = Spool(tmp_path / "spool.db")
    local.append(start)  # byte for byte the committed START
    local.append({**complete, "run": {"runId": run, "facets": {"ledger": {"origin": "local"}}}})
    later = {**start, "run": {"runId": str(uuid.uuid4())}}
    local.append(later)  # an event PostgreSQL never had
    payloads = [payload for _, payload in local.pending(10)]
    local.close()
    assert spool.adopt(payloads, "worker:spool.db") == 1
    assert spool.adopt(payloads, "worker:spool.db") == 0  # the move's own answer lost: again
    kept = [json.loads(row[2]) for row in spool.read(lambda t: t.event_rows())]
    assert [(e["eventType"], e["run"]["runId"]) for e in kept] == [
        ("START", run), ("COMPLETE", run), ("START", later["run"]["runId"])]
    assert kept[1]["run"]["facets"]["ledger"]["origin"] == "fleet"  # anchored to this log
    fallback = spool.read(lambda t: [r for r in t.leaves(0, 100) if r[1] == FALLBACK])
    assert len(fallback) == 1  # the second adoption added nothing
    entry = json.loads(fallback[0][2])
    assert len(entry["already_in_log"]) == 2 and len(entry["events"]) == 1
    report = verify(spool)
    assert report.ok, [str(p) for p in report.problems]
    spool.close()
