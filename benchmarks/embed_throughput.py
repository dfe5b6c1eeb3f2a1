"""Throughput of the Spark embedding job (decode + inference + Delta MERGE) against the bare model
forward on pre-decoded tensors: same model, batch size and CPU threads, in one run.

    .venv/bin/python benchmarks/embed_throughput.py --images 1536 --image-size 96 --workers 2

* job: ``catalog2vec.embed.job.run_embed(--full)`` in a local[W] Spark session that is already
  started (JVM start excluded; the Python workers are warmed by a first small run); W tasks run
  concurrently, each with ``spark.task.cpus`` = 1 torch thread.
* baseline: ``model(x)`` + ``tag_probabilities`` + top-k on tensors decoded beforehand, one process
  with W torch threads.
* peak RSS (psutil, sampled every 0.1 s): driver Python, the JVM (driver + executor in local mode)
  and the Python workers. Embeddings are never collected to the driver.
* ``--profile``: where the job's time goes, each part timed alone in the same session after the
  job: the Spark read of ``silver/images`` to a no-op sink; the read + ``predict_batch_udf`` (Arrow
  transfer, decode, forward) to a no-op sink; the embedding core in one process (decode + forward,
  ``InferenceModel.predict``). Writing (persist + the two Delta MERGEs) = job - UDF pass.
* ``--gpu-bare``: bare ResNet-50 bf16 channels_last inference at 224 px on CUDA (needs a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "jobs")]


class PeakRss(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.peak = {"driver_python": 0, "jvm": 0, "python_worker_max": 0, "python_workers_sum": 0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak["driver_python"] = max(self.peak["driver_python"], self.me.memory_info().rss)
                workers = 0
                for c in self.me.children(recursive=True):
                    try:
                        name, rss = " ".join(c.cmdline()), c.memory_info().rss
                    except Exception:
                        continue
                    if "java" in name:
                        self.peak["jvm"] = max(self.peak["jvm"], rss)
                    elif "python" in name:
                        workers += rss
                        self.peak["python_worker_max"] = max(self.peak["python_worker_max"], rss)
                self.peak["python_workers_sum"] = max(self.peak["python_workers_sum"], workers)
            except Exception:
                pass
            time.sleep(0.1)


def build_fixture(root: Path, n: int, image_size: int, arch: str, words: int, spark) -> None:  # type: ignore[no-untyped-def]
    import torch

    from catalog2vec.vision import model_dir
    from catalog2vec.vision.model import build_model, save_model_dir
    from tests.unit.embed.helpers import image_rows, sample_ids, write_silver_images

    base = image_rows(sample_ids())
    rows = [{**base[i % len(base)], "item_id": f"{base[i % len(base)]['item_id']}-{i}"} for i in range(n)]
    write_silver_images(spark, root, rows=rows)
    torch.manual_seed(0)
    model = build_model(arch, words)
    save_model_dir(model_dir(root, "bench"), model.eval(), [f"w{i}" for i in range(words)], "v-bench",
                   {"image_size": image_size}, {"model_version": "bench"})


def bare_forward(root: Path, n: int, batch_size: int, threads: int, top_n: int) -> float:
    import torch

    from catalog2vec.embed.core import InferenceModel
    from catalog2vec.lakehouse import read_arrow

    torch.set_num_threads(threads)
    m = InferenceModel.from_dir(str(root / "models" / "bench"), top_n=top_n, device="cpu", threads=threads)
    images = read_arrow(root, "silver.images", columns=["image"]).column("image").to_pylist()
    x, _ = m.preprocessor.batch(images[: min(n, len(images))])
    m.forward(x[:batch_size])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], batch_size):
        _z, p = m.forward(x[i : i + batch_size])
        p.topk(m.top_n, dim=1)
    return x.shape[0] / (time.perf_counter() - t0)


def core_from_bytes(root: Path, batch_size: int, threads: int, top_n: int) -> float:
    """Images/s of ``InferenceModel.predict`` (decode + transform + forward + top-N) in one process."""
    import torch

    from catalog2vec.embed.core import InferenceModel
    from catalog2vec.lakehouse import read_arrow

    torch.set_num_threads(threads)
    m = InferenceModel.from_dir(str(root / "models" / "bench"), top_n=top_n, device="cpu", threads=threads)
    images = read_arrow(root, "silver.images", columns=["image"]).column("image").to_pylist()
    m.predict(images[:batch_size])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(images), batch_size):
        m.predict(images[i : i + batch_size])
    return len(images) / (time.perf_counter() - t0)


def spark_parts(spark, root: Path, batch_size: int, top_n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Seconds of the Spark read alone and of read + predict_batch_udf, both to a no-op sink (the
    model is already cached in the Python workers by the job)."""
    from pyspark.sql import functions as F

    from catalog2vec.embed.udf import embedding_udf
    from catalog2vec.lakehouse import read_table
    from catalog2vec.schemas import silver

    images = read_table(spark, str(root), silver.IMAGES).select("item_id", "sha256", "image")
    parts = max(1, min(int(spark.sparkContext.defaultParallelism), -(-images.count() // batch_size)))
    images = images.repartition(parts)
    t0 = time.perf_counter()
    images.select("item_id", F.length("image").alias("n")).write.format("noop").mode("overwrite").save()
    read_s = time.perf_counter() - t0
    udf = embedding_udf(str(root / "models" / "bench"), top_n, batch_size)
    t0 = time.perf_counter()
    images.select("item_id", udf("image").alias("r")).select("item_id", "r.*").write.format("noop") \
        .mode("overwrite").save()
    return {"spark_read_s": round(read_s, 2), "spark_udf_pass_s": round(time.perf_counter() - t0, 2)}


def gpu_bare(batch_size: int, iters: int) -> dict[str, float]:
    import torch
    import torchvision

    model = torchvision.models.resnet50(weights=None).cuda().eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, 224, 224, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(10):
            model(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"gpu": torch.cuda.get_device_name(), "batch": batch_size, "images_per_s": batch_size * iters / dt}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1536)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--words", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="local[W]: concurrent tasks (1 torch thread each)")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--profile", action="store_true", help="also time the job's parts alone (see above)")
    ap.add_argument("--gpu-bare", action="store_true", help="only: bare ResNet-50 bf16 224 px on CUDA")
    ap.add_argument("--json", default="", help="also write the results here")
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    if args.gpu_bare:
        res = {str(b): gpu_bare(b, 50) for b in (128, 256)}
        print(json.dumps(res, indent=2))
        return 0

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from catalog2vec.config import load_config
    from catalog2vec.embed.job import run_embed
    from catalog2vec.spark import get_spark

    spark = get_spark("embed-bench", master=f"local[{args.workers}]",
                      conf={"spark.default.parallelism": str(args.workers)})
    with tempfile.TemporaryDirectory() as tmp:
        warm, root = Path(tmp) / "warm", Path(tmp) / "bench"
        build_fixture(warm, 2 * args.batch_size * args.workers, args.image_size, args.arch, args.words, spark)
        build_fixture(root, args.images, args.image_size, args.arch, args.words, spark)
        over = [f"embed.batch_size={args.batch_size}", f"embed.top_n={args.top_n}", "embed.commit_rows=10000000"]
        run_embed(spark, load_config(None, over, lakehouse=str(warm)), "bench")  # start + warm the workers
        rss = PeakRss()
        rss.start()
        t0 = time.perf_counter()
        _, counts = run_embed(spark, load_config(None, over, lakehouse=str(root)), "bench", full=True)
        job_s = time.perf_counter() - t0
        rss.stop.set()
        rss.join()
        job_ips = counts.embedded / job_s
        parts = spark_parts(spark, root, args.batch_size, args.top_n) if args.profile else {}
        bare_ips = bare_forward(root, args.images, args.batch_size, args.workers, args.top_n)
        if args.profile:
            core_ips = core_from_bytes(root, args.batch_size, args.workers, args.top_n)
            n = counts.embedded
            parts.update({"job_s": round(job_s, 2), "core_in_process_s": round(n / core_ips, 2),
                          "bare_forward_s": round(n / bare_ips, 2),
                          "writing_s (job - udf pass)": round(job_s - parts["spark_udf_pass_s"], 2),
                          "spark_and_arrow_s (udf pass - core)": round(parts["spark_udf_pass_s"] - n / core_ips, 2),
                          "decode_transform_s (core - bare)": round(n / core_ips - n / bare_ips, 2)})
    spark.stop()
    res = {
        "images": counts.embedded,
        "arch": args.arch,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "threads": args.workers,
        "job_seconds": round(job_s, 2),
        "job_images_per_s": round(job_ips, 1),
        "bare_forward_images_per_s": round(bare_ips, 1),
        "ratio_job_over_bare": round(job_ips / bare_ips, 3),
        "peak_rss_mib": {k: round(v / 2**20) for k, v in rss.peak.items()},
        "load_avg_1m_start": load_start,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    if args.profile:
        res["profile_s"] = parts
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
