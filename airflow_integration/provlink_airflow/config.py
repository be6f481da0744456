"""provlink settings from Airflow's configuration: the ``[provlink]`` section.

Every :class:`provlink.ProvlinkConfig` setting can be given in ``airflow.cfg``::

    [provlink]
    home = /var/lib/provlink
    capture_files = true

or as ``AIRFLOW__PROVLINK__HOME`` etc. These are passed to ``ProvlinkConfig.load`` as the
host's settings, so they win over ``provlink.yml`` and ``PROVLINK_*`` variables, which still
fill in whatever the section leaves out. An unknown key or a bad value is logged once as a
warning naming it and ignored: a typo never switches lineage off.
The job namespace and the transport are OpenLineage's own settings (``[openlineage]
namespace``, ``OPENLINEAGE_URL``, ``openlineage.yml``), shared with the provider.
"""

from __future__ import annotations

import os
from pathlib import Path

from provlink import ProvlinkConfig
from provlink.delivery.runtime import Runtime, get_runtime

SECTION = "provlink"
_ENV_PREFIX = f"AIRFLOW__{SECTION.upper()}__"


def section_values() -> dict[str, str]:
    """The ``[provlink]`` options of this process's Airflow configuration, as strings.

    Keys come from the config file's section and from ``AIRFLOW__PROVLINK__*`` (which
    ``conf.getsection`` ignores while the file has no such section); values come from
    ``conf.get``, so Airflow's own precedence applies. Not ``getsection``: it turns ``"0123"``
    into ``123``, which would corrupt a value in ``redact_values``.
    """
    from airflow.configuration import conf

    keys = {k.removeprefix(_ENV_PREFIX).lower() for k in os.environ if k.startswith(_ENV_PREFIX)}
    if conf.has_section(SECTION):
        keys.update(conf.options(SECTION))
    return {key: str(conf.get(SECTION, key)) for key in sorted(keys)}


def load_config() -> ProvlinkConfig:
    """provlink's configuration with Airflow's ``[provlink]`` section as the host layer."""
    return ProvlinkConfig.load(host=section_values())


def configured_here() -> bool:
    """Whether this environment gives Airflow a ``[provlink]`` section, checked without
    importing Airflow (the CLI asks this on every command)."""
    if any(k.startswith(_ENV_PREFIX) for k in os.environ):
        return True
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    cfg = Path(os.environ.get("AIRFLOW_CONFIG") or home / "airflow.cfg")
    try:
        return f"[{SECTION}]" in cfg.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def runtime() -> Runtime:
    """This process's provlink runtime, built from Airflow's configuration on first use."""
    return get_runtime(lambda: Runtime(load_config()))
