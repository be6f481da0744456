"""A poison event between good ones never wedges delivery: into the embedded store, into a
real ``provlink serve`` process, and into a real HTTP endpoint without a batch endpoint (as
Marquez), the good events arrive and the poison is in dead letters with its reason."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import DEAD, SENT
from provlink.server.store import open_store

PRODUCER = "https://github.com/provlink/provlink/tests"


def event(job: str, run_n: int, event_type: str = "START", **extra: Any) -> dict[str, Any]:
    return {"eventType": event_type, "eventTime": f"2026-01-01T00:00:{run_n % 60:02d}Z",
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
            "run": {"runId": f"01932b6a-0000-7000-8000-{run_n:012d}"},
            "job": {"namespace": "poison-tests", "name": job}, "inputs": [], "outputs": [],
            **extra}


def poisoned_sequence() -> list[dict[str, Any]]:
    """good, good, POISON (no eventTime: refused by validation), good, good."""
    bad = event("poison", 3)
    del bad["eventTime"]
    return [event("good_a", 1), event("good_a", 1, "COMPLETE"), bad,
            event("good_b", 2), event("good_b", 2, "COMPLETE")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No OpenLineage or provlink setting from outside; fast retries; a fresh home."""
    for key in list(os.environ):
        if key.startswith(("OPENLINEAGE", "PROVLINK_")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("PROVLINK_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PROVLINK_SENDER_POLL_INTERVAL", "0.02")
    monkeypatch.setenv("PROVLINK_SENDER_BACKOFF_INITIAL", "0.01")
    monkeypatch.setenv("PROVLINK_SENDER_BACKOFF_MAX", "0.05")
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield isolate(tmp_path, monkeypatch)
    set_runtime(None)


def spool_all(events: list[dict[str, Any]]) -> Runtime:
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    for e in events:
        runtime.emitter.emit(e)
    return runtime


def dead_letters(runtime: Runtime) -> list[tuple[str, str]]:
    return [(json.loads(d.payload or "{}")["job"]["name"], d.last_error or "")
            for d in runtime.emitter.spool.entries(state=DEAD)]


def cli_dead_letters(home: Path) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "provlink.cli.main", "spool", "dead-letters",
                          "--json"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PROVLINK_HOME": str(home)})
    return json.loads(out.stdout)


def test_poison_between_good_events_into_the_embedded_store(clean_env: Path) -> None:
    runtime = spool_all(poisoned_sequence())
    try:
        assert runtime.flush(20.0)  # nothing left pending: the poison did not wedge it
        spool = runtime.emitter.spool
        assert (spool.status().sent, spool.status().dead, spool.status().pending) == (4, 1, 0)
    finally:
        runtime.close(2.0)
    [(job, reason)] = dead_letters(runtime)
    assert job == "poison" and reason.startswith("422 eventTime")
    store = open_store(str(clean_env / "lineage.db"))
    stored = [(e["job"]["name"], e["eventType"]) for e in store.iter_events()]
    store.close()
    assert stored == [("good_a", "START"), ("good_a", "COMPLETE"),
                      ("good_b", "START"), ("good_b", "COMPLETE")]
    [row] = cli_dead_letters(clean_env)
    assert row["job"] == "poison-tests/poison" and row["error"].startswith("422 eventTime")


def start_serve(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVLINK_SENDER")}
    proc = subprocess.Popen([sys.executable, "-m", "provlink.cli.main", "serve", "--port",
                             str(port), "--db", f"sqlite:///{tmp_path / 'serve.db'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("provlink serve did not start")


def test_poison_between_good_events_into_a_real_provlink_serve(clean_env: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    proc, url = start_serve(tmp_path)
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    try:
        runtime = spool_all(poisoned_sequence())
        try:
            assert wait_for(lambda: runtime.emitter.spool.status().pending == 0)
        finally:
            runtime.close(2.0)
        import httpx

        listed = httpx.get(f"{url}/api/v1/namespaces/poison-tests/jobs").json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert sorted(j["name"] for j in listed["jobs"]) == ["good_a", "good_b"]
    assert runtime.emitter.spool.status().sent == 4
    [(job, reason)] = dead_letters(runtime)
    assert job == "poison" and reason.startswith("422 eventTime")


class MarquezLike:
    """A real HTTP server answering as Marquez does (201 to POST /api/v1/lineage, no batch
    endpoint) that records arrival order; ``answer(event)`` picks the status per event."""

    def __init__(self, answer: Callable[[dict[str, Any]], int], *,
                 batch: str = "absent", latency: float = 0.0) -> None:
        self.answer = answer
        self.batch = batch  # "absent" (404) or "refuse" (400 for the whole batch)
        self.latency = latency
        self.arrived: list[dict[str, Any]] = []
        self.tries: list[str] = []
        self.batch_posts = 0
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.endswith("/batch"):
                    with server.lock:
                        server.batch_posts += 1
                    self.reply(404 if server.batch == "absent" else 400)
                    return
                event = json.loads(body)
                with server.lock:
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                if server.latency:
                    time.sleep(server.latency * (hash(event["run"]["runId"]) % 3))
                status = server.answer(event)
                with server.lock:
                    server.inflight -= 1
                    server.tries.append(event["job"]["name"])
                    if status < 300:
                        server.arrived.append(event)
                self.reply(status)

            def reply(self, status: int) -> None:
                message = b"" if status < 300 else b'{"error": "refused by MarquezLike"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("batch", ["absent", "refuse"])
def test_poison_into_a_marquez_like_endpoint_refused_and_failing(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch, batch: str) -> None:
    """A refused poison (422) is dead-lettered at once; one the backend always fails on (500)
    after ``delivery_max_attempts``, with the last error; the good ones all arrive."""
    def answer(e: dict[str, Any]) -> int:
        return {"refused": 422, "crashes": 500}.get(e["job"]["name"], 201)

    server = MarquezLike(answer, batch=batch)
    monkeypatch.setenv("OPENLINEAGE_URL", server.url)
    monkeypatch.setenv("PROVLINK_DELIVERY_MAX_ATTEMPTS", "3")
    events = [event("good_a", 1), event("refused", 2), event("good_a", 1, "COMPLETE"),
              event("crashes", 4), event("crashes", 4, "COMPLETE"), event("good_b", 5)]
    try:
        runtime = spool_all(events)
        try:
            assert wait_for(lambda: runtime.emitter.spool.status().pending == 0)
        finally:
            runtime.close(2.0)
    finally:
        server.stop()
    assert sorted((e["job"]["name"], e["eventType"]) for e in server.arrived) == [
        ("good_a", "COMPLETE"), ("good_a", "START"), ("good_b", "START")]
    dead = dead_letters(runtime)
    assert [(job, reason.split(" ", 1)[0]) for job, reason in dead] == [
        ("refused", "422"), ("crashes", "500"), ("crashes", "500")]
    assert all("refused by MarquezLike" in reason for _, reason in dead)
    attempts = {d.seq: d.attempts for d in runtime.emitter.spool.entries(state=DEAD)}
    assert attempts == {2: 1, 4: 3, 5: 3}  # the run's COMPLETE waited behind its START
    assert server.tries.count("refused") == 1 and server.tries.count("crashes") == 6
    assert runtime.emitter.spool.status().sent == len(list(
        runtime.emitter.spool.entries(state=SENT))) == 3
    if batch == "absent":
        assert server.batch_posts <= 1  # remembered: no batch endpoint here
