"""Every entry of provlink.events._compat, against the installed openlineage-python."""

from __future__ import annotations

from importlib.metadata import version

from openlineage.client.facet_v2 import documentation_job
from openlineage.client.serde import Serde
from openlineage.client.transport.http import HttpConfig, HttpTransport
from packaging.specifiers import SpecifierSet

from provlink.events import _compat


def test_installed_openlineage_python_is_the_checked_range() -> None:
    assert version("openlineage-python") in SpecifierSet(_compat.CHECKED_VERSIONS)


def test_set_producer_names_the_facet_producer_in_its_json() -> None:
    facet = documentation_job.DocumentationJobFacet(description="d")
    _compat.set_producer(facet, "https://example.com/provlink-compat")
    assert Serde.to_dict(facet)["_producer"] == "https://example.com/provlink-compat"


def test_single_attempt_http_only_replaces_the_default_retry_policy() -> None:
    default = HttpTransport(HttpConfig(url="http://127.0.0.1:9"))
    assert _compat.single_attempt_http(default)
    assert (default.config.retry["total"], default.config.retry["read"],
            default.config.retry["connect"]) == (0, 0, 0)
    assert not _compat.single_attempt_http(default)  # no longer the default: kept

    mine = {"total": 7, "backoff_factor": 1}
    chosen = HttpTransport(HttpConfig(url="http://127.0.0.1:9", retry=dict(mine)))
    assert not _compat.single_attempt_http(chosen)
    assert chosen.config.retry == mine
    assert not _compat.single_attempt_http(object())  # not an HTTP transport
