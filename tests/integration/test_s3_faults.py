"""The object store failing underneath a healthy job (issue 35): the real local S3 server behind a
fault-injecting TCP proxy (tests/faults.py), so s3fs/botocore, delta-rs and Spark's S3A all see the
same outage — connection refused, connection reset, a hanging endpoint, 503 SlowDown.

What the retry policy (catalog2vec.storage.RetryPolicy, one budget for every client) promises:
an outage shorter than the budget is absorbed (the write succeeds, the output is identical to a clean
run); a longer one ends the write with an error and no published marker, and a re-run after the
store is back produces the identical artifact. Timeouts and budgets are shrunk here so each case
takes seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from catalog2vec import storage
from tests.faults import FaultProxy, fault_proxy

pytestmark = [pytest.mark.spark]

FAST = {"CATALOG2VEC_S3_CONNECT_TIMEOUT_S": "2", "CATALOG2VEC_S3_READ_TIMEOUT_S": "3",
        "CATALOG2VEC_S3_RETRY_ATTEMPTS": "12", "CATALOG2VEC_S3_RETRY_BUDGET_S": "60"}
OUTAGE_S = 6.0


@pytest.fixture()
def proxy(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """Every S3 client of this process talks to the store through the proxy."""
    with fault_proxy(s3_server.endpoint) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.endpoint)
        for key, value in FAST.items():
            monkeypatch.setenv(key, value)
        storage.configure(None)  # drop filesystems cached with the direct endpoint
        yield p
    storage.configure(None)


def _artifact(root: str, version: str) -> dict[str, bytes]:
    d = storage.join(root, "models", version)
    return {storage.join(d, "model.pt"): bytes(range(256)) * 512, storage.join(d, "vocab.json"): b'["red","blue"]'}


def _publish(root: str, version: str) -> str:
    d = storage.join(root, "models", version)
    return storage.publish(storage.join(d, "model_card.json"), {"model_version": version, "complete": True},
                           _artifact(root, version))


def _read_back(root: str, version: str) -> dict[str, bytes]:
    d = storage.join(root, "models", version)
    return {p: storage.read_bytes(p) for p in [*_artifact(root, version), storage.join(d, "model_card.json")]}


@pytest.mark.parametrize("mode", ["refuse", "reset", "slowdown", "hang"])
def test_an_artifact_publish_rides_out_an_outage(s3_server: Any, proxy: FaultProxy, mode: str) -> None:
    bucket = s3_server.create_bucket(f"c2v-faults-publish-{mode}")
    clean, faulty = f"s3://{bucket}/clean", f"s3://{bucket}/faulty"
    _publish(clean, "v1")
    t0 = time.monotonic()
    storage.retry_counts(reset=True)
    outage = proxy.outage(mode, OUTAGE_S)
    time.sleep(0.5)  # the store is down when the publish starts
    _publish(faulty, "v1")
    outage.join()
    retries = storage.retry_counts()  # botocore's failed attempts, per cause, as the run record gets them
    # (a hung endpoint that answers once the outage ends is a slow request, not a failed one)
    assert mode == "hang" or sum(retries.values()) >= 1, retries
    assert all(k.startswith("s3:") for k in retries), retries
    # 503 SlowDown, or the connection the proxy closed before the upload's body was read
    assert mode != "slowdown" or {"s3:SlowDown", "s3:ConnectionClosedError"} & set(retries), retries
    took = time.monotonic() - t0
    assert took >= OUTAGE_S - 1, f"the publish finished in {took:.1f}s, inside a {OUTAGE_S}s outage"
    if mode != "refuse":
        assert proxy.stats[f"conn:{mode}"] >= 1, proxy.stats  # the client really met the fault
    got = {p.replace("/faulty/", "/x/"): b for p, b in _read_back(faulty, "v1").items()}
    want = {p.replace("/clean/", "/x/"): b for p, b in _read_back(clean, "v1").items()}
    assert got == want


def test_an_outage_past_the_budget_fails_cleanly_and_a_rerun_is_identical(
        s3_server: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.create_bucket("c2v-faults-budget")
    root = f"s3://{bucket}/lake"
    monkeypatch.setenv("CATALOG2VEC_S3_RETRY_ATTEMPTS", "2")
    storage.configure(None)
    with proxy.down("slowdown"), pytest.raises(Exception) as exc:
        _publish(root, "v1")
    # botocore's last error after its retries: the 503 itself, or the connection closed mid-upload
    assert any(w in f"{type(exc.value).__name__}: {exc.value}" for w in ("SlowDown", "503", "Connection")), exc.value
    marker = storage.join(root, "models", "v1", "model_card.json")
    assert not storage.exists(marker)  # nothing published: readers never trust a half-written model
    _publish(root, "v1")  # the store is back: the re-run publishes the same artifact
    assert json.loads(storage.read_bytes(marker)) == {"model_version": "v1", "complete": True}
    assert _read_back(root, "v1")[storage.join(root, "models", "v1", "model.pt")] == bytes(range(256)) * 512


def test_a_delta_rs_reader_rides_out_connection_refused(s3_server: Any, proxy: FaultProxy) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    bucket = s3_server.create_bucket("c2v-faults-deltars")
    uri = f"s3://{bucket}/lake/gold/t"
    table = pa.table({"item_id": [f"i{i}" for i in range(500)], "x": list(range(500))})
    write_deltalake(uri, table, storage_options=storage.s3_settings().delta_rs_options())
    outage = proxy.outage("refuse", OUTAGE_S)
    time.sleep(0.5)
    t0 = time.monotonic()
    got = DeltaTable(uri, storage_options=storage.s3_settings().delta_rs_options()).to_pyarrow_table()
    outage.join()
    assert time.monotonic() - t0 >= OUTAGE_S - 1.5
    assert got.sort_by("x").equals(table)


def test_a_spark_delta_commit_rides_out_throttling(spark: Any, s3_server: Any, proxy: FaultProxy) -> None:
    """Spark's S3A (retry settings from the same policy) writes a Delta table while the store answers
    503 SlowDown to every request for a while: the commit goes through and the rows are exact."""
    from catalog2vec.lakehouse import read_table, write_table
    from catalog2vec.schemas import gold

    bucket = s3_server.create_bucket("c2v-faults-spark")  # a new bucket: a new S3A filesystem with this conf
    storage.apply_to_spark(spark, storage.s3_settings())
    root = f"s3a://{bucket}/lake"
    rows = [("m1", f"i{i:04d}", "0" * 64, [float(i), 1.0], float(i), "r1") for i in range(200)]
    df = spark.createDataFrame(rows, gold.ITEM_EMBEDDINGS.spark_schema())
    outage = proxy.outage("slowdown", OUTAGE_S, after=0.5)
    try:
        write_table(spark, df, gold.ITEM_EMBEDDINGS, root, mode="replace_where", version="m1")
    finally:
        outage.join()
        hconf = spark.sparkContext._jsc.hadoopConfiguration()
        hconf.unset("fs.s3a.endpoint")  # later tests in this session talk to the store directly again
        storage.apply_to_spark(spark, storage.s3_settings(env={**s3_server.settings.environment()}))
    assert proxy.stats["outage:slowdown"] == 1 and proxy.stats["conn:slowdown"] >= 1, proxy.stats
    back = sorted(tuple(r) for r in read_table(spark, root, gold.ITEM_EMBEDDINGS).select(
        "item_id", "norm").collect())
    assert back == [(f"i{i:04d}", float(i)) for i in range(200)]
