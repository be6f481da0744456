"""The ``provlink`` command: spool inspection and delivery here; the backend and the
governance queries register their own subcommands (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from provlink.cli.config import load_config
from provlink.config import ProvlinkConfig
from provlink.delivery.failures import STATUS_FILE, FailureLog, FailureSummary
from provlink.delivery.spool import DEAD, Spool
from provlink.delivery.spool_open import configured_spool, location
from provlink.errors import ProvlinkError
from provlink.events.redact import Redactor

# Modules contributing subcommands; each has ``register(subparsers) -> None``.
COMMAND_MODULES: tuple[str, ...] = ("provlink.cli.server", "provlink.cli.governance",
                                    "provlink.cli.ledger", "provlink.cli.investigation",
                                    "provlink.cli.evidence", "provlink.cli.registry",
                                    "provlink.cli.sender")


def _spool(config: ProvlinkConfig) -> Spool:
    """The configured spool: the fleet's PostgreSQL one with ``spool_url``, else home's."""
    # errors this process writes (``spool flush``) are redacted with the user's patterns too
    redactor = Redactor(config.secret_key_patterns, config.secret_values)
    return configured_spool(config, redactor.redact_text)


def _failures(config: ProvlinkConfig) -> FailureSummary | None:
    return FailureLog(config.home / STATUS_FILE).summary()


def _failure_lines(failures: FailureSummary | None) -> list[str]:
    if failures is None:
        return ["failed capture steps: 0"]
    return [f"failed capture steps: {failures.count} since {_when(failures.since)}",
            f"last failure: {_when(failures.last_at)} in {failures.last_where}",
            f"    {failures.last_error}"]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_spool_status(args: argparse.Namespace) -> int:
    config = load_config()
    status = _spool(config).status()
    failures = _failures(config)
    if args.json:
        print(json.dumps({**status.as_dict(), "spool": location(config),
                          "capture_failures": failures.as_dict() if failures else None}))
    else:
        print(f"spool: {location(config)}")
        print(f"pending: {status.pending}  sent: {status.sent}  dead-letter: {status.dead}")
        if status.oldest_pending_age is not None:
            print(f"oldest pending: {status.oldest_pending_age:.1f}s ago")
        print("\n".join(_failure_lines(failures)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Is lineage being captured and delivered here? Exit 1 when capture steps failed."""
    config = load_config()
    spool = _spool(config).status()
    failures = _failures(config)
    if args.json:
        print(json.dumps({"home": str(config.home), "spool": location(config),
                          "disabled": config.disabled, **spool.as_dict(),
                          "capture_failures": failures.as_dict() if failures else None}))
        return 1 if failures else 0
    rows = [("home", str(config.home)), ("spool", location(config)),
            ("capture", "disabled (PROVLINK_DISABLED)" if config.disabled else "enabled"),
            ("pending events", str(spool.pending)), ("delivered events", str(spool.sent)),
            ("dead-lettered events", str(spool.dead)),
            ("failed capture steps", str(failures.count) if failures else "0")]
    if spool.oldest_pending_age is not None:
        rows.insert(3, ("oldest pending", f"{spool.oldest_pending_age:.1f}s ago"))
    if failures:
        rows += [("failing since", _when(failures.since)),
                 ("last failure", f"{_when(failures.last_at)} in {failures.last_where}"),
                 ("last error", failures.last_error.splitlines()[0] if failures.last_error
                  else "")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if failures:
        print("\nlineage is incomplete: fix the cause (see the task logs), then "
              "`provlink status --reset`", file=sys.stderr)
    return 1 if failures else 0


def cmd_spool_dead_letters(args: argparse.Namespace) -> int:
    config = load_config()
    spool = _spool(config)
    if args.requeue:
        print(f"requeued {spool.requeue_dead()} dead-lettered events")
        return 0
    rows = []
    for entry in spool.entries(state=DEAD):
        event = json.loads(entry.payload or "{}")
        job = event.get("job", {})
        rows.append({"seq": entry.seq, "runId": entry.run_id,
                     "job": f"{job.get('namespace')}/{job.get('name')}",
                     "eventType": event.get("eventType"), "error": entry.last_error,
                     "attempts": entry.attempts})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"#{row['seq']} {row['eventType']} {row['job']} run={row['runId']}\n"
                  f"    {row['error']}")
        print(f"{len(rows)} dead-lettered events")
    return 0


def cmd_spool_flush(args: argparse.Namespace) -> int:
    from provlink.delivery.sender import Sender

    config = load_config()
    spool = _spool(config)
    sender = Sender.from_config(spool, config)
    done = sender.close(args.timeout)
    status = spool.status()
    print(f"delivered {sender.delivered}, dead-lettered {sender.dead_lettered}, "
          f"pending {status.pending}")
    return 0 if done else 1


def cmd_spool_prune(args: argparse.Namespace) -> int:
    import time

    config = load_config()
    pruned = _spool(config).prune_payloads(time.time() - args.older_than_days * 86400)
    print(f"dropped the payloads of {pruned} delivered events (their ledger entries, digests "
          "and every checkpoint remain: `provlink verify` and proofs still work)")
    return 0


def _status_or_reset(args: argparse.Namespace) -> int:
    if args.reset:
        FailureLog(load_config().home / STATUS_FILE).reset()
        print("capture failure count reset")
        return 0
    return cmd_status(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provlink",
        description="Lineage and provenance for Airflow, Dagster and MLflow: capture health, "
                    "the spool, the lineage backend, the ledger and governance questions.",
        epilog="`provlink COMMAND --help` for each command; the README has the reference.")
    sub = parser.add_subparsers(dest="command", required=True)

    status_cmd = sub.add_parser("status", help="capture and delivery health of this home")
    status_cmd.add_argument("--json", action="store_true")
    status_cmd.add_argument("--reset", action="store_true",
                            help="forget the counted capture failures (after a fix)")
    status_cmd.set_defaults(func=_status_or_reset)

    spool = sub.add_parser("spool", help="inspect and drain the event spool (home's, or the "
                           "fleet's with spool_url)")
    spool_sub = spool.add_subparsers(dest="spool_command", required=True)
    status = spool_sub.add_parser("status", help="pending, sent and dead-letter counts")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_spool_status)
    dead = spool_sub.add_parser("dead-letters", help="events the backend refused, with its message")
    dead.add_argument("--json", action="store_true")
    dead.add_argument("--requeue", action="store_true", help="send them again (after a fix)")
    dead.set_defaults(func=cmd_spool_dead_letters)
    flush = spool_sub.add_parser("flush", help="deliver every pending event now")
    flush.add_argument("--timeout", type=float, default=60.0)
    flush.set_defaults(func=cmd_spool_flush)
    prune = spool_sub.add_parser("prune", help="drop payloads of old delivered events")
    prune.add_argument("--older-than-days", type=float, default=30.0)
    prune.set_defaults(func=cmd_spool_prune)


    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ProvlinkError as exc:
        print(f"provlink: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
