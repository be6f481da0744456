"""Registry actions in the ledger: what happened to MLflow's model registry, and who allowed it.

MLflow keeps no history of who moved an alias to which version, when (mlflow#2169). provlink
records every model-registry action it sees as a ledger entry of kind
``mlflow.registry.<action>`` (docs/registry.md), from three ways in: MLflow's webhooks at
``provlink serve`` (``source="webhook"``), the MLflow client inside a capture point
(``"in-process"``) and ``provlink registry sync`` (``"sync"``, an observed change stamped with
the time it was observed). The entry's fields carry the action itself, so the history
survives payload pruning.

An alias move is *authorized* when it was made inside a pipeline run (a capture point: the
entry carries that run's id) or when an approval entry (``provlink approve``) for the same
model, alias and version was recorded before it; anything else is an "unauthorized change".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from provlink.errors import ProvlinkError
from provlink.governance.entry import now_ms
from provlink.governance.log import Leaf, Ledger

PREFIX = "mlflow.registry."
VERSION_CREATED, TAG_SET, TAG_DELETED = "version_created", "tag_set", "tag_deleted"
ALIAS_SET, ALIAS_DELETED, APPROVAL = "alias_set", "alias_deleted", "approval"
ACTIONS = (VERSION_CREATED, TAG_SET, TAG_DELETED, ALIAS_SET, ALIAS_DELETED, APPROVAL)
SOURCES = ("webhook", "in-process", "sync", "cli")
_BATCH = 5000


class RegistryLogError(ProvlinkError):
    """Registry actions cannot be recorded or read here (the message says what to do)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryAction:
    """One model-registry action. ``previous`` is the version an alias pointed to before
    (known from earlier entries); ``run_id`` the capture point it was made in, if any."""

    action: str
    model: str
    source: str
    time_ms: int = field(default_factory=now_ms)
    version: str | None = None
    alias: str | None = None
    previous: str | None = None
    key: str | None = None
    value: str | None = None
    actor: str | None = None
    run_id: str | None = None
    delivery_id: str | None = None
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown registry action {self.action!r}; one of {ACTIONS}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown registry action source {self.source!r}; one of {SOURCES}")

    @property
    def kind(self) -> str:
        return PREFIX + self.action

    @property
    def namespace(self) -> str | None:
        """The lineage namespace of the registry acted on (None: recorded without a tracking
        URI, as approvals are)."""
        from provlink.tracking_uri import tracking_namespace

        return None if self.tracking_uri is None else tracking_namespace(self.tracking_uri)

    def of(self, namespace: str | None) -> bool:
        """Whether this action is on the registry ``namespace`` (None: any). An action
        recorded without a tracking URI (an approval) applies to the model in any."""
        return namespace is None or self.namespace in (None, namespace)

    def fields(self) -> dict[str, Any]:
        """The entry's fields: every set attribute but ``run_id`` (the entry's own field)."""
        values = asdict(self)
        values.pop("run_id")
        values["at_ms"] = values.pop("time_ms")
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_entry(cls, kind: str, entry: Mapping[str, Any]) -> RegistryAction:
        names = {"version", "alias", "previous", "key", "value", "actor", "delivery_id",
                 "tracking_uri", "model", "source"}
        values = {k: entry[k] for k in names if entry.get(k) is not None}
        return cls(action=kind.removeprefix(PREFIX), time_ms=int(entry.get("at_ms") or
                                                                  entry.get("time") or 0),
                   run_id=entry.get("run_id"), **values)


def record(ledger: Ledger, action: RegistryAction,
           payload: Mapping[str, Any] | None = None) -> Leaf:
    """Append ``action`` (``payload``: what it was read from, e.g. the webhook body)."""
    return ledger.append(action.kind, payload if payload is not None else action.fields(),
                         run_id=action.run_id, fields=action.fields())


def actions(ledger: Ledger, model: str | None = None) -> Iterator[RegistryAction]:
    """Every registry action in the ledger, oldest first (``model``: only that one's)."""
    start = 0
    while True:
        rows = _leaves(ledger, start)
        for _index, kind, text, _hash, _payload in rows:
            if not kind.startswith(PREFIX):
                continue
            entry = json.loads(text)
            if model is None or entry.get("model") == model:
                yield RegistryAction.from_entry(kind, entry)
        if len(rows) < _BATCH:
            return
        start = rows[-1][0] + 1


def _leaves(ledger: Ledger, start: int) -> list[tuple[int, str, str, bytes, str | None]]:
    return ledger.store.read(lambda t: t.leaves(start, _BATCH))


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryState:
    """What the ledger says the registry looks like now (replaying its actions)."""

    aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, alias) -> v
    versions: set[tuple[str, str]] = field(default_factory=set)
    tags: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (model, v, key)

    def apply(self, action: RegistryAction) -> None:
        if action.action == ALIAS_SET and action.alias and action.version:
            self.aliases[(action.model, action.alias)] = action.version
        elif action.action == ALIAS_DELETED and action.alias:
            self.aliases.pop((action.model, action.alias), None)
        elif action.action == VERSION_CREATED and action.version:
            self.versions.add((action.model, action.version))
        elif action.action == TAG_SET and action.version and action.key is not None:
            self.tags[(action.model, action.version, action.key)] = action.value or ""
        elif action.action == TAG_DELETED and action.version and action.key is not None:
            self.tags.pop((action.model, action.version, action.key), None)


def state(ledger: Ledger, model: str | None = None, *,
          namespace: str | None = None) -> RegistryState:
    """Replayed from the actions on ``model`` (None: every model) of the registry
    ``namespace`` (None: every registry)."""
    current = RegistryState()
    for action in actions(ledger, model):
        if action.of(namespace):
            current.apply(action)
    return current


def previous_version(ledger: Ledger, model: str, alias: str, *,
                     namespace: str | None = None) -> str | None:
    """The version ``alias`` pointed to after the last recorded action on it (in the
    registry ``namespace``: a model of the same name elsewhere is another model)."""
    return state(ledger, model, namespace=namespace).aliases.get((model, alias))


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    """One alias move in the history: ``version`` None for a deletion."""

    time_ms: int
    model: str
    alias: str
    previous: str | None
    version: str | None
    actor: str | None
    source: str
    run_id: str | None
    authorized: bool
    authorized_by: str | None
    namespace: str | None = None  # the registry's (None: recorded without a tracking URI)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def history(ledger: Ledger, model: str, *, namespace: str | None = None,
            alias: str | None = None) -> list[Promotion]:
    """Every alias move of ``model`` (in the registry ``namespace``, of ``alias``; None:
    all), oldest first, each judged authorized or not."""
    approvals: dict[tuple[str, str | None], str] = {}  # (alias, version) -> approver
    moves: list[Promotion] = []
    for action in actions(ledger, model):
        if not action.of(namespace) or (alias is not None and action.alias != alias):
            continue
        if action.action == APPROVAL and action.alias:
            approvals[(action.alias, action.version)] = action.actor or "?"
            continue
        if action.action not in (ALIAS_SET, ALIAS_DELETED) or not action.alias:
            continue
        target = action.version if action.action == ALIAS_SET else None
        approver = approvals.get((action.alias, target))
        by = (f"run {action.run_id}" if action.run_id
              else f"approval by {approver}" if approver is not None else None)
        moves.append(Promotion(time_ms=action.time_ms, model=model, alias=action.alias,
                               previous=action.previous, version=target, actor=action.actor,
                               source=action.source, run_id=action.run_id,
                               authorized=by is not None, authorized_by=by,
                               namespace=action.namespace))
    return moves


def unauthorized(ledger: Ledger) -> list[Promotion]:
    """Every alias move of every model in the ledger that nothing authorized."""
    registries: dict[str, set[str | None]] = {}  # model -> the namespaces it was acted on in
    for action in actions(ledger):
        registries.setdefault(action.model, set()).add(action.namespace)
    found: dict[tuple[Any, ...], Promotion] = {}
    for model in sorted(registries):
        known: list[str | None] = [*sorted(n for n in registries[model] if n is not None)] or [None]
        for namespace in known:  # one model per registry; approvals apply to each
            for move in history(ledger, model, namespace=namespace):
                if not move.authorized:
                    found.setdefault((move.time_ms, model, move.alias, move.version,
                                      move.previous, move.source, move.namespace), move)
    return list(found.values())


def version_history(ledger: Ledger, model: str, version: str, *,
                    namespace: str | None = None) -> list[Promotion]:
    """The alias moves of ``model`` onto or off ``version`` (``previous`` or ``version`` is
    it), oldest first, judged as in :func:`history`."""
    return [m for m in history(ledger, model, namespace=namespace)
            if version in (m.version, m.previous)]
