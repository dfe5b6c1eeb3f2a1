"""The evaluation report and PAN training read a bounded sample of items: at most the configured
number per split, the items with the smallest seeded hash of item_id (the same every run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def analysis_lakehouse(spark: Any, tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    from tests.integration._analysis_lakehouse import build

    root = tmp_path_factory.mktemp("bounds") / "lakehouse"
    root.mkdir()
    build(spark, root, examples_dir)
    return root


def test_split_frame_caps_are_the_smallest_hashes(spark: Any, analysis_lakehouse: Path) -> None:
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import read_table
    from catalog2vec.lakehouse.sampling import hash_unit
    from catalog2vec.retrieval.inputs import split_frame
    from catalog2vec.schemas import gold, silver
    from tests.conftest import make_config

    cfg = make_config(analysis_lakehouse)
    frame, emb, _, _ = split_frame(spark, cfg, "oracle", {"test": 25, "train": 40}, seed=0)
    by_split = frame["split"].value_counts().to_dict()
    assert set(by_split) == {"test", "train"} and by_split["test"] <= 25 and 30 <= by_split["train"] <= 40
    assert len(emb.item_ids) + len(emb.invalid) == 65  # only the sampled embeddings were read (some invalid)
    embedded = read_table(spark, analysis_lakehouse, gold.ITEM_EMBEDDINGS).where(F.col("model_version") == "oracle")
    test_items = (
        read_table(spark, analysis_lakehouse, silver.ITEM_LABELS).where(F.col("split") == "test")
        .join(embedded.select("item_id"), "item_id", "left_semi")
    )
    assert test_items.count() > 25  # the cap bites
    smallest = {r[0] for r in test_items.orderBy(hash_unit("item_id", 0)).limit(25).select("item_id").collect()}
    assert set(frame.loc[frame["split"] == "test", "item_id"]) <= smallest
    assert len(smallest - set(frame["item_id"])) == 25 - by_split["test"]
    again, _, _, _ = split_frame(spark, cfg, "oracle", {"test": 25, "train": 40}, seed=0)
    assert list(again["item_id"]) == list(frame["item_id"])


def test_similarity_and_evaluate_respect_the_caps(spark: Any, analysis_lakehouse: Path) -> None:
    import evaluate
    import train_similarity

    common = ["--lakehouse", str(analysis_lakehouse), "--run-id", "t1", "--set", "spark.master='local[2]'",
              "--model-version", "oracle"]
    assert train_similarity.main([*common, "--set", "similarity.epochs=2", "--set", "similarity.max_pos_pairs=300",
                                  "--set", "similarity.max_train_items=60", "--set",
                                  "similarity.max_heldout_items=20"]) == 0
    card = json.loads((analysis_lakehouse / "similarity" / "oracle" / "pan_card.json").read_text())
    assert 40 <= card["train_items"] <= 60 and card["max_train_items"] == 60  # items with category + colour
    assert card["heldout_pairs"]["pairs"] > 0
    assert evaluate.main([*common, "--set", "evaluation.max_test_items=30", "--set", "evaluation.max_train_items=50"]) == 0
    report = json.loads((analysis_lakehouse / "reports" / "oracle" / "report.json").read_text())
    counts = report["counts"]
    assert 60 <= counts["items_with_embedding_and_labels"] <= 80
    assert 20 <= counts["test_items"] + counts["test_items_without_image"] <= 30
    assert 40 <= counts["train_items_for_probe"] + counts["train_items_without_image"] <= 50
    assert report["protocol"]["sample"]["max_test_items"] == 30
    assert report["retrieval"]["model"]["category"]["precision@1"] > 0.5  # the oracle still ranks by category
