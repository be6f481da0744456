"""No setting switches capture off (issue 10, item 4), in fresh processes as users run them.

With ``PROVLINK_API_KEYS`` (which ``provlink serve`` asks for) and an unknown ``PROVLINK_FOO``
exported, a capture point still spools and delivers its events, ``provlink.flush()`` returns,
every CLI command still works, and each process warns about ``PROVLINK_FOO`` exactly once.
``home`` set in ``provlink.yml`` (no ``PROVLINK_HOME``) reaches ``export``; a failed capture
step is counted durably and shown by ``provlink status``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

API_KEY = "serve-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]

_CAPTURE = """
import sys
import provlink
data = sys.argv[1]
with provlink.capture("stray_settings_job", parameters={"header": "Bearer " + sys.argv[2]}):
    open(data, "w").write("a\\n1\\n")
print("FLUSHED", provlink.flush(30.0))
"""

_FAILING_CAPTURE = """
import provlink
from provlink.capturing import point

def broken(self):
    raise OSError("disk on fire")

point.CapturePoint._probed = broken   # a capture step that fails inside the capture point
with provlink.capture("failing_capture_job"):
    pass
print("TASK RAN")
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROVLINK_", "OPENLINEAGE", "AIRFLOW", "DAGSTER", "MLFLOW"))}
    env.update({"HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(
        str(ROOT / p) for p in ("src", "airflow_integration", "dagster_integration", "."))})
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def _cli(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run(["-m", "provlink.cli.main", *argv], env, cwd)


def _foo_warnings(stderr: str) -> int:
    return sum("PROVLINK_FOO" in line for line in stderr.splitlines())


def test_api_keys_and_an_unknown_variable_switch_nothing_off(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(tmp_path, PROVLINK_HOME=str(home), PROVLINK_API_KEYS=API_KEY,
               PROVLINK_FOO="bar")
    data = tmp_path / "data.csv"

    proc = _run(["-c", _CAPTURE, str(data), API_KEY], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FLUSHED True" in proc.stdout
    assert _foo_warnings(proc.stderr) == 1, proc.stderr
    assert "ignoring environment variable PROVLINK_FOO" in proc.stderr
    assert API_KEY not in proc.stderr

    status = _cli(["spool", "status", "--json"], env, tmp_path)
    assert status.returncode == 0, status.stderr
    assert _foo_warnings(status.stderr) == 1
    counts = json.loads(status.stdout)
    assert (counts["pending"], counts["sent"], counts["dead_letter"]) == (0, 2, 0)
    assert counts["capture_failures"] is None

    health = _cli(["status"], env, tmp_path)
    assert health.returncode == 0, health.stdout + health.stderr
    assert "failed capture steps  0" in health.stdout
    assert _foo_warnings(health.stderr) == 1

    exported = _cli(["export"], env, tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert _foo_warnings(exported.stderr) == 1
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    complete = events[1]
    assert complete["job"]["name"] == "stray_settings_job"
    assert complete["outputs"][0]["name"] == str(data.resolve())
    assert API_KEY not in exported.stdout  # the configured API key is a known secret value


def test_home_from_provlink_yml_reaches_export(tmp_path: Path) -> None:
    home = tmp_path / "from_yml"
    (tmp_path / "provlink.yml").write_text(f"home: {home}\n")
    env = _env(tmp_path)
    proc = _run(["-c", _CAPTURE, str(tmp_path / "d.csv"), API_KEY], env, tmp_path)
    assert proc.returncode == 0 and "FLUSHED True" in proc.stdout, proc.stderr[-3000:]
    assert (home / "lineage.db").is_file()
    exported = _cli(["export"], env, tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == 2
    assert not (tmp_path / ".provlink").exists()  # nothing went to the default home


def test_a_failed_capture_step_is_counted_and_shown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(tmp_path, PROVLINK_HOME=str(home))
    proc = _run(["-c", _FAILING_CAPTURE], env, tmp_path)
    assert proc.returncode == 0 and "TASK RAN" in proc.stdout, proc.stderr[-3000:]
    exit_lines = [ln for ln in proc.stderr.splitlines() if "failed in this process" in ln]
    assert len(exit_lines) == 1 and "disk on fire" in exit_lines[0], proc.stderr[-3000:]

    again = _run(["-c", _FAILING_CAPTURE], env, tmp_path)
    assert again.returncode == 0

    health = _cli(["status", "--json"], env, tmp_path)
    assert health.returncode == 1  # unhealthy: lineage is incomplete
    failures = json.loads(health.stdout)["capture_failures"]
    assert failures["count"] == 2
    assert failures["since"] <= failures["last_at"]
    assert "failing_capture_job" in failures["last_where"]
    assert failures["last_error"] == "OSError: disk on fire"

    table = _cli(["spool", "status"], env, tmp_path)
    assert table.returncode == 0
    assert "failed capture steps: 2 since" in table.stdout

    assert _cli(["status", "--reset"], env, tmp_path).returncode == 0
    assert _cli(["status"], env, tmp_path).returncode == 0
