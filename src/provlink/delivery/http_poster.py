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
``~/.netrc`` read per POST).
"""

from __future__ import annotations

import gzip
import os
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.util
from requests.adapters import HTTPAdapter

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
        if config.session is not None:
            self.session = config.session
        else:
            self.session = requests.Session()
            self.session.trust_env = False
            self.session.proxies.update(requests.utils.get_environ_proxies(self.url))
            adapter = config.adapter or HTTPAdapter(
                pool_connections=2, pool_maxsize=max(pool_size, 1),
                # a status that exhausts the retries comes back as itself, to be classified
                max_retries=urllib3.util.Retry(**{**config.retry, "raise_on_status": False}))
            self.session.mount(transport.url, adapter)

    def post(self, url: str, body: str, *, timeout: float | None = None) -> requests.Response:
        """POST ``body`` (JSON text); connection errors raise, HTTP errors are returned."""
        headers = dict(self._headers)
        if bearer := self._auth.get_bearer():
            headers["Authorization"] = bearer
        data: bytes = body.encode("utf-8")
        if self.gzip:
            data = gzip.compress(data, compresslevel=3)  # as openlineage-python does
        kwargs: dict[str, Any] = {"data": data, "headers": headers, "verify": self.verify,
                                  "timeout": timeout or self.timeout}
        if self.cert is not None:
            kwargs["cert"] = self.cert
            kwargs["allow_redirects"] = False
        response = self.session.post(url, **kwargs)
        if self.cert is not None and response.is_redirect:
            response.close()
            raise DeliveryError(f"{response.status_code} redirect refused: a client "
                                "certificate is configured", permanent=False, unreachable=True)
        return response

    def send_one(self, payload: str) -> Outcome:
        """One event to the OpenLineage endpoint (what a real Marquez accepts)."""
        try:
            response = self.post(self.url, payload)
            response.close()
        except Exception as exc:  # noqa: BLE001 - requests and TLS raise anything
            return Outcome.failed(classify_exception(exc))
        if response.status_code < 300:
            return OK
        return Outcome.failed(classify_status(response.status_code, response.text))

    def close(self) -> None:
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
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.RetryError)):
        return DeliveryError(text, permanent=False)  # the backend choked on this event
    if isinstance(exc, (requests.ConnectionError, ConnectionError, TimeoutError,
                        requests.Timeout, OSError)):
        return DeliveryError(text, permanent=False, unreachable=True)
    if isinstance(exc, (ValueError, TypeError)):
        return DeliveryError(text, permanent=True)
    return DeliveryError(text, permanent=False)
