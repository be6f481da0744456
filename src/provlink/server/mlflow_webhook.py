"""``POST /api/v1/mlflow/webhook``: MLflow's model-registry webhooks, checked and recorded.

MLflow (3.17, ``mlflow/webhooks/delivery.py``) signs each delivery with HMAC-SHA256 over
``"<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<body>"`` keyed by the webhook's secret and
sends ``X-MLflow-Signature: v1,<base64 digest>``. The receiver recomputes it with the
``mlflow_webhook_secret`` setting (``PROVLINK_MLFLOW_WEBHOOK_SECRET``) and compares in
constant time; a missing or bad signature is 401 and nothing is recorded. The timestamp is
inside the signature, so a delivery older (or newer) than :data:`TOLERANCE_S` is refused as
a replay, and a delivery ID already seen within that window is acknowledged without being
recorded again. Python's ``hmac`` does this; no library wraps MLflow's scheme.

Where it is recorded: the server's own home (``PROVLINK_HOME`` of ``provlink serve``, which
hands the receiver that ledger) holds a spool whose ledger gets one ``mlflow.registry.*``
entry per action, and the lineage event (:mod:`provlink.governance.registry_event`) goes
straight into the server's store. The
webhook route takes no bearer key (MLflow cannot send one): the HMAC is its authentication.

Whose registry: ``?trackingUri=`` names the tracking server that sends the webhook, and so
the lineage namespace of its model versions (the one capture uses). It is required: without
it (or with a relative ``sqlite:///`` path, which names a file only from the tracking
server's own working directory) a signed delivery gets 422 and nothing is recorded, rather
than the action being filed under another identity than its model version's.
`provlink mlflow webhook register` adds it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provlink.config import ProvlinkConfig
from provlink.governance import registry_log as log
from provlink.governance.log import Ledger
from provlink.governance.registry_event import to_event
from provlink.server.routing import Call, HttpError, json_response
from provlink.tracking_uri import is_relative_sqlite

SIGNATURE, TIMESTAMP, DELIVERY = "x-mlflow-signature", "x-mlflow-timestamp", "x-mlflow-delivery-id"
TOLERANCE_S = 300
PATH = "mlflow/webhook"
_SEEN_MAX = 10_000


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``v1`` signature of one delivery."""
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def action_of(body: Mapping[str, Any], delivery_id: str,
              tracking_uri: str | None) -> log.RegistryAction | None:
    """The registry action a webhook body describes (None: not a model-registry action)."""
    entity, verb = body.get("entity"), body.get("action")
    data = body.get("data") or {}
    if not isinstance(data, Mapping) or not data.get("name"):
        return None
    kinds = {("model_version", "created"): log.VERSION_CREATED,
             ("model_version_tag", "set"): log.TAG_SET,
             ("model_version_tag", "deleted"): log.TAG_DELETED,
             ("model_version_alias", "created"): log.ALIAS_SET,
             ("model_version_alias", "deleted"): log.ALIAS_DELETED}
    kind = kinds.get((str(entity), str(verb)))
    if kind is None:
        return None
    version = data.get("version")
    return log.RegistryAction(
        action=kind, model=str(data["name"]), source="webhook", time_ms=_millis(body),
        version=None if version is None else str(version), alias=data.get("alias"),
        key=data.get("key"), value=data.get("value"), delivery_id=delivery_id,
        tracking_uri=tracking_uri)


def _millis(body: Mapping[str, Any]) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(body["timestamp"])).timestamp() * 1000)
    except (KeyError, ValueError):
        return time.time_ns() // 1_000_000


class MlflowWebhook:
    """The receiver: the secret, the server's ledger, and the delivery IDs seen lately."""

    def __init__(self, config: ProvlinkConfig | None = None, *, secret: str | None = None,
                 ledger: Ledger | Callable[[], Ledger] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._secret = secret
        self._ledger: Ledger | None = ledger if isinstance(ledger, Ledger) else None
        self._open_ledger = None if isinstance(ledger, Ledger) else ledger
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._recording = threading.Lock()  # "previous version" then append, as one step

    @property
    def config(self) -> ProvlinkConfig:
        if self._config is None:
            self._config = ProvlinkConfig.load()
        return self._config

    @property
    def secret(self) -> str:
        return self._secret if self._secret is not None else self.config.mlflow_webhook_secret

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                if self._open_ledger is None:
                    raise HttpError(503, "this server keeps no ledger to record registry "
                                         "actions in (run it with `provlink serve`)")
                self._ledger = self._open_ledger()
            return self._ledger

    def check(self, headers: Mapping[str, str], body: bytes) -> str:
        """The delivery ID of a correctly signed, fresh delivery; else :class:`HttpError`."""
        secret = self.secret
        if not secret:
            raise HttpError(503, "no webhook secret: set PROVLINK_MLFLOW_WEBHOOK_SECRET (or "
                                 "mlflow_webhook_secret in provlink.yml) on the server")
        given = headers.get(SIGNATURE, "")
        delivery, stamp = headers.get(DELIVERY, ""), headers.get(TIMESTAMP, "")
        if not given or not delivery or not stamp:
            raise HttpError(401, "missing X-MLflow-Signature, X-MLflow-Delivery-Id or "
                                 "X-MLflow-Timestamp: register the webhook with the secret")
        if not hmac.compare_digest(given.encode(), signature(secret, delivery, stamp,
                                                             body).encode()):
            raise HttpError(401, "bad X-MLflow-Signature: the webhook's secret differs from "
                                 "PROVLINK_MLFLOW_WEBHOOK_SECRET")
        try:
            age = self._clock() - int(stamp)
        except ValueError:
            raise HttpError(401, "X-MLflow-Timestamp is not a Unix time") from None
        if abs(age) > TOLERANCE_S:
            raise HttpError(401, f"X-MLflow-Timestamp is {int(age)} s off (more than "
                                 f"{TOLERANCE_S} s): a replayed or delayed delivery")
        return delivery

    def first_time(self, delivery: str) -> bool:
        """Remember ``delivery``; False when it was seen within the tolerance window."""
        now = self._clock()
        with self._lock:
            while self._seen and (len(self._seen) > _SEEN_MAX
                                  or next(iter(self._seen.values())) < now - 2 * TOLERANCE_S):
                self._seen.popitem(last=False)
            if delivery in self._seen:
                return False
            self._seen[delivery] = now
            return True

    def forget(self, delivery: str) -> None:
        """A delivery that failed to record: let MLflow's retry of it through."""
        with self._lock:
            self._seen.pop(delivery, None)

    def record(self, store: Any, body: Mapping[str, Any], delivery: str,
               tracking_uri: str | None) -> dict[str, Any]:
        """Append the ledger entry, then store the lineage event; what was recorded."""
        action = action_of(body, delivery, tracking_uri)
        if action is None:
            return {"recorded": False, "reason": "not a model-registry action"}
        ledger = self.ledger
        with self._recording:
            if action.action in (log.ALIAS_SET, log.ALIAS_DELETED) and action.alias:
                previous = log.previous_version(ledger, action.model, action.alias,
                                                namespace=action.namespace)
                action = replace(action, previous=previous)
            leaf = log.record(ledger, action, body)
        store.ingest(to_event(action, ledger_index=leaf.index))
        return {"recorded": True, "kind": action.kind, "ledgerIndex": leaf.index}


def tracking_uri_of(call: Call) -> str:
    """The sending tracking server's URI from ``?trackingUri=``; 422 when it cannot name
    the model versions' namespace."""
    uri = call.query("trackingUri")
    if not uri:
        raise HttpError(422, "query parameter 'trackingUri' is required: the tracking URI of "
                        "the MLflow server sending this webhook, the namespace of its model "
                        "versions (`provlink mlflow webhook register --tracking-uri URI` adds "
                        "it to the URL)", "trackingUri")
    if is_relative_sqlite(uri):
        raise HttpError(422, f"trackingUri {uri!r} is a relative SQLite path, which names a "
                        "file only from the tracking server's working directory; give the "
                        "absolute one (sqlite:////path/to/mlflow.db)", "trackingUri")
    return uri


def routes(hook: MlflowWebhook) -> list[tuple[str, str, Any]]:
    async def post_webhook(call: Call) -> Response:
        body = await call.request.body()
        delivery = hook.check(call.request.headers, body)
        tracking_uri = tracking_uri_of(call)
        try:
            parsed = json.loads(body)
        except ValueError:
            raise HttpError(400, "the webhook body is not JSON") from None
        if not isinstance(parsed, dict):
            raise HttpError(400, "the webhook body is not a JSON object")
        if not hook.first_time(delivery):
            return json_response({"recorded": False, "reason": "delivery already recorded"})
        try:
            done = await run_in_threadpool(hook.record, call.store, parsed, delivery,
                                           tracking_uri)
        except Exception:
            hook.forget(delivery)
            raise
        return json_response(done)

    return [("POST", PATH, post_webhook)]
