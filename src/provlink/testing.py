"""Test helpers users and provlink's own tests share: an in-memory emitter and
:func:`capture_events`, which swaps this process's emitter for one that keeps events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime


class InMemoryEmitter:
    """Keeps every emitted (already redacted) event in a list."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)
        return None

    def close(self, timeout: float) -> bool:
        return True


@contextmanager
def capture_events(**config: Any) -> Iterator[list[dict[str, Any]]]:
    """Collect the events emitted inside the block instead of spooling them.

    >>> with capture_events() as events:
    ...     with provlink.capture("job"):
    ...         pass
    >>> [e["eventType"] for e in events]
    ['START', 'COMPLETE']
    """
    emitter = InMemoryEmitter()
    runtime = Runtime(ProvlinkConfig.load(**config), emitter=emitter)
    old = set_runtime(runtime)
    try:
        yield emitter.events
    finally:
        set_runtime(old)


class RecordingEndpoint:
    """A real OpenLineage HTTP endpoint on loopback that records what it receives.

    ``stop()`` then ``start()`` on the same port simulates a backend that was down;
    ``respond_with`` makes it refuse events (e.g. 422 or 503).
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.events: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self.respond_with = 201
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingEndpoint:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real backends do

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = endpoint.respond_with if self.path == "/api/v1/lineage" else 404
                if status < 300:
                    with endpoint._lock:
                        endpoint.bodies.append(body)
                        endpoint.events.append(json.loads(body))
                self.send_response(status)
                message = b"" if status < 300 else b'{"error": "refused by test endpoint"}'
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
