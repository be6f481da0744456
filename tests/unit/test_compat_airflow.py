"""Every entry of provlink_airflow._compat, against the installed Airflow and provider."""

from __future__ import annotations

import uuid
from importlib.metadata import version

import pytest
from packaging.specifiers import SpecifierSet

pytest.importorskip("airflow")

from provlink_airflow import _compat  # noqa: E402


def test_installed_airflow_and_provider_are_the_checked_ranges() -> None:
    for distribution, checked in _compat.CHECKED_VERSIONS.items():
        assert version(distribution) in SpecifierSet(checked), distribution


def test_the_task_sdk_secrets_masker_module_is_found() -> None:
    names = [m.__name__ for m in _compat.secrets_maskers()]
    assert "airflow.sdk._shared.secrets_masker" in names


def test_masked_secrets_returns_what_airflow_was_told_to_mask() -> None:
    from airflow.sdk.log import mask_secret

    secret = f"provlink-compat-{uuid.uuid4().hex}.+?"  # regex metacharacters come back plain
    mask_secret(secret)
    assert secret in _compat.masked_secrets()


def test_extractor_manager_takes_the_arguments_extraction_passes() -> None:
    import inspect

    manager = _compat.extractor_manager()
    params = inspect.signature(manager.extract_metadata).parameters
    assert {"dagrun", "task", "task_instance", "task_instance_state"} <= set(params)
