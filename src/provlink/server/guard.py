"""Request guards in front of the app: allowed ``Host`` names, no cross-site writes, and the
page's security headers.

Without API keys the server listens on loopback only, but a browser on the same machine
can still be made to reach it: a page on any site can POST a ``text/plain`` "simple
request", and DNS rebinding points an attacker's name at 127.0.0.1 so that its script
reads and deletes. So, with no keys, a request must name a loopback host (or one
configured with ``--allowed-host`` / ``allowed_hosts``), a write that carries a body must
be ``application/json`` (which a cross-site page cannot send without a CORS preflight this
server never grants), and a write whose ``Origin`` / ``Sec-Fetch-Site`` says cross-site is
refused. Bodyless writes without a ``Content-Type`` stay allowed: Marquez's own Python client
tags datasets that way. With keys the bearer token already stops both attacks; the host
list is then enforced only when one is configured.

Written as plain ASGI (not Starlette's ``TrustedHostMiddleware``) because that one cannot
parse IPv6 hosts (``[::1]:5000``) and knows nothing of origins or fetch metadata.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# the page loads only its own script, style and API: nothing inline, no frames, no plugins
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        (
            b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
            b" connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def host_name(value: str) -> str | None:
    """The host part of a ``Host`` header or URL authority, lower-cased; ``None`` if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1 :] and not value[end + 1 :].startswith(":")):
            return None
        return value[1:end]
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Loopback names always; configured names exactly, or ``.example.com`` for subdomains."""

    def __init__(self, allowed: Iterable[str]) -> None:
        names = [a.strip().lower().rstrip(".") for a in allowed if a.strip()]
        self.exact = frozenset(n.strip("[]") for n in names if not n.startswith("."))
        self.suffixes = tuple(n for n in names if n.startswith("."))

    def __bool__(self) -> bool:
        return bool(self.exact or self.suffixes)

    def allows(self, name: str | None) -> bool:
        if not name:
            return False
        return (
            is_loopback_name(name)
            or name in self.exact
            or any(name.endswith(s) or name == s[1:] for s in self.suffixes)
        )


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _refusal(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"code": status, "message": message}).encode()


class Guard:
    """ASGI middleware applying the policy above, and adding :data:`PAGE_HEADERS` to answers."""

    def __init__(self, app: ASGIApp, *, hosts: HostPolicy, open_api: bool) -> None:
        self.app, self.hosts, self.open_api = app, hosts, open_api

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # e.g. ``state``: the guarded app's attributes

    def check(self, scope: Scope) -> tuple[int, bytes] | None:
        """Why this request is refused (status, body), or ``None`` when it may proceed."""
        headers = _headers(scope)
        if self.open_api or self.hosts:
            name = host_name(headers.get("host", ""))
            if not self.hosts.allows(name):
                return _refusal(
                    400,
                    f"Host {headers.get('host', '')!r} is not served here: use a loopback address"
                    " or start provlink serve with --allowed-host NAME (allowed_hosts setting)",
                )
        if not self.open_api or scope["method"] in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site", "").lower()
        origin = headers.get("origin")
        if site in ("cross-site", "same-site") or (
            origin is not None and not self.hosts.allows(host_name(urlsplit(origin).netloc))
        ):
            return _refusal(403, "cross-site writes are refused; send writes from a client")
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        has_body = headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in headers
        )
        if (media or has_body) and media != "application/json":
            return _refusal(415, "writes must be sent as Content-Type: application/json")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.check(scope)
        if refused is not None:
            status, body = refused
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *PAGE_HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in PAGE_HEADERS if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
