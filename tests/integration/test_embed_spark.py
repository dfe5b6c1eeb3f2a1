"""jobs/embed.py end to end on the real sample (384 images, tiny random-init resnet18 at 64 px):
one row per valid image, idempotent re-runs, incremental additions, --full, quarantine of
undecodable images, clear errors before any work, and Spark/delta-rs/DuckDB readers agreeing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from catalog2vec.embed.core import InferenceModel
from catalog2vec.lakehouse import (
    delta_version,
    duckdb_connect,
    read_pandas,
    read_table,
    register_spark_tables,
    table_exists,
)
from catalog2vec.lakehouse import gold as g
from tests.unit.embed.helpers import (
    DEMO_VERSION,
    EXAMPLES,
    demo_lakehouse,
    image_rows,
    sample_ids,
    save_tiny_model,
    write_silver_images,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _embed(root: Path, *extra: str, run_id: str = "r") -> int:
    import embed

    return int(
        embed.main(["--lakehouse", str(root), "--run-id", run_id, "--set", "embed.commit_rows=1000", *extra])
    )


def _versions(root: Path) -> tuple[int, int]:
    return delta_version(root, "gold.item_embeddings"), delta_version(root, "gold.item_tags")


def test_incremental_lifecycle(spark: Any, lakehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = sample_ids()
    write_silver_images(spark, lakehouse, ids[:300])
    save_tiny_model(lakehouse, "m1")

    assert _embed(lakehouse, "--model-version", "m1", run_id="run1") == 0
    assert "images=300 skipped=0 pending=300 embedded=300 quarantined=0" in capsys.readouterr().out
    emb = read_pandas(lakehouse, "gold.item_embeddings")
    tags = read_pandas(lakehouse, "gold.item_tags")
    assert len(emb) == 300 and emb.item_id.is_unique and set(emb.item_id) == set(ids[:300])
    assert (emb.model_version == "m1").all() and (emb.run_id == "run1").all()
    assert len(tags) == 300 * 10
    assert tags.groupby("item_id")["rank"].apply(lambda r: sorted(r) == list(range(1, 11))).all()
    # probabilities decrease with rank, and tags are distinct vocabulary words
    by_item = tags.sort_values(["item_id", "rank"]).groupby("item_id")
    assert by_item.probability.apply(lambda p: bool((np.diff(p.to_numpy()) <= 0).all())).all()
    assert by_item.tag.nunique().eq(10).all()
    # sha256 lineage and the stored values equal the pure batch function's output
    sha = {r["item_id"]: r["sha256"] for r in image_rows(ids[:5])}
    assert all(emb.set_index("item_id").sha256[i] == s for i, s in sha.items())
    model = InferenceModel.from_dir(str(lakehouse / "models" / "m1"), top_n=10, device="cpu")
    direct = model.predict([(EXAMPLES / "images" / f"{i}.jpg").read_bytes() for i in ids[:5]])
    stored = np.stack(emb.set_index("item_id").loc[ids[:5]].embedding.to_list())
    np.testing.assert_allclose(stored, direct.embedding, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(emb.norm, [np.linalg.norm(e) for e in emb.embedding], rtol=1e-5)
    first_tags = tags[tags.item_id == ids[0]].sort_values("rank").tag.tolist()
    assert first_tags == [model.tokens[i] for i in direct.tag_index[0]]

    # a second run finds nothing to do and commits nothing
    before = _versions(lakehouse)
    assert _embed(lakehouse, "--model-version", "latest", run_id="run2") == 0
    assert "skipped=300 pending=0 embedded=0" in capsys.readouterr().out
    assert _versions(lakehouse) == before

    # new images (and one undecodable one): only those are embedded; the bad one is quarantined
    bad = {**image_rows([ids[0]])[0], "item_id": "bad-1", "image": b"\xff\xd8 truncated", "run_id": "x"}
    bad["sha256"] = hashlib.sha256(bad["image"]).hexdigest()
    write_silver_images(spark, lakehouse, rows=[*image_rows(ids[300:]), bad])
    assert _embed(lakehouse, "--model-version", "m1", run_id="run3") == 0
    assert "images=385 skipped=300 pending=85 embedded=84 quarantined=1" in capsys.readouterr().out
    emb = read_pandas(lakehouse, "gold.item_embeddings")
    assert len(emb) == 384 and emb.item_id.is_unique and "bad-1" not in set(emb.item_id)
    assert set(emb[emb.run_id == "run3"].item_id) == set(ids[300:])  # old rows untouched
    q = read_pandas(lakehouse, "bronze.quarantine")
    assert q[(q.job == "embed")][["item_id", "reason"]].values.tolist() == [["bad-1", "image_undecodable"]]

    # an item whose image changed is recomputed (new sha256), still one row
    changed = {**image_rows([ids[1]])[0], "item_id": ids[0]}
    write_silver_images(spark, lakehouse, rows=[changed])
    assert _embed(lakehouse, "--model-version", "m1", run_id="run4") == 0
    assert "pending=2 embedded=1 quarantined=1" in capsys.readouterr().out
    emb = read_pandas(lakehouse, "gold.item_embeddings").set_index("item_id")
    assert len(emb) == 384 and emb.loc[ids[0]].sha256 == changed["sha256"]
    np.testing.assert_allclose(emb.loc[ids[0]].embedding, emb.loc[ids[1]].embedding, rtol=1e-4, atol=1e-5)
    tags = read_pandas(lakehouse, "gold.item_tags")
    assert tags.groupby("item_id").size().eq(10).all() and len(tags) == 3840

    # --full recomputes every item: still exactly one row per item and 10 tags each
    assert _embed(lakehouse, "--model-version", "m1", "--full", run_id="run5") == 0
    assert "pending=385 embedded=384 quarantined=1" in capsys.readouterr().out
    emb = read_pandas(lakehouse, "gold.item_embeddings")
    tags = read_pandas(lakehouse, "gold.item_tags")
    assert len(emb) == 384 and emb.item_id.is_unique
    assert len(tags) == 3840 and not tags.duplicated(["model_version", "item_id", "tag"]).any()


def test_clear_errors_before_any_work(
    spark: Any, lakehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import silver

    write_silver_images(spark, lakehouse, sample_ids()[:4])
    assert _embed(lakehouse, "--model-version", "nope") == 2
    assert "unknown model_version 'nope'" in capsys.readouterr().err
    save_tiny_model(lakehouse, "m1")
    # silver/vocab holds the model's vocab_version with different tokens: a mismatch
    vocab = spark.createDataFrame(
        [("v-test", f"w{i}", i, 1, 1) for i in range(120)],
        "vocab_version string, token string, index int, count long, doc_freq long",
    )
    write_table(spark, vocab, silver.VOCAB, lakehouse, mode="overwrite")
    assert _embed(lakehouse, "--model-version", "m1") == 2
    assert "does not match silver/vocab version v-test" in capsys.readouterr().err
    assert not table_exists(lakehouse, "gold.item_embeddings") and not table_exists(
        lakehouse, "gold.item_tags"
    )


def test_readers_and_example_queries_agree(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = demo_lakehouse(spark, tmp_path_factory.getbasetemp())
    s_emb = (
        read_table(spark, root, "gold.item_embeddings")
        .toPandas()
        .sort_values("item_id")
        .reset_index(drop=True)
    )
    d_emb = read_pandas(root, "gold.item_embeddings").sort_values("item_id").reset_index(drop=True)
    assert len(s_emb) == len(d_emb) == 384
    assert s_emb[["model_version", "item_id", "sha256", "run_id"]].equals(
        d_emb[["model_version", "item_id", "sha256", "run_id"]]
    )
    np.testing.assert_array_equal(np.stack(s_emb.embedding), np.stack(d_emb.embedding))
    s_tags = read_table(spark, root, "gold.item_tags").toPandas()
    d_tags = read_pandas(root, "gold.item_tags")
    key = ["item_id", "rank"]
    pd.testing.assert_frame_equal(
        s_tags.sort_values(key).reset_index(drop=True),
        d_tags.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )

    # the documented queries give the same answers in Spark SQL and DuckDB
    assert g.latest_embedded_model_version(root) == DEMO_VERSION
    assert "gold.item_embeddings" in register_spark_tables(spark, root)
    con = duckdb_connect(root)
    item = d_emb.item_id[0]
    top = con.sql(g.query("tag_counts", "duckdb", DEMO_VERSION)).df()
    tag = str(top.tag[0])
    for name, kw in [
        ("top_tags_of_item", {"item_id": item}),
        ("items_with_top_tag", {"tag": tag}),
        ("nearest_neighbours", {"item_id": item, "k": 5}),
        ("tag_counts", {}),
    ]:
        ddf = con.sql(g.query(name, "duckdb", DEMO_VERSION, **kw)).df()
        sdf = spark.sql(g.query(name, "spark", DEMO_VERSION, **kw)).toPandas()
        assert len(ddf) > 0 and list(ddf.columns) == list(sdf.columns), name
        assert ddf.iloc[:, 0].astype(str).tolist() == sdf.iloc[:, 0].astype(str).tolist(), name
        np.testing.assert_allclose(ddf.iloc[:, 1].astype(float), sdf.iloc[:, 1].astype(float), rtol=1e-5)
    assert len(con.sql(g.query("top_tags_of_item", "duckdb", DEMO_VERSION, item_id=item)).df()) == 10
    assert int(top["items"][0]) == len(
        con.sql(g.query("items_with_top_tag", "duckdb", DEMO_VERSION, tag=tag)).df()
    )
    # the numpy helper agrees with SQL
    nn = g.nearest_neighbours(root, item, DEMO_VERSION, k=5)
    sql_nn = con.sql(g.query("nearest_neighbours", "duckdb", DEMO_VERSION, item_id=item, k=5)).df()
    assert nn.item_id.tolist() == sql_nn.item_id.tolist()
    np.testing.assert_allclose(nn.score, sql_nn.score, rtol=1e-4)
