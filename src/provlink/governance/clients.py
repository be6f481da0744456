"""The governance commands' clients of the lineage backend and the witness, built from
provlink's config so every command presents the same key (``lineage_api_key``, else a key of
``api_keys`` when ``provlink serve`` runs on this machine).

Example::

    api = lineage_api(ProvlinkConfig.load())            # lineage_url, read key
    witness = witness_client(config, "http://witness:5000")  # a write key: it is handed checkpoints
"""

from __future__ import annotations

from provlink.config import ProvlinkConfig
from provlink.governance.trace import LineageApi
from provlink.governance.witness_client import WitnessClient


def lineage_api(config: ProvlinkConfig, url: str | None = None) -> LineageApi:
    """The Marquez API at ``url`` (default ``lineage_url``); reads need the read scope."""
    return LineageApi(url or config.lineage_url, api_key=config.client_api_key("read"))


def witness_client(config: ProvlinkConfig, url: str | None = None) -> WitnessClient:
    """The witness at ``url`` (default ``lineage_url``: ``provlink serve`` is one); handing
    it a checkpoint is a POST, so a write-capable key is preferred."""
    return WitnessClient(url or config.lineage_url, api_key=config.client_api_key("write"))
