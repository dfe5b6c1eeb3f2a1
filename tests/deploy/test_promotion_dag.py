"""The DAG's side of promotion: a candidate the gate rejects (``jobs/promote.py`` exit 3, through a
real spark-submit) marks ``promote`` skipped — not failed, not retried — and posts one
``candidate not promoted`` alert with the decision's reason to the ``catalog2vec_alerts`` webhook (a
real HTTP server on loopback); ``resolve_model`` then runs on the champion (trigger rule)."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import airflow_env
from tests.deploy.test_dag import load_dag_module


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", received
    finally:
        server.shutdown()


def _candidate(lakehouse: Path, version: str, created_at: str, decision: dict[str, Any] | None) -> None:
    card = lakehouse / "models" / version / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"model_version": version, "created_at": created_at}))
    if decision is not None:
        record = lakehouse / "reports" / version / "promotion.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps(decision))


@pytest.mark.slow
def test_a_rejected_candidate_is_skipped_alerted_and_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    from airflow.sdk import TriggerRule
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    url, received = webhook
    lakehouse = tmp_path / "lakehouse"
    _candidate(lakehouse, "champ-1", "2026-01-01T00:00:00+00:00", None)
    reason = "tag_recall@5 0.1200 < champion 0.4100 + min_delta 0.0000"
    _candidate(lakehouse, "worse-2", "2026-01-08T00:00:00+00:00",
               {"candidate": "worse-2", "champion": "champ-1", "passed": False, "promoted": False, "reason": reason})
    (lakehouse / "models" / "LATEST").write_text("champ-1\n")
    for key, value in airflow_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CATALOG2VEC_LAKEHOUSE", str(lakehouse))
    monkeypatch.setenv("AIRFLOW_CONN_CATALOG2VEC_ALERTS",
                       json.dumps({"conn_type": "http", "extra": {"webhook_url": url}}))
    mod = load_dag_module("catalog2vec_dag_promotion")
    assert mod.dag.get_task("resolve_model").trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS

    # the gate's exit code, through the DAG's own promote operator and a real spark-submit
    rejected = tmp_path / "rejected.py"
    rejected.write_text("import sys\nprint('[promote] NOT PROMOTED', file=sys.stderr)\nsys.exit(3)\n")
    task = copy.copy(mod.dag.get_task("promote"))
    task.outlets, task.application, task.py_files, task.application_args = [], str(rejected), None, []
    with pytest.raises(AirflowSkipException, match=r"candidate not promoted: tag_recall@5 0\.1200 < champion"):
        task.execute({"params": {}, "run_id": "scheduled__2026-01-08"})
    (alert,) = received
    assert alert["kind"] == "candidate not promoted" and alert["task_id"] == "promote"
    assert alert["candidate"] == "worse-2" and alert["champion"] == "champ-1" and alert["error"] == reason
    assert alert["text"].startswith("[catalog2vec] candidate not promoted: catalog2vec.promote run scheduled__2026-01-08")
    assert (lakehouse / "models" / "LATEST").read_text() == "champ-1\n"  # the DAG side moves nothing

    # exit 2 is still a user error (failed for good), and exit 3 of any other task is no rejection
    received.clear()
    rejected.write_text("import sys\nsys.exit(2)\n")
    with pytest.raises(AirflowFailException, match=r"user error \(exit 2\)"):
        task.execute({"params": {}})
    rejected.write_text("import sys\nsys.exit(3)\n")
    other = copy.copy(mod.dag.get_task("evaluate"))
    other.outlets, other.application, other.py_files, other.application_args = [], str(rejected), None, []
    with pytest.raises(Exception) as exc:
        other.execute({"params": {}})
    assert not isinstance(exc.value, AirflowSkipException) and received == []
