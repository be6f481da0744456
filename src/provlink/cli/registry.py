"""``provlink history``, ``provlink approve``, ``provlink registry sync`` and
``provlink mlflow webhook register``: the model registry's audit trail (docs/registry.md).

They read and write the ledger of the configured home (``PROVLINK_HOME``); for actions that
came in by webhook, that is ``provlink serve``'s home. MLflow is imported only by the
commands that talk to a tracking server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from provlink.cli.config import load_config
from provlink.errors import ProvlinkError
from provlink.governance import registry_log as log

WEBHOOK_EVENTS = ("model_version.created", "model_version_tag.set",
                  "model_version_tag.deleted", "model_version_alias.created",
                  "model_version_alias.deleted")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("history", help="who moved which alias of a model, when, and "
                                              "whether it was authorized")
    p.add_argument("model", help="models:/<name>, models:/<name>/<version> (moves onto or off "
                                 "it) or models:/<name>@<alias> (moves of that alias)")
    p.add_argument("--tracking-uri", help="the registry the model is in (default: "
                                          "MLFLOW_TRACKING_URI; unset: every registry, each "
                                          "move naming its own)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_history)

    p = subparsers.add_parser("approve", help="record an approval for an alias move")
    p.add_argument("model", help="models:/<name>/<version> (or models:/<name> to approve "
                                 "removing the alias)")
    p.add_argument("--alias", required=True)
    p.add_argument("--by", required=True, help="who approves")
    p.add_argument("--note", help="why (kept in the ledger)")
    p.set_defaults(func=cmd_approve)

    p = subparsers.add_parser("registry", help="the MLflow model registry's recorded state")
    sub = p.add_subparsers(dest="registry_command", required=True)
    s = sub.add_parser("sync", help="record registry changes provlink has not seen yet")
    s.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's)")
    s.add_argument("--model", help="only this registered model")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sync)

    p = subparsers.add_parser("mlflow", help="MLflow integration set-up")
    sub = p.add_subparsers(dest="mlflow_command", required=True)
    w = sub.add_parser("webhook", help="MLflow model-registry webhooks")
    wsub = w.add_subparsers(dest="webhook_command", required=True)
    r = wsub.add_parser("register", help="have a tracking server send its registry actions "
                                         "to provlink serve")
    r.add_argument("--tracking-uri", required=True)
    r.add_argument("--url", required=True, help="provlink serve's base URL")
    r.add_argument("--secret", help="the HMAC secret (default: mlflow_webhook_secret / "
                                    "PROVLINK_MLFLOW_WEBHOOK_SECRET)")
    r.add_argument("--name", default="provlink")
    r.set_defaults(func=cmd_webhook_register)


def _ledger() -> Any:
    from provlink.delivery.spool_open import configured_spool, spool_exists
    from provlink.governance.log import Ledger

    config = load_config()
    if not spool_exists(config):
        raise ProvlinkError(f"no ledger at {config.spool_path}: set PROVLINK_HOME to the home "
                            "that recorded the actions (provlink serve's for webhooks), or "
                            "spool_url to the fleet's spool")
    return Ledger(configured_spool(config))


def _model_name(uri: str, *, version: bool) -> tuple[str, str | None]:
    if not uri.startswith("models:/"):
        raise ProvlinkError(f"{uri!r} is not a model URI; use models:/<name>"
                            + ("/<version>" if version else ""))
    rest = uri.removeprefix("models:/").strip("/")
    name, _, tail = rest.rpartition("/")
    if version and name and tail.isdigit():
        return name, tail
    return rest, None


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _history_target(uri: str) -> tuple[str, str | None, str | None]:
    """(name, version, alias) of ``models:/NAME``, ``models:/NAME/VERSION`` or
    ``models:/NAME@ALIAS``."""
    name, version = _model_name(uri, version=True)
    alias = None
    if version is None and "@" in name:
        name, _, alias = name.rpartition("@")
    if not name:
        raise ProvlinkError(f"{uri!r} names no model; use models:/<name>[/<version>|@<alias>]")
    return name, version, alias


def cmd_history(args: argparse.Namespace) -> int:
    from provlink.tracking_uri import tracking_namespace

    name, version, alias = _history_target(args.model)
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    namespace = tracking_namespace(uri) if uri else None
    ledger = _ledger()
    moves = (log.version_history(ledger, name, version, namespace=namespace)
             if version is not None else log.history(ledger, name, namespace=namespace,
                                                     alias=alias))
    if args.json:
        print(json.dumps({"model": name, "version": version, "alias": alias,
                          "namespace": namespace,
                          "promotions": [m.as_dict() for m in moves]}, indent=2))
        return 0
    if not moves:
        where = f" in {namespace}" if namespace else ""
        print(f"no alias moves of {args.model}{where} recorded (try `provlink registry sync`)")
        return 0
    several = len({m.namespace for m in moves}) > 1  # namesakes in two registries
    rows = [("TIME (UTC)", "ALIAS", "FROM → TO", "ACTOR", "SOURCE", "AUTHORIZED",
             *(("REGISTRY",) if several else ()))]
    for m in moves:
        rows.append((_when(m.time_ms), m.alias,
                     f"{m.previous or '-'} → {m.version or '(deleted)'}", m.actor or "?",
                     m.source, m.authorized_by or "UNAUTHORIZED",
                     *((m.namespace or "?",) if several else ())))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    bad = sum(not m.authorized for m in moves)
    if bad:
        print(f"\n{bad} unauthorized change(s): made outside any pipeline run or approval")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    name, version = _model_name(args.model, version=True)
    action = log.RegistryAction(action=log.APPROVAL, model=name, version=version,
                                alias=args.alias, actor=args.by, source="cli",
                                value=args.note)
    leaf = log.record(_ledger_for_writing(), action)
    target = f"version {version}" if version else "removal"
    print(f"approved {target} of {name}@{args.alias} by {args.by} (ledger entry {leaf.index})")
    return 0


def _ledger_for_writing() -> Any:
    from provlink.delivery.spool_open import configured_spool
    from provlink.governance.log import Ledger

    config = load_config()
    config.home.mkdir(parents=True, exist_ok=True)
    return Ledger(configured_spool(config))


def cmd_sync(args: argparse.Namespace) -> int:
    import mlflow
    from mlflow import MlflowClient

    from provlink.delivery.runtime import get_runtime
    from provlink.mlflow.registry_actions import sync

    uri = args.tracking_uri or mlflow.get_tracking_uri()
    runtime = get_runtime()
    found = sync(runtime, MlflowClient(tracking_uri=uri), tracking_uri=uri, model=args.model)
    delivered = runtime.flush()
    if args.json:
        print(json.dumps({"recorded": [a.fields() for a in found], "delivered": delivered}))
    else:
        for a in found:
            what = {log.ALIAS_SET: f"@{a.alias}: {a.previous or '-'} → {a.version}",
                    log.ALIAS_DELETED: f"@{a.alias} deleted (was {a.previous})",
                    log.VERSION_CREATED: f"version {a.version} created",
                    log.TAG_SET: f"version {a.version} tag {a.key} set",
                    log.TAG_DELETED: f"version {a.version} tag {a.key} deleted"}[a.action]
            print(f"observed {a.model} {what}")
        print(f"{len(found)} change(s) recorded" + ("" if delivered else
              "; events still pending (run `provlink spool flush`)"))
    return 0


def cmd_webhook_register(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from mlflow import MlflowClient

    secret = args.secret or load_config().mlflow_webhook_secret
    if not secret:
        print("provlink mlflow webhook register: no secret; pass --secret or set "
              "PROVLINK_MLFLOW_WEBHOOK_SECRET (the same one provlink serve checks)",
              file=sys.stderr)
        return 2
    from provlink.tracking_uri import tracking_namespace

    # the namespace, not the URI: no credentials in a URL, a relative SQLite path made absolute
    url = (f"{args.url.rstrip('/')}/api/v1/mlflow/webhook?trackingUri="
           f"{quote(tracking_namespace(args.tracking_uri), safe='')}")
    events: list[Any] = list(WEBHOOK_EVENTS)
    hook = MlflowClient(tracking_uri=args.tracking_uri).create_webhook(
        name=args.name, url=url, events=events, secret=secret,
        description="provlink: registry actions into the ledger")
    print(f"webhook {hook.webhook_id} on {args.tracking_uri} → {url}")
    return 0
