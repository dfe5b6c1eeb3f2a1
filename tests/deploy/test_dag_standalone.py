"""A full scheduled run for real (issue 17): ``dag.test()`` with the Spark connection on the local
standalone cluster (a master and two 1-core workers on 127.0.0.1, separate JVMs) and the lakehouse
on the local S3 API server, on the 384-item core of the bundled sample — then a second run on the
next logical date with new items in the crawl, which skips training (retrain interval) and embeds
only the new items with the model version the first run trained.

The submissions are the production route's (issue 33, docs/deploy.md): ``make package``'s jobs/ and
conf/ uploaded to ``<bucket>/artifacts/`` and the DAG's ``render_submission`` pointing at them
(``CATALOG2VEC_JOBS_DIR`` / ``CATALOG2VEC_CONFIG``), so spark-submit fetches the application,
``--py-files`` and ``--files`` from ``s3a://`` and the jobs read their config from the bucket. Not
the production part here: the env archive (the workers' Python is .venv: a 4 GB archive does not
fit the in-memory S3 server) and the jars (the local cluster's JVMs load them from conf/spark's
class path rather than fetching 690 MB per application)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import REPO, run_dag
from tests.deploy.test_dag import EXPECTED_UPSTREAM, OUTLETS, asset_events
from tests.sample import core_sample_dir

pytestmark = [pytest.mark.slow, pytest.mark.standalone, pytest.mark.long]  # ~30 min: make test-long

BUCKET = "c2v-dag"
ROOT = f"s3a://{BUCKET}/lake"
SMALL = ["train.image_size=32", "train.epochs=1", "train.batch_size=16", "train.checkpoint_every=0",
         "ctr.num_trees=10", "ctr.lr_max_iter=20", "ctr.ablate_visual=false", "cluster.max_iter=10"]
DAY1_ITEMS = 300
EMBED_COUNTS = re.compile(r"\[embed\] model_version=(\S+) images=(\d+) skipped=(\d+) pending=(\d+) embedded=(\d+)")


def crawl(dst: Path, n: int | None) -> Path:
    """The first ``n`` rows of the core sample (all when None) beside a copy of its images."""
    src = core_sample_dir()
    if not (dst / "images").is_dir():
        shutil.copytree(src / "images", dst / "images")
    with (src / "styles.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    out = dst / f"styles_{n or 'all'}.csv"
    with out.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows if n is None else rows[: n + 1])
    return out


def production_submissions(bucket: str) -> dict[str, str]:
    """Upload jobs/ and conf/ as `aws s3 sync dist/ <artifacts>/` does (docs/deploy.md) and return
    the deployment environment whose rendered submissions fetch them from the bucket."""
    from catalog2vec import storage

    art = f"s3://{bucket}/artifacts"
    for name in ("jobs", "conf"):
        for f in sorted((REPO / name).glob("*.py" if name == "jobs" else "*.toml")):
            storage.put_file(f, f"{art}/{name}/{f.name}")
    # spark-submit opens s3a:// before any Python runs: the endpoint comes from the deployment's
    # Spark conf (credentials from the AWS_* environment, S3A's default chain)
    s3a = {k: v for k, v in storage.s3_settings().spark_conf().items()
           if not k.endswith((".access.key", ".secret.key", "aws.credentials.provider"))}
    return {"CATALOG2VEC_JOBS_DIR": f"{art}/jobs", "CATALOG2VEC_CONFIG": f"{art}/conf/standalone.toml",
            "CATALOG2VEC_SPARK_CONF": json.dumps(s3a)}


@pytest.mark.timeout(3000)
def test_two_scheduled_days_on_the_standalone_cluster_over_s3(airflow_db: Path, standalone: Any, s3_server: Any,
                                                               tmp_path: Path) -> None:
    from catalog2vec import models
    from catalog2vec.lakehouse import read_arrow

    s3_server.create_bucket(BUCKET)
    inputs = tmp_path / "crawl"
    inputs.mkdir()
    # the deployment's settings: the cluster's Spark connection, the lakehouse (also the Assets' URIs)
    env = {"AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": standalone.master_url}),
           "CATALOG2VEC_LAKEHOUSE": ROOT, **production_submissions(BUCKET)}
    # the embedded (Derby) metastore of register_tables lives on local disk beside an S3 lakehouse
    small = [*SMALL, f"metastore.dir={json.dumps(str(tmp_path / 'metastore'))}"]
    base = {"lakehouse": ROOT, "extra_set": small,
            "impressions": "synthetic", "simulated_impressions": 3000}
    day1 = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=1)

    # ---- day 1: everything, training included
    states, log1 = run_dag(tmp_path / "day1", {**base, "input_path": str(crawl(inputs, DAY1_ITEMS))},
                           logical_date=day1.isoformat(), timeout=2700, extra_env=env)
    assert states.pop("__dagrun__") == "success", log1[-6000:]
    assert states.pop("ingest_impressions") == "skipped"
    assert states == dict.fromkeys(set(EXPECTED_UPSTREAM) - {"ingest_impressions"}, "success")
    assert f"--master {standalone.master_url}" in log1  # every job went to the standalone master
    # ... from the bucket: the application and --py-files over s3a://, the config with --files
    assert f"s3a://{BUCKET}/artifacts/jobs/embed.py" in log1 and f"--py-files s3a://{BUCKET}/artifacts/jobs/_common.py" in log1
    assert f"--files s3a://{BUCKET}/artifacts/conf/standalone.toml" in log1
    events = asset_events(log1)
    assert {e["asset"] for e in events} == {"catalog2vec." + t.replace("/", ".") for ts in OUTLETS.values() for t in ts}
    assert all(e["uri"].startswith(f"s3://{BUCKET}/lake/gold/") for e in events)
    (version,) = {e["extra"]["model_version"] for e in events if e["task_id"] in ("embed", "neighbors", "cluster")}
    assert models.read_latest(ROOT) == version
    (m1,) = EMBED_COUNTS.findall(log1)
    assert m1 == (version, str(DAY1_ITEMS), "0", str(DAY1_ITEMS), str(DAY1_ITEMS))

    # ---- day 2: 84 new items in the crawl; the model is a day old (< retrain_every_days)
    states, log2 = run_dag(tmp_path / "day2", {**base, "input_path": str(crawl(inputs, None))},
                           logical_date=(day1 + timedelta(days=1)).isoformat(), timeout=2700, extra_env=env)
    assert states.pop("__dagrun__") == "success", log2[-6000:]
    assert states.pop("train") == "skipped"
    (m2,) = EMBED_COUNTS.findall(log2)
    n_all = len((core_sample_dir() / "styles.csv").read_text().strip().splitlines()) - 1
    new = n_all - DAY1_ITEMS
    assert m2 == (version, str(n_all), str(DAY1_ITEMS), str(new), str(new))  # only the new items
    assert models.read_latest(ROOT) == version
    emb = read_arrow(ROOT, "gold/item_embeddings", columns=["model_version", "item_id", "run_id"])
    ids = emb.column("item_id").to_pylist()
    assert len(ids) == len(set(ids)) == n_all and set(emb.column("model_version").to_pylist()) == {version}
    run_ids = emb.column("run_id").to_pylist()
    assert len(set(run_ids)) == 2 and sorted(run_ids.count(r) for r in set(run_ids)) == [new, DAY1_ITEMS]
