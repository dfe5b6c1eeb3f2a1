"""The neighbour browser's request guard: one pure ASGI middleware in front of the routes.

The browser has no authentication and binds 127.0.0.1, so what it must stop is a *web page* in the
operator's own browser reaching it (cross-site form posts, DNS rebinding; ``TrustedHostMiddleware``
checks the Host) and a request that exhausts it (a body of any size). :class:`RequestGuard`:

* refuses a state-changing request (POST, ...) whose ``Sec-Fetch-Site`` is not ``same-origin`` /
  ``none`` or whose ``Origin`` is not this server (403);
* refuses a body whose ``Content-Length`` is over ``max_body`` before reading a byte of it, and
  cuts off a body without one (chunked) as soon as ``max_body`` bytes have arrived (413);
* adds the security headers (:data:`SECURITY_HEADERS`) to every response it passes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# no script at all; styles inline (one <style> block, a few style attributes); pictures from the
# server itself or the upload preview (a data: URI); forms post only to the server itself
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # not no-referrer: with it Chromium sends "Origin: null" on a form POST
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # none: typed in the address bar, a bookmark


class _BodyTooLarge(Exception):
    """Raised from ``receive`` to stop the application reading a body over the limit."""


def cross_site_reason(headers: Headers) -> str | None:
    """Why a state-changing request comes from another site, or ``None`` if it does not.

    ``Sec-Fetch-Site`` (every current browser sends it) must be ``same-origin`` or ``none``
    (``same-site`` is refused: another port of localhost is the same site); an ``Origin``, when
    present, must name this server (its host:port equal to the Host header). A request with
    neither (curl, a script) is not a browser's cross-site request and passes.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in SAME_ORIGIN_FETCH:
        return f"Sec-Fetch-Site is {site[:40]!r}"
    origin = (headers.get("origin") or "").strip()
    if origin and (origin.lower() == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower()):
        return f"Origin {origin[:100]!r} is not this server"
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Pure ASGI middleware: cross-site refusal, body cap, security headers (see the module doc)."""

    def __init__(self, app: ASGIApp, max_body: int, headers: Mapping[str, str] = SECURITY_HEADERS) -> None:
        if max_body < 1:
            raise ValueError(f"max_body must be >= 1, got {max_body}")
        self.app = app
        self.max_body = int(max_body)
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    def _with_headers(self, send: Send) -> Send:
        names = {k for k, _ in self.headers}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        return send_with_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(send)
        headers = Headers(scope=scope)
        if scope["method"] not in SAFE_METHODS:
            why = cross_site_reason(headers)
            if why is not None:
                await _plain(send, 403, f"cross-site request refused: {why}")
                return
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _plain(send, 400, "invalid Content-Length")
                return
            if int(declared) > self.max_body:
                await _plain(send, 413, f"request body of {int(declared)} bytes is over the limit of {self.max_body}")
                return

        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    exceeded = True
                    raise _BodyTooLarge(f"over {self.max_body} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the application's answer to a cut-off body is replaced by the 413 below
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _plain(send, 413, f"request body is over the limit of {self.max_body} bytes")


__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "RequestGuard", "cross_site_reason"]
