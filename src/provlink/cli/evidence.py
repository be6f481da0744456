"""``provlink evidence models:/NAME/VERSION -o bundle.zip`` and
``provlink evidence verify bundle.zip [--public-key K]``.

Exit codes: 0 written / verified, 1 verification failed (each failure named), 2 the bundle
could not be made (backend, registry or key missing; the message says which).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from provlink.cli.governance import _api, _witness
from provlink.cli.investigation import registry_of, resolve_model
from provlink.cli.progress import Progress
from provlink.config import ProvlinkConfig
from provlink.errors import LineageQueryError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evidence", help="a signed, offline-verifiable evidence bundle for a model version; "
        "`evidence verify BUNDLE` checks one",
        description="provlink evidence models:/NAME/VERSION -o bundle.zip | "
                    "provlink evidence verify bundle.zip [--public-key K]")
    p.add_argument("target", help="models:/<name>/<version> (or @alias), or `verify`")
    p.add_argument("bundle", nargs="?", help="with `verify`: the bundle to check")
    p.add_argument("-o", "--output", help="where to write the bundle (default: "
                                          "<name>-<version>.evidence.zip)")
    p.add_argument("--key", help="the ledger's signing key (note key or PEM; default: "
                                 "PROVLINK_LEDGER_KEY, then $PROVLINK_HOME/ledger.key)")
    p.add_argument("--public-key", help="verify: the ledger's public key (vkey or PEM) to pin")
    p.add_argument("--artifacts", help="verify: the model's artifact directory, to check the "
                                       "files against the subjects")
    p.add_argument("--url", help="lineage backend (Marquez API) base URL")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's)")
    p.add_argument("--namespace-of-models", dest="model_namespace")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evidence)


def cmd_evidence(args: argparse.Namespace) -> int:
    if args.target == "verify":
        if not args.bundle:
            raise LineageQueryError("usage: provlink evidence verify BUNDLE [--public-key K]")
        return cmd_verify(args)
    return cmd_build(args)


def cmd_build(args: argparse.Namespace) -> int:
    from provlink.governance.evidence.bundle import build, spool_ledger
    from provlink.governance.evidence.history import promotions
    from provlink.governance.evidence.keys import load_private_key
    from provlink.governance.keys import load_signer
    from provlink.governance.registry_view import MlflowRegistry

    config = ProvlinkConfig.load()
    key = load_private_key(args.key, config.home)
    registry = registry_of(args)
    name, version, namespace, _ = resolve_model(args, args.target, registry)
    artifacts = None
    if isinstance(registry, MlflowRegistry):
        located = registry.artifact_dir(name, version)
        artifacts = Path(located) if located else None
    with Progress("evidence") as bar:
        data = build(_api(args), namespace=namespace, name=name, version=version,
                     registry=registry, key=key, artifacts_dir=artifacts,
                     ledger=spool_ledger(config, signer=load_signer(config),
                                         witness=_witness(args)),
                     promotions=promotions(config.spool_path, name, version,
                                           namespace=namespace),
                     progress=lambda stage, n: bar.update(n))
    out = Path(args.output or f"{name}-{version}.evidence.zip")
    out.write_bytes(data)
    if args.json:
        print(json.dumps({"bundle": str(out), "bytes": len(data),
                          "model": f"models:/{name}/{version}"}))
    else:
        print(f"wrote {out} ({len(data)} bytes): models:/{name}/{version}, signed; check it "
              f"with `provlink evidence verify {out} --public-key K`")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from provlink.governance.evidence.keys import load_public_key
    from provlink.governance.evidence.verify import verify_bundle

    key = load_public_key(args.public_key) if args.public_key else None
    try:
        data = Path(args.bundle).read_bytes()
    except OSError as exc:
        raise LineageQueryError(f"cannot read {args.bundle}: {exc.strerror}") from exc
    report = verify_bundle(data, public_key=key,
                           artifacts_dir=Path(args.artifacts) if args.artifacts else None)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for what, ok, detail in report.checks:
            print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")
        print(f"{args.bundle}: " + ("VERIFIED" if report.ok else "REJECTED"))
        if report.ok and not report.pinned:
            print("note: the signing key was not pinned; pass --public-key to check who "
                  "signed it", file=sys.stderr)
    return 0 if report.ok else 1
