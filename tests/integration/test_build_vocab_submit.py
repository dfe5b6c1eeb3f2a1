"""The headline command, exactly as a user types it: ``spark-submit jobs/build_vocab.py …`` with
no memory flag, on a generated 1,000,000-row catalog delivered as ONE Parquet file with ONE row
group (Spark cannot split a row group; build_vocab reads it in row-range splits). The memory
comes from the spark-defaults.conf that ``make setup`` writes; the vocabulary must equal the
single-process result. (Its speed is measured by benchmarks/text_vocab.py, not asserted here; the
subprocess timeout leaves room for a heavily shared machine.)"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog2vec.config import load_config
from catalog2vec.text.clean import CleanerSettings, TextCleaner
from catalog2vec.text.vocab import finalize_vocab, read_vocab_parquet

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ROWS = 1_000_000
DESCRIPTIONS = [
    None,
    "Soft &amp; <b>breathable</b> cotton, regular fit. Machine wash.",
    "Café-style linen blend with a relaxed, flowy silhouette — size M fits 38 inch",
    "Buy now! 2 pack of round-neck t-shirts in navy and olive",
    "Stretchable slim-fit denim jeans with 5-pocket styling",
]


def _catalog(path: Path, examples_dir: Path) -> tuple[list[str], list[str | None], np.ndarray, np.ndarray]:
    with (examples_dir / "styles.csv").open(newline="") as fh:
        titles = [r["productDisplayName"] for r in csv.DictReader(fh)]
    rng = np.random.default_rng(15)
    ti = rng.integers(0, len(titles), ROWS)
    di = rng.integers(0, len(DESCRIPTIONS), ROWS)
    id_list = pc.binary_join_element_wise("i", pc.cast(pa.array(np.arange(ROWS)), pa.string()), "").to_pylist()
    id_list[5] = id_list[7] = " "  # missing ids -> quarantine
    id_list[9] = id_list[8]  # one duplicated id -> one row kept
    ids = pa.array(id_list)
    table = pa.table({"item_id": ids, "title": pa.array(titles).take(pa.array(ti)),
                      "description": pa.array(DESCRIPTIONS, pa.string()).take(pa.array(di))})
    pq.write_table(table, path, row_group_size=ROWS)
    return titles, DESCRIPTIONS, ti, di


def test_spark_submit_build_vocab_1m_single_row_group(tmp_path: Path, examples_dir: Path) -> None:
    src = tmp_path / "catalog.parquet"
    titles, descs, ti, di = _catalog(src, examples_dir)
    assert pq.ParquetFile(src).metadata.num_row_groups == 1
    out = tmp_path / "out"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    for key in ("PYSPARK_DRIVER_PYTHON", "SPARK_DRIVER_MEMORY", "PYSPARK_SUBMIT_ARGS"):
        env.pop(key, None)
    cmd = ["spark-submit", "jobs/build_vocab.py", "--input", str(src), "--format", "parquet",
           "--id-column", "item_id", "--text-columns", "title,description", "--output", str(out)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "OutOfMemoryError" not in proc.stderr
    assert f"items read={ROWS} tokenised=" in proc.stdout and "duplicates=1" in proc.stdout
    print(f"spark-submit build_vocab on {ROWS:,} rows: {wall:.0f} s (load average {os.getloadavg()[0]:.1f})")

    # exactly the single-process vocabulary (computed over the distinct rows, times multiplicity)
    settings = CleanerSettings.from_config(load_config().text, {"title": 1, "description": 1})
    cleaner = TextCleaner(settings)
    keep_dup = min((9, 8), key=lambda i: "\u0001".join([titles[ti[i]], descs[di[i]] or ""]))
    drop = {5, 7, 17 - keep_dup}  # missing ids, the duplicate's other row
    pairs = Counter((t, d) for i, (t, d) in enumerate(zip(ti.tolist(), di.tolist(), strict=True)) if i not in drop)
    counts: Counter[str] = Counter()
    docs: Counter[str] = Counter()
    empty = 0
    for (t, d), mult in pairs.items():
        c = cleaner.clean([titles[t], descs[d]]).token_counts()
        if not c:
            empty += mult
        for tok, n in c.items():
            counts[tok] += n * mult
            docs[tok] += mult
    expected = finalize_vocab(((t, n, docs[t]) for t, n in counts.items()), 30000, 2, settings.fingerprint())
    assert read_vocab_parquet(str(out / "vocab.parquet")) == expected
    manifest = json.loads((out / "manifest.json").read_text())
    tokenised = ROWS - 3 - empty
    assert manifest["counts"] == {"read": ROWS, "tokenised": tokenised, "quarantined": 2 + empty,
                                  "duplicates": 1, "truncated": 0}
    assert pq.read_table(out / "catalog_tokens", columns=["item_id"]).num_rows == tokenised
    q = pq.read_table(out / "quarantine").to_pylist()
    missing = [r for r in q if r["reason"] == "missing_item_id"]
    assert len(missing) == 2 and {r["source"] for r in missing} == {f"file:{src}"}  # as Spark's reader spells it
