"""Secrets never leave the process: what is logged, checkpointed, put in a card, a run record, an
MLflow run or an alert goes through :func:`redact` first.

* a mapping key that names a secret (``secret``, ``token``, ``password``, ``credential``, an
  ``…_key``/``key`` such as ``access_key``/``api_key``) keeps its key, its value becomes ``***``;
* a string keeps its shape with the secret parts masked: URL user-info
  (``https://user:pass@host`` → ``https://***@host``) and secret-looking query parameters
  (``?token=…``, ``&X-Amz-Signature=…``).

>>> redact({"mlflow": {"tracking_uri": "https://bob:pw@mlflow.example/x?token=abc&q=1"}, "secret_key": "s"})
{'mlflow': {'tracking_uri': 'https://***@mlflow.example/x?token=***&q=1'}, 'secret_key': '***'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
# a key segment at the end (``session_token``, ``secret_key``, ``api-key``) or a leading ``secret``/``password``
_SECRET_KEY = re.compile(r"((^|[_.-])(secret|token|passw(or)?d|pwd|credentials?|key|apikey)$)|^(secret|passw(or)?d)",
                         re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s?#]+@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&](?:[A-Za-z0-9_.-]*(?:token|secret|password|passwd|signature|sig|key|credential)[A-Za-z0-9_.-]*))"
    r"=[^&#\s]*",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``secret_key``, ``session_token``, ``password`` …)."""
    return bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    """``text`` with URL user-info and secret-looking query parameters masked."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('name')}={MASK}", text)


def redact(obj: Any) -> Any:
    """A copy of ``obj`` (mappings, lists, tuples, strings, scalars) safe to log or persist."""
    if isinstance(obj, Mapping):
        # a secret is text: a number under a ``…_key`` name (a count of duplicate_key rejects) is data
        return {k: (MASK if isinstance(k, str) and is_secret_key(k) and isinstance(v, (str, bytes)) and v
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


__all__ = ["MASK", "is_secret_key", "redact", "redact_text"]
