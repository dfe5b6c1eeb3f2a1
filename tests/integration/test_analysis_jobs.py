"""The analysis jobs end to end on a small real lakehouse (real Spark + Delta, real images).

neighbors (index == brute force, idempotent, quarantine), cluster (MLlib k-means, prototypes),
the ``catalog2vec similar`` CLI (item and image queries, grid), train_similarity + evaluate (every
report section, both baselines, the loud flag for a model that does not beat them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def analysis_lakehouse(spark: Any, tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    from tests.integration._analysis_lakehouse import build

    root = tmp_path_factory.mktemp("analysis") / "lakehouse"
    root.mkdir()
    build(spark, root, examples_dir)
    return root


def _common(root: Path) -> list[str]:
    return ["--lakehouse", str(root), "--run-id", "t1", "--set", "spark.master='local[2]'"]


def test_neighbors_job_matches_brute_force_and_is_idempotent(spark: Any, analysis_lakehouse: Path) -> None:
    import neighbors

    from catalog2vec.lakehouse import delta_version, read_pandas
    from catalog2vec.retrieval import EmbeddingIndex, brute_force, index_dir, load_embeddings
    from catalog2vec.schemas import analysis

    root = analysis_lakehouse
    assert neighbors.main([*_common(root), "--model-version", "oracle", "-k", "5"]) == 0
    nb = read_pandas(root, analysis.ITEM_NEIGHBORS)
    nb = nb[nb["model_version"] == "oracle"]
    assert len(nb) == 384 * 5
    assert (nb["item_id"] != nb["neighbor_id"]).all()
    ids, x = load_embeddings(root, "oracle")
    _, bpos = brute_force(x, x, 6)
    for q in (0, 17, 200):
        expect = [ids[p] for p in bpos[q] if p != q][:5]
        got = nb[nb["item_id"] == ids[q]].sort_values("rank")["neighbor_id"].tolist()
        assert got == expect
    # oracle embeddings encode the category: the nearest neighbour nearly always shares it
    items = read_pandas(root, "bronze.catalog_items")[["item_id", "category"]].set_index("item_id")[
        "category"
    ]
    top1 = nb[nb["rank"] == 1]
    same = (top1["item_id"].map(items) == top1["neighbor_id"].map(items)).mean()
    assert same > 0.9
    # saved index with the item_id mapping
    idx = EmbeddingIndex.load(index_dir(root, "oracle"))
    assert idx.size == 384 and idx.item_ids == ids
    # idempotent: same content after a re-run
    v1 = delta_version(root, analysis.ITEM_NEIGHBORS)
    assert neighbors.main([*_common(root), "--model-version", "oracle", "-k", "5", "--run-id", "t2"]) == 0
    nb2 = read_pandas(root, analysis.ITEM_NEIGHBORS)
    nb2 = nb2[nb2["model_version"] == "oracle"]
    cols = ["item_id", "rank", "neighbor_id", "score"]
    a = nb[cols].sort_values(["item_id", "rank"]).reset_index(drop=True)
    b = nb2[cols].sort_values(["item_id", "rank"]).reset_index(drop=True)
    assert a.equals(b)
    assert delta_version(root, analysis.ITEM_NEIGHBORS) == v1  # an unchanged re-run commits nothing (MERGE skips unchanged rows)


def test_neighbors_quarantines_invalid_embeddings(
    spark: Any, analysis_lakehouse: Path, tmp_path: Path
) -> None:
    import shutil

    import neighbors

    from catalog2vec.lakehouse import read_pandas, write_table
    from catalog2vec.schemas import gold

    root = tmp_path / "lh"
    shutil.copytree(analysis_lakehouse / "gold" / "item_embeddings", root / "gold" / "item_embeddings")
    shutil.copytree(analysis_lakehouse / "models", root / "models")
    bad = [
        ("oracle", "bad_dim", "x", [1.0, 2.0], 1.0, "t"),
        ("oracle", "bad_nan", "x", [float("nan")] * 96, 1.0, "t"),
        ("oracle", "bad_zero", "x", [0.0] * 96, 0.0, "t"),
    ]
    write_table(
        spark, spark.createDataFrame(bad, gold.ITEM_EMBEDDINGS.spark_schema()), gold.ITEM_EMBEDDINGS, root
    )
    assert neighbors.main([*_common(root), "--model-version", "oracle", "-k", "3"]) == 0
    q = read_pandas(root, "bronze.quarantine")
    assert sorted(q["item_id"]) == ["bad_dim", "bad_nan", "bad_zero"]
    assert set(q["reason"]) == {"invalid_embedding"} and set(q["job"]) == {"neighbors"}
    nb = read_pandas(root, "gold.item_neighbors")
    assert nb["item_id"].nunique() == 384  # rows in (387) = indexed (384) + quarantined (3)
    assert not set(nb["neighbor_id"]) & {"bad_dim", "bad_nan", "bad_zero"}


def test_neighbors_incremental_adds_new_items_without_a_rebuild(
    spark: Any, analysis_lakehouse: Path, tmp_path: Path
) -> None:
    import shutil

    import neighbors
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import read_pandas, read_table, write_table
    from catalog2vec.retrieval import brute_force, load_embeddings
    from catalog2vec.schemas import gold

    root = tmp_path / "lh"
    shutil.copytree(analysis_lakehouse / "gold" / "item_embeddings", root / "gold" / "item_embeddings")
    shutil.copytree(analysis_lakehouse / "models", root / "models")
    ids, x = load_embeddings(analysis_lakehouse, "oracle")
    late = ids[::10]  # 39 items "embedded later"
    DeltaTable.forPath(spark, str(root / "gold" / "item_embeddings")).delete(F.col("item_id").isin(late))
    assert neighbors.main([*_common(root), "--model-version", "oracle", "-k", "5"]) == 0
    before = json.loads((root / "indexes" / "oracle" / "index.json").read_text())
    assert before["size"] == 384 - len(late)
    rows = read_table(spark, analysis_lakehouse, gold.ITEM_EMBEDDINGS).where(F.col("item_id").isin(late))
    write_table(spark, rows, gold.ITEM_EMBEDDINGS, root)  # the embed job adds them
    assert neighbors.main([*_common(root), "--model-version", "oracle", "--incremental", "--run-id", "inc"]) == 0
    counts = json.loads((root / "_runs" / "inc" / "neighbors.json").read_text())["counts"]
    assert counts["items_added"] == len(late) and counts["items_indexed"] == 384 and counts["k"] == 5
    after = json.loads((root / "indexes" / "oracle" / "index.json").read_text())
    assert after["size"] == 384 and after["trained"] == before["trained"]
    assert [p["path"] for p in before["parts"]] == [p["path"] for p in after["parts"][: len(before["parts"])]]
    # the result equals an exact search over all 384 items: new items' lists, and the existing
    # items whose top-5 a new item entered (most of them here: the late items are every 10th)
    nb = read_pandas(root, "gold.item_neighbors")
    assert len(nb) == 384 * 5 and counts["existing_items_updated"] > 50
    _, bpos = brute_force(x, x, 6)
    got = nb.sort_values(["item_id", "rank"]).groupby("item_id")["neighbor_id"].apply(list)
    expect = {ids[q]: [ids[p] for p in bpos[q] if p != q][:5] for q in range(len(ids))}
    same = sum(got[i] == expect[i] for i in ids)
    assert same >= 380, f"{384 - same} items differ from exact search"
    assert all(set(got[i]) == set(expect[i]) for i in late)
    # nothing new: a second incremental run adds nothing and leaves the table as it is
    assert neighbors.main([*_common(root), "--model-version", "oracle", "--incremental", "--run-id", "inc2"]) == 0
    assert json.loads((root / "_runs" / "inc2" / "neighbors.json").read_text())["counts"]["items_added"] == 0


def test_cluster_job_prototypes_and_assignment(spark: Any, analysis_lakehouse: Path) -> None:
    import cluster

    from catalog2vec.clustering import assign_to_prototypes
    from catalog2vec.clustering.build import load_cluster_model
    from catalog2vec.evaluation.metrics import nmi
    from catalog2vec.lakehouse import read_pandas
    from catalog2vec.retrieval import l2_normalize, load_embeddings

    root = analysis_lakehouse
    args = [
        *_common(root),
        "--model-version",
        "oracle",
        "--set",
        "cluster.k=24",
        "--set",
        "cluster.prototypes=3",
    ]
    assert cluster.main(args) == 0
    cl = read_pandas(root, "gold.clusters")
    ic = read_pandas(root, "gold.item_clusters")
    assert len(cl) == 24 and cl["size"].sum() == 384 and len(ic) == 384
    assert all(len(p) == 3 for p in cl["prototypes"])
    ids, x = load_embeddings(root, "oracle")
    xn = l2_normalize(x)
    pos = {iid: i for i, iid in enumerate(ids)}
    for _, row in cl.iterrows():
        members = ic[ic["cluster"] == row["cluster"]].sort_values(["distance", "item_id"])
        assert list(row["prototypes"]) == members["item_id"].tolist()[:3]
        c = np.asarray(row["centroid"], dtype=np.float32)
        d0 = 1 - xn[pos[row["prototypes"][0]]] @ (c / np.linalg.norm(c))
        assert members["distance"].iloc[0] == pytest.approx(d0, abs=1e-4)
    cats = read_pandas(root, "bronze.catalog_items").set_index("item_id")["category"]
    assert nmi(ic["item_id"].map(cats).tolist(), ic["cluster"].tolist()) > 0.8
    # new items go to the cluster of their nearest prototype; prototypes map to their own cluster
    model = load_cluster_model(spark, str(root), "oracle")
    assigned, dist, _ = assign_to_prototypes(
        model.prototype_vectors, model.prototype_vectors, model.prototype_cluster
    )
    assert assigned.tolist() == model.prototype_cluster.tolist()
    assert np.allclose(dist, 0.0, atol=1e-5)
    # the same rule in the executors (a UDF, the prototypes broadcast) over every item of the table
    from catalog2vec.clustering.build import assign_new_items
    from catalog2vec.retrieval.inputs import embedding_frames
    from tests.conftest import make_config

    cfg = make_config(root)
    items = embedding_frames(spark, str(root), "oracle").valid
    got = assign_new_items(spark, cfg, "oracle", items).toPandas().set_index("item_id").loc[ids]
    want, wdist, wrow = assign_to_prototypes(x, model.prototype_vectors, model.prototype_cluster)
    assert got["cluster"].tolist() == want.tolist()
    assert got["prototype_id"].tolist() == [model.prototype_ids[r] for r in wrow]
    np.testing.assert_allclose(got["distance"].to_numpy(), wdist, atol=1e-5)
    # an item already clustered is not "new": the default input is the unclustered embeddings only
    assert assign_new_items(spark, cfg, "oracle").count() == 0


def test_cli_similar_by_item_and_image(
    analysis_lakehouse: Path, tmp_path: Path, examples_dir: Path, capsys: Any
) -> None:
    from catalog2vec.cli import main

    root = analysis_lakehouse
    grid = tmp_path / "grid.png"
    args = ["similar", "--lakehouse", str(root), "--model-version", "oracle", "--item-id", "10039", "-k", "4"]
    assert main([*args, "--grid", str(grid), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.split("\ngrid:")[0])
    assert out["model_version"] == "oracle" and len(out["neighbors"]) == 4
    assert "10039" not in [n["item_id"] for n in out["neighbors"]]
    assert all("Shoes" in n["title"] or "Shoe" in n["title"] for n in out["neighbors"][:2])
    from PIL import Image

    with Image.open(grid) as im:
        assert im.size[0] > 300 and im.size[1] > 100
    # by image: embedded on the fly with the model directory (random weights here, 96-d like the index)
    assert main(["similar", "--lakehouse", str(root), "--model-version", "oracle", "--image",
                 str(examples_dir / "images" / "10039.jpg"), "-k", "3"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert (
        "query: image" in text
        and len([ln for ln in text.splitlines() if ln.strip().startswith(("1 ", "2 ", "3 "))]) == 3
    )
    # errors are one clear line and exit code 2
    assert main([*args[:-4], "--item-id", "nope"]) == 2
    assert "no embedding" in capsys.readouterr().err


def test_train_similarity_and_evaluate_report(spark: Any, analysis_lakehouse: Path, tmp_path: Path) -> None:
    import cluster
    import evaluate
    import train_similarity

    root = analysis_lakehouse
    common = [*_common(root), "--model-version", "oracle"]
    assert (
        train_similarity.main(
            [*common, "--set", "similarity.epochs=4", "--set", "similarity.max_pos_pairs=1500"]
        )
        == 0
    )
    card = json.loads((root / "similarity" / "oracle" / "pan_card.json").read_text())
    assert len(card["attribute_words"]) == 8 and card["train_items"] > 200
    from catalog2vec.lakehouse import table_exists

    if not table_exists(
        root, "gold.clusters"
    ):  # normally written by test_cluster_job_prototypes_and_assignment
        assert cluster.main([*common, "--set", "cluster.k=24"]) == 0
    assert evaluate.main([*common, "--max-train", "150"]) == 0
    out = root / "reports" / "oracle"
    report = json.loads((out / "report.json").read_text())
    for section in (
        "retrieval",
        "label_prediction",
        "linear_probe",
        "clustering",
        "similarity",
        "headline",
        "verdict",
    ):
        assert section in report
    for feat in ("model", "random_weights", "color_histogram"):
        r = report["retrieval"][feat]["category"]
        assert {f"precision@{k}" for k in (1, 5, 10, 20)} <= set(r) and {
            f"recall@{k}" for k in (1, 5, 10, 20)
        } <= set(r)
        assert set(report["linear_probe"][feat]) == {"category", "color", "gender"}
        assert {"recall@3", "recall@5", "recall@10"} <= set(report["label_prediction"][feat]["knn_transfer"])
    assert report["counts"]["test_items"] >= 20
    # the oracle model wins clearly on category retrieval and the probe
    m, rw, ch = (
        report["retrieval"][f]["category"]["precision@1"]
        for f in ("model", "random_weights", "color_histogram")
    )
    assert m > 0.7 and m > rw + 0.2 and m > ch + 0.2
    assert report["linear_probe"]["model"]["category"]["accuracy"] > 0.8
    assert report["label_prediction"]["model"]["head"]["recall@3"] > 0.3
    assert report["verdict"]["beats_both_baselines"] is True and report["verdict"]["flag"] == ""
    assert report["clustering"]["model"]["spark_job"]["k"] == 24
    assert report["clustering"]["model"]["spark_job"]["nmi_all"] > 0.8
    sim = report["similarity"]
    assert sim["available"] and set(sim["pair_auc"]) == {"pan", "cosine"} and len(sim["example_pairs"]) >= 1
    html = (out / "report.html").read_text()
    assert (
        html.count("data:image/png;base64,") >= 3 and "random_weights" in html and "color_histogram" in html
    )
    assert (out / "headline_metrics.png").is_file() and (out / "cluster_prototypes.png").is_file()
    # the frequency prior is labelled as itself, not as a kNN transfer
    assert set(report["label_prediction"]["word_frequency_prior"]) == {"prior"}
    assert "word_frequency_prior:knn_transfer" not in html and "<th>word_frequency_prior</th>" in html

    # a model no better than noise is flagged loudly (report, HTML banner, exit code with --fail-if-worse)
    rdir = tmp_path / "noise_report"
    rc = evaluate.main(
        [
            *_common(root),
            "--model-version",
            "noise",
            "--max-train",
            "150",
            "--reports",
            str(rdir),
            "--fail-if-worse",
        ]
    )
    assert rc == 3
    bad = json.loads((rdir / "report.json").read_text())
    assert bad["verdict"]["beats_both_baselines"] is False
    assert "DOES NOT BEAT BOTH BASELINES" in bad["verdict"]["flag"]
    assert 'class="flag"' in (rdir / "report.html").read_text()
    assert bad["similarity"]["available"] is False
