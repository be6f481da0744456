"""The public API is what provlink/__init__ exports; the core never imports an orchestrator."""

from __future__ import annotations

import subprocess
import sys

import provlink


def test_public_api_is_pinned() -> None:
    assert sorted(provlink.__all__) == [
        "CapturePoint", "ConfigError", "DatasetRef", "ProvlinkConfig", "ProvlinkError",
        "SchemaField", "__version__", "add_input", "add_output", "add_parameters", "capture",
        "captured", "current", "flush", "get_runtime",
    ]
    for name in provlink.__all__:
        assert getattr(provlink, name) is not None


BLOCKED = ("airflow", "dagster", "mlflow", "pandas", "pyarrow", "sklearn", "starlette", "uvicorn")

SCRIPT = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"blocked: {{name}}")
sys.meta_path.insert(0, Block())
import provlink, provlink.cli.main, provlink.delivery.sender, provlink.delivery.targets
import provlink.capturing.file_capture
from provlink.testing import capture_events
with capture_events() as events:
    with provlink.capture("isolated"):
        open(__file__ if "__file__" in globals() else "/etc/hostname").read()
assert [e["eventType"] for e in events] == ["START", "COMPLETE"], events
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
print("LOADED", loaded)
"""


def test_core_works_with_orchestrators_and_heavy_libraries_blocked(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={"PROVLINK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


def test_importing_provlink_is_light_until_a_name_is_used() -> None:
    code = ("import sys, provlink.mlflow.context; "
            "print('openlineage.client' in sys.modules, "
            "'provlink.capturing.point' in sys.modules); "
            "provlink.capture; print('provlink.capturing.point' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True"]
