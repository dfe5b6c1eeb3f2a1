"""build_vocab on a real multi-process cluster: master local-cluster[2,1,1024] (two executor
JVMs, each with its own Python workers), launched with spark-submit as a subprocess since the
test session is local[2]. Proves the vendored NLTK stop words and the packaged word lists are
loaded on the executors and give exactly the single-process vocabulary."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from catalog2vec.config import load_config
from catalog2vec.text.clean import CleanerSettings, TextCleaner
from catalog2vec.text.vocab import finalize_vocab, read_vocab_parquet

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

DRIVER = '''
import json, os, sys
sys.path.insert(0, {jobs!r})
import build_vocab
from catalog2vec.spark import get_spark
from catalog2vec.text.wordlists import stopwords_source
rc = build_vocab.main(sys.argv[1:])
sc = get_spark().sparkContext
seen = sc.parallelize(range(8), 8).map(lambda _: stopwords_source()).collect()
print("EXECUTORS=" + json.dumps({{"rc": rc, "driver_pid": os.getpid(), "master": sc.master, "seen": seen}}))
'''


def test_build_vocab_on_local_cluster(tmp_path: Path, examples_dir: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(jobs=str(REPO / "jobs")))
    out = tmp_path / "out"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    cmd = [
        str(bin_dir / "spark-submit"), "--master", "local-cluster[2,1,1024]",
        "--conf", "spark.executor.memory=1g", "--conf", "spark.sql.shuffle.partitions=4",
        "--conf", f"spark.pyspark.python={sys.executable}",
        str(script),
        "--input", str(examples_dir / "styles.csv"), "--format", "csv", "--id-column", "id",
        "--text-columns", "productDisplayName,articleType", "--min-count", "2", "--output", str(out),
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("EXECUTORS=")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = json.loads(line.split("=", 1)[1])
    assert info["rc"] == 0 and info["master"].startswith("local-cluster")
    pids = {s["pid"] for s in info["seen"]}
    assert str(info["driver_pid"]) not in pids and len(pids) >= 2  # separate executor Python workers
    assert {s["english_count"] for s in info["seen"]} == {"179"}
    assert all(s["nltk_stopwords"].endswith("resources/nltk_data/corpora/stopwords") for s in info["seen"])

    # exactly the single-process result
    settings = CleanerSettings.from_config(load_config().text, {"productDisplayName": 1, "articleType": 1})
    cleaner = TextCleaner(settings)
    counts: Counter[str] = Counter()
    docs: Counter[str] = Counter()
    with (examples_dir / "styles.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            c = cleaner.clean([row["productDisplayName"], row["articleType"]]).token_counts()
            counts.update(c)
            docs.update(c.keys())
    expected = finalize_vocab(((t, n, docs[t]) for t, n in counts.items()), 30000, 2, settings.fingerprint())
    assert read_vocab_parquet(str(out / "vocab.parquet")) == expected
