"""The browser's request guard on a tiny ASGI app (no lakehouse): cross-site refusal, the body cap with
and without Content-Length, the security headers; and the terminal escaping of ``catalog2vec similar``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.datastructures import Headers

from catalog2vec.serve.guard import SECURITY_HEADERS, RequestGuard, cross_site_reason

LIMIT = 1000


def _echo_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def echo(request: Request) -> PlainTextResponse:
        body = await request.body()
        return PlainTextResponse(f"{len(body)} bytes", headers={"x-frame-options": "SAMEORIGIN"})

    app = Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])
    return RequestGuard(app, max_body=LIMIT)


@pytest.fixture(scope="module")
def client() -> Any:
    from starlette.testclient import TestClient

    return TestClient(_echo_app(), base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),
    ({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8000"}, False),
    ({"sec-fetch-site": "none"}, False),
    ({"origin": "http://127.0.0.1:8000"}, False),
    ({"sec-fetch-site": "cross-site"}, True),
    ({"sec-fetch-site": "same-site"}, True),
    ({"origin": "null"}, True),
    ({"origin": "http://attacker.example"}, True),
    ({"origin": "http://127.0.0.1:8001"}, True),
    ({"origin": "http://127.0.0.1:8000.attacker.example"}, True),
])  # fmt: skip
def test_cross_site_reason(headers: dict[str, str], refused: bool) -> None:
    why = cross_site_reason(Headers({"host": "127.0.0.1:8000", **headers}))
    assert (why is not None) == refused, why


def test_cross_site_post_is_403_get_is_not(client: Any) -> None:
    r = client.post("/", content=b"x", headers={"origin": "http://attacker.example"})
    assert r.status_code == 403 and "cross-site request refused" in r.text
    assert client.get("/", headers={"origin": "http://attacker.example"}).status_code == 200
    assert client.post("/", content=b"x" * LIMIT).text == f"{LIMIT} bytes"


def test_body_over_the_limit_is_413_with_and_without_content_length(client: Any) -> None:
    r = client.post("/", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413 and "over the limit" in r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is streamed (counted as it arrives;
        for _ in range(50):           # tests/e2e/test_serve_security.py shows the rest is never sent)
            yield b"x" * 100

    r = client.post("/", content=chunks())
    assert r.status_code == 413
    assert client.post("/", headers={"content-length": "12x"}, content=b"x").status_code == 400


def test_security_headers_replace_the_apps_own(client: Any) -> None:
    for r in (client.get("/"), client.post("/", content=b"x" * (LIMIT + 1)),
              client.post("/", content=b"", headers={"origin": "null"})):
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get_list(name) == [value], (r.status_code, name)
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["content-security-policy"]


def test_terminal_safe_escapes_controls_and_keeps_text() -> None:
    from catalog2vec.cli import terminal_safe

    assert terminal_safe("Reebok Men Raceon – é 中") == "Reebok Men Raceon – é 中"
    assert terminal_safe("a\x1b]0;x\x07b\x1b[2J\x9b\x7f\u202ec\td\n") == "a\\x1b]0;x\\x07b\\x1b[2J\\x9b\\x7f\\u202ec\\td\\n"
