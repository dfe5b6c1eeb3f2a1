"""`make demo`: run every job of the pipeline, in order, on the bundled sample (examples/data)
with the embedded default configuration (conf/local.toml).

Each step calls the same `main(argv)` that `spark-submit jobs/<job>.py` calls, in one Python
process so the whole demo pays for one JVM start (the DAG and the README show the spark-submit
form). Prints the time of each step and, at the end, where the tables, reports and pictures are.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

MAPPING = "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"


def steps(lh: str, run_id: str, overrides: tuple[str, ...] = (), impressions: int = 40000,
          feature_version: str = "synthetic-demo", max_train: int = 0,
          config: str | None = None, sample: str = "") -> list[tuple[str, list[str]]]:
    """The DESIGN pipeline as (job, argv) pairs; also run by the object-store and cluster tests and
    benchmarks (``config``: ``--config`` of every job, e.g. conf/standalone.toml; ``sample``: the
    catalog CSV, default the bundled examples/data/styles.csv)."""
    common = ["--lakehouse", lh, "--run-id", run_id, *(["--config", config] if config else []),
              *[f"--set={o}" for o in overrides]]
    sample = sample or str(REPO / "examples" / "data" / "styles.csv")
    latest = ["--model-version", "latest"]
    return [
        ("ingest_catalog", [*common, "--input", sample, "--format", "csv", "--source", "myntra_sample",
                            "--mapping", MAPPING, "--image-template", "images/{item_id}.jpg"]),
        ("build_vocab", [*common]),
        ("build_labels", [*common]),
        ("ingest_images", [*common]),
        ("train", [*common]),
        ("promote", [*common]),  # the gate: train publishes a candidate, promote moves models/LATEST
        ("embed", [*common, *latest]),
        ("neighbors", [*common, *latest]),
        ("cluster", [*common, *latest]),
        ("train_similarity", [*common, *latest]),
        ("evaluate", [*common, *latest, *(["--max-train", str(max_train)] if max_train else [])]),
        ("simulate_impressions", [*common, "--impressions", str(impressions)]),
        ("build_ctr_features", [*common, "--source", "synthetic", *latest, "--feature-version", feature_version]),
        ("train_ctr", [*common, "--feature-version", feature_version]),
    ]


def run_steps(pipeline: list[tuple[str, list[str]]]) -> list[tuple[str, float]]:
    """Run each job's ``main(argv)`` in this process; raises on the first non-zero exit code."""
    timings = []
    for name, job_args in pipeline:
        print(f"\n=== {name} {' '.join(job_args)}", flush=True)
        t0 = time.time()
        rc = importlib.import_module(name).main(list(job_args))
        timings.append((name, time.time() - t0))
        if rc != 0:
            raise SystemExit(f"demo: step {name} failed with exit code {rc}")
    return timings


def _paths(found: Iterable[Path]) -> str:
    """Paths for a person to open: one per line after the first, not a list repr."""
    names = sorted(str(p) for p in found)
    return ("\n" + " " * 23).join(names) if names else "(none written)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lakehouse", default=str(REPO / "lakehouse"))
    parser.add_argument("--fresh", action="store_true", help="delete the lakehouse first")
    parser.add_argument("--run-id", default="demo")
    args = parser.parse_args(argv)
    lh = str(Path(args.lakehouse).resolve())
    if args.fresh and Path(lh).exists():
        shutil.rmtree(lh)
    t_all = time.time()
    timings = run_steps(steps(lh, args.run_id))
    # the metastore needs a session started on it (Hive catalog, a static setting): its own process
    print(f"\n=== register_tables --lakehouse {lh}", flush=True)
    t0 = time.time()
    rc = subprocess.run([sys.executable, str(REPO / "jobs" / "register_tables.py"), "--lakehouse", lh,
                         "--run-id", args.run_id], check=False).returncode
    timings.append(("register_tables", time.time() - t0))
    if rc != 0:
        print(f"demo: step register_tables failed with exit code {rc}", file=sys.stderr)
        return rc
    # pictures: nearest neighbours of one item (CLI) and the analyst notebook (executed for real)
    from catalog2vec import cli

    reports = Path(lh) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print("\n=== catalog2vec similar --item-id 10039 -k 8 --grid", flush=True)
    rc = cli.main(["similar", "--lakehouse", lh, "--item-id", "10039", "-k", "8",
                   "--grid", str(reports / "similar_10039.png")])
    if rc != 0:
        return rc
    print("\n=== notebooks/explore_embeddings.py (jupytext + nbclient)", flush=True)
    os.environ["CATALOG2VEC_LAKEHOUSE"] = lh
    os.environ["CATALOG2VEC_OUT"] = str(reports / "explore_embeddings")
    import jupytext
    import nbclient
    import nbformat

    nb = jupytext.read(REPO / "notebooks" / "explore_embeddings.py")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    nbformat.write(nb, reports / "explore_embeddings.ipynb")
    timings.append(("pictures + notebook", time.time() - t0))

    print("\n=== demo finished in %.0fs" % (time.time() - t_all))
    for name, secs in timings:
        print(f"  {name:<22} {secs:6.1f}s")
    print(f"\nLakehouse (Delta tables): {lh}")
    for layer in ("bronze", "silver", "gold"):
        tables = sorted(p.name for p in (Path(lh) / layer).iterdir() if (p / "_delta_log").is_dir())
        print(f"  {layer:<7}: {', '.join(tables)}")
    print(f"Models               : {lh}/models/  (model_card.json per version)")
    print(f"Evaluation report    : {_paths(reports.glob('*/report.html'))}")
    print(f"CTR report           : {_paths(reports.glob('ctr/*/report.html'))}")
    print(f"Neighbours picture   : {reports / 'similar_10039.png'}")
    print(f"Notebook + pictures  : {reports / 'explore_embeddings.ipynb'}, {reports / 'explore_embeddings'}/*.png")
    print(f"Neighbour browser    : .venv/bin/catalog2vec serve --lakehouse {lh} --port 8000"
          "   # then open http://127.0.0.1:8000/")
    print(f"  Spark SQL : spark.read.format('delta').load('{lh}/bronze/catalog_items')")
    print(f"  DuckDB    : python -c \"from catalog2vec.lakehouse import duckdb_connect; "
          f"print(duckdb_connect('{lh}').sql('select * from bronze.catalog_items limit 5'))\"")
    ms = f"{lh}/_metastore"
    print("  Metastore (registered tables; example queries in sql/examples.sql):")
    print(f"    .venv/bin/spark-sql --conf spark.sql.catalogImplementation=hive "
          f"--conf 'spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={ms}/metastore_db;create=true' "
          f"--conf spark.sql.warehouse.dir={ms}/warehouse -e \"SELECT tag, count(*) AS items FROM "
          f"catalog2vec_gold.item_tags_latest WHERE rank = 1 GROUP BY tag ORDER BY items DESC LIMIT 10\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
