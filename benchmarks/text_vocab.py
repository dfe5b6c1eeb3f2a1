"""Benchmark: build_vocab (Spark local[2]) vs the naive research-script approach vs raw re.findall.

Builds an N-row catalog by deterministic re-sampling and light perturbation of the real Myntra
titles and women's-clothing reviews in ../shared/data (seeded; every third row gets a review as
its description), then measures in one run:
  (a) build_vocab end to end (spark-submit-like subprocess on local[2]: JVM start, clean, count,
      top-K, write catalog_tokens + vocab Parquet), wall time and driver peak RSS (Python driver
      and the JVM's VmHWM);
  (b) a naive single-process script as the original research code did it: per-row
      NLTK word tokenisation (NLTKWordTokenizer, the tokenizer behind word_tokenize), lower-case,
      stop-word list filter, collections.Counter, most_common(K);
  (c) raw re.findall(r"\\w+") over the same lower-cased text: the per-core ceiling; compared with
      the library's per-core cleaning rate (TextCleaner.clean, single process).

usage: python benchmarks/text_vocab.py --rows 100000 1000000 [--naive-max 200000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CATALOG2VEC_SHARED_DATA", REPO.parent / "shared" / "data"))
COLOURS = ["red", "blue", "black", "white", "green", "navy", "pink", "grey", "olive", "maroon"]


def make_catalog(n: int, path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    with (DATA / "myntra_titles_44k.csv").open(newline="") as fh:
        titles = [r["productDisplayName"] for r in csv.DictReader(fh) if r["productDisplayName"]]
    with (DATA / "womens_clothing_reviews.csv").open(newline="") as fh:
        reviews = [r["Review Text"] for r in csv.DictReader(fh) if r["Review Text"]]
    rng = np.random.default_rng(0)
    ti = rng.integers(0, len(titles), n)
    ri = rng.integers(0, len(reviews), n)
    ci = rng.integers(0, len(COLOURS), n)
    pert = rng.random(n)
    ids, tt, dd = [], [], []
    for i in range(n):
        t = titles[ti[i]]
        if pert[i] < 0.3:  # light perturbation: a colour word prepended / case change
            t = f"{COLOURS[ci[i]].title()} {t}"
        elif pert[i] < 0.4:
            t = t.upper()
        ids.append(f"i{i}")
        tt.append(t)
        dd.append(reviews[ri[i]] if i % 3 == 0 else None)
    pq.write_table(pa.table({"item_id": ids, "title": tt, "description": dd}), path)


def run_spark_worker(path: str, out: str) -> None:
    """(a): runs in its own process so its peak memory is its own."""
    sys.path.insert(0, str(REPO / "jobs"))
    import build_vocab

    from catalog2vec.spark import get_spark

    spark = get_spark("bench-build-vocab", master="local[2]")
    t0 = time.time()
    rc = build_vocab.main(["--input", path, "--format", "parquet", "--id-column", "item_id",
                           "--text-columns", "title,description", "--output", out, "--run-id", "bench"])
    dt = time.time() - t0
    jvm_pid = spark.sparkContext._gateway.proc.pid
    hwm = 0
    with open(f"/proc/{jvm_pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                hwm = int(line.split()[1]) // 1024
    py_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("RESULT=" + json.dumps({"rc": rc, "job_s": dt, "driver_py_peak_mb": py_rss, "jvm_peak_mb": hwm}))


def naive(path: Path, k: int) -> tuple[float, list[tuple[str, int]]]:
    """(b) the research-script way."""
    import pyarrow.parquet as pq
    from nltk.tokenize import NLTKWordTokenizer

    from catalog2vec.text.wordlists import nltk_stopwords

    stop = list(nltk_stopwords("english"))  # a list, as such scripts did
    tok = NLTKWordTokenizer()
    t0 = time.time()
    table = pq.read_table(path).to_pylist()
    counter: Counter[str] = Counter()
    for row in table:
        for field in (row["title"], row["description"]):
            if not field:
                continue
            words = [w.lower() for w in tok.tokenize(field)]
            counter.update(w for w in words if w.isalpha() and w not in stop)
    top = counter.most_common(k)
    return time.time() - t0, top


def texts_of(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    return [x for col in ("title", "description") for x in t.column(col).to_pylist() if x]


def per_core_rates(texts: list[str]) -> tuple[float, float]:
    """(c) raw re.findall vs the library's cleaning, single process, texts per second."""
    from catalog2vec.text.clean import CleanerSettings, TextCleaner

    pat = re.compile(r"\w+")
    t0 = time.perf_counter()
    n = 0
    for s in texts:
        n += len(pat.findall(s.lower()))
    raw = time.perf_counter() - t0
    cleaner = TextCleaner(CleanerSettings(fields=(("title", 1),)))
    t0 = time.perf_counter()
    for s in texts:
        cleaner.clean_text(s)
    lib = time.perf_counter() - t0
    return len(texts) / raw, len(texts) / lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--naive-max", type=int, default=10**9, help="skip the naive baseline above this many rows")
    ap.add_argument("--k", type=int, default=30000)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        run_spark_worker(*args.worker)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = Path(tmp) / f"catalog_{n}.parquet"
            t0 = time.time()
            make_catalog(n, path)
            print(f"[bench] {n:,} rows generated in {time.time() - t0:.1f}s", flush=True)
            env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
            t0 = time.time()
            proc = subprocess.run([sys.executable, __file__, "--worker", str(path), f"{tmp}/out_{n}"],
                                  capture_output=True, text=True, env=env)
            spark_wall = time.time() - t0
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")]
            if proc.returncode or not line:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                raise SystemExit("spark worker failed")
            spark = json.loads(line[0].split("=", 1)[1])
            row = {"rows": n, "spark_wall_s": round(spark_wall, 1), "spark_job_s": round(spark["job_s"], 1),
                   "driver_py_peak_mb": spark["driver_py_peak_mb"], "jvm_peak_mb": spark["jvm_peak_mb"]}
            print(f"[bench] (a) build_vocab local[2]: {row}", flush=True)
            if n <= args.naive_max:
                naive_s, _ = naive(path, args.k)
                row["naive_s"] = round(naive_s, 1)
                row["speedup_a_over_b"] = round(naive_s / spark_wall, 2)
                print(f"[bench] (b) naive: {naive_s:.1f}s -> (a) is {naive_s / spark_wall:.2f}x faster end to end",
                      flush=True)
            texts = texts_of(path)[:200_000]
            raw_rate, lib_rate = per_core_rates(texts)
            row.update(raw_texts_per_s=round(raw_rate), lib_texts_per_s=round(lib_rate),
                       lib_over_raw=round(lib_rate / raw_rate, 2))
            print(f"[bench] (c) per core: re.findall {raw_rate:,.0f} texts/s, library {lib_rate:,.0f} texts/s "
                  f"= {lib_rate / raw_rate:.0%} of the ceiling", flush=True)
            results.append(row)
    print("SUMMARY " + json.dumps(results))


if __name__ == "__main__":
    main()
