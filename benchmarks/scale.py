"""Cost per item from 10k to 1M items: every job of the pipeline on a synthetic catalog of N items,
one job per process (a fresh driver and JVM each, as ``spark-submit`` runs them), per stage:
wall seconds, µs per item, the ratio of µs per item at the largest N to the next, and the peak RSS
of the driver Python process and of its JVM (psutil, sampled every 0.2 s; on ``local[*]`` the JVM
is the driver and the executors in one process, the Python workers are counted apart).

  .venv/bin/python benchmarks/scale.py --sizes 10000,100000          # the whole pipeline
  .venv/bin/python benchmarks/scale.py --from-embeddings --sizes 100000,1000000

Whole pipeline: titles, categories, colours and genders re-sampled from the 44k real Myntra rows
(/work/shared/data/myntra_titles_44k.csv, or --titles), one generated 32 px JPEG per item, then
ingest_catalog … train_ctr (``scripts/demo.py``'s steps) with a tiny model and few training steps
(``train.max_steps``); the text and table stages run at full size. ``--from-embeddings`` writes a
synthetic ``gold.item_embeddings`` of clustered 128-d unit vectors (plus top tags and one
impression per item) with delta-rs, then runs the stages that used to break on the driver:
neighbors, cluster, build_ctr_features, train_ctr; neighbors' recall@10 against exact search is
in its counts (and printed). Results: stdout and ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]
TITLES = Path("/work/shared/data/myntra_titles_44k.csv")
MV = "scale-synthetic"
DIM = 128
TINY = ("train.image_size=32", "train.epochs=1", "train.max_steps=20", "train.batch_size=32",
        "train.workers=0", "train.checkpoint_every=1000", "similarity.epochs=2", "ctr.num_trees=10")


class PeakRSS:
    """Peak RSS (MB) of a process (the driver's Python), its java descendants (the JVM) and the
    whole process tree (with the Python workers), sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = {"driver_python_mb": 0.0, "driver_jvm_mb": 0.0, "tree_mb": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                py = self.proc.memory_info().rss
                kids = self.proc.children(recursive=True)
                jvm = tree = 0
                for c in kids:
                    try:
                        rss = c.memory_info().rss
                        tree += rss
                        jvm += rss if c.name().startswith("java") else 0
                    except psutil.Error:
                        pass
                for key, val in (("driver_python_mb", py), ("driver_jvm_mb", jvm), ("tree_mb", py + tree)):
                    self.peak[key] = max(self.peak[key], val / 2**20)
            except psutil.Error:
                return
            self._stop.wait(every)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: round(v, 1) for k, v in self.peak.items()}


def run_job(name: str, argv: list[str], log: Path) -> dict[str, Any]:
    """``python jobs/<name>.py argv`` in its own process; wall seconds and peak RSS."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "jobs")])}
    t0 = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"\n=== {name} {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.Popen([sys.executable, str(REPO / "jobs" / f"{name}.py"), *argv], cwd=REPO, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
        rss = PeakRSS(proc.pid)
        rc = proc.wait()
        peak = rss.stop()
    wall = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"scale: {name} exited {rc}; see {log}")
    return {"seconds": round(wall, 2), **peak}


# ---- inputs ----


def write_catalog(n: int, work: Path, titles: Path, seed: int = 0) -> Path:
    """``styles.csv`` of ``n`` items re-sampled from the real titles, and one 32 px JPEG per item
    (a colour block and a stripe: distinct bytes per item)."""
    import pandas as pd
    from PIL import Image

    src = pd.read_csv(titles, on_bad_lines="skip").dropna(subset=["productDisplayName"])
    rng = np.random.default_rng(seed)
    df = src.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    df["id"] = np.arange(1, n + 1)
    out = work / "catalog"
    (out / "images").mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "styles.csv", index=False)
    colours = rng.integers(0, 256, size=(n, 2, 3), dtype=np.uint8)
    for i, item in enumerate(df["id"]):
        px = np.empty((32, 32, 3), dtype=np.uint8)
        px[:] = colours[i, 0]
        px[(i % 24):(i % 24) + 8] = colours[i, 1]
        Image.fromarray(px).save(out / "images" / f"{item}.jpg", quality=85)
    return out / "styles.csv"


def _list_column(mat: np.ndarray) -> Any:
    import pyarrow as pa

    offsets = pa.array(np.arange(0, mat.size + 1, mat.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(mat.ravel(), pa.float32()))


def write_embeddings(n: int, lh: Path, centers: int = 1000, chunk: int = 100_000, seed: int = 0) -> None:
    """``gold.item_embeddings`` (clustered 128-d unit vectors: ``centers`` random directions plus
    noise of norm ~0.5), ``gold.item_tags`` (3 tags per item) and ``bronze.impressions`` (one per
    item, clicks depending on the cluster), written in chunks with delta-rs; a model card."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from catalog2vec.lakehouse import table_path
    from catalog2vec.schemas import bronze, gold

    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, DIM)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        idx = np.arange(lo, lo + m)
        cl = (idx * 7919) % centers
        x = c[cl] + rng.normal(scale=0.5 / np.sqrt(DIM), size=(m, DIM)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        ids = [f"i{i:08d}" for i in idx]
        emb = pa.table({"model_version": [MV] * m, "item_id": ids, "sha256": ["0" * 64] * m,
                        "embedding": _list_column(x), "norm": np.ones(m, np.float32), "run_id": ["scale"] * m},
                       schema=gold.ITEM_EMBEDDINGS.arrow_schema())
        write_deltalake(table_path(lh, gold.ITEM_EMBEDDINGS), emb, mode="append", partition_by=["model_version"])
        tags = pa.table({"model_version": [MV] * 3 * m, "item_id": np.repeat(ids, 3).tolist(),
                         "tag": [f"t{(v * 3 + r) % 500}" for v in cl for r in range(3)],
                         "probability": np.tile(np.array([0.9, 0.5, 0.3], np.float32), m),
                         "rank": np.tile(np.array([1, 2, 3], np.int32), m), "run_id": ["scale"] * 3 * m},
                        schema=gold.ITEM_TAGS.arrow_schema())
        write_deltalake(table_path(lh, gold.ITEM_TAGS), tags, mode="append", partition_by=["model_version"])
        ctr = 1 / (1 + np.exp(-(-3.0 + 1.5 * (cl % 7 == 0) + 0.5 * (idx % 50 < 10))))
        imps = pa.table({
            "impression_id": [f"imp{i}" for i in idx],
            "ts": pa.array(((1_767_225_600 + idx * 86_400 * 14 // max(n, 1)) * 1_000_000).astype(np.int64),
                           pa.timestamp("us", tz="UTC")),
            "item_id": ids,
            "features": pa.array([[("site", f"s{i % 50}"), ("hour", str(i % 24))] for i in idx],
                                 pa.map_(pa.string(), pa.string())),
            "click": (rng.random(m) < ctr).astype(np.int32), "source": ["synthetic"] * m, "true_ctr": ctr,
            "run_id": ["scale"] * m}, schema=bronze.IMPRESSIONS.arrow_schema())
        write_deltalake(table_path(lh, bronze.IMPRESSIONS), imps, mode="append")
    card = lh / "models" / MV / "model_card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(json.dumps({"model_version": MV, "created_at": "2026-01-01T00:00:00Z"}))


# ---- stages ----


def pipeline_steps(n: int, work: Path, titles: Path) -> list[tuple[str, list[str]]]:
    import demo

    csv = write_catalog(n, work, titles)
    return demo.steps(str(work / "lake"), "scale", TINY, impressions=n, feature_version="scale", sample=str(csv))


def embedding_steps(n: int, work: Path) -> list[tuple[str, list[str]]]:
    lh = work / "lake"
    write_embeddings(n, lh)
    common = ["--lakehouse", str(lh), "--run-id", "scale"]
    return [
        ("neighbors", [*common, "--model-version", MV]),
        ("cluster", [*common, "--model-version", MV]),
        ("build_ctr_features", [*common, "--source", "synthetic", "--model-version", MV,
                                "--feature-version", "scale"]),
        ("train_ctr", [*common, "--feature-version", "scale", "--set=ctr.num_trees=10"]),
    ]


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"c2v-scale-{n}-", dir=args.work))
    t0 = time.perf_counter()
    steps = embedding_steps(n, work) if args.from_embeddings else pipeline_steps(n, work, args.titles)
    out: dict[str, Any] = {"inputs_seconds": round(time.perf_counter() - t0, 1), "stages": {}}
    print(f"\n== N = {n:,}: inputs written in {out['inputs_seconds']} s ({work})", flush=True)
    for name, argv in steps:
        if args.stages and name not in args.stages:
            continue
        r = run_job(name, [*argv, *[f"--set={o}" for o in args.set]], work / "jobs.log")
        r["us_per_item"] = round(r["seconds"] * 1e6 / n, 1)
        runs = work / "lake" / "_runs" / "scale" / f"{name}.json"
        if name == "neighbors" and runs.exists():
            counts = json.loads(runs.read_text()).get("counts", {})
            r["neighbors"] = {k: counts.get(k) for k in ("index", "nlist", "nprobe", "train_sample", "pq_m",
                                                          "refine", "index_mb", "recall_on_sample", "recall_at_k",
                                                          "recall_queries", "seconds")}
        out["stages"][name] = r
        print(f"  {name:<22} {r['seconds']:8.1f} s {r['us_per_item']:9.1f} µs/item  python {r['driver_python_mb']:7.0f} MB"
              f"  jvm {r['driver_jvm_mb']:7.0f} MB  tree {r['tree_mb']:7.0f} MB  load {os.getloadavg()[0]:.1f}",
              flush=True)
        if "neighbors" in r:
            print(f"    {r['neighbors']}", flush=True)
    out["lakehouse_mb"] = round(sum(f.stat().st_size for f in (work / "lake").rglob("*") if f.is_file()) / 2**20, 1)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def index_only(n: int, queries: int = 1000, sample: int = 100_000, k: int = 10) -> dict[str, Any]:
    """The neighbours index alone (faiss, no Spark), as the job builds it: IVF-Flat and IVF-PQ
    (budget: two thirds of IVF-Flat) trained on a ``sample``, nprobe chosen for recall 0.95 on the sample;
    build and search CPU seconds (process time, all threads) and recall@10 of ``queries`` items
    against exact search over all ``n``."""
    import faiss

    from catalog2vec.retrieval.index import (
        choose_nprobe,
        choose_pq,
        empty_index,
        ivf_bytes_per_vector,
        ivf_nlist,
        recall_vs_exact,
        set_nprobe,
    )

    rng = np.random.default_rng(0)
    c = rng.normal(size=(1000, DIM)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[(np.arange(n) * 7919) % 1000] + rng.normal(scale=0.5 / np.sqrt(DIM), size=(n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, size=queries, replace=False)]
    t = time.process_time()
    exact = faiss.IndexFlatIP(DIM)
    exact.add(x)
    _, epos = exact.search(q, k + 1)
    out: dict[str, Any] = {"exact_search_cpu_us_per_query": round((time.process_time() - t) * 1e6 / queries, 1)}
    train = x[rng.choice(n, size=min(sample, n), replace=False)]
    nlist = ivf_nlist(n, len(train))
    for kind in ("ivf", "ivfpq"):
        budget = n * ivf_bytes_per_vector(DIM) * 2 // 3  # IVF-PQ m=64 + fp16 re-ranking fits, IVF-Flat not
        m, refine = choose_pq(n, DIM, budget) if kind == "ivfpq" else (0, "none")
        t = time.process_time()
        index = empty_index(kind, DIM, train, nlist, m, refine)
        nprobe, on_sample = choose_nprobe(index, train, k, 0.95, queries)
        t_train = time.process_time() - t
        t = time.process_time()
        index.add(x)
        t_add = time.process_time() - t
        set_nprobe(index, nprobe)
        t = time.process_time()
        _, apos = index.search(q, k + 1)
        t_search = time.process_time() - t
        out[kind] = {"nlist": nlist, "nprobe": nprobe, "pq_m": m, "refine": refine,
                     "index_mb": round(n * ivf_bytes_per_vector(DIM, kind, m, refine) / 2**20, 1),
                     "train_cpu_s": round(t_train, 1), "add_cpu_us_per_item": round(t_add * 1e6 / n, 2),
                     "search_cpu_us_per_query": round(t_search * 1e6 / queries, 1),
                     "recall_on_sample": round(on_sample, 4), "recall_at_10": round(recall_vs_exact(apos, epos), 4)}
        print(f"  N={n:,} {kind}: {out[kind]}", flush=True)
    return out


def report(results: dict[int, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per stage: µs/item and driver RSS ratios between the largest N and the next."""
    sizes = sorted(results)
    ratios: dict[str, dict[str, float]] = {}
    if len(sizes) < 2:
        return ratios
    lo, hi = results[sizes[-2]]["stages"], results[sizes[-1]]["stages"]
    print(f"\n== ratios, N = {sizes[-1]:,} vs {sizes[-2]:,} (targets: µs/item ≤ 1.25, driver Python RSS ≤ 1.2)")
    print(f"{'stage':<22} {'µs/item':>9} {'python RSS':>11} {'JVM RSS':>9}")
    for stage in hi:
        if stage not in lo:
            continue
        ratios[stage] = {key: round(hi[stage][key] / max(lo[stage][key], 1e-9), 3)
                         for key in ("us_per_item", "driver_python_mb", "driver_jvm_mb")}
        r = ratios[stage]
        print(f"{stage:<22} {r['us_per_item']:9.2f} {r['driver_python_mb']:11.2f} {r['driver_jvm_mb']:9.2f}")
    return ratios


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="comma-separated catalog sizes")
    p.add_argument("--from-embeddings", action="store_true",
                   help="synthetic embeddings (delta-rs), then neighbors, cluster, build_ctr_features, train_ctr")
    p.add_argument("--index-only", action="store_true",
                   help="the neighbours index alone (faiss, no Spark): IVF and IVF-PQ build, search, recall@10")
    p.add_argument("--stages", default="", help="comma-separated subset of the stages to run")
    p.add_argument("--titles", type=Path, default=TITLES, help="the real titles CSV to re-sample")
    p.add_argument("--work", default=None, help="directory for the temporary lakehouses")
    p.add_argument("--keep", action="store_true", help="keep the lakehouses")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override passed to every job (repeatable), e.g. retrieval.index=ivfpq")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args()
    args.stages = [s for s in args.stages.split(",") if s]
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.index_only:
        doc = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "mode": "index-only",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "results": {str(n): index_only(n) for n in sizes}, "load_avg_after": os.getloadavg()}
        print(json.dumps(doc, indent=1))
        if args.out:
            args.out.write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    results = {n: run_size(n, args) for n in sizes}
    ratios = report(results)
    doc = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_avg_after": os.getloadavg(), "mode": "from-embeddings" if args.from_embeddings else "pipeline",
           "results": {str(n): r for n, r in results.items()}, "ratios_largest_vs_next": ratios}
    print(json.dumps(doc, indent=1))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
