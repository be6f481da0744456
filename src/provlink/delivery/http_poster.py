"""POSTs spooled events over pooled connections, configured as the user's HTTP transport is.

openlineage-python's ``HttpTransport.emit`` takes an event object, serialises it again and
opens one connection pool of default size; the sender instead posts the spooled JSON text
as it is (the bytes the ledger hashed are the bytes sent, and no second serialisation),
from several threads, for both the per-event endpoint and ``provlink serve``'s batch
endpoint. So it reads the transport's public settings and applies every one of them: URL
and endpoint, timeout, ``verify`` and a CA bundle (``sslContext.caCertPath``), the client
certificate (``sslContext.clientCertPath``/``clientKeyPath``; redirects are then refused,
as the transport does), ``compression: gzip``, auth token provider, custom headers, the
retry policy and a user-supplied ``session`` or ``adapter``. Environment proxies and
``REQUESTS_CA_BUNDLE`` are resolved once, not per request (requests' ``trust_env`` costs a
``~/.netrc`` read per POST). Where ``requests`` would add nothing (no proxy, session,
adapter or urllib3 retry policy) the requests go through :mod:`provlink.delivery.http_pool`,
several times cheaper per POST.
"""

from __future__ import annotations

import gzip
import http.client
import os
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.util
from requests.adapters import HTTPAdapter

from provlink.delivery.http_pool import ConnectionPool, ReadTimedOut, Reply, tls_context
from provlink.delivery.outcome import OK, Outcome
from provlink.errors import DeliveryError

UNAVAILABLE = frozenset({401, 403, 429, 502, 503, 504})  # the backend never judged the event


class HttpPoster:
    """One pooled ``requests.Session`` posting to an ``HttpTransport``'s endpoint."""

    def __init__(self, transport: Any, *, pool_size: int) -> None:
        from openlineage.client.transport.http import HttpCompression

        config = transport.config
        self.url = urljoin(transport.url, transport.endpoint)
        self.batch_url = urljoin(transport.url, transport.endpoint.rstrip("/") + "/batch")
        self.timeout = float(transport.timeout)
        self.cert = transport.cert
        self.verify: bool | str = transport.verify
        if self.verify is True:
            self.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                           or os.environ.get("CURL_CA_BUNDLE") or True)
        self.gzip = transport.compression == HttpCompression.GZIP
        self._auth = config.auth
        self._headers = {"Content-Type": "application/json", **config.custom_headers}
        if self.gzip:
            self._headers["Content-Encoding"] = "gzip"
        proxies = requests.utils.get_environ_proxies(self.url)
        self._pool: ConnectionPool | None = None
        if (config.session is None and config.adapter is None and not proxies
                and not config.retry.get("total")):
            self._pool = ConnectionPool(self.url, timeout=self.timeout,
                                        context=tls_context(self.verify, self.cert)
                                        if self.url.startswith("https:") else None)
        if config.session is not None:
            self.session = config.session
        else:
            self.session = requests.Session()
            self.session.trust_env = False
            self.session.proxies.update(proxies)
            adapter = config.adapter or HTTPAdapter(
                pool_connections=2, pool_maxsize=max(pool_size, 1),
                # a status that exhausts the retries comes back as itself, to be classified
                max_retries=urllib3.util.Retry(**{**config.retry, "raise_on_status": False}))
            self.session.mount(transport.url, adapter)

    def post(self, url: str, body: str, *, timeout: float | None = None) -> Reply:
        """POST ``body`` (JSON text); connection errors raise, HTTP errors are returned."""
        headers = dict(self._headers)
        if bearer := self._auth.get_bearer():
            headers["Authorization"] = bearer
        data: bytes = body.encode("utf-8")
        if self.gzip:
            data = gzip.compress(data, compresslevel=3)  # as openlineage-python does
        if self._pool is not None:  # never follows redirects
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            return self._pool.post(target or "/", data, headers, timeout)
        kwargs: dict[str, Any] = {"data": data, "headers": headers, "verify": self.verify,
                                  "timeout": timeout or self.timeout}
        if self.cert is not None:
            kwargs["cert"] = self.cert
            kwargs["allow_redirects"] = False
        response = self.session.post(url, **kwargs)
        response.close()
        if self.cert is not None and response.is_redirect:
            raise DeliveryError(f"{response.status_code} redirect refused: a client "
                                "certificate is configured", permanent=False, unreachable=True)
        return Reply(response.status_code, response.text)

    def send_one(self, payload: str) -> Outcome:
        """One event to the OpenLineage endpoint (what a real Marquez accepts)."""
        try:
            reply = self.post(self.url, payload)
        except Exception as exc:  # noqa: BLE001 - requests and TLS raise anything
            return Outcome.failed(classify_exception(exc))
        if reply.status < 300:
            return OK
        return Outcome.failed(classify_status(reply.status, reply.text))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self.session.close()


def classify_status(status: int, body: str = "") -> DeliveryError:
    """A 4xx refuses this event (retrying cannot help), except the statuses that say the
    backend did not judge it (rate limit, auth, gateway); 5xx is transient."""
    message = f"{status} {(body or '')[:2000]}".strip()
    if status in UNAVAILABLE:
        return DeliveryError(message, permanent=False, status=status, unreachable=True)
    if 400 <= status < 500 and status != 408:
        return DeliveryError(message, permanent=True, status=status)
    return DeliveryError(message, permanent=False, status=status)


def classify_exception(exc: BaseException) -> DeliveryError:
    """Why an emit raised: an HTTP status, an outage, a malformed event, or unknown."""
    if isinstance(exc, DeliveryError):
        return exc
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return classify_status(status, getattr(response, "text", "") or "")
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.RetryError,
                        ReadTimedOut)):
        return DeliveryError(text, permanent=False)  # the backend choked on this event
    if isinstance(exc, (requests.ConnectionError, ConnectionError, TimeoutError,
                        requests.Timeout, OSError, http.client.HTTPException)):
        return DeliveryError(text, permanent=False, unreachable=True)
    if isinstance(exc, (ValueError, TypeError)):
        return DeliveryError(text, permanent=True)
    return DeliveryError(text, permanent=False)
