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
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

MAPPING = "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"


def steps(lh: str, run_id: str) -> list[tuple[str, list[str]]]:
    common = ["--lakehouse", lh, "--run-id", run_id]
    sample = str(REPO / "examples" / "data" / "styles.csv")
    return [
        ("ingest_catalog", [*common, "--input", sample, "--format", "csv", "--source", "myntra_sample",
                            "--mapping", MAPPING, "--image-template", "images/{item_id}.jpg"]),
        ("build_vocab", [*common]),
        ("build_labels", [*common]),
        ("ingest_images", [*common]),
        ("train", [*common]),
        ("embed", [*common, "--model-version", "latest"]),
        ("neighbors", [*common, "--model-version", "latest"]),
        ("cluster", [*common, "--model-version", "latest"]),
        ("train_similarity", [*common, "--model-version", "latest"]),
        ("evaluate", [*common, "--model-version", "latest"]),
        ("simulate_impressions", [*common, "--impressions", "40000"]),
        ("build_ctr_features", [*common, "--source", "synthetic", "--model-version", "latest",
                                "--feature-version", "synthetic-demo"]),
        ("train_ctr", [*common, "--feature-version", "synthetic-demo"]),
    ]


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
    timings = []
    for name, job_args in steps(lh, args.run_id):
        print(f"\n=== {name} {' '.join(job_args)}", flush=True)
        t0 = time.time()
        module = importlib.import_module(name)
        rc = module.main(job_args)
        timings.append((name, time.time() - t0))
        if rc != 0:
            print(f"demo: step {name} failed with exit code {rc}", file=sys.stderr)
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
    print(f"Evaluation report    : {sorted(reports.glob('*/report.html'))}")
    print(f"CTR report           : {sorted(reports.glob('ctr/*/report.html'))}")
    print(f"Neighbours picture   : {reports / 'similar_10039.png'}")
    print(f"Notebook + pictures  : {reports / 'explore_embeddings.ipynb'}, {reports / 'explore_embeddings'}/*.png")
    print(f"  Spark SQL : spark.read.format('delta').load('{lh}/bronze/catalog_items')")
    print(f"  DuckDB    : python -c \"from catalog2vec.lakehouse import duckdb_connect; "
          f"print(duckdb_connect('{lh}').sql('select * from bronze.catalog_items limit 5'))\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
