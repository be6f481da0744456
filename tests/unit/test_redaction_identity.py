"""Through the real capture pipeline, with a dev setup's environment: identities intact,
secrets masked, and masking before truncation."""

from __future__ import annotations

import json

import pytest

import provlink
from provlink.testing import capture_events
from tests.unit.test_redaction_corpus import SEEDED_ENV

TOKEN = "ghp_" + "Zq7Xw2Lm9Np4Rt6Vy8Ab1Cd3Ef5Gh0Jk2Lm"  # fake, GitHub-shaped


@pytest.fixture(autouse=True)
def seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    for name, value in SEEDED_ENV.items():
        monkeypatch.setenv(name, value)


def test_identities_survive_a_seeded_environment_and_secrets_do_not() -> None:
    with capture_events() as events:
        with provlink.capture("airflow_results.score", namespace="airflow",
                              parameters={"db_password": "postgres", "mode": "airflow",
                                          "remote": f"https://{TOKEN}@github.com/o/r.git"}) as cp:
            cp.add_input("public.customers", namespace="postgres://db:5432")
            cp.add_input("public.admin_users", namespace="postgres://etl:airflow@db:5432")
            cp.add_output("airflow_results/scores", namespace="s3://airflow-bucket")
            try:
                raise RuntimeError(f"push to https://{TOKEN}@github.com failed; "
                                   "password=Hunter2-Hunter2")
            except RuntimeError:
                pass
    done = events[-1]
    assert done["job"] == {**done["job"], "namespace": "airflow", "name": "airflow_results.score"}
    assert {(d["namespace"], d["name"]) for d in done["inputs"]} >= {
        ("postgres://db:5432", "public.customers"), ("postgres://db:5432", "public.admin_users")}
    assert [(d["namespace"], d["name"]) for d in done["outputs"]] == [
        ("s3://airflow-bucket", "airflow_results/scores")]
    params = {p["key"]: p["value"]
              for p in done["run"]["facets"]["executionParameters"]["parameters"]}
    assert params == {"db_password": "***", "mode": "airflow",
                      "remote": "https://***@github.com/o/r.git"}
    text = json.dumps(events)
    assert TOKEN not in text and "Hunter2-Hunter2" not in text
    assert "***://" not in text and "***-bucket" not in text and "***_results" not in text


def test_a_failed_task_error_is_masked_but_names_are_kept() -> None:
    with capture_events() as events, pytest.raises(ValueError):
        with provlink.capture("postgres_admin.load", namespace="airflow"):
            raise ValueError("psql -h db -U postgres: PGPASSWORD=Pg-Secret-9 rejected")
    fail = events[-1]
    assert fail["eventType"] == "FAIL" and fail["job"]["name"] == "postgres_admin.load"
    message = fail["run"]["facets"]["errorMessage"]["message"]
    assert message.endswith("psql -h db -U postgres: PGPASSWORD=*** rejected")
    assert "Pg-Secret-9" not in json.dumps(fail)


def test_masking_happens_before_truncation() -> None:
    config = {"password": "Cut-Secret-42", "rows": list(range(2000))}
    with capture_events(parameter_max_chars=100) as events:
        with provlink.capture("big_config", parameters={"config": config,
                                                        "dsn": "postgres://u:Pw-77x@db/x"}):
            pass
    params = {p["key"]: p["value"]
              for p in events[-1]["run"]["facets"]["executionParameters"]["parameters"]}
    assert params["config"].startswith('{"password": "***", "rows": [0, 1, 2')
    assert "truncated" in params["config"] and len(params["config"]) < 200
    assert "Cut-Secret-42" not in json.dumps(events) and "Pw-77x" not in json.dumps(events)


def test_user_key_patterns_extend_the_defaults_unless_they_replace_them() -> None:
    params = {"customer_ssn": "123-45-6789", "password": "Pw-Default-1"}
    with capture_events(redact_key_patterns=("ssn",)) as extended:
        with provlink.capture("extend", parameters=params):
            pass
    with capture_events(redact_key_patterns=("ssn",), redact_key_patterns_replace=True) as only:
        with provlink.capture("replace", parameters=params):
            pass

    def values(events):
        return {p["key"]: p["value"]
                for p in events[-1]["run"]["facets"]["executionParameters"]["parameters"]}

    assert values(extended) == {"customer_ssn": "***", "password": "***"}
    assert values(only) == {"customer_ssn": "***", "password": "Pw-Default-1"}


def test_errors_kept_in_the_spool_are_redacted(tmp_path) -> None:
    """A target's error can quote credentials (a URL, the event's own text): the spool's
    ``last_error`` never keeps them, whether the runtime or the CLI wrote it."""
    from provlink.delivery.runtime import Runtime
    from provlink.delivery.spool import DEAD, Spool

    error = (f"POST https://etl:Pw-In-Url-1@lineage.example.com/api failed: 422 "
             f"{{'password': 'Quoted-Pw-2', 'remote': 'https://{TOKEN}@github.com'}}")
    runtime = Runtime(provlink.ProvlinkConfig.load(home=str(tmp_path / "rt")))
    try:
        spool = runtime.emitter.spool
        spool.append({"eventType": "START", "run": {"runId": "r-1"}})
        spool.append({"eventType": "START", "run": {"runId": "r-2"}})
        spool.mark_dead(1, error)
        spool.record_failure(2, error, max_attempts=1)
        plain = Spool(tmp_path / "plain.db")  # no runtime: the default filter still applies
        plain.append({"eventType": "START", "run": {"runId": "r-3"}})
        plain.mark_dead(1, error)
        kept = [e.last_error for e in spool.entries(state=DEAD)]
        kept += [e.last_error for e in plain.entries(state=DEAD)]
    finally:
        runtime.close(1)
    assert len(kept) == 3
    for text in kept:
        assert "lineage.example.com" in text and "422" in text
        assert "Pw-In-Url-1" not in text and "Quoted-Pw-2" not in text and TOKEN not in text
