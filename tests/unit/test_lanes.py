"""A lane stream keeps a run's order across batches while later batches already flow."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from provlink.delivery.lanes import LaneStream
from provlink.delivery.outcome import OK, Outcome
from tests.unit.test_targets import event


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def batch(*items: tuple[str, int, int]) -> list[str]:
    """``(job, run number, index)``: one payload per item; a run number is a lane."""
    return [json.dumps({**event(job, n), "i": i}) for job, n, i in items]


class Recorder:
    """Sends: records the order, blocks run 1's first event until ``gate`` opens, and
    answers with ``answer[i]`` (default 201-like OK)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.sent: list[int] = []
        self.answer: dict[int, Outcome] = {}
        self.lock = threading.Lock()
        self.first_fast = threading.Event()
        self.entered = threading.Event()

    def send(self, payload: str) -> Outcome:
        self.entered.set()
        e = json.loads(payload)
        if e["i"] == 0:
            assert self.gate.wait(10)
        with self.lock:
            self.sent.append(e["i"])
        if e["job"]["name"] == "fast":
            self.first_fast.set()
        return self.answer.get(e["i"], OK)


def test_a_run_spanning_two_batches_keeps_its_order_while_others_overtake(
        pool: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    stream = LaneStream(recorder.send, pool)
    first = stream.submit(batch(("slow", 1, 0), ("slow", 1, 1)))
    second = stream.submit(batch(("slow", 1, 2), ("fast", 2, 3), ("slow", 1, 4)))
    # batch 2's other run goes while batch 1's run is still on its first event
    assert recorder.first_fast.wait(10)
    assert not first.done() and recorder.sent == [3]
    recorder.gate.set()
    assert all(o.ok for o in first.result(10)) and all(o.ok for o in second.result(10))
    assert [i for i in recorder.sent if i != 3] == [0, 1, 2, 4]


def test_a_run_that_failed_in_one_batch_holds_its_events_of_the_next(
        pool: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    recorder.gate.set()
    recorder.answer = {1: Outcome(ok=False, error="500 internal error")}
    stream = LaneStream(recorder.send, pool)
    first = stream.submit(batch(("a", 1, 0), ("a", 1, 1), ("b", 2, 2)))
    assert [o.ok for o in first.result(10)] == [True, False, True]
    second = stream.submit(batch(("a", 1, 3), ("b", 2, 4)))
    outcomes = second.result(10)
    assert outcomes[0].held and outcomes[1].ok
    assert 3 not in recorder.sent and sorted(recorder.sent) == [0, 1, 2, 4]


def test_once_unreachable_no_later_batch_sends(pool: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    recorder.gate.set()
    recorder.answer = {0: Outcome(ok=False, error="ConnectionError", counted=False)}
    stream = LaneStream(recorder.send, pool)
    assert not stream.submit(batch(("a", 1, 0))).result(10)[0].ok
    assert stream.stopped
    later = stream.submit(batch(("b", 2, 1), ("c", 3, 2)))
    assert all(o.held for o in later.result(10)) and recorder.sent == [0]


def test_a_send_that_raises_fails_its_event_and_resolves_the_batch(
        pool: ThreadPoolExecutor) -> None:
    def send(payload: str) -> Outcome:
        raise RuntimeError("a bug in a send")

    outcomes = LaneStream(send, pool).submit(batch(("a", 1, 0), ("a", 1, 1))).result(10)
    assert not outcomes[0].ok and not outcomes[0].permanent and outcomes[1].held


def test_lanes_the_pool_cancels_are_held_and_their_batch_resolves() -> None:
    """The target closing (its pool shut down, queued work cancelled) mid-batch: the
    sender waiting on that batch gets its answer, the lanes that never ran held."""
    recorder = Recorder()
    pool = ThreadPoolExecutor(1)
    stream = LaneStream(recorder.send, pool)
    pending = stream.submit(batch(("a", 1, 0), ("b", 2, 1), ("c", 3, 2)))
    assert recorder.entered.wait(10)  # lane a runs (blocked on the gate) on the one thread
    pool.shutdown(wait=False, cancel_futures=True)  # lanes b and c were still queued
    recorder.gate.set()
    outcomes = pending.result(10)
    assert outcomes[0].ok and outcomes[1].held and outcomes[2].held
    assert recorder.sent == [0]
    pool.shutdown(wait=True)
