"""The promotion history of one model version for its evidence bundle, read from the
ledger's registry actions (``mlflow.registry.*``, :mod:`provlink.governance.registry_log`):
MLflow itself keeps no record of who moved an alias when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provlink.governance.registry_log import Promotion, version_history


def promotions(spool_path: Path, name: str, version: str, *,
               namespace: str | None = None) -> dict[str, Any]:
    """``{"history": [...], "recorded": bool}``: every alias move to or from the version
    (of the registry ``namespace``: a namesake elsewhere is another model), oldest first;
    ``recorded`` is False when there is no ledger at ``spool_path``."""
    if not spool_path.exists():
        return {"history": [], "recorded": False}
    from provlink.delivery.spool import Spool
    from provlink.governance.log import Ledger

    spool = Spool(spool_path)
    try:
        moves = version_history(Ledger(spool), name, version, namespace=namespace)
    finally:
        spool.close()
    return {"history": [move_record(m) for m in moves], "recorded": True}


def move_record(move: Promotion) -> dict[str, Any]:
    """One alias move as the bundle and its predicate carry it."""
    return {"time": datetime.fromtimestamp(move.time_ms / 1000, UTC).isoformat(),
            "alias": move.alias, "from": move.previous, "to": move.version,
            "actor": move.actor, "source": move.source, "runId": move.run_id,
            "authorized": move.authorized, "authorizedBy": move.authorized_by}
