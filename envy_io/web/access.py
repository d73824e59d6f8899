"""Who may use the web monitor: loopback by default, a token for any other address.

The page can pause, cancel and requeue jobs and send commands to agents, so
it is as powerful as the shell of the user who started it. Three guards:

* Listening on a loopback address (the default), only programs on this
  machine can connect. The ``Host`` header must name that loopback address,
  so a web page elsewhere cannot reach us by DNS rebinding.
* Listening on any other address needs a token, generated at start and
  printed in the URL. It is accepted as the ``X-Envy-Token`` header, the
  ``envy_token`` cookie, or the ``token`` query parameter (which sets the
  cookie, so the rest of the session needs nothing in the URL).
* Every request that changes something (POST) must carry the
  ``X-Envy-Request`` header, which a cross-site form or image cannot set,
  and if it has an ``Origin`` that origin must be our own.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

TOKEN_HEADER = "x-envy-token"
TOKEN_COOKIE = "envy_token"
TOKEN_QUERY = "token"
REQUEST_HEADER = "x-envy-request"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class AccessRule:
    """``token`` None: loopback only, checked by Host header; else the token is required."""

    token: str | None
    loopback_names: frozenset[str] = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})

    @classmethod
    def for_listen(cls, host: str, token: str | None = None) -> AccessRule:
        if is_loopback(host):
            return cls(None)
        return cls(token or new_token())

    def host_allowed(self, host_header: str) -> bool:
        if self.token is not None:
            return True  # reachable under any name; the token decides
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return name.lower() in self.loopback_names

    def token_given(self, scope: Scope) -> tuple[bool, bool]:
        """(token accepted, it came in the query: set the cookie)."""
        if self.token is None:
            return True, False
        headers = _headers(scope)
        candidates = [headers.get(TOKEN_HEADER, "")]
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
            pass
        if TOKEN_COOKIE in cookie:
            candidates.append(cookie[TOKEN_COOKIE].value)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(TOKEN_QUERY, [""])[0]
        for value in candidates:
            if value and secrets.compare_digest(value.encode(), self.token.encode()):
                return True, False
        if query and secrets.compare_digest(query.encode(), self.token.encode()):
            return True, True
        return False, False


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class AccessMiddleware:
    """ASGI middleware applying an :class:`AccessRule` to every HTTP request (streams included)."""

    def __init__(self, app: ASGIApp, rule: AccessRule) -> None:
        self.app = app
        self.rule = rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        if not self.rule.host_allowed(host):
            await _refuse(send, 421, f"this monitor answers only as 127.0.0.1 or localhost, not {host!r}")
            return
        ok, from_query = self.rule.token_given(scope)
        if not ok:
            await _refuse(send, 401, "token required: open the address envy-io web printed (it ends in ?token=...)")
            return
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if headers.get(REQUEST_HEADER) != "1" or (origin and origin.split("://", 1)[-1] != host):
                await _refuse(send, 403, "changes are accepted only from the monitor's own page")
                return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{TOKEN_COOKIE}={self.rule.token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _refuse(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
