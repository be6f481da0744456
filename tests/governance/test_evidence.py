"""The evidence bundle of a known-answer model version: verified offline, rejected after a
one-byte change in any file, its DSSE envelope verified by securesystemslib, its predicate
valid against the shipped JSON Schema."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import mlflow
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provlink.cli.main import main
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.governance.evidence import dsse
from provlink.governance.evidence.bundle import read_members
from provlink.governance.evidence.keys import load_public_key
from provlink.governance.evidence.statement import PREDICATE_TYPE, predicate_schema
from provlink.governance.evidence.verify import verify_bundle
from tests.governance.conftest import Deployment
from tests.governance.pipelines import GAPS_MODEL, MODEL


class Bundle:
    def __init__(self, path: Path, public: Ed25519PublicKey, vkey: str) -> None:
        self.path, self.public, self.vkey = path, public, vkey
        self.data = path.read_bytes()
        self.members = read_members(self.data)
        self.envelope = json.loads(self.members["statement.dsse.json"])
        self.statement = json.loads(base64.b64decode(self.envelope["payload"]))


def _make(deployment: Deployment, root: Path, model: str) -> Bundle:
    """``provlink evidence`` signs with the ledger key in PROVLINK_HOME, as a user's would."""
    out = root / "bundle.zip"
    code, text = deployment.cli("evidence", model, "-o", str(out))
    assert code == 0, text
    return Bundle(out, load_public_key(deployment.ledger_vkey), deployment.ledger_vkey)


@pytest.fixture(scope="module")
def bundle(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    yield _make(deployment, tmp_path_factory.mktemp("evidence"), f"models:/{MODEL}/2")


def test_the_bundle_verifies_offline_with_the_pinned_key(bundle: Bundle,
                                                         deployment: Deployment) -> None:
    report = verify_bundle(bundle.data, public_key=bundle.public)
    assert report.ok, report.failures
    assert {c for c, _, _ in report.checks} == {"signature", "statement", "manifest",
                                                 "subjects", "lineage manifest", "ledger"}
    lineage = next(detail for check, _, detail in report.checks if check == "lineage manifest")
    assert f"{len(bundle.statement['subject'])} subjects match" in lineage
    ledger = next(detail for check, _, detail in report.checks if check == "ledger")
    assert "2 events proved" in ledger and "signed by the ledger key" in ledger
    assert "cosigned by the witness" in ledger and "model anchor proved" in ledger
    code, out = deployment.cli("evidence", "verify", str(bundle.path), "--public-key",
                               bundle.vkey)
    assert code == 0 and out.rstrip().endswith("VERIFIED")


def test_the_statement_names_the_model_files_and_the_lineage(bundle: Bundle,
                                                             deployment: Deployment) -> None:
    statement = bundle.statement
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    names = {s["name"] for s in statement["subject"]}
    assert {"MLmodel", "model.skops"} <= names
    assert all(len(s["digest"]["sha256"]) == 64 for s in statement["subject"])
    predicate = statement["predicate"]
    jsonschema.validate(predicate, predicate_schema())
    a = deployment.answers
    deps = {d["name"]: d for d in predicate["buildDefinition"]["resolvedDependencies"]
            if "name" in d}
    assert deps[str(a.train.resolve())]["digest"]["sha256"] == a.train_digests[1].split(":")[1]
    assert predicate["buildDefinition"]["externalParameters"] == {"kat/train": {"C": "1.0"}}
    assert predicate["model"]["uri"] == f"models:/{MODEL}/2"
    events = [json.loads(line) for line in bundle.members["events.jsonl"].decode().splitlines()]
    assert {e["eventType"] for e in events} == {"START", "COMPLETE"}
    assert {e["run"]["runId"] for e in events} == {a.train_runs[1]}


def test_the_envelope_verifies_with_securesystemslib(bundle: Bundle) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    public = bundle.public.public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    key = SSlibKey(keyid=dsse.key_id(bundle.public), keytype="ed25519",
                   scheme="ed25519", keyval={"public": public.hex()})
    envelope = Envelope.from_dict(bundle.envelope)
    assert list(envelope.verify([key], 1)) == [key.keyid]
    assert json.loads(envelope.pae().split(b" ", 4)[4]) == bundle.statement
    other = SSlibKey.from_crypto(Ed25519PrivateKey.generate().public_key(), keyid=key.keyid)
    from securesystemslib.exceptions import VerificationError

    with pytest.raises(VerificationError):
        envelope.verify([other], 1)


def _flip(data: bytes, member: str, index: int) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = bytearray(source.read(info))
            if info.filename == member:
                content[index] ^= 0x01
            target.writestr(info, bytes(content))
    return out.getvalue()


def test_one_changed_byte_in_any_file_is_rejected_and_named(bundle: Bundle) -> None:
    key = bundle.public
    for member, content in sorted(bundle.members.items()):
        for index in (0, len(content) // 2, len(content) - 2):
            report = verify_bundle(_flip(bundle.data, member, index), public_key=key)
            assert not report.ok, (member, index)
            failed = " ".join(f"{what}: {detail}" for what, detail in report.failures)
            if member not in ("statement.dsse.json", "manifest.json", "keys/ledger.pub"):
                assert f"{member} was changed" in failed, (member, failed)


def test_a_bundle_signed_by_another_key_is_rejected(bundle: Bundle) -> None:
    report = verify_bundle(bundle.data, public_key=Ed25519PrivateKey.generate().public_key())
    assert [what for what, _ in report.failures] == ["signature"]


def test_the_summary_is_offline_and_maps_the_record_keeping_items(bundle: Bundle) -> None:
    page = bundle.members["summary.html"].decode()
    assert "<svg" in page and "<script" not in page.lower()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    for item in ("Annex IV 2(d)", "Annex IV 2(g)", "Art. 10(2)", "Art. 12", "ISO/IEC 42001 A.7.5"):
        assert item in page
    assert "labelling" in page  # what the bundle cannot hold is named


def test_the_bundle_carries_inherited_sensitive_tags(deployment: Deployment,
                                                     tmp_path: Path) -> None:
    gaps = _make(deployment, tmp_path, f"models:/{GAPS_MODEL}/1")
    customers = str(deployment.answers.customers.resolve())
    assert gaps.statement["predicate"]["inheritedTags"] == {"pii": [customers]}
    assert "pii" in gaps.members["summary.html"].decode()


def test_the_predicate_schema_in_the_docs_and_the_bundle_is_the_packaged_one(
        bundle: Bundle) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "evidence-predicate.md").read_text()
    shown = docs.split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(shown) == predicate_schema()
    assert json.loads(bundle.members["schema/lineage-predicate.schema.json"]) == \
        predicate_schema()


@contextlib.contextmanager
def _in_home(deployment: Deployment) -> Iterator[None]:
    """The deployment's home as the current runtime, so ``registry sync`` ledgers there."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVLINK_HOME", str(deployment.home))
        mp.setenv("MLFLOW_TRACKING_URI", deployment.tracking_uri)
        mp.setenv("PROVLINK_LINEAGE_URL", deployment.url)
        runtime = Runtime(ProvlinkConfig.load())
        old = set_runtime(runtime)
        try:
            yield
        finally:
            runtime.flush(30)
            runtime.close()
            set_runtime(old)


def test_the_bundle_carries_the_versions_promotion_history(deployment: Deployment,
                                                           tmp_path: Path) -> None:
    """Alias moves onto and off the version, from the ledger: one seen by `registry sync`
    and made by nobody's leave, one approved beforehand with `provlink approve`."""
    client = mlflow.MlflowClient(tracking_uri=deployment.tracking_uri)
    with _in_home(deployment), contextlib.redirect_stdout(io.StringIO()):
        client.set_registered_model_alias(MODEL, "staging", "2")
        assert main(["registry", "sync", "--model", MODEL]) == 0
        assert main(["approve", f"models:/{MODEL}", "--alias", "staging", "--by", "alice"]) == 0
        client.delete_registered_model_alias(MODEL, "staging")
        assert main(["registry", "sync", "--model", MODEL]) == 0
    made = _make(deployment, tmp_path, f"models:/{MODEL}/2")
    moves = made.statement["predicate"]["promotions"]
    assert [(m["alias"], m["from"], m["to"], m["source"], m["authorized"], m["authorizedBy"])
            for m in moves] == [("staging", None, "2", "sync", False, None),
                                ("staging", "2", None, "sync", True, "approval by alice")]
    assert all(m["time"] for m in moves)
    jsonschema.validate(made.statement["predicate"], predicate_schema())
    assert json.loads(made.members["registry/promotions.json"])["history"] == moves
    page = made.members["summary.html"].decode()
    assert "UNAUTHORIZED" in page and "approval by alice" in page
    report = verify_bundle(made.data, public_key=made.public)
    assert report.ok, report.failures
    # the champion alias (version 3, seen by the same sync) is not version 2's history
    assert "champion" not in {m["alias"] for m in moves}


def test_a_model_file_changed_after_registration_is_named(deployment: Deployment,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The registry's copy of version 1 loses a byte after its lineage event recorded the
    files: the bundle's subjects (the files now) disagree with the recorded manifest."""
    from provlink.governance.registry_view import MlflowRegistry

    # no MLFLOW_TRACKING_URI: the registry given is the one asked
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    directory = Path(str(MlflowRegistry(deployment.tracking_uri).artifact_dir(MODEL, "1")))
    assert deployment.home.parent in directory.resolve().parents  # the store's own files
    target = directory / "requirements.txt"
    original = target.read_bytes()
    target.write_bytes(original + b"numpy\n")
    try:
        made = _make(deployment, tmp_path, f"models:/{MODEL}/1")
    finally:
        target.write_bytes(original)
    report = verify_bundle(made.data, public_key=made.public)
    assert [what for what, _ in report.failures] == ["lineage manifest"]
    detail = dict(report.failures)["lineage manifest"]
    assert "requirements.txt differs from the recorded SHA-256" in detail
    assert "MLmodel" not in detail
