"""Child processes for integration tests: services started for one test and stopped after
it, and writers released at the same moment."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_together(code: str, argvs: list[list[str]], timeout: float = 300) -> None:
    """One interpreter per ``argvs`` entry runs ``code`` (``sys.argv[1:]`` is the entry);
    each waits for a line on stdin, so all are released at once once all have started.
    Asserts that every one exits 0."""
    children = [subprocess.Popen([sys.executable, "-c", code, *argv], stdin=subprocess.PIPE,
                                 cwd=ROOT, text=True) for argv in argvs]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    assert [child.wait(timeout=timeout) for child in children] == [0] * len(children)


@contextmanager
def started(log_dir: Path, commands: Sequence[tuple[str, list[str], Mapping[str, str]]], *,
            stop: signal.Signals = signal.SIGTERM, cwd: Path | None = None
            ) -> Iterator[dict[str, int]]:
    """Start each ``(name, argv, env)`` (output in ``log_dir/<name>.log``); on exit send
    ``stop`` to them, then SIGKILL after 30 s: only the processes started here. Yields their
    pids by name."""
    procs = []
    try:
        for name, argv, env in commands:
            log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed below
            procs.append((name, subprocess.Popen(argv, env=dict(env), cwd=cwd, stdout=log,
                                                 stderr=subprocess.STDOUT,
                                                 start_new_session=True), log))
        yield {name: proc.pid for name, proc, _ in procs}
    finally:
        for _, proc, _ in procs:
            proc.send_signal(stop)
        for _, proc, log in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            log.close()
