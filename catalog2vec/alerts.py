"""Operational alerts: one JSON message per event, always logged, and POSTed to a webhook (Slack,
Teams, PagerDuty Events or any HTTP endpoint taking JSON) when one is configured.

The Airflow DAG uses it for its task-failure notifier and its run deadline; the webhook URL comes
from an Airflow connection (default id ``catalog2vec_alerts``: its ``extra`` ``webhook_url``, else
the connection's own ``http(s)://host:port/path``). Without that connection the alert is only
logged. An alert that cannot be delivered is logged as a warning and never raises: a broken
webhook must not hide the failure it reports.

The webhook URL holds a token: it is never logged (only its host is), it must be ``https://``
(plain ``http://`` only on a loopback address), and a redirect is not followed. The payload goes
through :func:`catalog2vec.redact.redact` (no credential in an error message reaches a chat room).

Example (a connection from the environment, as a platform team would set it)::

    export AIRFLOW_CONN_CATALOG2VEC_ALERTS='{"conn_type": "http", "extra": {"webhook_url": "https://hooks.example/T0/B0"}}'
"""

from __future__ import annotations

import ipaddress
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from catalog2vec.redact import redact

log = logging.getLogger("catalog2vec.alerts")

DEFAULT_CONN_ID = "catalog2vec_alerts"


def build_message(kind: str, dag_id: str, run_id: str = "", task_id: str = "", **fields: Any) -> dict[str, Any]:
    """The alert payload: ``text`` (one human line, what Slack-style hooks display) plus the fields."""
    where = ".".join(p for p in (dag_id, task_id) if p)
    text = f"[catalog2vec] {kind}: {where}" + (f" run {run_id}" if run_id else "")
    if fields.get("error"):
        text += f" — {fields['error']}"
    return {"text": text, "kind": kind, "dag_id": dag_id, "run_id": run_id, "task_id": task_id,
            "sent_at": datetime.now(UTC).isoformat(), **{k: v for k, v in fields.items() if v is not None}}


class WebhookRefusedError(ValueError):
    """A webhook URL that alerts are never sent to (scheme, host or shape)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> str:
    """``url`` if alerts may be POSTed to it: ``https://host/...``, or ``http://`` to a loopback host;
    else :class:`WebhookRefusedError` (naming the scheme and host only, never the token in the path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise WebhookRefusedError("webhook URL is malformed") from None
    if not host or parts.username or parts.password:
        raise WebhookRefusedError(f"webhook URL must name a host and no user-info (scheme {parts.scheme!r})")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return url
    raise WebhookRefusedError(f"webhook {parts.scheme}://{host}/… refused: alerts go to https:// "
                              "(plain http:// only on a loopback address)")


def webhook_host(url: str) -> str:
    """What may be logged about a webhook: its host (the path holds the token)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as an HTTPError: the alert is not re-sent elsewhere


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_webhook(url: str, payload: Mapping[str, Any], timeout: float = 10.0) -> int:
    """POST ``payload`` as JSON to ``url`` (checked by :func:`check_webhook_url`; redirects are not
    followed); returns the HTTP status (raises on a transport error)."""
    req = urllib.request.Request(check_webhook_url(url), data=json.dumps(payload, default=str).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx: a status, not a transport error
        return int(exc.code)


def send(payload: Mapping[str, Any], webhook_url: str | None) -> bool:
    """Log the alert and deliver it to ``webhook_url`` if given; True when delivered. Never raises."""
    payload = redact(dict(payload))
    log.error("%s", payload.get("text", payload))
    if not webhook_url:
        return False
    host = webhook_host(webhook_url)
    try:
        status = post_webhook(webhook_url, payload)
    except WebhookRefusedError as exc:
        log.warning("alert not delivered: %s", exc)
        return False
    except Exception as exc:  # a broken webhook must not mask the failure being reported
        log.warning("alert not delivered to the webhook at %s: %s", host, type(exc).__name__)
        return False
    if not 200 <= status < 300:
        log.warning("alert webhook at %s answered HTTP %s", host, status)
        return False
    return True


def webhook_url_from_connection(conn_id: str = DEFAULT_CONN_ID) -> str | None:
    """The webhook URL of an Airflow connection (``extra.webhook_url``, else ``scheme://host[:port]/path``);
    ``None`` when Airflow is absent or the connection is not defined."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException: no such connection -> log only
        return None
    extra = conn.extra_dejson or {}
    if extra.get("webhook_url"):
        return str(extra["webhook_url"])
    if not conn.host:
        return None
    scheme = "https" if (conn.conn_type or "").lower() == "https" or conn.port == 443 else "http"
    host = conn.host if "://" not in conn.host else conn.host.split("://", 1)[1]
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
    return f"{scheme}://{host}{port}{path}"


def deadline_missed(context: Mapping[str, Any] | None = None, *, dag_id: str = "",
                    deadline_hours: float | None = None, conn_id: str = DEFAULT_CONN_ID) -> bool:
    """Deadline-alert callback (``airflow.sdk.SyncCallback("catalog2vec.alerts.deadline_missed")``):
    the run has not finished within its deadline."""
    ctx = dict(context or {})
    run = ctx.get("dag_run")
    run_id = str(getattr(run, "run_id", "") or ctx.get("run_id", "") or "")
    payload = build_message("deadline missed", dag_id or str(ctx.get("dag_id", "")), run_id,
                            deadline_hours=deadline_hours)
    return send(payload, webhook_url_from_connection(conn_id))
