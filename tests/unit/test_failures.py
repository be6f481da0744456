"""This process's failure count and its line at exit (the durable count is in
test_stray_settings, through the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provlink.delivery.failures import counted_apart, failures_in_process, note_in_process

# A host that closed the stream its logging handler writes to before the interpreter exits,
# as pytest does with its capture files; OPEN keeps it open.
_EXIT_WITH_HANDLER = """
import logging, sys
from provlink.delivery.failures import note_in_process
stream = open(sys.argv[1], "w")
logging.getLogger().addHandler(logging.StreamHandler(stream))
note_in_process("job: step", "OSError: disk on fire")
if sys.argv[2] == "closed":
    stream.close()
"""


def _exit_with_handler(tmp_path: Path, stream: str) -> tuple[subprocess.CompletedProcess[str],
                                                             str]:
    log_file = tmp_path / "handler.log"
    proc = subprocess.run([sys.executable, "-c", _EXIT_WITH_HANDLER, str(log_file), stream],
                          capture_output=True, text=True, timeout=60)
    return proc, log_file.read_text()


def _exit_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "1 capture step(s) failed" in line]


def test_the_line_at_exit_goes_to_stderr_when_the_handler_stream_is_closed(
        tmp_path: Path) -> None:
    proc, logged = _exit_with_handler(tmp_path, "closed")
    assert proc.returncode == 0, proc.stderr
    assert "Logging error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    (line,) = _exit_lines(proc.stderr)
    assert "last: job: step: OSError: disk on fire" in line
    assert logged == ""


def test_the_line_at_exit_is_logged_while_the_handler_stream_is_open(tmp_path: Path) -> None:
    proc, logged = _exit_with_handler(tmp_path, "open")
    assert proc.returncode == 0, proc.stderr
    assert _exit_lines(proc.stderr) == []
    (line,) = _exit_lines(logged)
    assert "disk on fire" in line


@pytest.mark.parametrize("nested", [False, True])
def test_failures_counted_apart_leave_the_process_count_as_it_was(nested: bool) -> None:
    before = failures_in_process()
    with counted_apart() as outer:
        note_in_process("outer", "made on purpose")
        if nested:
            with counted_apart() as inner:
                note_in_process("inner", "made on purpose")
                note_in_process("inner", "made on purpose")
                assert inner() == 2
        assert outer() == 1
    assert failures_in_process() == before
