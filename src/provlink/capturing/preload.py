"""Import now what this process's first capture point would import on its critical path.

A host process that forks the processes which capture (an Airflow scheduler or worker
forking task processes) calls :func:`preload` once: each task process then inherits the
modules instead of importing the capture path, the spool, the ledger with its Ed25519
signer and the embedded store itself, ≈ 25 ms of CPU per task. Nothing is opened or
configured here.
"""

from __future__ import annotations


def preload() -> None:
    """Import the modules a first capture point needs (for their side effect only)."""
    import provlink.capturing.point  # noqa: F401
    import provlink.delivery.spool_open  # noqa: F401
    import provlink.governance.keys  # noqa: F401
    import provlink.governance.log  # noqa: F401
    import provlink.server.sqlite_store  # noqa: F401
    import provlink.server.store  # noqa: F401
