"""Analyst helpers over the gold embedding tables (no JVM: delta-rs + numpy / DuckDB), and the
example queries documented in docs/embed.md (Spark SQL and DuckDB; tests run every one of them).

>>> from catalog2vec.lakehouse import gold
>>> v = gold.latest_model_version("lakehouse")
>>> gold.top_tags("lakehouse", "10039", v)
>>> gold.nearest_neighbours("lakehouse", "10039", v, k=8)
>>> con = duckdb_connect("lakehouse"); con.sql(gold.query("nearest_neighbours", "duckdb", item_id="10039", model_version=v))
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from catalog2vec import models, names
from catalog2vec.lakehouse.analyst import read_arrow
from catalog2vec.lakehouse.io import table_exists

if TYPE_CHECKING:
    import pandas as pd

# {model_version}, {item_id}, {tag}, {k} are filled by :func:`query` (values are SQL-quoted there).
EXAMPLE_QUERIES: dict[str, dict[str, str]] = {
    "top_tags_of_item": {
        "duckdb": (
            "SELECT tag, probability, rank FROM gold.item_tags\n"
            "WHERE model_version = {model_version} AND item_id = {item_id}\nORDER BY rank"
        ),
        "spark": (
            "SELECT tag, probability, rank FROM gold.item_tags\n"
            "WHERE model_version = {model_version} AND item_id = {item_id}\nORDER BY rank"
        ),
    },
    "items_with_top_tag": {
        "duckdb": (
            "SELECT item_id, probability FROM gold.item_tags\n"
            "WHERE model_version = {model_version} AND rank = 1 AND tag = {tag}\n"
            "ORDER BY probability DESC, item_id"
        ),
        "spark": (
            "SELECT item_id, probability FROM gold.item_tags\n"
            "WHERE model_version = {model_version} AND rank = 1 AND tag = {tag}\n"
            "ORDER BY probability DESC, item_id"
        ),
    },
    "nearest_neighbours": {
        "duckdb": (
            "SELECT o.item_id, list_cosine_similarity(o.embedding, q.embedding) AS score\n"
            "FROM gold.item_embeddings q JOIN gold.item_embeddings o\n"
            "  ON o.model_version = q.model_version AND o.item_id <> q.item_id\n"
            "WHERE q.model_version = {model_version} AND q.item_id = {item_id}\n"
            "ORDER BY score DESC, o.item_id LIMIT {k}"
        ),
        "spark": (
            "SELECT o.item_id,\n"
            "  aggregate(zip_with(o.embedding, q.embedding, (x, y) -> x * y), 0D, (acc, v) -> acc + v)\n"
            "    / (o.norm * q.norm) AS score\n"
            "FROM gold.item_embeddings q JOIN gold.item_embeddings o\n"
            "  ON o.model_version = q.model_version AND o.item_id <> q.item_id\n"
            "WHERE q.model_version = {model_version} AND q.item_id = {item_id}\n"
            "ORDER BY score DESC, o.item_id LIMIT {k}"
        ),
    },
    "tag_counts": {
        "duckdb": (
            "SELECT tag, count(*) AS items FROM gold.item_tags\n"
            "WHERE model_version = {model_version} AND rank = 1\nGROUP BY tag ORDER BY items DESC, tag"
        ),
        "spark": (
            "SELECT tag, count(*) AS items FROM gold.item_tags\n"
            "WHERE model_version = {model_version} AND rank = 1\nGROUP BY tag ORDER BY items DESC, tag"
        ),
    },
}


def query(name: str, engine: str, model_version: str, item_id: str = "", tag: str = "", k: int = 10) -> str:
    """An example query with its parameters filled in (``engine``: ``duckdb`` | ``spark``)."""
    try:
        template = EXAMPLE_QUERIES[name][engine]
    except KeyError:
        raise KeyError(f"no example query {name!r} for {engine!r}; have {sorted(EXAMPLE_QUERIES)}") from None
    lit = names.spark_literal if engine == "spark" else names.duckdb_literal  # each engine's own rule
    return template.format(model_version=lit(model_version), item_id=lit(item_id), tag=lit(tag), k=int(k))


def model_versions(root: str | os.PathLike[str]) -> list[str]:
    """Model versions present in gold/item_embeddings, sorted."""
    if not table_exists(root, "gold.item_embeddings"):
        return []
    col = read_arrow(root, "gold.item_embeddings", columns=["model_version"]).column("model_version")
    return sorted({str(v) for v in col.to_pylist()})


def latest_model_version(root: str | os.PathLike[str]) -> str:
    """The model owner's ``latest`` (:func:`catalog2vec.models.resolve`), checked to have embeddings."""
    version = models.resolve(root, "latest")
    if version not in model_versions(root):
        raise FileNotFoundError(f"latest model {version!r} has no rows in gold/item_embeddings under {root} "
                                "(run jobs/embed.py first)")
    return version


def embedding_matrix(root: str | os.PathLike[str], model_version: str) -> tuple[list[str], np.ndarray]:
    """(item_ids sorted, L2-normalised embeddings (n, D) float32) of one model version."""
    table = read_arrow(root, "gold.item_embeddings", columns=["item_id", "embedding"],
                       filters=[("model_version", "=", model_version)]).sort_by("item_id")
    if table.num_rows == 0:
        raise ValueError(f"no embeddings for model_version {model_version!r} in {root}")
    flat = table.column("embedding").combine_chunks()
    dim = len(flat[0])
    mat = np.asarray(flat.flatten(), dtype=np.float32).reshape(table.num_rows, dim)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return [str(x) for x in table.column("item_id").to_pylist()], mat / np.maximum(norms, 1e-12)


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
    "EXAMPLE_QUERIES",
    "embedding_matrix",
    "latest_model_version",
    "model_versions",
    "nearest_neighbours",
    "query",
    "top_tags",
]
