"""Server suite support: shared specs, throw-away PostgreSQL databases, a live server."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from provlink.server.app import create_app
from tests.conformance import SPEC

PG_ADMIN = os.environ.get("PROVLINK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def spec_dir() -> Path:
    """The shared specs (``$SHARED_SPEC_DIR``, default ../shared/spec), or skip: the contract
    tests check nothing but conformance to them."""
    if not SPEC.is_dir():
        pytest.skip(f"{SPEC} not found: the shared specs (../shared/spec) are needed for this test")
    return SPEC.resolve()


def _pg_reason() -> str | None:
    try:
        import psycopg
    except ImportError as error:
        return f"psycopg not installed: {error}"
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL not reachable at {PG_ADMIN}: {error}"


_PG_REASON = _pg_reason()


def postgres_url() -> Iterator[str]:
    """Create a throw-away database and drop it afterwards."""
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    import psycopg

    name = f"provlink_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_app(store)`` in a thread, as ``provlink serve`` does."""

    def __init__(
        self, store: Any, api_keys: list[str] | None = None, allowed_hosts: tuple[str, ...] = ()
    ) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(store, api_keys=api_keys, allowed_hosts=allowed_hosts),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
