"""Import now what this process's first capture point would import on its critical path.

A host process that forks the processes which capture (an Airflow scheduler or worker
forking task processes) calls :func:`preload` once: each task process then inherits the
modules instead of importing the capture path, the spool, the ledger with its Ed25519
signer and the embedded store itself, ≈ 25 ms of CPU per task, and, given the
configuration, compile its redactor's key patterns. Nothing is opened here: a forked
child must never inherit a connection or a lock, only modules and plain data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provlink.config import ProvlinkConfig


def preload(config: ProvlinkConfig | None = None) -> None:
    """Import the modules a first capture point needs (for their side effect only) and
    compile ``config``'s secret-key patterns (:func:`provlink.events.redact.key_pattern`)."""
    import provlink.capturing.point  # noqa: F401
    import provlink.delivery.spool_open  # noqa: F401
    import provlink.governance.keys  # noqa: F401
    import provlink.governance.log  # noqa: F401
    import provlink.server.sqlite_store  # noqa: F401
    import provlink.server.store  # noqa: F401
    from provlink.events.redact import key_pattern

    if config is not None:
        key_pattern(tuple(config.secret_key_patterns))
