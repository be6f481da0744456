"""Every openlineage-python internal provlink reaches, in one place (events and delivery).

Each entry names what it reaches and the versions it was checked against;
``tests/unit/test_compat_openlineage.py`` exercises every one against the installed
openlineage-python, so an upgrade that moves one fails CI, not a user's delivery.
"""

from __future__ import annotations

from typing import Any

CHECKED_VERSIONS = ">=1.54,<2"  # openlineage-python, as pinned in pyproject.toml


def set_producer(facet: Any, producer: str) -> None:
    """``BaseFacet._producer`` (attrs field, 1.54): the facet's ``_producer``; its default is a
    process-wide global the Airflow provider rewrites, so ours set it per facet."""
    facet._producer = producer


def single_attempt_http(transport: Any) -> bool:
    """``http_common.DEFAULT_RETRY_CONFIG`` and ``HttpConfig.retry`` (1.54): an
    ``HttpTransport`` still on the default urllib3 retry policy gets one attempt per call
    (the spool retries with backoff); a policy the user set is kept. True if changed."""
    from openlineage.client.transport.http import HttpTransport
    from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

    if isinstance(transport, HttpTransport) and transport.config.retry == DEFAULT_RETRY_CONFIG:
        transport.config.retry = {**DEFAULT_RETRY_CONFIG, "total": 0, "read": 0, "connect": 0}
        return True
    return False
