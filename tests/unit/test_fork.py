"""A process forked after provlink was used (Airflow's LocalExecutor forks task processes
from a scheduler that already emitted) captures with a runtime, probe and lock of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, os, sys, threading
import provlink
from provlink.delivery.runtime import get_runtime

with provlink.capture("parent_job", capture_files=False):
    pass
parent = get_runtime()
held, forked = threading.Event(), threading.Event()

def hold():
    with parent.emitter.spool._lock:  # a thread of the parent holds the spool's lock across fork()
        held.set()
        forked.wait()

holder = threading.Thread(target=hold)
holder.start()
held.wait()
pid = os.fork()
forked.set()
if pid == 0:
    import faulthandler  # a hang shows every thread's stack in the test's output
    faulthandler.dump_traceback_later(60, exit=True)
    child = get_runtime()
    with provlink.capture("child_job", capture_files=False):
        pass
    ok = child is not parent  # delivery is the lease holder's job (the parent, alive)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("CHILD", os.waitstatus_to_exitcode(status))
"""


def test_forked_child_builds_its_own_runtime(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "PROVLINK"))},
           "PROVLINK_HOME": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "CHILD 0" in done.stdout, done.stdout + done.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "spool.db") as db:
        rows = [json.loads(p) for (p,) in db.execute("SELECT payload FROM events ORDER BY seq")]
    child = [e for e in rows if e["job"]["name"] == "child_job"]
    assert [e["eventType"] for e in child] == ["START", "COMPLETE"]
    assert "provlink_environment" in child[1]["run"]["facets"]  # the probe ran in the child
