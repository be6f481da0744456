"""The sender's policy: order, backoff on transient failures, dead letters on refusals."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provlink.delivery.lanes import LaneStream
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


class FlakyTarget(ScriptedTarget):
    """Fails runIds in ``failing`` transiently (counted), and everything while ``unreachable``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.unreachable = False
        self.attempted: list[int] = []

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        self.calls += 1
        out: list[Outcome] = []
        for payload in payloads:
            event = json.loads(payload)
            if self.unreachable:
                return [Outcome(ok=False, error="ConnectionError: refused", counted=False)]
            self.attempted.append(event["i"])
            if event["run"]["runId"] in self.failing:
                out.append(Outcome(ok=False, error="500 internal error"))
                return out  # in-order target: stops at the first transient failure
            self.received.append(event)
            out.append(Outcome(ok=True))
        return out


def drain_until(sender: Sender, done, limit: int = 500) -> None:
    import time

    for _ in range(limit):
        if done():
            return
        sender.drain_once()
        time.sleep(0.005)
    raise AssertionError("sender did not get there")


def test_transient_poison_is_dead_lettered_after_max_attempts_and_its_run_resumes(
        tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    target = FlakyTarget()
    sender = Sender(spool, lambda: target, backoff_initial=0.001, backoff_max=0.01,
                    max_attempts=3)
    spool.append(ev("good", 0))
    spool.append(ev("poison", 1))
    spool.append(ev("poison", 2))
    target.failing = {"poison"}
    drain_until(sender, lambda: spool.status().dead == 1)
    target.failing = set()  # the backend would now take event 2 of that run
    drain_until(sender, lambda: spool.status().pending == 0)
    dead = list(spool.entries(state=2))
    assert [(d.seq, d.attempts, d.last_error) for d in dead] == [(2, 3, "500 internal error")]
    assert [e["i"] for e in target.received] == [0, 2]
    assert target.attempted.count(1) == 3  # exactly max_attempts tries of the poison
    assert target.attempted.index(2) > max(i for i, v in enumerate(target.attempted) if v == 1)


def test_other_runs_flow_while_a_poison_is_retried(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    target = FlakyTarget()
    target.failing = {"poison"}

    class LaneTarget(FlakyTarget):
        """Different runs independently (as the HTTP target's lanes do)."""

        def deliver(self, payloads: list[str]) -> list[Outcome]:
            blocked: set[str] = set()
            out = []
            for payload in payloads:
                run = json.loads(payload)["run"]["runId"]
                if run in blocked:
                    out.append(Outcome(ok=False, held=True))
                    continue
                result = FlakyTarget.deliver(self, [payload])[0]
                if not result.ok:
                    blocked.add(run)
                out.append(result)
            return out

    lanes = LaneTarget()
    lanes.failing = {"poison"}
    sender = Sender(spool, lambda: lanes, backoff_initial=30.0, backoff_max=30.0, max_attempts=5)
    spool.append(ev("poison", 0))
    spool.append(ev("poison", 1))
    for i in range(2, 6):
        spool.append(ev("other", i))
    assert sender.drain_once()
    assert not sender.backing_off  # others were delivered: the backend is fine
    spool.append(ev("other", 6))
    assert sender.drain_once()  # the poison's retry is not due (30 s), its run waits
    assert [e["i"] for e in lanes.received] == [2, 3, 4, 5, 6]
    assert lanes.attempted.count(0) == 1 and 1 not in lanes.attempted
    assert spool.status().pending == 2


def test_an_unreachable_backend_never_dead_letters(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    target = FlakyTarget()
    target.unreachable = True
    sender = Sender(spool, lambda: target, backoff_initial=0.0, backoff_max=0.0, max_attempts=2)
    for i in range(3):
        spool.append(ev("r", i))
    for _ in range(20):
        sender.drain_once()
    assert target.calls == 20
    status = spool.status()
    assert (status.pending, status.dead) == (3, 0)
    assert next(spool.entries()).attempts == 0
    assert "refused" in (next(spool.entries()).last_error or "")
    target.unreachable = False
    assert sender.flush(5.0)
    assert [e["i"] for e in target.received] == [0, 1, 2]


def test_a_target_that_raises_does_not_wedge_the_spool(tmp_path: Path) -> None:
    class Broken(ScriptedTarget):
        def deliver(self, payloads: list[str]) -> list[Outcome]:
            if any(json.loads(p)["run"]["runId"] == "boom" for p in payloads[:1]):
                raise KeyError("a bug this event's shape triggers")
            return super().deliver(payloads)

    spool = Spool(tmp_path / "spool.db")
    target = Broken()
    sender = Sender(spool, lambda: target, backoff_initial=0.0, backoff_max=0.0, max_attempts=2)
    spool.append(ev("boom", 0))
    spool.append(ev("fine", 1))
    drain_until(sender, lambda: spool.status().pending == 0)
    dead = next(spool.entries(state=2))
    assert dead.seq == 1 and "KeyError" in (dead.last_error or "")
    assert [e["i"] for e in target.received] == [1]


def test_requeued_dead_letters_get_fresh_attempts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append(ev("r", 0))
    assert spool.record_failure(1, "500", max_attempts=2) == (1, False)
    assert spool.record_failure(1, "500", max_attempts=2) == (2, True)
    assert spool.requeue_dead() == 1
    assert spool.record_failure(1, "500", max_attempts=2) == (1, False)


def test_last_error_goes_through_the_spools_one_error_filter(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", error_filter=lambda text: text.replace("hunter2", "***"))
    spool.append(ev("a", 0))
    spool.append(ev("b", 1))
    spool.mark_dead(1, "401 bad password hunter2")
    spool.record_failure(2, "hunter2 " + "x" * 10_000)
    errors = [e.last_error or "" for e in spool.entries()]
    assert errors[0] == "401 bad password ***"
    assert "hunter2" not in errors[1] and len(errors[1]) == 4000


def test_a_failing_targets_traceback_is_logged_with_its_secrets_masked(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A delivery error quotes what it was sending to; task logs are shipped off the host."""
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

    class Leaky(ScriptedTarget):
        def deliver(self, payloads: list[str]) -> list[Outcome]:
            raise ConnectionError(f"https://{token}@lineage.example.com/api/v1/lineage: "
                                  "connection reset (password=Hunter2-Secret)")

    spool = Spool(tmp_path / "spool.db")
    sender = Sender(spool, Leaky, backoff_initial=0.0, backoff_max=0.0, max_attempts=1)
    spool.append(ev("r", 0))
    with caplog.at_level(logging.WARNING, logger="provlink"):
        sender.drain_once()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed delivering" in logged and "ConnectionError" in logged  # still useful
    assert token not in logged and "Hunter2-Secret" not in logged
    assert all(r.exc_info is None for r in caplog.records)  # no unmasked copy beside it


class StreamTarget(ScriptedTarget):
    """A target with lanes (as the HTTP target's): batches overlap through a LaneStream.
    ``b``'s send waits until ``c`` (the next batch, another run) was sent, then finds the
    backend unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(4)
        self.c_sent = threading.Event()
        self.attempted: list[str] = []

    def send(self, payload: str) -> Outcome:
        run = json.loads(payload)["run"]["runId"]
        self.attempted.append(run)
        if run == "b":
            assert self.c_sent.wait(10)
            return Outcome(ok=False, error="ConnectionError: refused", counted=False)
        if run == "c":
            self.c_sent.set()
        return Outcome(ok=True)

    def open_stream(self) -> LaneStream:
        return LaneStream(self.send, self.pool)

    def close(self, timeout: float) -> bool:
        self.pool.shutdown()
        return True


def test_an_outage_in_one_batch_backs_off_though_the_next_batch_sent(tmp_path: Path) -> None:
    """Batch 2 was handed over while batch 1 ran; batch 1 then met an outage: batch 2's sent
    event is marked sent, yet the sender backs off and reads no further batch."""
    spool = Spool(tmp_path / "spool.db")
    target = StreamTarget()
    sender = Sender(spool, lambda: target, batch_size=2, backoff_initial=30.0,
                    backoff_max=30.0)
    for run in ("a", "b", "c", "d", "e"):
        spool.append({"run": {"runId": run}})
    assert sender.drain_once()
    assert sender.backing_off  # not reset by batch 2's success
    assert "e" not in target.attempted  # nothing starts after the outage
    sent = {json.loads(e.payload or "{}")["run"]["runId"] for e in spool.entries(state=1)}
    assert {"a", "c"} <= sent and "b" not in sent
    assert [e.attempts for e in spool.entries(state=0)][0] == 0  # b: the outage is not counted
    target.close(1.0)


def test_a_sender_backing_off_keeps_its_lease(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provlink.delivery import sender as sender_module

    monkeypatch.setattr(sender_module, "LEASE_TTL", 0.6)
    spool = Spool(tmp_path / "spool.db")
    target = ScriptedTarget()
    target.down = True
    holder = Sender(spool, lambda: target, poll_interval=0.05, backoff_initial=60.0,
                    backoff_max=60.0)
    spool.append(ev("r", 0))
    holder.start()
    try:
        for _ in range(200):  # its first attempt fails: it now waits a minute to retry
            if target.calls:
                break
            threading.Event().wait(0.05)
        assert target.calls == 1 and holder.backing_off
        threading.Event().wait(1.5)  # well past the lease's 0.6 s
        other = Spool(tmp_path / "spool.db")
        assert not other.acquire_lease("another-host:1:1", 0.6)  # still the backing-off one's
        assert target.calls == 1
        other.close()
    finally:
        holder.close(0.0)
    assert spool.acquire_lease("another-host:1:1", 0.6)  # released at close
