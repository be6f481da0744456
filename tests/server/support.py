"""Server suite support: shared specs, throw-away PostgreSQL databases, a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

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


@contextmanager
def throwaway_database(prefix: str, admin: str = PG_ADMIN) -> Iterator[str]:
    """The URL of a new database on ``admin``'s server, dropped (with its connections)
    afterwards; the benchmarks use it too."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url(prefix: str = "provlink_test") -> Iterator[str]:
    """A throw-away database for one test, or skip with the reason PostgreSQL is absent."""
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    with throwaway_database(prefix) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SilentRelay:
    """A TCP relay to the database of ``url`` that can fall silent: it then keeps every
    connection open and passes no more bytes, which is what a hung PostgreSQL (or a
    partitioned network) looks like to a client. ``url`` is the same database through it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
        self._silent = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def fall_silent(self) -> None:
        self._silent.set()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._sockets.append(client)
            if self._silent.is_set():
                continue  # accepted, never answered
            server = socket.create_connection(self._upstream)
            self._sockets.append(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pass, args=(source, sink), daemon=True).start()

    def _pass(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._silent.is_set():
                    sink.sendall(data)
        except OSError:
            return  # closed


@contextmanager
def serve_process(home: Path, log_path: Path) -> Iterator[str]:
    """A real ``provlink serve`` process on a free port, its store under ``home``, its
    output in ``log_path``; yields its URL once it accepts connections."""
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("provlink")), "serve", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "PROVLINK_HOME": str(home),
                 "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
        try:
            deadline = time.monotonic() + 120
            while not _accepts(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"provlink serve did not start; see {log_path}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def api_get(url: str, path: str, **params: Any) -> Any:
    """The JSON a backend at ``url`` answers to ``GET path``, or None for any other status."""
    import httpx

    response = httpx.get(f"{url}{path}", params=params, timeout=30)
    return response.json() if response.status_code == 200 else None


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
