"""Metastore registration end to end: tables written by the project's writer, registered by
jobs/register_tables.py in its own process (embedded Hive metastore on Derby), then queried from a
third, fresh process that knows nothing of catalog2vec but the metastore settings — by name, with
the comments from schemas/, the *_latest views on models/LATEST, and the Spark queries of
sql/examples.sql."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog2vec.lakehouse import write_table
from catalog2vec.lakehouse.metastore import embedded_conf
from catalog2vec.schemas import gold
from tests.conftest import REPO

V_OLD, V_NEW = "m-old", "m-new"

FRESH_SESSION = r"""
import json, sys
from pyspark.sql import SparkSession
from catalog2vec.lakehouse import sql_examples as sx
conf, examples_path = json.loads(sys.argv[1]), sys.argv[2]
# a plain session: the Delta settings come from spark-defaults.conf (make setup), the metastore from conf
# (small-machine settings only: a plain session's 200 shuffle partitions take minutes on 2 shared cores)
spark = (SparkSession.builder.master("local[2]").config(map=conf)
         .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false").getOrCreate())
out = {
    "databases": sorted(r[0] for r in spark.sql("SHOW DATABASES").collect()),
    "gold": sorted(r["tableName"] for r in spark.sql("SHOW TABLES IN catalog2vec_gold").collect()),
    "count": spark.sql("SELECT count(*) FROM catalog2vec_gold.item_embeddings").collect()[0][0],
    "latest": [list(r) for r in spark.sql(
        "SELECT model_version, count(*) FROM catalog2vec_gold.item_embeddings_latest GROUP BY model_version").collect()],
    "detail": {r["col_name"]: r["data_type"] for r in spark.sql(
        "DESCRIBE TABLE EXTENDED catalog2vec_gold.item_embeddings").collect()},
    "comments": {r["col_name"]: r["comment"] for r in spark.sql(
        "DESCRIBE TABLE catalog2vec_gold.item_embeddings").collect()},
    "examples": {},
}
for ex in sx.load(examples_path):
    if "spark" in ex.engines:
        out["examples"][ex.name] = sx.run_spark(spark, ex, item_id="i002", tag="red").to_dict("list")
print("RESULT " + json.dumps(out, default=str))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "jobs"), env.get("PYTHONPATH", "")])
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYSPARK_PYTHON"] = sys.executable
    env["CATALOG2VEC_SPARK_MASTER"] = "local[1]"
    return env


def _write_gold(spark: Any, root: Path) -> None:
    emb, tags = [], []
    for version in (V_OLD, V_NEW):
        for i in range(6):
            vec = [float(i + 1), 1.0, float(i % 2)] if version == V_NEW else [1.0, 0.0, 0.0]
            emb.append((version, f"i{i:03d}", "0" * 64, vec, sum(x * x for x in vec) ** 0.5, "r"))
            for rank, tag in enumerate(["red", "blue"] if i % 2 == 0 else ["blue", "red"], start=1):
                tags.append((version, f"i{i:03d}", tag, 1.0 / rank, rank, "r"))
    for version in (V_OLD, V_NEW):
        write_table(spark, spark.createDataFrame([r for r in emb if r[0] == version], gold.ITEM_EMBEDDINGS.spark_schema()),
                    gold.ITEM_EMBEDDINGS, root, mode="replace_where", version=version)
    write_table(spark, spark.createDataFrame(tags, gold.ITEM_TAGS.spark_schema()), gold.ITEM_TAGS, root, mode="merge")
    (root / "models").mkdir()
    (root / "models" / "LATEST").write_text(V_NEW + "\n")


@pytest.mark.slow
def test_registered_tables_are_visible_from_a_fresh_session(spark: Any, lakehouse: Path, tmp_path: Path) -> None:
    _write_gold(spark, lakehouse)
    job = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "register_tables.py"), "--lakehouse", str(lakehouse)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert job.returncode == 0, job.stderr[-3000:]
    assert "tables=2 views=2" in job.stdout, job.stdout
    assert (lakehouse / "_metastore" / "metastore_db").is_dir()
    assert not (tmp_path / "derby.log").exists()  # kept beside the metastore

    conf = embedded_conf(lakehouse / "_metastore")
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH_SESSION, json.dumps(conf), str(REPO / "sql" / "examples.sql")],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1800,
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    out = json.loads(next(line for line in fresh.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert {"catalog2vec_gold"} <= set(out["databases"])
    assert out["gold"] == ["item_embeddings", "item_embeddings_latest", "item_tags", "item_tags_latest"]
    assert out["count"] == 12
    assert out["latest"] == [[V_NEW, 6]]
    assert out["detail"]["Type"] == "EXTERNAL" and out["detail"]["Provider"] == "delta"
    assert out["detail"]["Location"].rstrip("/").endswith("lakehouse/gold/item_embeddings")
    assert out["detail"]["Comment"] == gold.ITEM_EMBEDDINGS.doc
    assert out["comments"]["norm"] == "L2 norm of embedding"
    ex = out["examples"]
    assert set(ex) == {"model_versions", "top_tags_of_item", "items_with_top_tag", "tag_counts", "nearest_neighbours_spark"}
    assert ex["model_versions"] == {"model_version": [V_NEW, V_OLD], "items": [6, 6]}
    assert ex["top_tags_of_item"]["tag"] == ["red", "blue"]
    assert ex["items_with_top_tag"]["item_id"] == ["i000", "i002", "i004"]
    # i002 = (3, 1, 0): nearest by cosine are i004 (5, 1, 0) and i000 (1, 1, 0)... computed exactly:
    vecs = {f"i{i:03d}": [float(i + 1), 1.0, float(i % 2)] for i in range(6)}

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5

    want = sorted((k for k in vecs if k != "i002"), key=lambda k: (-cos(vecs[k], vecs["i002"]), k))
    assert ex["nearest_neighbours_spark"]["item_id"] == want

    # idempotent: a second registration changes nothing (no comment commits) and keeps the views
    again = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "register_tables.py"), "--lakehouse", str(lakehouse)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "tables=2 views=2 comments_updated=0" in again.stdout


def test_embedded_metastore_needs_a_local_directory(tmp_path: Path) -> None:
    from catalog2vec.config import load_config
    from catalog2vec.lakehouse import metastore

    cfg = load_config(None, [], lakehouse=str(tmp_path / "lh"))
    assert metastore.metastore_dir(cfg) == str(tmp_path / "lh" / "_metastore")
    assert metastore.spark_conf(cfg)["spark.sql.catalogImplementation"] == "hive"
    remote = load_config(None, [], lakehouse="s3://bucket/lake")
    with pytest.raises(ValueError, match="needs a local directory"):
        metastore.metastore_dir(remote)
    session = load_config(None, ["metastore.kind=session"], lakehouse="s3://bucket/lake")
    assert metastore.spark_conf(session) == {}
    assert metastore.database_name("gold", "catalog2vec", "main") == "`main`.`catalog2vec_gold`"


def test_register_tables_refuses_a_session_catalog_that_dies_with_the_job(spark: Any, lakehouse: Path,
                                                                         tmp_path: Path) -> None:
    """``metastore.kind = "session"`` on a session with no persistent catalog (a plain local session:
    in-memory catalog, as on EMR without Hive/Glue) is one line and exit 2, not a silent success."""
    rows = [(V_NEW, "i000", "0" * 64, [1.0, 0.0], 1.0, "r1")]
    write_table(spark, spark.createDataFrame(rows, gold.ITEM_EMBEDDINGS.spark_schema()), gold.ITEM_EMBEDDINGS,
                lakehouse, mode="overwrite")
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "register_tables.py"), "--lakehouse", str(lakehouse),
         "--set", "metastore.kind=session", "--model-version", V_NEW],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "dies with this job" in errors[0] and "'in-memory'" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "tables=" not in proc.stdout
