"""Delivery through a real local HTTP endpoint: outages, process death, secrets on the wire."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

import provlink
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import Spool
from provlink.testing import RecordingEndpoint
from tests.conformance import validate_event

FAST_RETRY = {"PROVLINK_SENDER_BACKOFF_INITIAL": "0.05", "PROVLINK_SENDER_BACKOFF_MAX": "0.3",
              "PROVLINK_SENDER_POLL_INTERVAL": "0.05"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def env(tmp_path, monkeypatch):
    port = free_port()
    values = {"PROVLINK_HOME": str(tmp_path / "home"), "OPENLINEAGE_URL": f"http://127.0.0.1:{port}",
              **FAST_RETRY}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    yield port
    set_runtime(None)


def assert_in_order_per_run(events: list[dict]) -> None:
    order = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}
    by_run: dict[str, list[int]] = defaultdict(list)
    for event in events:
        by_run[event["run"]["runId"]].append(order[event["eventType"]])
    for run_id, states in by_run.items():
        assert states == sorted(states), f"run {run_id} arrived out of order: {states}"


def test_backend_down_then_up_every_event_arrives_in_order(env: int) -> None:
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    for i in range(12):
        with provlink.capture(f"job_{i % 3}", capture_files=False):
            provlink.add_parameters(i=i)
    spool = runtime.emitter.spool
    assert wait_for(lambda: runtime.emitter.sender.backing_off, 10)
    assert spool.status().pending == 24  # nothing lost, nothing sent

    endpoint = RecordingEndpoint(port=env).start()
    try:
        assert wait_for(lambda: len(endpoint.events) >= 24), spool.status()
        assert runtime.close(5.0)
    finally:
        endpoint.stop()
    assert len(endpoint.events) == 24
    assert len({(e["run"]["runId"], e["eventType"]) for e in endpoint.events}) == 24
    assert_in_order_per_run(endpoint.events)
    for event in endpoint.events:
        validate_event(event)
    assert spool.status().sent == 24


def test_refused_event_is_dead_lettered_with_the_servers_message(env: int) -> None:
    endpoint = RecordingEndpoint(port=env).start()
    endpoint.respond_with = 422
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        with provlink.capture("refused", capture_files=False):
            pass
        spool = runtime.emitter.spool
        assert wait_for(lambda: spool.status().dead == 2, 10)
        dead = list(spool.entries(state=2))
        assert all("422" in d.last_error and "refused by test endpoint" in d.last_error
                   for d in dead)
        endpoint.respond_with = 201
        with provlink.capture("accepted", capture_files=False):
            pass
        assert wait_for(lambda: len(endpoint.events) == 2, 10)
    finally:
        runtime.close(2.0)
        endpoint.stop()
    assert {e["job"]["name"] for e in endpoint.events} == {"accepted"}
    out = subprocess.run([sys.executable, "-m", "provlink.cli.main",
                          "spool", "dead-letters", "--json"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert {r["job"] for r in rows} == {"default/refused"} and len(rows) == 2


CHILD = """
import sys, time, provlink
for i in range(20):
    with provlink.capture(f"killed_job_{i % 4}", capture_files=False):
        provlink.add_parameters(i=i)
print("appended", flush=True)
time.sleep(120)
"""


def test_sigkill_after_append_loses_nothing(env: int, tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "appended"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    spool = Spool(tmp_path / "home" / "spool.db")
    assert spool.status().pending == 40

    endpoint = RecordingEndpoint(port=env).start()
    try:
        flush = subprocess.run([sys.executable, "-m", "provlink.cli.main", "spool", "flush",
                                "--timeout", "30"], capture_output=True, text=True)
        assert flush.returncode == 0, flush.stdout + flush.stderr
    finally:
        endpoint.stop()
    assert len(endpoint.events) == 40
    params = sorted(int(p["value"]) for e in endpoint.events if e["eventType"] == "COMPLETE"
                    for p in e["run"]["facets"]["executionParameters"]["parameters"])
    assert params == list(range(20))
    assert_in_order_per_run(endpoint.events)
    status = subprocess.run([sys.executable, "-m", "provlink.cli.main",
                             "spool", "status", "--json"],
                            capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["pending"] == 0 and json.loads(status.stdout)["sent"] == 40


SECRETS = ("Sup3rS3cretPw!", "tok_ABCDEF1234567", "UrlPa55word", "KnownValue-9f8e7d")


def test_seeded_secrets_appear_in_no_byte_sent_or_spooled(env: int, tmp_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("MYAPP_API_TOKEN", SECRETS[1])
    monkeypatch.setenv("PROVLINK_REDACT_VALUES", SECRETS[3])
    endpoint = RecordingEndpoint(port=env).start()
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        with pytest.raises(RuntimeError):
            with provlink.capture("leaky", capture_files=False,
                                  parameters={"db_password": SECRETS[0],
                                              "dsn": f"postgresql://etl:{SECRETS[2]}@db:5432/x",
                                              "note": f"token is {SECRETS[1]}"}):
                provlink.add_input("public.t", namespace=f"postgres://etl:{SECRETS[2]}@db:5432")
                provlink.add_parameters(config={"nested": {"client_secret": SECRETS[0]}})
                raise RuntimeError(f"could not log in with {SECRETS[3]}")
        assert wait_for(lambda: len(endpoint.events) == 2, 10)
        runtime.close(2.0)
    finally:
        endpoint.stop()
    sent = b"".join(endpoint.bodies)
    spooled = b"".join(p.read_bytes() for p in (tmp_path / "home").glob("spool.db*"))
    assert b"leaky" in sent and b"leaky" in spooled  # we are looking at the right bytes
    for secret in SECRETS:
        assert secret.encode() not in sent, secret
        assert secret.encode() not in spooled, secret
    fail = endpoint.events[-1]
    assert fail["inputs"][0]["namespace"] == "postgres://db:5432"  # credentials parsed out
    assert "could not log in with ***" in fail["run"]["facets"]["errorMessage"]["message"]
