"""``provlink keys``, ``provlink ledger`` and ``provlink verify``.

``keys generate`` writes the ledger's signing key (0600) and prints its public key;
``ledger checkpoint`` signs a tree head now; ``ledger proof`` and ``ledger consistency``
print RFC 9162 proofs; ``verify`` checks the log, its checkpoints and signatures, and with
``--witness``/``--registry`` the copies held away from this machine. Exit codes: 0 all
agree, 1 something is wrong (the first bad entry is named), 2 the check could not run.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from provlink.cli.config import load_config
from provlink.errors import ConfigError


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="the ledger's signing key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="write a new Ed25519 key (0600), print its "
                              "public key")
    gen.add_argument("--name", help="key name (default: the log's origin)")
    gen.add_argument("--out", help="private key file (default $PROVLINK_HOME/ledger.key)")
    gen.add_argument("--force", action="store_true", help="replace an existing key file")
    gen.set_defaults(func=cmd_keys_generate)

    ledger = subparsers.add_parser("ledger", help="checkpoints and proofs of the ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    cp = ledger_sub.add_parser("checkpoint", help="make and sign a checkpoint now")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=cmd_checkpoint)
    proof = ledger_sub.add_parser("proof", help="inclusion proof of one entry")
    proof.add_argument("leaf", type=int, help="leaf index")
    proof.add_argument("--size", type=int, help="tree size (default: the latest checkpoint's)")
    proof.add_argument("--json", action="store_true")
    proof.set_defaults(func=cmd_proof)
    cons = ledger_sub.add_parser("consistency", help="consistency proof between two sizes")
    cons.add_argument("old", type=int)
    cons.add_argument("new", type=int, nargs="?", help="default: the latest checkpoint's size")
    cons.add_argument("--json", action="store_true")
    cons.set_defaults(func=cmd_consistency)

    verify = subparsers.add_parser(
        "verify", help="check the ledger: entries, tree, signatures (and with --witness / "
        "--registry the checkpoints held elsewhere)")
    verify.add_argument("--public-key", metavar="VKEY", help="the log's verifier key, or a "
                        "file holding it (default: the configured key's public half)")
    verify.add_argument("--all-signatures", action="store_true", help="check every "
                        "checkpoint's signature (default: the latest one's, which vouches "
                        "for every entry it covers once its root matches the log)")
    verify.add_argument("--witness", metavar="URL", help="a `provlink serve` witness to "
                        "check against (and hand the latest checkpoint to)")
    verify.add_argument("--witness-key", metavar="VKEY", help="the witness's cosigning key "
                        "(default: asked of the witness)")
    verify.add_argument("--registry", action="store_true", help="check the MLflow model "
                        "versions' ledger anchors and lineage tags")
    verify.add_argument("--model", help="with --registry: only this registered model")
    verify.add_argument("--url", help="lineage backend for --registry (Marquez API)")
    verify.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=cmd_verify)


def _ledger(config: Any) -> Any:
    from provlink.delivery.spool_open import configured_spool
    from provlink.governance.log import Ledger

    return Ledger(configured_spool(config))


# -- keys -------------------------------------------------------------------------------------
def cmd_keys_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from provlink.governance.keys import LEDGER_KEY, LEDGER_PUB, write_key
    from provlink.governance.note import Signer

    config = load_config()
    name = args.name or _ledger(config).origin
    signer = Signer.generate(name)
    out = Path(args.out).expanduser() if args.out else config.home / LEDGER_KEY
    write_key(out, signer, overwrite=args.force)
    vkey = signer.verifier().vkey
    if not args.out:
        from provlink.private_files import private_file

        private_file(config.home / LEDGER_PUB, side_files=()).write_text(vkey + "\n",
                                                                          encoding="ascii")
    print(vkey)
    print(f"private key written to {out} (mode 0600); keep the public key above elsewhere "
          "and pass it to `provlink verify --public-key`", file=sys.stderr)
    return 0


# -- ledger -----------------------------------------------------------------------------------
def cmd_checkpoint(args: argparse.Namespace) -> int:
    from provlink.governance.keys import load_signer

    config = load_config()
    signer = load_signer(config)
    made = _ledger(config).checkpoint(signer)
    if args.json:
        print(json.dumps({**made.as_dict(), "signed": signer is not None}, indent=2))
    else:
        print(made.note, end="")
        if signer is None:
            print("(unsigned: no ledger key; run `provlink keys generate`)", file=sys.stderr)
    return 0


def _latest_size(ledger: Any) -> int:
    latest = ledger.latest_checkpoint()
    if latest is None:
        raise ConfigError("the ledger has no checkpoint yet: run `provlink ledger checkpoint`")
    return int(latest.checkpoint.size)


def cmd_proof(args: argparse.Namespace) -> int:
    ledger = _ledger(load_config())
    size = args.size if args.size is not None else _latest_size(ledger)
    if not 0 <= args.leaf < size:
        raise ConfigError(f"leaf {args.leaf} is not in a tree of {size} entries")
    leaf = ledger.leaf(args.leaf)
    proof = ledger.inclusion(args.leaf, size)
    out = {"leafIndex": args.leaf, "treeSize": size, "leafHash": bytes(leaf[2]).hex(),
           "rootHash": ledger.root(size).hex(), "entry": json.loads(leaf[1]),
           "proof": [base64.b64encode(h).decode() for h in proof]}
    _print(out, args.json)
    return 0


def cmd_consistency(args: argparse.Namespace) -> int:
    ledger = _ledger(load_config())
    new = args.new if args.new is not None else _latest_size(ledger)
    if not 0 <= args.old <= new <= ledger.size():
        raise ConfigError(f"need 0 <= old <= new <= {ledger.size()} (got {args.old}, {new})")
    proof = ledger.consistency(args.old, new)
    _print({"oldSize": args.old, "newSize": new, "oldRoot": ledger.root(args.old).hex(),
            "newRoot": ledger.root(new).hex(),
            "proof": [base64.b64encode(h).decode() for h in proof]}, args.json)
    return 0


def _print(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for key, value in out.items():
        if isinstance(value, list):
            print(f"{key}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")


# -- verify -----------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    from provlink.governance.keys import load_verifier
    from provlink.governance.ledger import verify

    config = load_config()
    ledger = _ledger(config)
    verifier = load_verifier(args.public_key, config)
    report = verify(ledger.store, verifier=verifier, progress=_progress_bar(),
                    all_signatures=args.all_signatures)
    from provlink.delivery.spool_open import location

    out: dict[str, Any] = {"ledger": {"path": location(config), **report.as_dict()}}
    problems = list(report.problems)
    if args.witness:
        from provlink.governance.clients import witness_client
        from provlink.governance.note import Verifier
        from provlink.governance.witness_client import check_against_witness

        key = Verifier.parse(_text(args.witness_key)) if args.witness_key else None
        witnessed = check_against_witness(ledger, witness_client(config, args.witness),
                                          witness_key=key, push=report.ok)
        out["witness"] = witnessed.as_dict()
        problems += witnessed.problems
    anchors: list[Any] = []
    drift: list[Any] = []
    if args.registry:
        anchors, drift, checked = _registry(args, ledger, verifier)
        out["registry"] = {"checked": checked, "anchors": [str(a) for a in anchors],
                           "drift": [asdict(d) for d in drift]}
    ok = not problems and not anchors and not drift
    out["ok"] = ok
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(_render(out, report, problems, anchors, drift)))
    return 0 if ok else 1


def _text(value: str) -> str:
    from pathlib import Path

    path = Path(value).expanduser()
    return path.read_text(encoding="ascii").strip() if path.is_file() else value


def _registry(args: argparse.Namespace, ledger: Any, verifier: Any) -> tuple[list[Any],
                                                                            list[Any], int]:
    from provlink.cli.governance import _all_versions, _api, _mlflow_client
    from provlink.governance.anchors import check_anchor
    from provlink.governance.trace import verify_registry
    from provlink.tracking_uri import tracking_namespace

    client, uri = _mlflow_client(args)
    versions = [(v.name, str(v.version), dict(v.tags)) for v in _all_versions(client, args.model)]
    anchors = [p for name, version, tags in versions
               if (p := check_anchor(ledger, f"models:/{name}/{version}", tags, verifier))]
    drift = list(verify_registry(_api(args), versions, tracking_namespace(uri)))
    return anchors, drift, len(versions)


def _render(out: dict[str, Any], report: Any, problems: list[Any], anchors: list[Any],
            drift: list[Any]) -> Iterator[str]:
    led = out["ledger"]
    yield f"ledger {led['path']}  (log {led['origin']})"
    yield f"├─ entries      {report.entries}  root {report.root}"
    latest = report.latest
    if latest is not None:
        cp = latest.checkpoint
        yield (f"├─ checkpoints  {report.checkpoints}, latest #{latest.id}: {cp.size} entries"
               + (f" ({report.uncovered} newer entries not yet checkpointed)"
                  if report.uncovered else ""))
    else:
        yield "├─ checkpoints  none yet (`provlink ledger checkpoint` makes one)"
    signed = ("checked" if report.signed else "NOT signed by the public key") \
        if report.signed is not None else "not checked (no public key)"
    yield f"├─ signatures   {signed}"
    if "witness" in out:
        wit = out["witness"]
        yield (f"├─ witness      {wit['url']}: holds {wit['held']} checkpoints, largest "
               f"{wit['largestTreeSize']} entries"
               + (", cosigned" if wit["cosignaturesVerified"] else ""))
    if "registry" in out:
        yield (f"├─ registry     {out['registry']['checked']} model versions, "
               f"{len(anchors)} anchor problems, {len(drift)} drifted")
    for note in report.notes:
        yield f"│  note: {note}"
    for problem in problems:
        yield f"│  BROKEN {problem}"
    for anchor in anchors:
        yield f"│  BROKEN {anchor}"
    for item in drift:
        yield f"│  DRIFT {item.model}: {item.problem}"
    if out["ok"]:
        yield "└─ OK: entries, tree, checkpoints" + (" and signatures" if report.signed else "") \
            + (", witness" if "witness" in out else "") \
            + (", registry" if "registry" in out else "") + " agree"
    else:
        first = report.first or (problems[0] if problems else None)
        named = first if first is not None else (anchors[0] if anchors else drift[0].model)
        yield f"└─ FAILED: first problem: {named}"


def _progress_bar() -> Any:
    if not sys.stderr.isatty():
        return None
    state = {"last": 0}

    def show(done: int, total: int) -> None:
        if done - state["last"] < 20000 and done < total:
            return
        state["last"] = done
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\rverifying [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
