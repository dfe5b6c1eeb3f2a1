"""The shared job runner (jobs/_common.run_job) and Delta conflict retry, without Spark: only the
project's UserError is 'one line, exit 2'; every run leaves a JSON run record; an unusable
lakehouse is refused before the job body runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from _common import run_job

from catalog2vec.config import load_config
from catalog2vec.errors import InvalidInput, MissingInput, UserError
from catalog2vec.lakehouse.io import MissingTableError, is_conflict, with_conflict_retry
from catalog2vec.storage import StorageError


@dataclass(frozen=True)
class Counts:
    read: int
    written: int


def _cfg(root: Path):  # type: ignore[no-untyped-def]
    return load_config(None, [], lakehouse=str(root), run_id="r1")


def test_success_writes_the_run_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path / "lh")
    assert run_job("demo", lambda: Counts(3, 2), cfg) == 0
    rec = json.loads((tmp_path / "lh" / "_runs" / "r1" / "demo.json").read_text())
    assert rec["status"] == "succeeded" and rec["exit_code"] == 0 and rec["counts"] == {"read": 3, "written": 2}
    assert rec["job"] == "demo" and rec["run_id"] == "r1" and rec["wall_s"] >= 0 and rec["reasons"] == {}


def test_user_error_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path / "lh")

    def fail() -> None:
        raise MissingTableError("table silver.vocab does not exist; run jobs/build_vocab.py first")

    assert run_job("demo", fail, cfg) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "run jobs/build_vocab.py first" in err and "Traceback" not in err
    rec = json.loads((tmp_path / "lh" / "_runs" / "r1" / "demo.json").read_text())
    assert rec["status"] == "failed" and rec["exit_code"] == 2 and rec["error"]["type"] == "MissingTableError"


@pytest.mark.parametrize("exc", [ValueError("a bug"), FileNotFoundError("a bug"), KeyError("x"), RuntimeError("x")])
def test_other_exceptions_keep_their_traceback(tmp_path: Path, exc: Exception) -> None:
    cfg = _cfg(tmp_path / "lh")

    def fail() -> None:
        raise exc

    with pytest.raises(type(exc)):
        run_job("demo", fail, cfg)
    rec = json.loads((tmp_path / "lh" / "_runs" / "r1" / "demo.json").read_text())
    assert rec["status"] == "failed" and rec["exit_code"] == 1


def test_lakehouse_that_is_a_file_fails_before_the_job_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lh = tmp_path / "lakehouse"
    lh.write_text("not a directory")
    ran = []
    assert run_job("demo", lambda: ran.append(1), _cfg(lh)) == 2
    assert not ran and "is a file, not a directory" in capsys.readouterr().err
    assert lh.read_text() == "not a directory"


def test_error_types() -> None:
    assert issubclass(StorageError, UserError) and issubclass(StorageError, OSError)
    assert issubclass(InvalidInput, ValueError) and issubclass(MissingInput, FileNotFoundError)
    assert not issubclass(ValueError, UserError)


class ConcurrentAppendException(Exception):
    """Stands in for delta's exception class name (py4j passes it as text)."""


def test_conflict_retry_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentAppendException("Files were added to the root of the table by a concurrent update")
        return "ok"

    assert with_conflict_retry("merge", flaky) == "ok" and len(calls) == 3
    assert is_conflict(RuntimeError("[DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION] cannot create"))

    def always() -> None:
        raise ConcurrentAppendException("again")

    with pytest.raises(ConcurrentAppendException):
        with_conflict_retry("merge", always, attempts=4)

    def other() -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    calls.clear()
    with pytest.raises(ValueError):
        with_conflict_retry("merge", other)
    assert len(calls) == 1


def test_run_record_counts_the_retries_the_job_made(tmp_path: Path) -> None:
    from catalog2vec.lakehouse.io import CONFLICTS

    cfg = _cfg(tmp_path / "lh")
    calls: list[int] = []

    def commit() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"{CONFLICTS[0]}: a concurrent writer committed first")
        return 1

    assert run_job("demo", lambda: Counts(with_conflict_retry("merge into t", commit), 1), cfg) == 0
    rec = json.loads((tmp_path / "lh" / "_runs" / "r1" / "demo.json").read_text())
    assert rec["retries"] == {"delta_conflict": 1} and len(calls) == 2
