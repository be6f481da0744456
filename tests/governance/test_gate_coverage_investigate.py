"""Known answers for ``coverage``, ``gate`` and ``investigate``: a deliberately unlineaged
step, a sensitive-tagged source, and a corrupted source file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provlink.delivery.spool import Spool
from provlink.governance import registry_log
from provlink.governance.gate import Policy, PolicyError
from provlink.governance.log import Ledger
from tests.governance.conftest import Deployment
from tests.governance.pipelines import GAPS_MODEL, MODEL


def test_coverage_reports_the_unlineaged_step(deployment: Deployment) -> None:
    code, out = deployment.cli("coverage", "--json")
    assert code == 0
    report = json.loads(out)
    gaps = {g["job"]: g for g in report["gaps"]}
    assert list(gaps) == ["kat_gaps/clean"]
    assert gaps["kat_gaps/clean"]["no_inputs"] == 1
    models = {m["model"]: m for m in report["models"]}
    assert not models[f"models:/{GAPS_MODEL}/1"]["traceable"]
    assert "kat_gaps/clean" in models[f"models:/{GAPS_MODEL}/1"]["reasons"][0]
    assert all(models[f"models:/{MODEL}/{v}"]["traceable"] for v in "123")
    assert report["figures"]["traceability"] == 0.75
    assert report["figures"]["runsWithStartAndTerminal"] == 1.0
    # the ledger is there: a known count (not "unknown"), the moves its history judges
    # unauthorized (the @champion move made outside provlink counts once a test synced it)
    ledger = Ledger(Spool(deployment.home / "spool.db"))
    unauthorized = sum(not move.authorized for model in (MODEL, GAPS_MODEL)
                       for move in registry_log.history(ledger, model))
    assert report["figures"]["unauthorizedRegistryChanges"] == unauthorized
    assert len(report["unauthorized_changes"]) == unauthorized
    code, text = deployment.cli("coverage")
    assert f"unauthorized registry changes: {unauthorized} recorded" in text
    assert "kat_gaps/clean  (1 runs): 1 without inputs" in text


def test_gate_refuses_naming_the_sensitive_source_and_the_unlineaged_step(
        deployment: Deployment) -> None:
    code, out = deployment.cli("gate", f"models:/{GAPS_MODEL}/1")
    assert code == 1
    customers = str(deployment.answers.customers.resolve())
    assert f"UNMET no-sensitive-inputs: dataset file {customers} is tagged pii" in out
    assert "UNMET lineage: job kat_gaps/clean run" in out and "recorded no inputs" in out
    assert f"tag pii inherited from {customers}" in out  # tags pass through


def test_gate_passes_with_a_policy_the_model_meets(deployment: Deployment,
                                                   tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text("require_clean_code: false\nrequire_ledger: false\n"
                      "require_witness: false\nrequire_approval: false\n")
    code, out = deployment.cli("gate", f"models:/{MODEL}/2", "--policy", str(policy))
    assert (code, out.count("\n")) == (0, 1)
    assert out.startswith(f"models:/{MODEL}/2: PASS")
    allow = tmp_path / "allow.json"
    allow.write_text(json.dumps({"require_clean_code": False, "require_ledger": False,
                                 "require_witness": False, "require_approval": False,
                                 "allow_sensitive": ["pii"]}))
    code, out = deployment.cli("gate", f"models:/{GAPS_MODEL}/1", "--policy", str(allow),
                               "--json")
    unmet = [f for f in json.loads(out)["findings"] if not f["ok"]]
    assert code == 1 and {f["requirement"] for f in unmet} == {"lineage"}


def test_an_approval_recorded_with_provlink_approve_meets_require_approval(
        deployment: Deployment, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text("require_clean_code: false\nrequire_ledger: false\n"
                      "require_witness: false\nrequire_approval: true\n")
    code, out = deployment.cli("gate", f"models:/{MODEL}/1", "--policy", str(policy))
    assert code == 1 and "UNMET approval: no recorded approval" in out
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVLINK_HOME", str(deployment.home))
        from provlink.cli.main import main

        assert main(["approve", f"models:/{MODEL}/1", "--alias", "gate-test",
                     "--by", "carol"]) == 0
    code, out = deployment.cli("gate", f"models:/{MODEL}/1", "--policy", str(policy))
    assert code == 0 and out.startswith(f"models:/{MODEL}/1: PASS"), out
    code, out = deployment.cli("gate", f"models:/{MODEL}/2", "--policy", str(policy))
    assert code == 1, "an approval of version 1 does not approve version 2"


def test_a_policy_with_an_unknown_setting_is_refused() -> None:
    with pytest.raises(PolicyError, match="require_witnes"):
        Policy.from_dict({"require_witnes": True})


def test_investigating_the_corrupted_file_names_affected_models_and_rollback(
        deployment: Deployment) -> None:
    a = deployment.answers
    code, out = deployment.cli("investigate", str(a.train), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["digest"] == a.train_digests[2]
    assert [m["model"] for m in report["impact"]["models"]] == [f"models:/{MODEL}/3"]
    assert report["rollbacks"] == [{"registered_model": MODEL, "affected_versions": ["3"],
                                    "serving_affected": ["champion"], "roll_back_to": "2"}]
    assert [(c["kind"], c["before"], c["after"]) for c in report["changes"]] == [
        ("dataset", a.train_digests[1], a.train_digests[2])]
    assert {j["name"] for j in report["impact"]["jobs"]} == {"train", "score"}
    assert {c["artifact"] for c in report["checks"]} >= {"ledger", "witness", "promotions"}
    code, markdown = deployment.cli("investigate", str(a.train))
    assert f"roll back to `models:/{MODEL}/2`" in markdown
    code, page = deployment.cli("investigate", str(a.train), "--format", "html")
    assert page.startswith("<!doctype html>") and "<script" not in page


def test_tags_pass_through_to_trace_and_impact(deployment: Deployment) -> None:
    customers = str(deployment.answers.customers.resolve())
    code, out = deployment.cli("trace", f"models:/{GAPS_MODEL}/1")
    assert code == 0 and f"tag pii (inherited from {customers})" in out
    code, out = deployment.cli("impact", customers, "--json")
    assert [(m["model"], m["tags"]) for m in json.loads(out)["models"]] == [
        (f"models:/{GAPS_MODEL}/1", ["pii"])]


def test_gate_model_python_api_for_airflow_and_dagster(deployment: Deployment,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from provlink.governance.gate import gate_model

    monkeypatch.setenv("PROVLINK_HOME", str(deployment.home))
    result = gate_model(f"models:/{GAPS_MODEL}/1", lineage_url=deployment.url,
                        tracking_uri=deployment.tracking_uri,
                        policy=Path(__file__).parents[2] / "example_pipelines"
                        / "promotion_policy.yml")
    assert not result.passed
    assert {f.requirement for f in result.unmet} >= {"lineage", "no-sensitive-inputs"}


def test_coverage_counts_as_witnessed_what_evidence_finds_cosigned(
        deployment: Deployment) -> None:
    """The events went straight into the embedded store, past the witness; coverage hands it
    the ledger's latest checkpoint first (as evidence does), so every checkpointed event is
    witnessed, and the witness holds the cosigned checkpoint an evidence bundle would carry."""
    from provlink.governance.witness_client import WitnessClient

    code, out = deployment.cli("coverage", "--json")
    assert code == 0
    figures = json.loads(out)["figures"]
    assert figures["eventsWithLedgerCheckpoint"] > 0
    assert figures["eventsWithWitnessedCheckpoint"] == figures["eventsWithLedgerCheckpoint"]
    ledger = Ledger(Spool(deployment.home / "spool.db"))
    latest = ledger.latest_checkpoint()
    assert latest is not None
    held = WitnessClient(deployment.url).held(ledger.origin)
    assert any(h["status"] == "consistent" and h["cosigned"]
               and int(h["treeSize"]) >= latest.checkpoint.size for h in held), held
    code, text = deployment.cli("coverage")
    line = next(ln for ln in text.splitlines() if ln.startswith("ledger checkpoint"))
    checkpointed, witnessed = line.split()[2], line.split()[-1]
    assert witnessed == checkpointed != "0.0%", line
