"""Redaction reaches every facet, not only parameters."""

from __future__ import annotations

import json

from provlink.config import DEFAULT_SECRET_KEY_PATTERNS
from provlink.events.redact import MASK, Redactor


def redactor(*secrets: str, env: bool = False) -> Redactor:
    return Redactor(DEFAULT_SECRET_KEY_PATTERNS, secrets, include_environment=env)


def test_secret_looking_keys_are_masked_anywhere() -> None:
    event = {"run": {"facets": {"custom": {"api_key": "k-123", "nested": {"DB_PASSWORD": "pw1"},
                                           "author": "ada", "tokens": ["a", "b"]}}}}
    out = redactor()(event)
    facet = out["run"]["facets"]["custom"]
    assert facet["api_key"] == MASK
    assert facet["nested"]["DB_PASSWORD"] == MASK
    assert facet["tokens"] == [MASK, MASK]
    assert facet["author"] == "ada"  # not every key containing 'auth' is a secret


def test_key_value_pairs_are_masked_by_their_key() -> None:
    params = [{"key": "aws_secret_access_key", "value": "AKIAXYZ"}, {"key": "lr", "value": "0.1"}]
    env = [{"name": "GITHUB_TOKEN", "value": "ghp_abcdef"}]
    out = redactor()({"executionParameters": {"parameters": params},
                      "environmentVariables": {"environmentVariables": env}})
    assert out["executionParameters"]["parameters"] == [
        {"key": "aws_secret_access_key", "value": MASK}, {"key": "lr", "value": "0.1"}]
    assert out["environmentVariables"]["environmentVariables"][0]["value"] == MASK


def test_url_credentials_are_masked_in_text_and_parsed_out_of_identities() -> None:
    out = redactor()({"inputs": [{"namespace": "postgres://etl:hunter2@db:5432", "name": "t"}],
                      "note": "see https://bob:pa55@example.com/x and ftp://anon@host"})
    assert out["inputs"][0]["namespace"] == "postgres://db:5432"  # the OpenLineage name
    assert out["note"] == f"see https://bob:{MASK}@example.com/x and ftp://anon@host"


def test_known_secret_values_are_masked_inside_other_text() -> None:
    red = redactor("s3cr3t-value")
    red.add_secrets(["conn-pass-42"])
    out = red({"stack": "failed with s3cr3t-value and conn-pass-42", "x": ["s3cr3t-value"]})
    assert "s3cr3t-value" not in json.dumps(out) and "conn-pass-42" not in json.dumps(out)
    assert out["stack"] == f"failed with {MASK} and {MASK}"


def test_secrets_in_secret_looking_environment_variables_are_known(monkeypatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-from-env-777")
    monkeypatch.setenv("HARMLESS", "value-from-env-888")
    out = Redactor(DEFAULT_SECRET_KEY_PATTERNS)({"msg": "tok-from-env-777 value-from-env-888"})
    assert out["msg"] == f"{MASK} value-from-env-888"


def test_structural_fields_keep_their_values() -> None:
    event = {"eventType": "COMPLETE", "run": {"runId": "r1"},
             "job": {"namespace": "ns", "name": "token_refresh_job"}}
    assert redactor()(event) == event


def test_the_redactor_uses_exactly_the_patterns_it_is_given() -> None:
    red = Redactor([r"^customer_id$"], include_environment=False)
    out = red({"customer_id": "c-1", "password": "kept"})
    assert out == {"customer_id": MASK, "password": "kept"}


def test_short_values_are_not_treated_as_known_secrets() -> None:
    out = redactor("ab")({"text": "abc ab"})
    assert out["text"] == "abc ab"


def test_secrets_inside_json_encoded_values_are_masked() -> None:
    params = [{"key": "config", "value": '{"nested": {"client_secret": "abc-123-xyz"}, "n": 1}'}]
    out = redactor()({"parameters": params})
    value = json.loads(out["parameters"][0]["value"])
    assert value == {"nested": {"client_secret": MASK}, "n": 1}


def test_a_value_masked_by_its_key_is_scrubbed_elsewhere_too() -> None:
    red = redactor()
    out = red({"a_message": "login failed for pw Hunter2Hunter2", "password": "Hunter2Hunter2"})
    assert out == {"a_message": f"login failed for pw {MASK}", "password": MASK}
    later = red({"stack": "Hunter2Hunter2 again"})
    assert later == {"stack": f"{MASK} again"}


def test_identities_are_never_substring_replaced() -> None:
    red = redactor("airflow-bucket-secret")
    red.add_secrets(["Results-2026"])
    event = {"job": {"namespace": "airflow-bucket-secret", "name": "Results-2026.load"},
             "run": {"runId": "r1"},
             "outputs": [{"namespace": "s3://airflow-bucket-secret", "name": "Results-2026/x",
                          "facets": {"schema": {"fields": [{"name": "Results-2026"}]},
                                     "version": {"datasetVersion": "Results-2026"}}}],
             "note": "wrote Results-2026 to airflow-bucket-secret"}
    out = red(event)
    assert out == {**event, "note": f"wrote {MASK} to {MASK}"}


def test_url_identities_lose_credentials_by_parsing() -> None:
    red = redactor()
    token = "ghp_" + "a1B2c3D4" * 4 + "e5F6"
    out = red({"job": {"namespace": "postgres://etl:p@ss/w0rd@db:5432", "name": "j"},
               "inputs": [{"namespace": f"https://{token}@github.com/o/r", "name": "n"},
                          {"namespace": "https://h/x?sig=abc1&v=1", "name": "n"},
                          {"namespace": "abfss://container2026abc@acct.dfs.core.windows.net",
                           "name": "n"}]})
    assert out["job"]["namespace"] == "postgres://db:5432"
    assert [d["namespace"] for d in out["inputs"]] == [
        "https://github.com/o/r", f"https://h/x?sig={MASK}&v=1",
        "abfss://container2026abc@acct.dfs.core.windows.net"]


def test_keys_match_in_any_casing_and_list_form() -> None:
    out = redactor()({"dbPassword": "a", "DB-PASS": "b", "X-Amz-Signature": "c",
                      "max_tokens": 512, "tokenizer": "bert", "passenger_count": 3,
                      "ssh_key_path": "/home/u/.ssh/id",
                      "argv": ["train", "--password", "Pw-1234567", "--epochs", "3"]})
    assert out == {"dbPassword": MASK, "DB-PASS": MASK, "X-Amz-Signature": MASK,
                   "max_tokens": 512, "tokenizer": "bert", "passenger_count": 3,
                   "ssh_key_path": "/home/u/.ssh/id",
                   "argv": ["train", "--password", MASK, "--epochs", "3"]}


def test_python_repr_and_text_pairs_are_masked_by_key() -> None:
    out = redactor()({"a": "{'password': 'pw-1', 'user': 'bob'}",
                      "b": "Connection(host='db', secret='s-2')", "c": "api_key=k3 rows=10"})
    assert out == {"a": f"{{'password': '{MASK}', 'user': 'bob'}}",
                   "b": f"Connection(host='db', secret='{MASK}')", "c": f"api_key={MASK} rows=10"}


def test_json_text_without_secrets_keeps_its_exact_text() -> None:
    text = '{"b": 1,   "a": [1, 2]}'
    assert redactor()({"p": text}) == {"p": text}


def test_learnt_values_are_bounded_and_never_common() -> None:
    from provlink.events import secret_values

    red = redactor()
    red({"password": "true", "token": "1000", "secret": "postgres", "pass": "airflow1"})
    assert len(red.known) == 1 and "airflow1" in red.known
    red.add_secrets(f"Value-{i:05d}" for i in range(secret_values.MAX_LEARNT + 50))
    assert len(red.known) == secret_values.MAX_LEARNT
    assert "Value-00000" not in red.known  # the oldest were forgotten
    red.add_secrets(["x" * (secret_values.MAX_LEN + 1) + "1"])
    assert len(red.known) == secret_values.MAX_LEARNT


def test_many_strings_stay_linear() -> None:
    """Thousands of strings, most alike: each distinct string is redacted once."""
    red = redactor()
    event = {"facets": {f"k{i}": f"value {i % 50} of a typical facet" for i in range(5000)}}
    assert red(event) == event
    assert len(red._text_cache) <= 50 + 1
