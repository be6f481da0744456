"""Registry actions seen from this process: in-process inside a capture point, and ``sync``.

In-process: :func:`install_registry_hook` wraps MLflow's registry calls (through
:mod:`provlink.mlflow._compat`); a call made inside a capture point becomes a
:class:`~provlink.governance.registry_log.RegistryAction` carrying that run's ID (so it is
authorized by the run), appended to this process's ledger and emitted as a lineage event
through the spool. Calls outside a capture point are left to the webhook and ``sync``.

Sync: :func:`observe` reads MLflow's registry as it is now and :func:`sync` records every
difference from what the ledger already holds, stamped with the time it was observed.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provlink.governance import registry_log as log
from provlink.governance.registry_event import to_event
from provlink.mlflow import _compat

if TYPE_CHECKING:
    from provlink.delivery.runtime import Runtime
    from provlink.governance.log import Ledger


def mlflow_user() -> str | None:
    """Who MLflow would record as the user (``mlflow.user``): the tracking username when
    one is configured, else the OS user."""
    try:
        return os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()
    except (KeyError, OSError):
        return None


def emit_action(runtime: Runtime, action: log.RegistryAction) -> None:
    """Append ``action`` to the runtime's ledger (when it keeps one) and emit its event."""
    ledger: Ledger | None = getattr(runtime.emitter, "ledger", None)
    index = None if ledger is None else log.record(ledger, action).index
    runtime.emit_event(to_event(action, ledger_index=index))


def _tracking_uri() -> str:
    """The registry's identity as its model versions' namespace has it (no credentials, a
    relative SQLite path resolved here, where MLflow opens it)."""
    import mlflow

    from provlink.tracking_uri import tracking_namespace

    return tracking_namespace(str(mlflow.get_tracking_uri()))


def _before(client: Any, method: str, args: dict[str, Any]) -> Callable[[Any], None] | None:
    from provlink.capturing.point import current

    point = current()
    if point is None:
        return None
    try:
        base: dict[str, Any] = {"model": str(args.get("name")), "source": "in-process",
                                "actor": mlflow_user(), "run_id": point.run_id,
                                "tracking_uri": _tracking_uri()}
        previous: str | None = None
        if method in ("set_registered_model_alias", "delete_registered_model_alias"):
            previous = _alias_target(client, base["model"], str(args["alias"]))
    except Exception as error:  # noqa: BLE001 - never fail the user's registry call
        _failed(error)
        return None

    def after(result: Any) -> None:
        try:
            action = _action(method, args, result, base, previous)
            if action is not None:
                from provlink.delivery.runtime import get_runtime

                emit_action(get_runtime(), action)
        except Exception as error:  # noqa: BLE001
            _failed(error)

    return after


def _action(method: str, args: dict[str, Any], result: Any, base: dict[str, Any],
            previous: str | None) -> log.RegistryAction | None:
    if method == "_create_model_version":
        return log.RegistryAction(action=log.VERSION_CREATED, version=str(result.version), **base)
    version = None if args.get("version") is None else str(args["version"])
    if method == "set_model_version_tag":
        return log.RegistryAction(action=log.TAG_SET, version=version, key=args.get("key"),
                                  value=None if args.get("value") is None
                                  else str(args["value"]), **base)
    if method == "delete_model_version_tag":
        return log.RegistryAction(action=log.TAG_DELETED, version=version, key=args.get("key"),
                                  **base)
    if method == "set_registered_model_alias":
        return log.RegistryAction(action=log.ALIAS_SET, alias=args["alias"], version=version,
                                  previous=previous, **base)
    if method == "delete_registered_model_alias":
        return log.RegistryAction(action=log.ALIAS_DELETED, alias=args["alias"],
                                  previous=previous, **base)
    return None


def _alias_target(client: Any, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def _failed(error: BaseException) -> None:
    from provlink.delivery.runtime import record_failure

    record_failure("mlflow registry action", error)


def install_registry_hook() -> None:
    """Record registry calls made inside capture points (idempotent)."""
    _compat.on_registry_call(_before)


# -- sync ------------------------------------------------------------------------------------
def observe(client: Any, model: str | None = None) -> log.RegistryState:
    """MLflow's registry now: every version, its tags, and every alias (``model``: one)."""
    seen = log.RegistryState()
    names = [model] if model else [m.name for m in _all_models(client)]
    for name in names:
        for mv in client.search_model_versions(f"name = '{_quote(name)}'"):
            version = str(mv.version)
            seen.versions.add((name, version))
            for key, value in (mv.tags or {}).items():
                seen.tags[(name, version, key)] = str(value)
        # search_model_versions leaves aliases out: the registered model has them all
        for alias, version in (client.get_registered_model(name).aliases or {}).items():
            seen.aliases[(name, alias)] = str(version)
    return seen


def _all_models(client: Any) -> list[Any]:
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            return models


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def differences(recorded: log.RegistryState, seen: log.RegistryState, *, tracking_uri: str,
                time_ms: int, models: set[str] | None = None) -> list[log.RegistryAction]:
    """What changed in the registry that the ledger has not recorded (``models``: only
    these models' recorded state counts as gone when missing)."""
    def mine(model: str) -> bool:
        return models is None or model in models

    base: dict[str, Any] = {"source": "sync", "time_ms": time_ms, "tracking_uri": tracking_uri}
    found: list[log.RegistryAction] = []
    for model, version in sorted(seen.versions - recorded.versions):
        found.append(log.RegistryAction(action=log.VERSION_CREATED, model=model,
                                        version=version, **base))
    for (model, version, key), value in sorted(seen.tags.items()):
        if recorded.tags.get((model, version, key)) != value:
            found.append(log.RegistryAction(action=log.TAG_SET, model=model, version=version,
                                            key=key, value=value, **base))
    for model, version, key in sorted(set(recorded.tags) - set(seen.tags)):
        if mine(model) and (model, version) in seen.versions:
            found.append(log.RegistryAction(action=log.TAG_DELETED, model=model,
                                            version=version, key=key, **base))
    for (model, alias), version in sorted(seen.aliases.items()):
        before = recorded.aliases.get((model, alias))
        if before != version:
            found.append(log.RegistryAction(action=log.ALIAS_SET, model=model, alias=alias,
                                            version=version, previous=before, **base))
    for (model, alias), before in sorted(recorded.aliases.items()):
        if mine(model) and (model, alias) not in seen.aliases:
            found.append(log.RegistryAction(action=log.ALIAS_DELETED, model=model,
                                            alias=alias, previous=before, **base))
    return found


def sync(runtime: Runtime, client: Any, *, tracking_uri: str,
         model: str | None = None) -> list[log.RegistryAction]:
    """Record what changed in MLflow's registry since the ledger last saw it."""
    from provlink.governance.entry import now_ms

    ledger: Ledger | None = getattr(runtime.emitter, "ledger", None)
    if ledger is None:
        raise log.RegistryLogError("this runtime keeps no ledger to sync the registry into")
    from provlink.tracking_uri import tracking_namespace

    seen = observe(client, model)
    namespace = tracking_namespace(tracking_uri)  # this registry's, not a namesake's elsewhere
    recorded = log.state(ledger, model, namespace=namespace)
    found = differences(recorded, seen, tracking_uri=namespace, time_ms=now_ms(),
                        models=None if model is None else {model})
    for action in found:
        emit_action(runtime, action)
    return found
