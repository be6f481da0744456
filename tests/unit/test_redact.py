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


def test_url_credentials_are_masked_in_every_string() -> None:
    out = redactor()({"inputs": [{"namespace": "postgres://etl:hunter2@db:5432", "name": "t"}],
                      "note": "see https://bob:pa55@example.com/x and ftp://anon@host"})
    assert out["inputs"][0]["namespace"] == f"postgres://etl:{MASK}@db:5432"
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


def test_custom_patterns_replace_the_defaults() -> None:
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
