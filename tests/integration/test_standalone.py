"""catalog2vec on a real multi-process Spark cluster: a standalone master and two 1-core workers on
127.0.0.1 (separate JVMs, started from the installed pyspark by ``catalog2vec.standalone``), jobs
submitted with ``spark-submit --master spark://…``, the lakehouse on the local S3 API server —
the deployment a user runs, shrunk to one machine.

* the DESIGN pipeline as one application on the cluster, over ``s3a://`` (executors on both
  workers; distributed training with 2 TorchDistributor ranks; embedding on both executors,
  each Python worker loading the model once);
* distributed training (2 ranks, ``local_mode=False``) gives the same weights as a 2-process
  ``local_mode=True`` run with the same seed;
* the cluster's embeddings equal a ``local[2]`` run's bit for bit;
* distributed training killed mid-run (the driver, ``kill -9``) resumes from its checkpoint on S3
  to the uninterrupted run's weights, and leaves no rank behind (``make test-long``);
* a worker JVM killed during ``embed``: Spark retries its tasks on the other worker and the
  table ends with exactly one row per item.
* the production route's slice (issue 33, ``make test-long``): one DAG task's submission rendered
  by ``render_submission`` and launched by the Spark provider's hook, the application, config and
  env archive (``make package``) fetched from the bucket, the jars from ``dist/jars/``, an empty
  ``SPARK_CONF_DIR``, executors on the archive's Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.sample import SMALL_PIPELINE, pipeline_result, write_pipeline_driver

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.standalone]

BUCKET = "c2v-cluster"
ROOT = f"s3a://{BUCKET}/lake"
STANDALONE = str(REPO / "conf" / "standalone.toml")
SMALL = SMALL_PIPELINE


def submit(master: str, args: list[str], cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    from catalog2vec.standalone import submit_command

    cmd, env = submit_command(master, args)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_same_weights(version_a: str, version_b: str) -> None:
    """The two model versions' published weights are equal tensor for tensor."""
    import torch

    from catalog2vec import models

    wa = models.load_torch(models.model_dir(ROOT, version_a) + "/model.pt")
    wb = models.load_torch(models.model_dir(ROOT, version_b) + "/model.pt")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])][:5]


def executor_logs(run_dir: str, app_id: str) -> dict[str, str]:
    """worker name -> concatenated stderr of that worker's executors for one application."""
    out = {}
    for worker in sorted(Path(run_dir).glob("worker-*")):
        text = "".join(p.read_text(errors="replace") for p in sorted(worker.glob(f"{app_id}/*/stderr")))
        if text:
            out[worker.name] = text
    return out


@pytest.fixture(scope="module")
def pipeline(standalone: Any, s3_server: Any, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from catalog2vec import storage

    storage.apply_to_spark(spark, s3_server.settings)
    s3_server.create_bucket(BUCKET)
    work = tmp_path_factory.mktemp("driver")
    script = write_pipeline_driver(work / "pipeline.py", ROOT, "cluster-run", "cluster", STANDALONE)
    t0 = time.time()
    proc = submit(standalone.master_url, [str(script)], work)
    info = pipeline_result(proc.stdout)
    assert proc.returncode == 0 and info, proc.stdout[-4000:] + proc.stderr[-6000:]
    info["wall_s"] = time.time() - t0
    print("[cluster pipeline] " + json.dumps(info))
    return info


def test_the_pipeline_runs_on_both_workers_over_s3(pipeline: dict[str, Any], standalone: Any, s3_server: Any) -> None:
    from catalog2vec import models
    from catalog2vec import standalone as cl
    from catalog2vec.lakehouse import read_arrow

    assert pipeline["master"] == standalone.master_url
    state = cl.master_state(standalone.web_ui)
    apps = {a["id"]: a for a in state.get("completedapps", []) + state.get("activeapps", [])}
    assert pipeline["app_id"] in apps
    logs = executor_logs(standalone.run_dir, pipeline["app_id"])
    assert sorted(logs) == ["worker-0", "worker-1"], "executors ran on both worker JVMs"
    # the Delta/S3A jars load in place (extraClassPath): nothing copied into the executors' work dirs
    app_bytes = {str(d): sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
                 for d in Path(standalone.run_dir).glob(f"worker-*/{pipeline['app_id']}")}
    assert len(app_bytes) == 2 and max(app_bytes.values()) < 50_000_000, app_bytes
    # embedding: every Python worker that ran the UDF loaded the model exactly once
    loads = [m for text in logs.values() for m in re.findall(r"\[catalog2vec\.embed\] model loaded pid=(\d+)", text)]
    per_worker = {w: len(re.findall(r"model loaded pid=", t)) for w, t in logs.items()}
    assert all(n >= 1 for n in per_worker.values()), per_worker
    assert len(loads) == len(set(loads)), f"a Python worker loaded the model twice: {loads}"
    # distributed training: 2 ranks, disjoint shards, rank 0 published the card and LATEST
    version = models.read_latest(ROOT)
    card = models.read_card(ROOT, version)
    assert card["world_size"] == 2 and card["data"]["ranks_disjoint"] is True
    assert [r["rank"] for r in card["data"]["ranks"]] == [0, 1]
    n_images = len(read_arrow(ROOT, "silver/images", columns=["item_id"]))
    emb = read_arrow(ROOT, "gold/item_embeddings", columns=["model_version", "item_id"])
    assert len(emb) == len(set(emb.column("item_id").to_pylist())) == n_images > 300
    assert set(emb.column("model_version").to_pylist()) == {version}
    keys = s3_server.keys(BUCKET)
    for prefix in ("lake/gold/ctr_predictions/_delta_log/", f"lake/reports/{version}/report.json",
                   f"lake/indexes/{version}/index.json", "lake/models/LATEST"):
        assert any(k.startswith(prefix) for k in keys), prefix


def test_cluster_embeddings_equal_a_local_run_bit_for_bit(pipeline: dict[str, Any], spark: Any) -> None:
    import embed as embed_job
    import numpy as np

    from catalog2vec import models
    from catalog2vec.lakehouse import read_arrow

    version = models.read_latest(ROOT)

    def table() -> dict[str, np.ndarray]:
        t = read_arrow(ROOT, "gold/item_embeddings", columns=["model_version", "item_id", "embedding"])
        return {i: np.asarray(e, dtype=np.float32) for m, i, e in zip(
            t.column("model_version").to_pylist(), t.column("item_id").to_pylist(),
            t.column("embedding").to_pylist(), strict=True) if m == version}

    on_cluster = table()
    rc = embed_job.main(["--lakehouse", ROOT, "--run-id", "cluster-run", "--model-version", version, "--full",
                         *[f"--set={s}" for s in SMALL]])
    assert rc == 0
    local = table()  # recomputed on local[2] and merged over the cluster's rows
    assert on_cluster.keys() == local.keys()
    assert all(on_cluster[i].tobytes() == local[i].tobytes() for i in local)


def test_distributed_training_equals_two_local_processes(pipeline: dict[str, Any], standalone: Any, spark: Any,
                                                         tmp_path: Path) -> None:

    from catalog2vec import models
    from catalog2vec.config import load_config
    from catalog2vec.vision.train import run_distributed

    det = [*SMALL, "train.deterministic=true", "train.max_steps=3", "train.seed=3"]
    proc = submit(standalone.master_url, [str(REPO / "jobs" / "train.py"), "--config", STANDALONE, "--lakehouse", ROOT,
                                       "--run-id", "dist", "--model-version", "dist-2ranks",
                                       *[f"--set={s}" for s in det]], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    cfg = load_config(STANDALONE, [*det, 'train.model_version="local-2procs"', "train.local_mode=true"],
                      lakehouse=ROOT, run_id="local")
    run_distributed(spark, cfg)
    a = models.read_card(ROOT, "dist-2ranks")
    b = models.read_card(ROOT, "local-2procs")
    assert a["world_size"] == b["world_size"] == 2 and a["steps"] == b["steps"] == 3
    assert_same_weights("dist-2ranks", "local-2procs")


# ---- the production route's cheapest real slice (issue 33; the whole scheduled day on this cluster:
# tests/deploy/test_dag_standalone.py, make test-long): one task of the DAG, its submission rendered by
# render_submission from the deployment's environment and launched by the Spark provider's hook, with
# nothing of the development environment on the cluster side
CPU_STAGE_EXCLUDES = ("nvidia-*", "cuda-*", "triton", "torch", "torchvision", "pyspark", "polars*", "duckdb",
                      "apache-beam", "faiss-cpu", "sympy", "lightgbm", "matplotlib", "scikit-learn", "scipy")
ROUTE_ITEMS = 40


def package_and_upload(out: Path, artifacts: str) -> Path:
    """``make package`` (a CPU stage's archive: ``--exclude-dist`` of the GPU and analysis stacks and of
    pyspark, which every Spark node's own installation puts on its Python workers' path) and
    ``aws s3 sync dist/ <artifacts>/ --exclude 'mwaa/*' --exclude '*.whl' --exclude 'jars/*'``."""
    from catalog2vec import storage

    excludes = [a for g in CPU_STAGE_EXCLUDES for a in ("--exclude-dist", g)]
    proc = subprocess.run(["bash", str(REPO / "scripts" / "package.sh"), "--out", str(out), "--compress-level", "1",
                           *excludes], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if f.is_file() and not rel.startswith(("mwaa/", "jars/")) and not rel.endswith(".whl"):
            storage.put_file(f, f"{artifacts}/{rel}")
    return out


def route_environment(standalone: Any, dist: Path, artifacts: str, lake: str, tmp_path: Path) -> dict[str, str]:
    """The Airflow worker's environment as terraform's startup script writes it (modules/airflow), for
    this cluster and bucket: the Spark connection, ``CATALOG2VEC_*`` (jobs, config and env archive in
    the bucket; the jars as ``local://`` files the nodes hold, dist/jars/), the jars on the submitting
    Spark's own class path (``SPARK_DIST_CLASSPATH``), an empty ``SPARK_CONF_DIR``, no ``PYSPARK_*``.
    The nodes have an S3 connector on their class path, as EMR's nodes do (dist/jars/: hadoop-aws,
    the SDK bundle, the analytics accelerator). The driver runs in client mode on the submitting machine: its Python is the same archive,
    fetched from the bucket and unpacked (as an EMR step does)."""
    from catalog2vec import storage

    driver_env = tmp_path / "driver-env"
    driver_env.mkdir()
    archive = storage.get_file(f"{artifacts}/catalog2vec-env.tar.gz", tmp_path / "env.tar.gz")
    subprocess.run(["tar", "-xzf", archive, "-C", str(driver_env)], check=True, timeout=300)
    (tmp_path / "spark-conf").mkdir()
    s3a = {k: v for k, v in storage.s3_settings().spark_conf().items()
           if not k.endswith((".access.key", ".secret.key", "aws.credentials.provider"))}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_", "CATALOG2VEC_", "AIRFLOW"))}
    env.update({
        "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_CONF_DIR": str(tmp_path / "spark-conf"),
        "SPARK_DIST_CLASSPATH": f"{dist / 'jars'}/*", "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": standalone.master_url}),
        "CATALOG2VEC_LAKEHOUSE": lake, "CATALOG2VEC_JOBS_DIR": f"{artifacts}/jobs",
        "CATALOG2VEC_CONFIG": f"{artifacts}/conf/standalone.toml",
        "CATALOG2VEC_ENV_ARCHIVE": f"{artifacts}/catalog2vec-env.tar.gz",
        "CATALOG2VEC_DRIVER_PYTHON": str(driver_env / "bin" / "python"),
        "CATALOG2VEC_JARS": ",".join(f"local://{j}" for j in sorted((dist / "jars").glob("*.jar"))),
        # the nodes' own S3 connector (EMR's is built in): an executor fetches the s3a:// archive
        # before any --jars are on its class path
        "CATALOG2VEC_SPARK_CONF": json.dumps({**s3a, "spark.ui.enabled": "false",
                                              "spark.executor.extraClassPath": f"{dist / 'jars'}/*"}),
        "CATALOG2VEC_DEADLINE_HOURS": "0",
    })
    return env


# 139 s idle (2026-12-05 03:56), 554 s at load 16-19 on the 2-core machine (package + upload 108 s, spark-submit 446 s —
# each executor copies the 690 MB of --jars into its work dir and unpacks the 214 MB archive): with
# make test at 42.5 of its 45 minutes, it runs in make test-long beside the two-day DAG run.
@pytest.mark.long
def test_a_dag_task_runs_on_the_cluster_from_the_bucket_with_the_packed_environment(
        standalone: Any, s3_server: Any, tmp_path: Path) -> None:
    """``ingest_catalog`` of the DAG: the application, ``--py-files``, the config (``--files`` and
    ``--config``) and the env archive fetched from the bucket over ``s3a://``, executors on the
    archive's Python, Delta and S3A from the shipped jars, the table written to the bucket."""
    from catalog2vec import standalone as cl
    from catalog2vec import storage
    from catalog2vec.lakehouse import read_arrow
    from tests.conftest import EXAMPLES

    t0 = time.time()
    bucket = s3_server.create_bucket("c2v-route")
    artifacts, lake = f"s3://{bucket}/artifacts", f"s3://{bucket}/lake"
    dist = package_and_upload(tmp_path / "dist", artifacts)
    rows = (EXAMPLES / "styles.csv").read_text().splitlines()[: ROUTE_ITEMS + 1]
    storage.write_text(f"{lake}/landing/styles.csv", "\n".join(rows) + "\n")
    env = route_environment(standalone, dist, artifacts, lake, tmp_path)
    t_submit = time.time()
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "deploy" / "submit_task.py"),
                           "ingest_catalog", "2026-12-05T02:00:00", json.dumps({"input_path": f"{lake}/landing/styles.csv"})],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "SUBMIT_OK" in proc.stdout, out[-6000:]
    cmd = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("SUBMIT_COMMAND ")).split(" ", 1)[1])
    art_a = f"s3a://{bucket}/artifacts"
    opts = " ".join(cmd)
    assert f"--master {standalone.master_url}" in opts
    assert cmd[cmd.index("--py-files") + 1] == f"{art_a}/jobs/_common.py"
    assert cmd[cmd.index("--files") + 1] == f"{art_a}/conf/standalone.toml"
    assert cmd[cmd.index("--archives") + 1] == f"{art_a}/catalog2vec-env.tar.gz#environment"
    assert {j.rsplit("/", 1)[1] for j in cmd[cmd.index("--jars") + 1].split(",")} == \
        set((dist / "jars" / "jars.txt").read_text().split())
    assert f"{art_a}/jobs/ingest_catalog.py" in cmd and f"{artifacts}/conf/standalone.toml" in cmd
    # the table is in the bucket: every input row is an item or a quarantine row with a reason
    items = read_arrow(lake, "bronze/catalog_items", columns=["item_id"]).num_rows
    quarantined = (read_arrow(lake, "bronze/quarantine", columns=["reason"]).num_rows
                   if storage.exists(f"{lake}/bronze/quarantine/_delta_log") else 0)
    assert items + quarantined == ROUTE_ITEMS and items >= ROUTE_ITEMS - 2, (items, quarantined)
    # the executors ran on both workers from the archive (unpacked in their work dirs), not from .venv
    state = cl.master_state(standalone.web_ui)
    app = max(state.get("completedapps", []), key=lambda a: a["starttime"])  # this test's, the newest
    unpacked = sorted(Path(standalone.run_dir).glob(f"worker-*/{app['id']}/*/environment/bin/python"))
    assert unpacked, "no executor unpacked the env archive"
    for d in Path(standalone.run_dir).glob(f"worker-*/{app['id']}"):
        shutil.rmtree(d, ignore_errors=True)  # the jars copied per executor (~1.4 GB)
    print(f"[route] package+upload {t_submit - t0:.0f}s, submit {time.time() - t_submit:.0f}s")


def training_processes() -> list[int]:
    """PIDs of torchrun agents or training ranks alive on this machine (TorchDistributor's workers)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "torch.distributed.run" in cmd or "torchrun" in cmd:
            found.append(int(proc.name))
    return found


# ~150 s idle: in `make test-long`. Its slices stay in `make test`: a killed training job resumes from
# its checkpoint in the bucket (test_object_store.py), the killed job group leaves no process and
# resumes to the uninterrupted weights (test_train_resume.py), and 2-rank training on this cluster
# equals 2 local processes (above).
@pytest.mark.long
def test_distributed_training_resumes_after_the_job_is_killed(pipeline: dict[str, Any], standalone: Any,
                                                             s3_server: Any, spark: Any, tmp_path: Path) -> None:
    """``kill -9`` of the spark-submit driver mid-training (after its first checkpoint): no rank
    trains on, the next submission resumes from the checkpoint on S3, and its weights equal an
    uninterrupted 2-process run with the same seed."""
    from catalog2vec import models
    from catalog2vec import standalone as cl
    from catalog2vec.config import load_config
    from catalog2vec.vision.train import run_distributed

    det = [*SMALL, "train.deterministic=true", "train.seed=5", "train.checkpoint_every=1"]
    version = "dist-resume"
    ckpt_re = re.compile(rf"lake/models/{version}/checkpoints/ckpt-(\d{{8}})\.pt$")

    def checkpoints() -> list[int]:
        return sorted(int(m.group(1)) for k in s3_server.keys(BUCKET, f"lake/models/{version}/")
                      if (m := ckpt_re.match(k)))

    def train_args(run_id: str) -> list[str]:
        return [str(REPO / "jobs" / "train.py"), "--config", STANDALONE, "--lakehouse", ROOT, "--run-id", run_id,
                "--model-version", version, *[f"--set={s}" for s in det]]

    cmd, env = cl.submit_command(standalone.master_url, train_args("killed"))
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline, first = time.time() + 600, None
    while time.time() < deadline and proc.poll() is None and first is None:
        first = next(iter(checkpoints()), None)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):  # already gone if the job ended first
        os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert first is not None, "no checkpoint was written before the job ended: " + out[-4000:]
    assert proc.returncode == -signal.SIGKILL, f"the job finished before the kill ({proc.returncode})"
    # the master ends the application and its executors; no rank outlives the killed job
    deadline = time.time() + 120
    while time.time() < deadline and (cl.master_state(standalone.web_ui).get("activeapps") or training_processes()):
        time.sleep(1)
    assert not cl.master_state(standalone.web_ui).get("activeapps")
    assert not training_processes(), "training ranks outlived the killed job"
    assert f"lake/models/{version}/model.pt" not in s3_server.keys(BUCKET, f"lake/models/{version}/")
    killed_at = checkpoints()[-1]

    resumed = submit(standalone.master_url, train_args("resumed"), tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-4000:]
    card = models.read_card(ROOT, version)
    assert card["world_size"] == 2 and card["complete"] is True
    assert 1 <= card["resumed_from_step"] == killed_at < card["steps"], (card["resumed_from_step"], killed_at)

    ref = load_config(STANDALONE, [*det, 'train.model_version="dist-resume-ref"', "train.local_mode=true"],
                      lakehouse=ROOT, run_id="reference")
    run_distributed(spark, ref)  # uninterrupted, 2 local processes (equal to 2 cluster ranks: test above)
    assert models.read_card(ROOT, "dist-resume-ref")["steps"] == card["steps"]
    assert_same_weights(version, "dist-resume-ref")


def test_embed_finishes_after_a_worker_jvm_is_killed(pipeline: dict[str, Any], standalone: Any, s3_server: Any,
                                                     tmp_path: Path) -> None:
    """Last in the module: it leaves the cluster with one worker."""
    from catalog2vec import models
    from catalog2vec import standalone as cl
    from catalog2vec.lakehouse import read_arrow

    version = models.read_latest(ROOT)
    cmd, env = cl.submit_command(standalone.master_url, [
        str(REPO / "jobs" / "embed.py"), "--config", STANDALONE, "--lakehouse", ROOT, "--run-id", "kill",
        "--model-version", version, "--full", "--batch-size", "4", *[f"--set={s}" for s in SMALL]])
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        busy = [w for w in cl.master_state(standalone.web_ui)["workers"] if w.get("coresused")]
        apps = sorted(Path(standalone.run_dir, "worker-1").glob("app-*"))
        text = "".join(p.read_text(errors="replace") for p in apps[-1].glob("*/stderr")) if apps else ""
        if len(busy) == 2 and "[catalog2vec.embed] model loaded" in text:  # the UDF runs on worker-1
            killed = cl.kill_worker(standalone, 1)
            break
        time.sleep(0.5)
    out, _ = proc.communicate(timeout=900)
    assert killed, "the embed job never ran on worker-1"
    assert proc.returncode == 0, out[-5000:]
    t = read_arrow(ROOT, "gold/item_embeddings", columns=["model_version", "item_id", "run_id"])
    ids = [i for m, i in zip(t.column("model_version").to_pylist(), t.column("item_id").to_pylist(), strict=True)
           if m == version]
    n_images = len(read_arrow(ROOT, "silver/images", columns=["item_id"]))
    assert len(ids) == len(set(ids)) == n_images  # exactly one row per item
