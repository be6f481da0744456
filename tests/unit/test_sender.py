"""The sender's policy: order, backoff on transient failures, dead letters on refusals."""

from __future__ import annotations

import json
from pathlib import Path

from provlink.delivery.sender import Sender
from provlink.delivery.spool import Spool
from provlink.delivery.targets import Outcome, classify


class ScriptedTarget:
    """Accepts events, failing transiently while ``down`` and refusing runIds in ``refuse``."""

    kind = "scripted"

    def __init__(self) -> None:
        self.down = False
        self.refuse: set[str] = set()
        self.received: list[dict] = []
        self.calls = 0

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        self.calls += 1
        out: list[Outcome] = []
        for payload in payloads:
            event = json.loads(payload)
            if self.down:
                out.append(Outcome(ok=False, error="connection refused"))
                return out
            if event["run"]["runId"] in self.refuse:
                out.append(Outcome(ok=False, permanent=True, error="422 job.name: required"))
                continue
            self.received.append(event)
            out.append(Outcome(ok=True))
        return out

    def close(self, timeout: float) -> bool:
        return True


def setup(tmp_path: Path, **kw) -> tuple[Spool, ScriptedTarget, Sender]:
    spool = Spool(tmp_path / "spool.db")
    target = ScriptedTarget()
    sender = Sender(spool, lambda: target, backoff_initial=0.01, backoff_max=0.05, **kw)
    return spool, target, sender


def ev(run: str, i: int) -> dict:
    return {"run": {"runId": run}, "i": i}


def test_delivers_in_append_order_in_bounded_batches(tmp_path: Path) -> None:
    spool, target, sender = setup(tmp_path, batch_size=3)
    for i in range(10):
        spool.append(ev(f"r{i % 2}", i))
    assert sender.flush(5.0)
    assert [e["i"] for e in target.received] == list(range(10))
    assert target.calls >= 4  # 10 events in batches of at most 3
    assert spool.status().sent == 10


def test_transient_failure_keeps_events_pending_and_backs_off(tmp_path: Path) -> None:
    spool, target, sender = setup(tmp_path)
    for i in range(4):
        spool.append(ev("r", i))
    target.down = True
    assert sender.flush(1.0) is False  # gives up at once: the backend is known down
    assert sender.backing_off
    assert spool.status().pending == 4
    target.down = False
    import time
    time.sleep(0.1)
    assert sender.flush(5.0)
    assert [e["i"] for e in target.received] == [0, 1, 2, 3]


def test_refused_event_is_dead_lettered_once_and_others_flow(tmp_path: Path) -> None:
    spool, target, sender = setup(tmp_path)
    spool.append(ev("good", 0))
    spool.append(ev("bad", 1))
    spool.append(ev("good", 2))
    target.refuse = {"bad"}
    assert sender.flush(5.0)
    assert [e["i"] for e in target.received] == [0, 2]
    status = spool.status()
    assert (status.sent, status.dead, status.pending) == (2, 1, 0)
    dead = next(spool.entries(state=2))
    assert dead.last_error == "422 job.name: required"
    assert sender.flush(1.0) and target.calls == 1  # never retried


def test_background_thread_drains_after_notify(tmp_path: Path) -> None:
    spool, target, sender = setup(tmp_path, poll_interval=0.01)
    sender.start()
    for i in range(5):
        spool.append(ev("r", i))
    sender.notify()
    assert sender.close(5.0)
    assert len(target.received) == 5


def test_only_the_lease_holder_sends(tmp_path: Path) -> None:
    spool, target, sender = setup(tmp_path)
    spool.append(ev("r", 0))
    assert spool.acquire_lease("otherhost:1:1", 30)
    assert sender.flush(0.2) is False
    assert target.received == []
    spool.release_lease("otherhost:1:1")
    assert sender.flush(2.0)
    assert len(target.received) == 1


def test_classify_http_errors() -> None:
    import requests

    def http_error(status: int) -> requests.HTTPError:
        response = requests.Response()
        response.status_code = status
        response._content = b'{"message": "job.name is required"}'
        return requests.HTTPError(response=response)

    refused = classify(http_error(422))
    assert refused.permanent and refused.status == 422 and "job.name" in str(refused)
    assert not classify(http_error(503)).permanent
    assert not classify(http_error(429)).permanent
    assert not classify(requests.ConnectionError("refused")).permanent
