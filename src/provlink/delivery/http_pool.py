"""A small pool of keep-alive ``http.client`` connections to one origin.

Why by hand: the sender posts one event per request to a Marquez at thousands of events
per second, and ``requests`` (and urllib3 under it) costs several times the CPU of the
stdlib's ``http.client`` per POST here — it writes the headers and the body in two
``send`` calls and merges settings per request — so the sender's process, not the
backend, became the limit. ``http.client`` writes a request in one ``send``. The pool only
adds what it lacks: reuse of idle connections across threads, a TLS context built from
the transport's ``verify``/``cert``, and one retry on a fresh connection when a kept-alive
one turns out closed (safe: delivery is at-least-once and the backend de-duplicates).
:class:`provlink.delivery.http_poster.HttpPoster` uses it only where ``requests`` would
add nothing: no proxy, no user-supplied session or adapter, no urllib3 retry policy.
"""

from __future__ import annotations

import http.client
import queue
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class ReadTimedOut(TimeoutError):
    """Connected, but no (complete) answer in time: the backend choked on this request."""


@dataclass(frozen=True, slots=True)
class Reply:
    """Status and body of one HTTP response."""

    status: int
    text: str


def tls_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
    """The TLS context ``requests`` would use for ``verify`` and ``cert``."""
    import certifi  # requests' own CA bundle (requests.certs.where)

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        bundle = verify if isinstance(verify, str) else certifi.where()
        context = (ssl.create_default_context(capath=bundle) if Path(bundle).is_dir()
                   else ssl.create_default_context(cafile=bundle))
    if isinstance(cert, tuple):
        context.load_cert_chain(cert[0], cert[1])
    elif cert:
        context.load_cert_chain(cert)
    return context


class ConnectionPool:
    """Keep-alive connections to the origin of ``url``; safe to use from many threads."""

    def __init__(self, url: str, *, timeout: float, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._timeout = timeout
        self._context = context
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                               context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def post(self, target: str, data: bytes, headers: dict[str, str],
             timeout: float | None = None) -> Reply:
        """POST ``data`` to ``target`` (path and query); connection errors raise OSError or
        ``http.client.HTTPException``."""
        wait = timeout or self._timeout
        try:
            conn, reused = self._idle.get_nowait(), True
        except queue.Empty:
            conn, reused = self._connect(wait), False
        conn.timeout = wait
        if conn.sock is not None:
            conn.sock.settimeout(wait)
        try:
            return self._finish(conn, *self._exchange(conn, target, data, headers))
        except (ConnectionError, http.client.BadStatusLine):
            if not reused:
                raise
        # a kept-alive connection the server closed while idle: once more on a fresh one
        conn = self._connect(wait)
        return self._finish(conn, *self._exchange(conn, target, data, headers))

    def _finish(self, conn: http.client.HTTPConnection, reply: Reply, keep: bool) -> Reply:
        if keep:
            self._idle.put(conn)
        else:
            conn.close()
        return reply

    @staticmethod
    def _exchange(conn: http.client.HTTPConnection, target: str, data: bytes,
                  headers: dict[str, str]) -> tuple[Reply, bool]:
        try:
            if conn.sock is None:
                conn.connect()  # refused, unreachable, connect timeout, TLS: raised as they are
        except BaseException:
            conn.close()
            raise
        try:
            _cork(conn, True)
            conn.request("POST", target, body=data, headers=headers)
            _cork(conn, False)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError as exc:
            conn.close()
            raise ReadTimedOut(f"no answer within {conn.timeout} s") from exc
        except BaseException:
            conn.close()
            raise
        return Reply(response.status, body.decode("utf-8", "replace")), not response.will_close

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _cork(conn: http.client.HTTPConnection, on: bool) -> None:
    """Hold the headers until the body is written (Linux ``TCP_CORK``): ``http.client``
    writes a body over 2,920 bytes in a second ``send``, and the receiver would wake twice."""
    cork = getattr(socket, "TCP_CORK", None)
    if cork is not None and conn.sock is not None:
        conn.sock.setsockopt(socket.IPPROTO_TCP, cork, 1 if on else 0)
