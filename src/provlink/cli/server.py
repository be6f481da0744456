"""``provlink serve``, ``provlink export`` and ``provlink import``, registered on the main CLI.

>>> parser = argparse.ArgumentParser(); register(parser.add_subparsers())   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import IO, TYPE_CHECKING, Any

from provlink.canonical import canonical_json
from provlink.cli.config import load_config
from provlink.errors import EventValidationError, ProvlinkError
from provlink.server.sql_store import SqlStore
from provlink.server.store import open_store
from provlink.server.validation import parse_json, validate_event

if TYPE_CHECKING:
    from provlink.config import ProvlinkConfig
    from provlink.governance.log import Ledger

IMPORT_BATCH = 1000


def register(subparsers: Any) -> None:
    """Add ``serve``, ``export`` and ``import``; each sets ``func(args) -> int``."""
    serve = subparsers.add_parser(
        "serve", help="run the lineage backend (Marquez API + lineage page)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    _db_argument(serve)
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[:SCOPES]",
        help="accept this bearer key (scopes read,write; default both); repeatable."
        " Also the api_keys setting (PROVLINK_API_KEYS, comma-separated)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host is NAME (loopback names always are; .example.com"
        " allows subdomains); repeatable. Also the allowed_hosts setting",
    )
    serve.set_defaults(func=serve_command)

    export = subparsers.add_parser("export", help="write every stored raw event as JSON lines")
    _db_argument(export)
    export.add_argument("-o", "--output", help="file to write (default stdout)")
    export.set_defaults(func=export_command)

    imp = subparsers.add_parser(
        "import", help="validate and store raw events from a JSON lines file"
    )
    _db_argument(imp)
    imp.add_argument("input", help="JSON lines file, or - for stdin")
    imp.set_defaults(func=import_command)


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="store: sqlite:///path.db or postgresql://... (default lineage.db under the"
        " configured home: PROVLINK_HOME, provlink.yml or Airflow's [provlink] home)",
    )


def _open(args: argparse.Namespace) -> SqlStore:
    """The store named by ``--db``, else the configured home's ``lineage.db``."""
    return open_store(args.db or str(load_config().store_path))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _home_ledger(config: ProvlinkConfig) -> Ledger:
    """The server's configured ledger (its home's, or the fleet's with ``spool_url``):
    where MLflow webhooks' registry actions go."""
    from provlink.delivery.spool_open import configured_spool
    from provlink.governance.log import Ledger

    config.home.mkdir(parents=True, exist_ok=True)
    return Ledger(configured_spool(config))


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from provlink.server.app import create_app
    from provlink.server.auth import KeyRing
    from provlink.server.mlflow_webhook import MlflowWebhook

    try:
        config = load_config()
        keys = KeyRing.from_specs([*args.api_key, *config.api_keys])
    except ProvlinkError as error:
        print(f"provlink serve: {error}", file=sys.stderr)
        return 2
    if not keys and not is_loopback(args.host):
        print(
            f"provlink serve: refusing to bind {args.host}: without an API key the server only"
            " listens on loopback. Pass --api-key KEY (or set PROVLINK_API_KEYS), or use"
            " --host 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    try:
        store = _open(args)
    except ProvlinkError as error:
        print(f"provlink serve: {error}", file=sys.stderr)
        return 2
    try:
        print(f"provlink serve: {store!r} on http://{args.host}:{args.port}/", file=sys.stderr)
        app = create_app(store, api_keys=keys, allowed_hosts=[*args.allowed_host,
                                                              *config.allowed_hosts],
                         webhook=MlflowWebhook(config, ledger=lambda: _home_ledger(config)))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        store.close()
    return 0


def export_command(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        target: AbstractContextManager[IO[str]] = (
            open(args.output, "w", encoding="utf-8")  # noqa: SIM115 - entered just below
            if args.output
            else nullcontext(sys.stdout)
        )
        with target as out:
            count = 0
            for event in store.iter_events():
                out.write(canonical_json(event).decode("utf-8") + "\n")
                count += 1
        print(f"provlink export: {count} events", file=sys.stderr)
    finally:
        store.close()
    return 0


def _read_lines(path: str) -> Iterator[tuple[int, str]]:
    if path == "-":
        yield from enumerate(sys.stdin, start=1)
        return
    with open(path, encoding="utf-8") as handle:
        yield from enumerate(handle, start=1)


def import_command(args: argparse.Namespace) -> int:
    """Store every valid line (idempotently); report invalid lines and exit 1 if there were any."""
    store = _open(args)
    stored = duplicates = invalid = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal stored, duplicates
        flags = store.ingest_many(batch)
        stored += sum(flags)
        duplicates += len(flags) - sum(flags)
        batch.clear()

    try:
        for number, line in _read_lines(args.input):
            if not line.strip():
                continue
            try:
                event = parse_json(line)
                validate_event(event)
            except EventValidationError as error:
                invalid += 1
                print(f"line {number}: {error}", file=sys.stderr)
                continue
            except (ValueError, RecursionError) as error:
                invalid += 1
                print(f"line {number}: malformed JSON: {error}", file=sys.stderr)
                continue
            batch.append(event)
            if len(batch) >= IMPORT_BATCH:
                flush()
        if batch:
            flush()
    finally:
        store.close()
    print(
        f"provlink import: {stored} stored, {duplicates} duplicates, {invalid} invalid",
        file=sys.stderr,
    )
    return 1 if invalid else 0
