"""Fixtures for the server suite: one store per backend (SQLite always, PostgreSQL when
reachable) and a live uvicorn server on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provlink.server.store import open_store
from tests.server.support import LiveServer, postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lineage.db'}"
    else:
        yield from postgres_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def server(store: Any) -> Iterator[LiveServer]:
    with LiveServer(store) as live:
        yield live
