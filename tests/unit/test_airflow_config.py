"""``provlink_airflow.config``: the ``[provlink]`` section of Airflow's configuration reaches
``ProvlinkConfig`` as explicit values. Each case runs in a fresh process with its own
AIRFLOW_HOME, because Airflow reads its configuration once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)

_PRINT_CONFIG = """
import json
from provlink_airflow import config
try:
    c = config.runtime().config
except Exception as exc:
    print("RESULT " + json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
else:
    print("RESULT " + json.dumps({"home": str(c.home), "capture_files": c.capture_files,
                                  "parameter_max_chars": c.parameter_max_chars,
                                  "sender_batch_size": c.sender_batch_size,
                                  "redact_values": list(c.redact_values)}))
"""


def _config_in_airflow(tmp_path: Path, airflow_cfg: str | None, **env: str) -> dict[str, Any]:
    home = tmp_path / "airflow_home"
    home.mkdir()
    if airflow_cfg is not None:
        (home / "airflow.cfg").write_text(airflow_cfg)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_"))}
    clean.update({"AIRFLOW_HOME": str(home), "HOME": str(tmp_path), **env})
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _PRINT_CONFIG], cwd=tmp_path,
                          env=clean, capture_output=True, text=True, timeout=90, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


def test_airflow_settings_win_over_provlink_env(tmp_path: Path) -> None:
    found = _config_in_airflow(
        tmp_path,
        "[provlink]\nhome = /from/airflow_cfg\nparameter_max_chars = 123\n"
        "capture_files = false\nredact_values = 0123, beta\n",
        AIRFLOW__PROVLINK__HOME=str(tmp_path / "from_airflow_env"),
        PROVLINK_HOME=str(tmp_path / "from_provlink_env"),
        PROVLINK_PARAMETER_MAX_CHARS="999",
        PROVLINK_SENDER_BATCH_SIZE="7")
    assert found == {
        "home": str(tmp_path / "from_airflow_env"),  # Airflow's precedence: env over file
        "parameter_max_chars": 123,  # [provlink] over PROVLINK_*
        "capture_files": False,
        "sender_batch_size": 7,  # PROVLINK_* fills in what the section leaves out
        "redact_values": ["0123", "beta"],  # text as written, not Airflow's int coercion
    }


def test_airflow_env_without_a_section_in_the_file(tmp_path: Path) -> None:
    found = _config_in_airflow(tmp_path, None,
                               AIRFLOW__PROVLINK__HOME=str(tmp_path / "from_airflow_env"),
                               AIRFLOW__PROVLINK__CAPTURE_FILES="False",
                               PROVLINK_HOME=str(tmp_path / "from_provlink_env"))
    assert found["home"] == str(tmp_path / "from_airflow_env")
    assert found["capture_files"] is False


@pytest.mark.parametrize("where", ["env", "file"])
def test_unknown_key_is_ignored(tmp_path: Path, where: str) -> None:
    """A typo in ``[provlink]`` is warned about and ignored: lineage stays on."""
    if where == "env":
        found = _config_in_airflow(tmp_path, None, AIRFLOW__PROVLINK__CAPTURE_FIELS="true",
                                   AIRFLOW__PROVLINK__PARAMETER_MAX_CHARS="77")
    else:
        found = _config_in_airflow(tmp_path, "[provlink]\ncapture_fiels = true\n"
                                   "parameter_max_chars = 77\n")
    assert "error" not in found
    assert found["parameter_max_chars"] == 77


def test_airflow_home_setting_reaches_the_cli(tmp_path: Path) -> None:
    """``home`` in ``[provlink]`` is where ``provlink status``/``serve``/``export`` look too."""
    airflow_home = tmp_path / "airflow_home"
    airflow_home.mkdir()
    (airflow_home / "airflow.cfg").write_text(f"[provlink]\nhome = {tmp_path / 'af_home'}\n")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_"))}
    clean.update({"AIRFLOW_HOME": str(airflow_home), "HOME": str(tmp_path)})
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "provlink.cli.main", "status",
                           "--json"], cwd=tmp_path, env=clean, capture_output=True, text=True,
                          timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["home"] == str(tmp_path / "af_home")


_SEND_THROUGH_PLUGIN = """
import json, sys
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()  # as every Airflow process does: runs on_load
from provlink.delivery.targets import resolve_target
from pathlib import Path
target = resolve_target(Path(sys.argv[1]))
event = {"eventType": "COMPLETE", "eventTime": "2026-12-01T00:00:00+00:00",
         "producer": "https://example.com/p", "schemaURL":
         "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
         "run": {"runId": "01937a4e-0000-7000-8000-000000000001"},
         "job": {"namespace": "ns", "name": "from_airflow_cfg"}, "inputs": [], "outputs": []}
outcomes = target.deliver([json.dumps(event)])
print("RESULT " + json.dumps([type(target).__name__, [o.ok for o in outcomes]]))
"""


@pytest.mark.parametrize("where", ["transport", "config_path"])
def test_the_providers_transport_setting_points_provlink_too(tmp_path: Path, where: str) -> None:
    """Airflow users point OpenLineage at Marquez in ``[openlineage]``; provlink mutes the
    provider, so it must send where that setting says (not into its embedded store)."""
    from provlink.testing import RecordingEndpoint

    endpoint = RecordingEndpoint().start()
    try:
        transport = {"type": "http", "url": endpoint.url}
        home = tmp_path / "airflow_home"
        home.mkdir()
        if where == "transport":
            section = f"transport = {json.dumps(transport)}\n"
        else:
            (tmp_path / "ol.yml").write_text(json.dumps({"transport": transport}))
            section = f"config_path = {tmp_path / 'ol.yml'}\n"
        (home / "airflow.cfg").write_text("[openlineage]\n" + section)
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_"))}
        clean.update({"AIRFLOW_HOME": str(home), "HOME": str(tmp_path)})
        proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _SEND_THROUGH_PLUGIN,
                               str(tmp_path / "provlink")], cwd=tmp_path, env=clean,
                              capture_output=True, text=True, timeout=90, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
        assert json.loads(lines[-1].removeprefix("RESULT ")) == ["TransportTarget", [True]]
        assert [e["job"]["name"] for e in endpoint.events] == ["from_airflow_cfg"]
    finally:
        endpoint.stop()
