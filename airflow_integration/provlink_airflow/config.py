"""provlink settings from Airflow's configuration: the ``[provlink]`` section.

Every :class:`provlink.ProvlinkConfig` setting can be given in ``airflow.cfg``::

    [provlink]
    home = /var/lib/provlink
    capture_files = true

or as ``AIRFLOW__PROVLINK__HOME`` etc. These are passed to ``ProvlinkConfig.load`` as
explicit values, so they win over ``provlink.yml`` and ``PROVLINK_*`` variables, which still
fill in whatever the section leaves out. Unknown keys raise ``ConfigError`` naming the key.
The job namespace and the transport are OpenLineage's own settings (``[openlineage]
namespace``, ``OPENLINEAGE_URL``, ``openlineage.yml``), shared with the provider.
"""

from __future__ import annotations

from provlink import ProvlinkConfig
from provlink.runtime import Runtime, get_runtime

SECTION = "provlink"


def section_values() -> dict[str, str]:
    """The ``[provlink]`` options of this process's Airflow configuration, env included."""
    from airflow.configuration import conf

    if not conf.has_section(SECTION) and not _env_has_section():
        return {}
    return {key.lower(): str(value) for key, value in (conf.getsection(SECTION) or {}).items()}


def _env_has_section() -> bool:
    import os

    return any(k.startswith(f"AIRFLOW__{SECTION.upper()}__") for k in os.environ)


def runtime() -> Runtime:
    """This process's provlink runtime, built from Airflow's configuration on first use."""
    return get_runtime(lambda: Runtime(ProvlinkConfig.load(**section_values())))
