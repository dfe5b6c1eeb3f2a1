"""Alert webhooks (catalog2vec.alerts) against real HTTP servers on loopback: https or loopback http
only, no redirect followed, the token in the URL never logged, secrets redacted from the payload."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from catalog2vec import alerts


class _Server:
    def __init__(self, status: int = 204, location: str = "") -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks/T0/TOKEN-SECRET"


@pytest.fixture()
def servers() -> Iterator[list[_Server]]:
    made: list[_Server] = []
    yield made
    for s in made:
        s.httpd.shutdown()


def test_loopback_http_webhook_gets_the_redacted_alert(servers: list[_Server], caplog: pytest.LogCaptureFixture) -> None:
    hook = _Server()
    servers.append(hook)
    payload = alerts.build_message("task failed", "catalog2vec", "r1", "train",
                                   error="cannot reach https://alice:PASSWORD-X@mlflow.example/")
    with caplog.at_level(logging.INFO, logger="catalog2vec.alerts"):
        assert alerts.send(payload, hook.url) is True
    assert len(hook.received) == 1 and "PASSWORD-X" not in json.dumps(hook.received[0])
    assert "TOKEN-SECRET" not in caplog.text and "PASSWORD-X" not in caplog.text


def test_a_redirect_is_not_followed(servers: list[_Server], caplog: pytest.LogCaptureFixture) -> None:
    target = _Server()
    redirector = _Server(status=307, location=target.url)
    servers += [target, redirector]
    with caplog.at_level(logging.INFO, logger="catalog2vec.alerts"):
        assert alerts.send(alerts.build_message("task failed", "d"), redirector.url) is False
    assert len(redirector.received) == 1 and target.received == []
    assert "HTTP 307" in caplog.text and "TOKEN-SECRET" not in caplog.text


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://hooks.example/T0/TOKEN-SECRET", "ftp://127.0.0.1/x",
                                 "https://user:TOKEN-SECRET@hooks.example/x", "http://10.0.0.1/TOKEN-SECRET",
                                 "not a url", "https:///TOKEN-SECRET"])
def test_refused_webhooks_send_nothing_and_log_no_token(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(alerts.WebhookRefusedError):
        alerts.check_webhook_url(url)
    with caplog.at_level(logging.INFO, logger="catalog2vec.alerts"):
        assert alerts.send(alerts.build_message("task failed", "d"), url) is False
    assert "TOKEN-SECRET" not in caplog.text
    assert "alert not delivered" in caplog.text


def test_https_and_loopback_http_are_accepted() -> None:
    for url in ("https://hooks.example/T0/x", "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x"):
        assert alerts.check_webhook_url(url) == url
