"""Benchmark: approximate faiss indexes (IVF, HNSW) vs the exact flat inner-product index.

Baseline = ``flat`` (exact, IndexFlatIP on L2-normalised vectors), in the same run. For each
approximate setting: build time, queries per second, speed-up over exact, and recall@k against
the exact top-k. Data: clustered synthetic embeddings (Gaussian mixture on the unit sphere, like
real image embeddings), scaled to finish in a few minutes on a small machine. Times are the
process CPU time with one faiss thread (wall-clock is meaningless on a shared, oversubscribed
machine; on an idle one they agree).

  .venv/bin/python benchmarks/retrieval.py [--n 50000 --dim 128 --queries 1000 -k 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog2vec.retrieval.index import IndexParams, build_index, recall_vs_exact


def clustered(n: int, dim: int, centers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.normal(size=(n, dim))
    return x.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("-k", type=int, default=10)
    p.add_argument(
        "--threads", type=int, default=1, help="faiss OpenMP threads (1 = fair on a shared machine)"
    )
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    x = clustered(args.n, args.dim, 200, 0)
    q = clustered(args.queries, args.dim, 200, 0)[: args.queries] + 0.05
    ids = [str(i) for i in range(args.n)]
    settings = [
        ("flat", IndexParams(kind="flat")),
        ("ivf nprobe=1", IndexParams(kind="ivf", nprobe=1)),
        ("ivf nprobe=8", IndexParams(kind="ivf", nprobe=8)),
        ("ivf nprobe=32", IndexParams(kind="ivf", nprobe=32)),
        ("hnsw M=32 ef=32", IndexParams(kind="hnsw", ef_search=32)),
        ("hnsw M=32 ef=64", IndexParams(kind="hnsw", ef_search=64)),
        ("hnsw M=32 ef=128", IndexParams(kind="hnsw", ef_search=128)),
    ]
    rows = []
    exact_pos = None
    exact_qps = 0.0
    print(f"n={args.n} dim={args.dim} queries={args.queries} k={args.k} threads={args.threads}")
    print(f"{'index':<18} {'build s':>8} {'query ms':>9} {'qps':>9} {'speed-up':>9} {'recall@k':>9}")
    for name, params in settings:
        t0 = time.process_time()
        idx = build_index(ids, x, params)
        build_s = time.process_time() - t0
        idx.search(q[:10], args.k)  # warm
        t0 = time.process_time()
        _, pos = idx.search(q, args.k)
        query_s = time.process_time() - t0
        qps = args.queries / query_s
        if exact_pos is None:
            exact_pos, exact_qps = pos, qps
        recall = recall_vs_exact(pos, exact_pos)
        row = {
            "index": name,
            "build_s": round(build_s, 2),
            "query_ms": round(1000 * query_s / args.queries, 3),
            "qps": round(qps),
            "speedup_vs_exact": round(qps / exact_qps, 2),
            "recall_at_k_vs_exact": round(recall, 4),
        }
        rows.append(row)
        print(
            f"{name:<18} {build_s:8.2f} {row['query_ms']:9.3f} {qps:9.0f} {row['speedup_vs_exact']:8.2f}x {recall:9.4f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
