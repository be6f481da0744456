"""``provlink sender``: the sender as a service of its own, outliving every worker.

With the fleet spool (``spool_url``) a worker can vanish right after its task; this
command holds the sending lease (the same :class:`provlink.delivery.sender.Sender` every
process runs, on its thread) and delivers whatever any worker spooled. It moves this host's
fallback spool into the fleet spool (:func:`provlink.delivery.spool_open.drain_fallback`)
on start and every interval, prints one status line per interval (``--json``: one JSON
object per line), and on SIGTERM/SIGINT drains within ``--drain-timeout`` before exiting:
0 when nothing is left, :data:`EXIT_UNDELIVERED` when events are still pending (they stay
in the spool; nothing is lost). ``--once`` delivers what is pending and exits the same
way (a cron or Kubernetes job). A fleet spool that is down, at start or later, is reported
on each status line and retried: the service outlives database outages too.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from provlink.cli.config import load_config
from provlink.config import ProvlinkConfig
from provlink.delivery.pg_spool import PgSpool
from provlink.delivery.sender import Sender
from provlink.delivery.spool import Spool
from provlink.delivery.spool_open import configured_spool, drain_fallback, location
from provlink.errors import SpoolError
from provlink.events.redact import Redactor

EXIT_UNDELIVERED = 3  # stopped (timeout, signal) with events still pending in the spool


def register(subparsers: Any) -> None:
    cmd = subparsers.add_parser(
        "sender", help="deliver the configured spool (SQLite or the fleet's PostgreSQL) "
                       "in the foreground, until SIGTERM/SIGINT")
    cmd.add_argument("--once", action="store_true",
                     help="deliver what is pending now, then exit (cron, Kubernetes jobs)")
    cmd.add_argument("--interval", type=float, default=10.0,
                     help="seconds between status lines (default 10)")
    cmd.add_argument("--drain-timeout", type=float, default=None, metavar="S",
                     help="seconds to keep delivering after SIGTERM/SIGINT, or with --once "
                          "(default: the close_timeout setting, 5 s)")
    cmd.add_argument("--json", action="store_true", help="status lines as JSON objects")
    cmd.set_defaults(func=sender_command)


class _Signals:
    """SIGTERM/SIGINT: the first stops the service (it then drains), a second stops the
    drain too."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.abort = threading.Event()

    def __call__(self, signum: int, _frame: Any) -> None:
        (self.abort if self.stop.is_set() else self.stop).set()

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        old = {s: signal.signal(s, self) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def sender_command(args: argparse.Namespace) -> int:
    config = load_config()
    drain_timeout = config.close_timeout if args.drain_timeout is None else args.drain_timeout
    where = location(config)
    report = _Reporter(args.json, where)
    with _Signals().installed() as signals:
        spool = _open(config, signals, args.interval, report)
        if spool is None:
            print(f"provlink sender: stopped before the spool at {where} answered; events stay "
                  "where they were spooled (workers' local spools fall back). Start `provlink "
                  "sender` again once the database is reachable.", file=sys.stderr)
            return EXIT_UNDELIVERED
        sender = Sender.from_config(spool, config)
        try:
            moved = _move_fallback(config, spool)
            if not args.once:
                sender.start()
                report.line(spool, sender, moved)
                while not signals.stop.wait(args.interval):
                    report.line(spool, sender, _move_fallback(config, spool))
            done = _drain(sender, spool, config, drain_timeout, signals)
            try:
                sender.close(1.0)  # stops the thread (drained or out of time), frees the lease
            except SpoolError:  # the spool is down: the lease expires on its own
                pass
            report.line(spool, sender, moved if args.once else 0)
            pending = _pending(spool)
        finally:
            spool.close()
    if done:
        return 0
    left = (f"{pending} events" if pending is not None
            else "events (how many is unknown: the spool is unreachable)")
    print(f"provlink sender: {left} not delivered within --drain-timeout {drain_timeout:g}s "
          f"({_why(sender)}). Nothing is lost: they stay pending in the spool at {where}. Run "
          "`provlink sender` again (or `provlink spool flush`) once the backend answers; "
          "`provlink spool dead-letters` lists events the backend refused.", file=sys.stderr)
    return EXIT_UNDELIVERED


def _open(config: ProvlinkConfig, signals: _Signals, interval: float,
          report: _Reporter) -> Spool | None:
    """The configured spool; with ``spool_url``, wait for PostgreSQL rather than drain only
    this host's local fallback (the fleet's events are in PostgreSQL). A local spool that
    cannot be opened is a configuration error (raised)."""
    redactor = Redactor(config.secret_key_patterns, config.secret_values)
    while True:
        try:
            return configured_spool(config, redactor.redact_text)
        except SpoolError as exc:
            if not config.spool_url:
                raise
            report.waiting(str(exc))
        if signals.stop.wait(interval):
            return None


def _pending(spool: Spool) -> int | None:
    try:
        return spool.status().pending
    except SpoolError:
        return None


def _move_fallback(config: ProvlinkConfig, spool: Spool) -> int:
    try:
        return drain_fallback(config, spool if isinstance(spool, PgSpool) else None)
    except SpoolError as exc:  # this host's local spool: reported, retried next interval
        print(f"provlink sender: could not move the local fallback spool on: {exc}",
              file=sys.stderr)
        return 0


def _drain(sender: Sender, spool: Spool, config: ProvlinkConfig, timeout: float,
           signals: _Signals) -> bool:
    """Deliver until nothing is pending, ``timeout`` passes or a second signal arrives;
    a backend that is down is retried on the sender's backoff until then."""
    deadline = time.monotonic() + timeout
    while True:
        if sender.flush(max(deadline - time.monotonic(), 0.0)):
            return True
        left = deadline - time.monotonic()
        if left <= 0 or signals.abort.wait(min(config.sender_poll_interval, left)):
            return _pending(spool) == 0


def _why(sender: Sender) -> str:
    if sender.backing_off:
        return "the backend is unreachable or failing"
    return "delivery was still under way, or another process holds the sending lease"


class _Reporter:
    """One status line per interval on stdout: a table row, or a JSON object (``--json``)."""

    def __init__(self, as_json: bool, where: str) -> None:
        self.as_json, self.where = as_json, where

    def line(self, spool: Spool, sender: Sender, moved: int) -> None:
        try:
            status = spool.status()
        except SpoolError as exc:  # the database is down for now: the sender retries
            self.waiting(str(exc))
            return
        row = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "spool": self.where,
               **status.as_dict(), "delivered_here": sender.delivered,
               "dead_lettered_here": sender.dead_lettered, "moved_from_fallback": moved,
               "backend": "backing off" if sender.backing_off else "ok"}
        if self.as_json:
            print(json.dumps(row), flush=True)
            return
        age = status.oldest_pending_age
        print(f"{row['time']}  pending {status.pending}  sent {status.sent}  dead-letter "
              f"{status.dead}  delivered here {sender.delivered}"
              + (f"  oldest pending {age:.1f}s" if age is not None else "")
              + (f"  moved from fallback {moved}" if moved else "")
              + ("  backend unreachable, retrying" if sender.backing_off else ""), flush=True)

    def waiting(self, error: str) -> None:
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.as_json:
            print(json.dumps({"time": when, "spool": self.where, "unreachable": error}),
                  flush=True)
        else:
            print(f"{when}  spool unreachable, retrying: {error}", flush=True)
