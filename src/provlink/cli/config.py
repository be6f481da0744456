"""The configuration every CLI command uses: provlink's own layers, plus Airflow's
``[provlink]`` section when this environment has one, so ``home`` set there reaches
``provlink serve``, ``export``, ``import`` and ``spool`` exactly as it reaches the tasks.

Host integrations are named by module (each has ``configured_here() -> bool``, cheap and
without importing its host, and ``load_config() -> ProvlinkConfig``); the core never imports
them at module top.
"""

from __future__ import annotations

import importlib
import logging

from provlink.config import ProvlinkConfig

log = logging.getLogger(__name__)

HOST_CONFIGS: tuple[str, ...] = ("provlink_airflow.config",)


def load_config() -> ProvlinkConfig:
    """The host's configuration where one is present here, else provlink's own layers."""
    for name in HOST_CONFIGS:
        try:
            module = importlib.import_module(name)
            if module.configured_here():
                return module.load_config()  # type: ignore[no-any-return]
        except ImportError:
            continue
        except Exception:  # a broken host config must not break the CLI
            log.warning("provlink: could not read settings from %s; using provlink's own",
                        name, exc_info=True)
    return ProvlinkConfig.load()
