"""ingest_catalog under faults: two runs started together on one (fresh) lakehouse both succeed
with no duplicate and no lost item; a lakehouse that is a file is one clear error before any input
is read; a file with no readable record is one clear error (its records still quarantined)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ingest_catalog
import pytest

from catalog2vec.lakehouse import read_pandas
from catalog2vec.schemas import bronze

pytestmark = pytest.mark.spark


def _feed(path: Path, prefix: str, n: int) -> Path:
    rows = [f"{prefix}{i},Red cotton shirt {i},desc,2024-01-0{1 + i % 9}T00:00:00" for i in range(n)]
    shared = "shared1,Shared black belt,same row in both feeds,2024-01-01T00:00:00"
    path.write_text("item_id,title,description,crawled_at\n" + "\n".join([*rows, shared]) + "\n")
    return path


@pytest.mark.slow
def test_two_concurrent_ingests_both_succeed(spark: Any, lakehouse: Path, tmp_path: Path) -> None:
    a, b = _feed(tmp_path / "a.csv", "a", 40), _feed(tmp_path / "b.csv", "b", 40)
    barrier = threading.Barrier(2)
    rcs: dict[str, int] = {}

    def run(name: str, path: Path) -> None:
        barrier.wait()
        rcs[name] = ingest_catalog.main(["--input", str(path), "--format", "csv", "--lakehouse", str(lakehouse),
                                         "--source", name, "--run-id", f"run-{name}"])

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert rcs == {"a": 0, "b": 0}
    items = read_pandas(lakehouse, bronze.CATALOG_ITEMS)
    assert items.item_id.is_unique
    assert set(items.item_id) == {f"a{i}" for i in range(40)} | {f"b{i}" for i in range(40)} | {"shared1"}


def test_lakehouse_is_a_file_fails_before_reading_input(lakehouse: Path, tmp_path: Path, capsys: Any) -> None:
    lh = tmp_path / "lh-file"
    lh.write_text("x")
    rc = ingest_catalog.main(["--input", str(tmp_path / "does-not-exist.csv"), "--format", "csv", "--lakehouse", str(lh)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a file, not a directory" in err and "does-not-exist" not in err
    assert len(err.strip().splitlines()) == 1 and lh.read_text() == "x"


def test_no_readable_record_is_one_clear_error(spark: Any, lakehouse: Path, tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "all_bad.jsonl"
    bad.write_bytes(b'{"item_id": "1", "title": "x", "title": "y"}\n{broken\n[1, 2]\n\xff\xfe\n')
    rc = ingest_catalog.main(["--input", str(bad), "--format", "json", "--lakehouse", str(lakehouse), "--run-id", "r"])
    err = capsys.readouterr().err
    assert rc == 2 and "no readable record" in err and "Traceback" not in err
    q = read_pandas(lakehouse, bronze.QUARANTINE)
    assert sorted(q.reason) == ["duplicate_key", "invalid_utf8", "malformed_record", "malformed_record"]
    assert bytes(q[q.reason == "invalid_utf8"].record_bytes.iloc[0]) == b"\xff\xfe"
