"""Spark task retries of a non-idempotent side effect (issue 35): the ``neighbors`` job's executors
each write one index part (``indexes/<v>/parts/<build_id>/part-NNNNN.{faiss,ids.json}``) — an object
outside Delta's commit protocol — and return its manifest entry; the driver publishes the manifest.

Here every first attempt of that task fails *after* writing its part (a Python worker ``sitecustomize``
on the job's PYTHONPATH, switched on by an environment variable: the job's code is unchanged), and
Spark's own task retry (``local[2,2]``: two attempts per task) runs it again. The promise: no part is
duplicated or orphaned, the manifest names each part once, the index holds each item once, and
the neighbours table has exactly k rows per item — the brute-force top-k."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.spark]

N, DIM, K, VERSION = 240, 16, 5, "m-retry"

HOOK = '''
import os
if os.environ.get("C2V_FAIL_FIRST_ATTEMPT_AFTER_PART"):
    import json
    from pathlib import Path

    import catalog2vec.storage as storage

    _write_bytes = storage.write_bytes

    def write_bytes(path, data):
        out = _write_bytes(path, data)
        if "/parts/" in str(path) and str(path).endswith(".ids.json"):
            from pyspark import TaskContext

            ctx = TaskContext.get()
            if ctx is not None and ctx.attemptNumber() == 0:
                log = Path(os.environ["C2V_FAIL_FIRST_ATTEMPT_AFTER_PART"])
                with log.open("a") as fh:
                    fh.write(json.dumps({"path": str(path), "partition": ctx.partitionId()}) + "\\n")
                raise RuntimeError("injected fault: task failed after writing its index part")
        return out

    storage.write_bytes = write_bytes
'''


def _lakehouse(root: Path) -> tuple[list[str], np.ndarray]:
    """gold.item_embeddings for one model version (delta-rs; no Spark needed) and its model card."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from catalog2vec import storage
    from catalog2vec.lakehouse import table_path
    from catalog2vec.schemas import gold

    rng = np.random.default_rng(35)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    ids = [f"item{i:04d}" for i in range(N)]
    rows = {"model_version": [VERSION] * N, "item_id": ids, "sha256": ["0" * 64] * N,
            "embedding": [list(map(float, v)) for v in x], "norm": [float(np.linalg.norm(v)) for v in x],
            "run_id": ["fixture"] * N}
    schema = gold.ITEM_EMBEDDINGS.arrow_schema()
    table = pa.table({f.name: pa.array(rows[f.name], f.type) if f.name in rows else
                      pa.nulls(N, f.type) for f in schema}, schema=schema)
    write_deltalake(table_path(root, gold.ITEM_EMBEDDINGS), table, partition_by=["model_version"])
    storage.write_json(storage.join(root, "models", VERSION, "model_card.json"),
                       {"model_version": VERSION, "complete": True})
    return ids, x


def test_a_retried_index_part_task_leaves_no_duplicate_or_orphan(tmp_path: Path) -> None:
    from catalog2vec.lakehouse import read_pandas
    from catalog2vec.retrieval import EmbeddingIndex, brute_force, index_dir

    root = tmp_path / "lake"
    ids, x = _lakehouse(root)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    faults = tmp_path / "faults.jsonl"
    env = {**os.environ, "C2V_FAIL_FIRST_ATTEMPT_AFTER_PART": str(faults),
           "PYTHONPATH": os.pathsep.join([str(hook), str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(REPO / "jobs" / "neighbors.py"), "--lakehouse", str(root), "--run-id", "retry",
           "--model-version", VERSION, "-k", str(K), "--set", 'retrieval.index="flat"',
           "--set", 'spark.master="local[2,2]"']  # 2 attempts per task: Spark's own retry
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    injected = [json.loads(line) for line in faults.read_text().splitlines()]
    print(f"[task-retries] {len(injected)} part tasks failed after their write and were retried")
    assert len(injected) >= 1, injected  # every part task failed once after its side effect...
    assert "injected fault" in done.stderr  # ...and Spark retried it
    d = Path(index_dir(str(root), VERSION))
    meta = json.loads((d / "index.json").read_text())
    parts = meta["parts"]
    assert sorted(p["part"] for p in parts) == sorted({p["part"] for p in parts})  # each part once
    assert sum(p["size"] for p in parts) == N == meta["size"]
    assert {Path(i["path"]).name.removesuffix(".ids.json") for i in injected} <= {
        Path(p["path"]).name for p in parts}  # the failed attempts' parts are the ones published
    on_disk = sorted(str(f.relative_to(d)) for f in (d / "parts").rglob("*") if f.is_file())
    assert on_disk == sorted(f"{p['path']}{ext}" for p in parts for ext in (".faiss", ".ids.json"))  # no orphan
    idx = EmbeddingIndex.load(str(d))
    assert idx.size == N and sorted(idx.item_ids) == ids  # each item indexed exactly once

    nb = read_pandas(str(root), "gold.item_neighbors")
    assert len(nb) == N * K and not nb.duplicated(["item_id", "rank"]).any()
    _, pos = brute_force(x, x, K + 1)
    want = {(ids[q], r + 1, ids[p]) for q in range(N) for r, p in enumerate([p for p in pos[q] if p != q][:K])}
    got = set(zip(nb["item_id"], nb["rank"].astype(int), nb["neighbor_id"], strict=True))
    assert got == want
    record = json.loads((root / "_runs" / "retry" / "neighbors.json").read_text())
    assert record["status"] == "succeeded" and record["counts"]["items_indexed"] == N
    # the run record counts each failed task attempt with its cause (the driver's status store)
    assert record["retries"].get("spark_task_failed:RuntimeError") == len(injected), record["retries"]
