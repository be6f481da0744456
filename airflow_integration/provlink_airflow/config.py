"""provlink settings from Airflow's configuration: the ``[provlink]`` section.

Every :class:`provlink.ProvlinkConfig` setting can be given in ``airflow.cfg``::

    [provlink]
    home = /var/lib/provlink
    capture_files = true

or as ``AIRFLOW__PROVLINK__HOME`` etc. These are passed to ``ProvlinkConfig.load`` as
explicit values, so they win over ``provlink.yml`` and ``PROVLINK_*`` variables, which still
fill in whatever the section leaves out. Unknown keys raise ``ConfigError`` naming the key;
the listener logs it as a warning and the task runs on, without lineage.
The job namespace and the transport are OpenLineage's own settings (``[openlineage]
namespace``, ``OPENLINEAGE_URL``, ``openlineage.yml``), shared with the provider.
"""

from __future__ import annotations

import os

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


def runtime() -> Runtime:
    """This process's provlink runtime, built from Airflow's configuration on first use."""
    return get_runtime(lambda: Runtime(ProvlinkConfig.load(**section_values())))
