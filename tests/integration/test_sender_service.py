"""``provlink sender`` as a real process: it delivers the fleet spool (PostgreSQL) or the
local one to a real HTTP backend, drains on SIGTERM, and never loses what it could not
deliver."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from provlink.delivery.pg_spool import PgSpool
from provlink.delivery.spool import Spool
from provlink.testing import RecordingEndpoint
from tests.integration import test_fleet_spool as fleet
from tests.integration.test_delivery import FAST_RETRY, free_port, wait_for

pg_url = fleet.pg_url  # the fixture: a fresh database per test, skipped without PostgreSQL
EXIT_UNDELIVERED = 3


def events(runs: int, per_run: int) -> list[dict]:
    return [{"eventType": "RUNNING", "eventTime": "2026-12-01T00:00:00Z", "i": i,
             "run": {"runId": f"00000000-0000-4000-8000-{r:012d}"},
             "job": {"namespace": "service", "name": f"job_{r}"},
             "producer": "https://example.com/test", "schemaURL":
             "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
            for i in range(per_run) for r in range(runs)]


class Service:
    """``provlink sender`` in a subprocess; its output collected on threads (a full pipe
    would stall it)."""

    def __init__(self, home: Path, port: int, *args: str, spool_url: str = "") -> None:
        env = {**os.environ, **FAST_RETRY, "PROVLINK_HOME": str(home),
               "PROVLINK_SPOOL_TIMEOUT": "1", "OPENLINEAGE_URL": f"http://127.0.0.1:{port}"}
        if spool_url:
            env["PROVLINK_SPOOL_URL"] = spool_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provlink.cli.main", "sender", "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[dict] = queue.Queue()
        self.errors: list[str] = []
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_errors, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        self.errors.extend(self.proc.stderr)

    def line_where(self, predicate, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if predicate(line):
                return line

    def stop(self, timeout: float = 30.0) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for reader in self._readers:
            reader.join(5.0)
        return rc, "".join(self.errors)


def assert_once_in_order(received: list[dict], sent: list[dict]) -> None:
    keys = [(e["run"]["runId"], e["i"]) for e in received]
    assert sorted(keys) == sorted((e["run"]["runId"], e["i"]) for e in sent)  # each once
    by_run: dict[str, list[int]] = defaultdict(list)
    for run, i in keys:
        by_run[run].append(i)
    assert all(order == sorted(order) for order in by_run.values()), by_run


def test_delivers_the_fleet_spool_once_in_order_when_the_backend_comes_up(
        pg_url: str, tmp_path: Path) -> None:
    spool = PgSpool(pg_url)
    sent = events(runs=3, per_run=8)
    for event in sent[:20]:
        spool.append(event)
    home = tmp_path / "sender"
    local = Spool(home / "spool.db")  # this host's fallback spool, from when PG was down
    for event in sent[20:]:
        local.append(event)
    local.close()
    port = free_port()  # nothing listens yet: the backend is down
    service = Service(home, port, "--interval", "0.2", spool_url=pg_url)
    endpoint = RecordingEndpoint(port=port)
    try:
        first = service.line_where(lambda line: "pending" in line)
        assert first["moved_from_fallback"] == 4 and first["pending"] == 24
        service.line_where(lambda line: line.get("backend") == "backing off")
        endpoint.start()
        assert wait_for(lambda: len(endpoint.events) >= len(sent))
        rc, err = service.stop()
    finally:
        endpoint.stop()
    assert rc == 0, err
    assert_once_in_order(endpoint.events, sent)
    status = spool.status()
    assert (status.pending, status.sent) == (0, len(sent))
    assert Spool(home / "spool.db").status().pending == 0


def test_sigterm_during_a_backlog_drains_then_exits_0(pg_url: str, tmp_path: Path) -> None:
    spool = PgSpool(pg_url)
    sent = events(runs=4, per_run=25)
    for event in sent:
        spool.append(event)
    endpoint = RecordingEndpoint(port=free_port())
    endpoint.respond_with = 503  # up but overloaded: the whole backlog waits
    endpoint.start()
    service = Service(tmp_path / "sender", endpoint.port, "--interval", "0.2",
                      "--drain-timeout", "20", spool_url=pg_url)
    try:
        service.line_where(lambda line: line.get("backend") == "backing off")
        assert endpoint.events == []
        service.proc.send_signal(signal.SIGTERM)
        endpoint.respond_with = 201
        rc, err = service.wait()
    finally:
        endpoint.stop()
    assert rc == 0, err
    assert_once_in_order(endpoint.events, sent)
    assert spool.status().pending == 0


def test_sigterm_with_the_backend_down_exits_undelivered_and_loses_nothing(
        pg_url: str, tmp_path: Path) -> None:
    spool = PgSpool(pg_url)
    for event in events(runs=2, per_run=5):
        spool.append(event)
    drain_timeout = 1.0
    service = Service(tmp_path / "sender", free_port(), "--interval", "0.2",
                      "--drain-timeout", str(drain_timeout), spool_url=pg_url)
    service.line_where(lambda line: line.get("backend") == "backing off")
    rc, err = service.stop(timeout=drain_timeout + 10)  # bounded: never waits on the backend
    assert rc == EXIT_UNDELIVERED
    assert "10 events not delivered" in err and "Nothing is lost" in err
    status = spool.status()
    assert (status.pending, status.sent) == (10, 0)
    assert spool.read(lambda tables: tables.size()) >= 10  # their ledger entries are there


def test_once_delivers_the_local_spool_and_exits(tmp_path: Path) -> None:
    home = tmp_path / "home"
    local = Spool(home / "spool.db")
    sent = events(runs=2, per_run=6)
    for event in sent:
        local.append(event)
    local.close()
    endpoint = RecordingEndpoint(port=free_port()).start()
    try:
        rc, err = Service(home, endpoint.port, "--once").wait()
    finally:
        endpoint.stop()
    assert rc == 0, err
    assert_once_in_order(endpoint.events, sent)
    assert Spool(home / "spool.db").status().pending == 0


def test_once_with_the_backend_down_exits_undelivered(tmp_path: Path) -> None:
    home = tmp_path / "home"
    local = Spool(home / "spool.db")
    for event in events(runs=1, per_run=3):
        local.append(event)
    local.close()
    rc, err = Service(home, free_port(), "--once", "--drain-timeout", "0.5").wait()
    assert rc == EXIT_UNDELIVERED
    assert "3 events not delivered" in err
    assert Spool(home / "spool.db").status().pending == 3


def allow_connections(url: str, allowed: bool) -> None:
    """Take the test's database down (or up) for every client, as an outage would."""
    name = url.rsplit("/", 1)[1]
    with fleet.psycopg.connect(fleet.ADMIN, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}")
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s", (name,))


def test_the_service_outlives_an_outage_of_the_fleet_spool(pg_url: str, tmp_path: Path) -> None:
    sent = events(runs=2, per_run=4)
    spool = PgSpool(pg_url)
    for event in sent[:4]:
        spool.append(event)
    spool.close()
    endpoint = RecordingEndpoint(port=free_port()).start()
    service = Service(tmp_path / "sender", endpoint.port, "--interval", "0.2",
                      spool_url=pg_url)
    try:
        assert wait_for(lambda: len(endpoint.events) == 4)
        allow_connections(pg_url, False)
        service.line_where(lambda line: "unreachable" in line)  # says so, keeps running
        allow_connections(pg_url, True)
        spool = PgSpool(pg_url)
        for event in sent[4:]:
            spool.append(event)
        assert wait_for(lambda: len(endpoint.events) >= len(sent))
        rc, err = service.stop()
    finally:
        allow_connections(pg_url, True)
        endpoint.stop()
    assert rc == 0, err
    assert_once_in_order(endpoint.events, sent)
    assert spool.status().pending == 0
