"""The sample pipeline on a local-disk lakehouse against the same pipeline on an object store (a
real S3 API server on 127.0.0.1: moto's server mode, Spark through S3A, delta-rs and the storage
layer through the S3 API), in one process and one run, per stage. Prints the S3 / local ratio.

  .venv/bin/python benchmarks/object_store.py              # test-sized training (32 px, 1 epoch)
  .venv/bin/python benchmarks/object_store.py --demo       # conf/local.toml as `make demo` runs it

The local S3 server is a Python process on the same 2 cores, so the ratio bounds the cost of the
object-store code path (request round trips, no rename, Delta log listing), not a real network.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

SMALL = ("train.image_size=32", "train.epochs=1", "train.batch_size=32", "train.workers=0",
         "similarity.epochs=2", "ctr.num_trees=10", "cluster.k=6")


def load_demo():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("catalog2vec_demo", REPO / "scripts" / "demo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", action="store_true", help="the demo configuration instead of test-sized training")
    args = p.parse_args()
    overrides = () if args.demo else SMALL

    from catalog2vec import storage
    from catalog2vec.spark import get_spark
    from tests.s3server import running_s3_server

    demo = load_demo()
    results: dict[str, dict[str, float]] = {}
    with running_s3_server() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(server.settings.environment())
        storage.configure(None)
        spark = get_spark("bench-object-store")
        storage.apply_to_spark(spark, server.settings)
        server.create_bucket("bench")
        for name, root in (("local", str(Path(tmp) / "lake")), ("s3", "s3a://bench/lake")):
            t0 = time.time()
            timings = demo.run_steps(demo.steps(root, "bench", overrides, impressions=4000,
                                                feature_version="bench", max_train=120))
            results[name] = {**dict(timings), "total": time.time() - t0}
        keys = server.keys("bench")
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n== object store vs local disk (same process, same run)")
    print(f"{'stage':<22} {'local s':>9} {'s3 s':>9} {'s3/local':>9}")
    for stage in results["local"]:
        lo, s3 = results["local"][stage], results["s3"][stage]
        print(f"{stage:<22} {lo:9.1f} {s3:9.1f} {s3 / max(lo, 1e-9):9.2f}")
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
        "load_avg_after": os.getloadavg(), "objects_in_bucket": len(keys),
        "ratio_total": results["s3"]["total"] / results["local"]["total"], "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
