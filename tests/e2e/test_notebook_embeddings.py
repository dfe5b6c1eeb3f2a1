"""notebooks/explore_embeddings.py executes (jupytext + nbclient) against a lakehouse written by the
real jobs and saves its three pictures; its nearest neighbours equal a brute-force cosine search."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from catalog2vec.lakehouse import read_pandas
from tests.unit.embed.helpers import DEMO_VERSION, REPO, demo_lakehouse

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_explore_embeddings_notebook(spark: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import jupytext
    import nbclient

    root = demo_lakehouse(spark, tmp_path_factory.getbasetemp())
    out = tmp_path / "nb_out"
    monkeypatch.setenv("CATALOG2VEC_LAKEHOUSE", str(root))
    monkeypatch.setenv("CATALOG2VEC_OUT", str(out))
    monkeypatch.setenv("CATALOG2VEC_ITEM", "10039")
    nb = jupytext.read(REPO / "notebooks" / "explore_embeddings.py")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()

    for name, min_size in [("top_tags_per_category.png", (600, 300)), ("nearest_neighbours.png", (600, 150)),
                           ("projection_pca.png", (400, 300))]:
        with Image.open(out / name) as img:
            assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1], name
            assert len(set(img.convert("L").getdata())) > 10, f"{name} is blank"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model_version"] == DEMO_VERSION and summary["items"] == 384
    assert summary["query_item"] == "10039" and len(summary["neighbours"]) == 8

    emb = read_pandas(root, "gold.item_embeddings").set_index("item_id")
    mat = np.stack(emb.embedding.to_list())
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    scores = mat @ mat[emb.index.get_loc("10039")]
    order = [emb.index[i] for i in np.argsort(-scores, kind="stable") if emb.index[i] != "10039"][:8]
    assert summary["neighbours"] == order
    np.testing.assert_allclose(summary["neighbour_scores"], np.sort(scores)[::-1][1:9], rtol=1e-4, atol=1e-5)
    # categories come from bronze.catalog_items (the Myntra articleType)
    per_cat = summary["top_tags_per_category"]
    assert len(per_cat) == 6 and set(per_cat) <= set(read_pandas(root, "bronze.catalog_items").category)
    assert all(sum(c.values()) == 16 for c in per_cat.values())  # 16 items per category, one top-1 tag each
    assert os.path.isfile(out / "summary.json")
