"""An object-store outage in the middle of each job that writes (issue 35): the lakehouse lives on the
local S3 server behind the fault proxy (tests/faults.py), so Spark's S3A, s3fs/botocore and delta-rs
all meet the same outage while the job runs.

The promise checked for every job: either the retries absorb the outage (the job succeeds and its
output is identical to the clean run's) or the job ends with one clear error and a non-zero exit,
after which a re-run produces output identical to the clean run's. The job's own output (tables,
artifacts) is deleted before the faulty run, so "identical" means written again under the fault,
not left over. The outage starts the moment the job's first output object appears in the bucket (watched on
the server, not through the proxy), so it lands in the middle of the job's writes.

The clean pipeline runs once per module on the 384-item core (only as far as the selected cases
need). ``ingest_catalog`` and ``build_vocab`` are cheap and run in ``make test``; the rest of the
matrix (images, train, embed, neighbors, CTR) needs the pipeline up to training and is ``long``."""

from __future__ import annotations

import json
import os
import re
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog2vec import storage
from tests.faults import FaultProxy, fault_proxy
from tests.integration.test_object_store import WALL_CLOCK, load_demo
from tests.sample import FULL_SAMPLE, core_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BUCKET = "c2v-job-outages"
ROOT = f"s3a://{BUCKET}/lake"
RUN_ID = "outage-run"
FEATURES = "outage-ctr"
SMALL = ("train.image_size=32", "train.epochs=1", "train.batch_size=32", "train.workers=0",
         "train.checkpoint_every=2", "train.deterministic=true", "similarity.epochs=2", "ctr.num_trees=10",
         "cluster.k=6")
FAST = {"CATALOG2VEC_S3_CONNECT_TIMEOUT_S": "2", "CATALOG2VEC_S3_READ_TIMEOUT_S": "4",
        "CATALOG2VEC_S3_RETRY_ATTEMPTS": "8", "CATALOG2VEC_S3_RETRY_BUDGET_S": "40"}
OUTAGE_S = 5.0
PER_TYPE = 4  # 24 article types x 4 = 96 items

# each job → (the tables it writes, the artifact prefixes it writes, the outage it meets)
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "ingest_catalog": (("bronze/catalog_items", "bronze/quarantine"), (), "slowdown"),
    "build_vocab": (("silver/catalog_tokens", "silver/vocab"), ("vocab",), "reset"),
    "ingest_images": (("silver/images",), (), "reset"),
    "train": ((), ("models",), "slowdown"),
    "embed": (("gold/item_embeddings", "gold/item_tags"), (), "reset"),
    "neighbors": (("gold/item_neighbors",), ("indexes",), "hang"),
    "build_ctr_features": (("gold/ctr_features",), ("models/ctr/features",), "refuse"),
    "train_ctr": (("gold/ctr_predictions", "gold/ctr_metrics"), ("models/ctr/" + FEATURES,), "slowdown"),
}
CHEAP = ("ingest_catalog", "build_vocab")


class Lake:
    """The clean pipeline, run lazily job by job; per job its clean output and wall time."""

    def __init__(self, proxy: FaultProxy, s3: Any, work: Path) -> None:
        self.proxy, self.s3, self.work = proxy, s3, work
        demo = load_demo()
        self.steps = dict(demo.steps(ROOT, RUN_ID, SMALL, impressions=2000, feature_version=FEATURES,
                                     max_train=60, sample=str(small_sample(work.parent / "sample"))))
        self.order = list(self.steps)
        self.done: dict[str, float] = {}
        self.clean: dict[str, Any] = {}

    def run(self, job: str) -> int:
        import importlib

        return int(importlib.import_module(job).main(list(self.steps[job])))

    def upto(self, job: str) -> None:
        for name in self.order[: self.order.index(job) + 1]:
            if name in self.done:
                continue
            t0 = time.monotonic()
            assert self.run(name) == 0, f"clean {name} failed"
            self.done[name] = time.monotonic() - t0
            if name in CASES:
                self.clean[name] = output(name)


def small_sample(d: Path, per_type: int = PER_TYPE) -> Path:
    """The first ``per_type`` items of each article type of the core sample (96 items)."""
    import csv

    d.mkdir(exist_ok=True)
    fields, rows = core_rows(per_type)
    with (d / "styles.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if not (d / "images").exists():
        os.symlink(FULL_SAMPLE / "images", d / "images")
    return d / "styles.csv"


def _table(table: str) -> list[tuple[Any, ...]]:
    from catalog2vec.lakehouse import read_pandas

    if not storage.exists(storage.join(ROOT, table, "_delta_log")):
        return []  # e.g. no quarantined row in the clean sample: the faulty run must not create one
    df = read_pandas(ROOT, table)
    df = df[sorted(c for c in df.columns if c not in WALL_CLOCK)]
    df = df.map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, sort_keys=True, default=str))
    return sorted(map(tuple, df.to_numpy().tolist()))


def _artifacts(prefix: str) -> dict[str, Any]:
    """Every file under ``<root>/<prefix>``: the weights as tensors (a pickle's bytes may differ),
    JSON without wall-clock fields, anything else as bytes (:func:`_content`). Fresh ids in names
    are masked; a second file under the same masked name (a duplicate) is a key of its own."""
    out: dict[str, Any] = {}
    base = storage.join(ROOT, prefix)
    if not storage.exists(base):
        return out
    for path in storage.list_files(base):
        rel = _BUILD_ID.sub("<build>", _UUID.sub("<uuid>", path[len(base):]))  # fresh ids per write
        key, n = rel, 1
        while key in out:
            n += 1
            key = f"{rel}#{n}"
        out[key] = _content(rel, storage.read_bytes(path))
    return out


def _content(rel: str, data: bytes) -> Any:
    """What of one artifact must equal the clean run's: weights as tensors, JSON without wall-clock
    fields (a model card: what it says about the model), Parquet by its rows, Spark ML metadata
    without its timestamp."""
    import io

    import pyarrow.parquet as pq
    import torch

    if rel.endswith(".pt"):
        if "/checkpoints/" in rel:
            return len(data) > 0
        state = torch.load(io.BytesIO(data), weights_only=True)
        return {k: v.tolist() for k, v in state.items()} if isinstance(state, dict) else len(data) > 0
    if rel.endswith("model_card.json") and "/ctr/" not in rel:
        card = json.loads(data)
        return {k: card.get(k) for k in ("model_version", "vocab_version", "steps", "complete", "world_size",
                                         "images_trained", "data")} | {"test": card.get("metrics", {}).get("test")}
    if rel.endswith(".json"):
        return _drop_clock(json.loads(_BUILD_ID.sub("<build>", data.decode("utf-8"))))
    if rel.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pylist()
    if "/metadata/" in rel and not rel.endswith(("_SUCCESS", ".crc")):
        return [_drop_clock({k: v for k, v in json.loads(ln).items() if k not in ("timestamp", "uid")})
                for ln in data.decode("utf-8").splitlines() if ln.strip()]
    if rel.endswith((".html", ".png")):
        return len(data) > 0  # rendered with timestamps
    return data


_BUILD_ID = re.compile(r"\b[0-9a-f]{12}\b")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _drop_clock(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _drop_clock(v) for k, v in doc.items()
                if not k.endswith(("_at", "_s", "wall", "seconds", "timings", "throughput")) and k != "timings"}
    if isinstance(doc, list):
        return [_drop_clock(v) for v in doc]
    return doc


def output(job: str) -> dict[str, Any]:
    tables, prefixes, _ = CASES[job]
    return {**{t: _table(t) for t in tables}, **{p: _artifacts(p) for p in prefixes}}


def remove_output(job: str) -> None:
    tables, prefixes, _ = CASES[job]
    for p in (*tables, *prefixes):
        path = storage.join(ROOT, p)
        if storage.exists(path):
            storage.remove(path, recursive=True)


@pytest.fixture(scope="module")
def lake(spark: Any, s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with fault_proxy(s3_server.endpoint) as proxy, pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        for key, value in FAST.items():
            mp.setenv(key, value)
        storage.configure(None)
        storage.apply_to_spark(spark, storage.s3_settings())  # S3A: the new bucket's filesystem uses the proxy
        for key, value in storage.RetryPolicy.from_env().s3a_conf().items():
            spark.sparkContext._jsc.hadoopConfiguration().set(key.removeprefix("spark.hadoop."), value)
        s3_server.create_bucket(BUCKET)
        work = tmp_path_factory.mktemp("outage-cwd")
        old = os.getcwd()
        os.chdir(work)
        try:
            yield Lake(proxy, s3_server, work)
        finally:
            os.chdir(old)
            hconf = spark.sparkContext._jsc.hadoopConfiguration()
            hconf.unset("fs.s3a.endpoint")
            storage.configure(None)
    storage.apply_to_spark(spark, storage.s3_settings())  # later tests talk to the store directly again


RESULTS: dict[str, str] = {}


def _case(job: str) -> Any:
    marks = [] if job in CHEAP else [pytest.mark.long]
    return pytest.param(job, marks=marks, id=job)


@pytest.mark.parametrize("job", [_case(j) for j in CASES])
def test_an_outage_mid_job_is_absorbed_or_fails_cleanly_and_a_rerun_is_identical(
        lake: Lake, job: str, capsys: pytest.CaptureFixture[str]) -> None:
    lake.upto(job)
    clean, clean_s = lake.clean[job], lake.done[job]
    assert clean[next(iter(clean))], f"the clean {job} wrote nothing to compare"
    remove_output(job)
    mode = CASES[job][2]
    seen_before = lake.proxy.stats[f"conn:{mode}"]
    capsys.readouterr()
    watch = [f"lake/{p}/" for p in (*CASES[job][0], *CASES[job][1])]
    outage = lake.proxy.outage_when(lambda: any(lake.s3.keys(BUCKET, w) for w in watch), mode, OUTAGE_S)
    t0 = time.monotonic()
    try:
        rc, error = lake.run(job), ""
    except Exception as exc:  # exit 1: the traceback's last line is the one clear line
        rc, error = 1, traceback.format_exception_only(exc)[-1].strip()
    took = time.monotonic() - t0
    lake.proxy.cancel()
    outage.join()
    assert lake.proxy.stats["outage:missed"] == 0, f"{job} finished before it wrote its first object"
    err = capsys.readouterr().err
    met = lake.proxy.stats[f"conn:{mode}"] - seen_before
    if rc == 0:
        RESULTS[job] = f"absorbed ({mode} {OUTAGE_S:.0f}s, {met} faulty connections, {took:.0f}s vs {clean_s:.0f}s)"
        assert met > 0 or mode == "refuse", f"{job} did not run into the outage"  # refused: never accepted
    else:
        lines = [ln for ln in err.splitlines() if ln.startswith(f"[{job}] error:")]
        assert error or len(lines) == 1, err[-2000:]
        RESULTS[job] = f"failed cleanly, exit {rc} ({mode}): {(error or lines[0])[:160]}"
        assert lake.run(job) == 0, f"the re-run of {job} after the outage failed"
    print(f"[outage] {job}: {RESULTS[job]}; clean run times {lake.done}")
    got = output(job)
    for key in clean:
        assert got[key] == clean[key], f"{job}: {key} differs from the clean run after the outage"
    record = storage.read_json(storage.join(ROOT, "_runs", RUN_ID, f"{job}.json"))
    print(f"[outage] {job}: run record retries {record['retries']}")
    # retries per client and cause, where the retrying client is observable (S3A, the driver's s3fs;
    # not delta-rs, not executors' s3fs): test_s3_faults.py and the unit tests pin the counting
    assert record["status"] == "succeeded" and isinstance(record["retries"], dict)
