"""The Airflow plugin: registers provlink's listener in every Airflow process.

Found through the ``airflow.plugins`` entry point, so installing ``provlink[airflow]`` is
the only change a team makes.

Coexistence with apache-airflow-providers-openlineage
-----------------------------------------------------
The provider is installed with provlink and activates itself as soon as an OpenLineage
transport is configured (``OPENLINEAGE_URL``, ``[openlineage] transport``, ...), which is
also how provlink is pointed at a remote Marquez. Two writers for one task run would give
the backend two START and two COMPLETE events with different inputs and outputs for the
same run id, and so competing job versions. provlink therefore is the single writer:

- its events use the provider's job names, namespace and run ids (``identity``), so
  anything that used the provider's macros (``lineage_run_id``, ``lineage_parent_id``,
  e.g. a Spark job launched by a task) still joins the task's run;
- they contain what the provider would have found: provlink runs the provider's own
  extractor manager (operator OpenLineage methods, hook lineage, inlets/outlets), and adds
  files, parameters and MLflow links the provider cannot see;
- when the provider is enabled, :meth:`ProvlinkPlugin.on_load` prepends a global rule
  ``{"scope": {}, "controls": {"emit": false}}`` to the provider's own
  ``[openlineage] emission_policy`` in this process (and so in the task processes it
  starts). The provider's macros and hook-lineage reader keep working; only its events stop.
  A user rule for a specific DAG or task that sets ``emit`` again wins over this global one,
  by the provider's precedence, for anyone who wants both writers there.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from provlink_airflow.listener import listener

log = logging.getLogger(__name__)

PROVIDER_MUTE_RULE: dict[str, Any] = {"scope": {}, "controls": {"emit": False}}
_POLICY_ENV = "AIRFLOW__OPENLINEAGE__EMISSION_POLICY"


def use_provider_transport() -> str | None:
    """Point provlink where the provider's own settings point: Airflow users configure
    OpenLineage as ``[openlineage] transport`` (a JSON transport config) or
    ``[openlineage] config_path`` (an ``openlineage.yml``), which openlineage-python itself
    does not read. Exported in openlineage-python's own spelling (``OPENLINEAGE__TRANSPORT``
    as JSON, ``OPENLINEAGE_CONFIG``) for this process and the task processes it starts,
    unless one of openlineage-python's own settings is there already (they win, as in the
    provider). Returns what was taken, for the log."""
    from airflow.providers.openlineage import conf as ol_conf

    from provlink.delivery.targets import openlineage_configured

    if openlineage_configured():
        return None
    transport = ol_conf.transport()
    if transport:
        os.environ["OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
        return "[openlineage] transport"
    path = ol_conf.config_path(check_legacy_env_var=False)
    if path:
        os.environ["OPENLINEAGE_CONFIG"] = path
        return "[openlineage] config_path"
    return None


def mute_provider_events() -> bool:
    """Stop the OpenLineage provider's own events in this process if it is enabled and
    provlink is not disabled (then the provider stays the only writer).

    Returns True when the provider was muted.
    """
    from airflow.providers.openlineage import conf as ol_conf

    from provlink_airflow.config import load_config

    if ol_conf.is_disabled() or load_config().disabled:
        return False
    rules = list(ol_conf.emission_policy())
    if PROVIDER_MUTE_RULE not in rules:
        os.environ[_POLICY_ENV] = json.dumps([PROVIDER_MUTE_RULE, *rules])
        ol_conf.emission_policy.cache_clear()
    return True


def preload_capture() -> bool:
    """Import the capture path in this (long-lived) process, so the task processes it forks
    do not each pay for it (:func:`provlink.capturing.preload.preload`), with the provider's
    extractor manager that every task's listener runs (≈ 10 ms of imports per task when
    the provider itself is off); not when provlink is disabled."""
    from provlink_airflow.config import load_config

    config = load_config()
    if config.disabled:
        return False
    from provlink.capturing.preload import preload
    from provlink_airflow._compat import extractor_manager_class

    preload(config)
    extractor_manager_class()
    return True


class ProvlinkPlugin(AirflowPlugin):
    """provlink's listener, plus the single-writer rule above."""

    name = "provlink"
    listeners = [listener]  # noqa: RUF012 - AirflowPlugin declares it a list

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        try:
            taken = use_provider_transport()
            if taken:
                log.info("provlink: sending lineage where %s points", taken)
        except Exception:
            log.warning("provlink: could not read the OpenLineage provider's transport "
                        "(set OPENLINEAGE_URL to point provlink at the backend)", exc_info=True)
        try:
            preload_capture()
        except Exception:
            log.warning("provlink: could not preload the capture path", exc_info=True)
        try:
            if mute_provider_events():
                log.info("provlink: the OpenLineage provider is enabled; provlink emits the "
                         "task and DAG events with the provider's ids and mutes the provider's")
        except Exception:
            log.warning("provlink: could not configure the OpenLineage provider", exc_info=True)
