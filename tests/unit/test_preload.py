"""``preload`` imports everything a process's first capture point would import, so a host
process that forks task processes (an Airflow scheduler or worker) pays for it once.

Each case runs in a fresh interpreter: this one has imported everything long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FIRST_CAPTURE = """
import json, sys
{setup}
import provlink
before = set(sys.modules)
with provlink.capture("first"):
    pass
provlink.flush()
new = sorted(m for m in set(sys.modules) - before
             if m.split(".")[0] in ("provlink", "provlink_airflow", "cryptography"))
print(json.dumps(new))
"""


def first_capture_imports(setup: str, home: Path) -> list[str]:
    env = {**os.environ, "PROVLINK_HOME": str(home)}
    for key in [k for k in env if k.startswith(("OPENLINEAGE", "PROVLINK_SPOOL"))]:
        del env[key]
    done = subprocess.run([sys.executable, "-c", FIRST_CAPTURE.format(setup=setup)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
                          check=True)
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_after_preload_the_first_capture_point_imports_nothing_of_provlinks(
        tmp_path: Path) -> None:
    without = first_capture_imports("", tmp_path / "a")
    assert "provlink.governance.log" in without  # what preload is for: it was on the path
    after = first_capture_imports(
        "from provlink.capturing.preload import preload\npreload()", tmp_path / "b")
    assert after == []


FORKED_REDACTOR = """
import json, os
from provlink.capturing.preload import preload
from provlink.config import ProvlinkConfig
from provlink.events.redact import key_pattern
{setup}
read, write = os.pipe()
if os.fork() == 0:  # a task process forked from the scheduler
    from provlink.delivery.runtime import Runtime
    Runtime(ProvlinkConfig.load())
    info = key_pattern.cache_info()
    os.write(write, json.dumps([info.hits, info.misses]).encode())
    os._exit(0)
os.close(write)
print(os.read(read, 1000).decode())
"""


def test_a_forked_child_reuses_the_preloaded_compiled_key_patterns(tmp_path: Path) -> None:
    """≈ 10 ms per task process: the redactor's patterns compiled once in the parent
    (the child's compile is a hit of the parent's cache, not a compile of its own)."""
    env = {**os.environ, "PROVLINK_HOME": str(tmp_path)}
    for setup, expected in (("preload(ProvlinkConfig.load())", [1, 1]), ("", [0, 1])):
        done = subprocess.run([sys.executable, "-c", FORKED_REDACTOR.format(setup=setup)],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
                              check=True)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == expected, done.stderr


def test_the_airflow_plugin_preloads_unless_provlink_is_disabled(tmp_path: Path) -> None:
    code = ("import json, sys\nfrom provlink_airflow.plugin import preload_capture\n"
            "print(json.dumps([preload_capture(), 'provlink.governance.log' in sys.modules "
            "and 'airflow.providers.openlineage.extractors.manager' in sys.modules]))")
    for disabled, expected in (("", [True, True]), ("true", [False, False])):
        env = {**os.environ, "PROVLINK_HOME": str(tmp_path), "PROVLINK_DISABLED": disabled}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120, check=True)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == expected, done.stderr
