"""Analyst helpers over the gold embedding tables (no JVM: delta-rs + numpy / DuckDB), and
:func:`query`: the version-pinned example queries of ``sql/examples.sql`` (the one registry, read
by :mod:`catalog2vec.lakehouse.sql_examples`), filled in for Spark SQL or DuckDB.

>>> from catalog2vec.lakehouse import gold
>>> v = gold.latest_embedded_model_version("lakehouse")
>>> gold.top_tags("lakehouse", "10039", v)
>>> gold.nearest_neighbours("lakehouse", "10039", v, k=8)
>>> con = duckdb_connect("lakehouse"); con.sql(gold.query("nearest_neighbours", "duckdb", item_id="10039", model_version=v))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import models
from catalog2vec.errors import InvalidInput, MissingInput
from catalog2vec.lakehouse import sql_examples
from catalog2vec.lakehouse.analyst import read_arrow
from catalog2vec.lakehouse.io import table_exists

if TYPE_CHECKING:
    import pandas as pd

def query(name: str, engine: str, model_version: str, item_id: str = "", tag: str = "", k: int = 10) -> str:
    """The version-pinned example query ``name`` of ``sql/examples.sql`` (``engine``: ``duckdb`` |
    ``spark``) with its parameters filled in as literals (:func:`.sql_examples.render`)."""
    example = sql_examples.find(name, engine, pinned=True)
    return sql_examples.render(example, engine, model_version=model_version, item_id=item_id, tag=tag, k=int(k))


def model_versions(root: str | os.PathLike[str]) -> list[str]:
    """Model versions present in gold/item_embeddings, sorted."""
    if not table_exists(root, "gold.item_embeddings"):
        return []
    col = read_arrow(root, "gold.item_embeddings", columns=["model_version"]).column("model_version")
    return sorted({str(v) for v in col.to_pylist()})


def latest_embedded_model_version(root: str | os.PathLike[str]) -> str:
    """The model owner's ``latest`` (:func:`catalog2vec.models.resolve`), checked to have embeddings."""
    version = models.resolve(root, "latest")
    if version not in model_versions(root):
        raise MissingInput(f"latest model {version!r} has no rows in gold/item_embeddings under {root} "
                           "(run jobs/embed.py first)")
    return version


def load_embeddings(
    root: str | os.PathLike[str], model_version: str, item_ids: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """The one Arrow reader of ``gold.item_embeddings`` (no JVM): (item_ids sorted, float32 (n, D)
    matrix, as stored) of one model version, optionally only ``item_ids``. :class:`InvalidInput`
    when the version has no rows or the rows have different dimensions. Spark jobs read through
    :func:`catalog2vec.retrieval.inputs.embedding_frames`, which also quarantines invalid rows."""
    import pyarrow.compute as pc

    filters: list[tuple[str, str, Any]] = [("model_version", "=", model_version)]
    if item_ids is not None:
        filters.append(("item_id", "in", list(item_ids)))
    table = read_arrow(root, "gold.item_embeddings", columns=["item_id", "embedding"], filters=filters)
    if table.num_rows == 0:
        raise InvalidInput(f"gold.item_embeddings has no rows for model_version {model_version!r} under {root}")
    table = table.sort_by("item_id")
    flat = table.column("embedding").combine_chunks()
    dims = sorted({int(d) for d in pc.unique(pc.list_value_length(flat)).to_pylist() if d is not None})
    if len(dims) != 1 or flat.null_count:
        raise InvalidInput(f"embeddings have different dimensions: {dims[:5]}")
    mat = np.asarray(flat.flatten(), dtype=np.float32).reshape(table.num_rows, dims[0])
    return [str(x) for x in table.column("item_id").to_pylist()], mat


def embedding_matrix(root: str | os.PathLike[str], model_version: str) -> tuple[list[str], np.ndarray]:
    """(item_ids sorted, L2-normalised embeddings (n, D) float32) of one model version
    (:func:`load_embeddings`, normalised)."""
    ids, mat = load_embeddings(root, model_version)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return ids, mat / np.maximum(norms, 1e-12)


def nearest_neighbours(root: str | os.PathLike[str], item_id: str, model_version: str, k: int = 10) -> pd.DataFrame:
    """The k items most cosine-similar to ``item_id`` (pandas: item_id, score, rank)."""
    import pandas as pd

    ids, mat = embedding_matrix(root, model_version)
    try:
        i = ids.index(str(item_id))
    except ValueError:
        raise KeyError(f"item {item_id!r} has no embedding for model_version {model_version!r}") from None
    scores = mat @ mat[i]
    scores[i] = -np.inf
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], ids[j]))[:k]
    return pd.DataFrame({"item_id": [ids[j] for j in order], "score": [float(scores[j]) for j in order],
                         "rank": list(range(1, len(order) + 1))})


def top_tags(root: str | os.PathLike[str], item_id: str, model_version: str) -> pd.DataFrame:
    """The stored top-N tags of one item (pandas: tag, probability, rank)."""
    t = read_arrow(root, "gold.item_tags", columns=["tag", "probability", "rank"],
                   filters=[("model_version", "=", model_version), ("item_id", "=", str(item_id))])
    return t.sort_by("rank").to_pandas()


__all__ = [
    "embedding_matrix",
    "latest_embedded_model_version",
    "load_embeddings",
    "model_versions",
    "nearest_neighbours",
    "query",
    "top_tags",
]
