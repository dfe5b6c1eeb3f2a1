"""Beam RunInference (DirectRunner) gives the same embeddings and top tags as the Spark job, and its
staged output merges into the same gold tables."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from catalog2vec.lakehouse import delta_version, read_pandas
from tests.unit.embed.helpers import DEMO_VERSION, demo_lakehouse

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_beam_equals_spark(spark: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    import embed

    from pipelines import embed as beam_embed

    root = demo_lakehouse(spark, tmp_path_factory.getbasetemp())
    export, staging = tmp_path / "export", tmp_path / "staging"
    beam_embed.run(
        [
            "--lakehouse",
            str(root),
            "--model-version",
            "latest",
            "--export-images",
            "--input",
            str(export),
            "--staging",
            str(staging),
            "--batch-size",
            "32",
            "--runner=DirectRunner",
        ]
    )
    staged = pq.read_table(str(staging)).to_pandas().sort_values("item_id").reset_index(drop=True)
    gold = read_pandas(root, "gold.item_embeddings").sort_values("item_id").reset_index(drop=True)
    assert len(staged) == len(gold) == 384
    assert (staged.model_version == DEMO_VERSION).all() and (staged.ok == 1).all()
    assert staged.item_id.tolist() == gold.item_id.tolist()
    assert staged.sha256.tolist() == gold.sha256.tolist()
    np.testing.assert_allclose(np.stack(staged.embedding), np.stack(gold.embedding), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(staged.norm, gold.norm, rtol=1e-5)

    tags = read_pandas(root, "gold.item_tags")
    tokens = pq.read_table(root / "models" / DEMO_VERSION / "vocab.parquet").column("token").to_pylist()
    spark_top = tags.sort_values(["item_id", "rank"]).groupby("item_id").tag.apply(list)
    beam_top = staged.set_index("item_id").tag_index.apply(lambda idx: [tokens[i] for i in idx])
    assert (spark_top.loc[beam_top.index] == beam_top).all()

    # merging the Beam output into the lakehouse Spark already filled changes nothing ...
    before = (delta_version(root, "gold.item_embeddings"), delta_version(root, "gold.item_tags"))
    assert (
        embed.main(
            ["--lakehouse", str(root), "--model-version", DEMO_VERSION, "--from-staging", str(staging)]
        )
        == 0
    )
    assert (delta_version(root, "gold.item_embeddings"), delta_version(root, "gold.item_tags")) == before
    # ... and into a fresh lakehouse (same model) gives the same tables
    fresh = tmp_path / "fresh"
    shutil.copytree(root / "models", fresh / "models")
    assert (
        embed.main(
            [
                "--lakehouse",
                str(fresh),
                "--model-version",
                DEMO_VERSION,
                "--from-staging",
                str(staging),
                "--run-id",
                "beam",
            ]
        )
        == 0
    )
    f_emb = read_pandas(fresh, "gold.item_embeddings").sort_values("item_id").reset_index(drop=True)
    np.testing.assert_allclose(np.stack(f_emb.embedding), np.stack(gold.embedding), rtol=1e-4, atol=1e-5)
    f_tags = read_pandas(fresh, "gold.item_tags").sort_values(["item_id", "rank"]).reset_index(drop=True)
    s_tags = tags.sort_values(["item_id", "rank"]).reset_index(drop=True)
    assert f_tags[["item_id", "tag", "rank"]].equals(s_tags[["item_id", "tag", "rank"]])
    assert (f_tags.run_id == "beam").all()
