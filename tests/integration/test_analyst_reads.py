"""Analyst reads without a JVM: filters and projections pushed into the Delta reads (files that
cannot match are never opened), Polars scans, fixed-size FLOAT[D] vectors in DuckDB with
array_cosine_similarity, and every DuckDB query of sql/examples.sql run against real Delta
tables (written here with delta-rs, partitioned as declared in schemas/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from catalog2vec.lakehouse import analyst, read_arrow, read_polars, scan_polars, table_path
from catalog2vec.lakehouse import sql_examples as sx
from catalog2vec.retrieval.store import item_images
from catalog2vec.schemas import gold, silver
from tests.conftest import REPO

V_OLD, V_NEW = "m-old", "m-new"
DIM = 8
N_ITEMS = 40


def _write(root: Path, spec: Any, rows: dict[str, list[Any]], mode: str = "append") -> None:
    from deltalake import write_deltalake

    table = pa.table(rows, schema=spec.arrow_schema())
    write_deltalake(table_path(root, spec), table, mode=mode, partition_by=list(spec.partition_by) or None)


def _vectors(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(N_ITEMS, DIM)).astype(np.float32)


@pytest.fixture()
def gold_lakehouse(lakehouse: Path) -> Path:
    ids = [f"i{n:03d}" for n in range(N_ITEMS)]
    for version, seed in ((V_OLD, 1), (V_NEW, 2)):
        vec = _vectors(seed)
        _write(lakehouse, gold.ITEM_EMBEDDINGS, {
            "model_version": [version] * N_ITEMS, "item_id": ids, "sha256": ["0" * 64] * N_ITEMS,
            "embedding": [list(map(float, v)) for v in vec], "norm": [float(np.linalg.norm(v)) for v in vec],
            "run_id": ["r"] * N_ITEMS,
        })
        tags = ["red", "blue", "dress"]
        rows: dict[str, list[Any]] = {k: [] for k in gold.ITEM_TAGS.column_names}
        for i, item in enumerate(ids):
            for rank, tag in enumerate(tags[i % 3:] + tags[: i % 3], start=1):
                rows["model_version"].append(version)
                rows["item_id"].append(item)
                rows["tag"].append(tag)
                rows["probability"].append(1.0 / rank - i / 1000)
                rows["rank"].append(rank)
                rows["run_id"].append("r")
        _write(lakehouse, gold.ITEM_TAGS, rows)
    (lakehouse / "models").mkdir()
    (lakehouse / "models" / "LATEST").write_text(V_NEW + "\n")
    return lakehouse


def test_filters_prune_partitions_and_project_columns(gold_lakehouse: Path) -> None:
    t = read_arrow(gold_lakehouse, gold.ITEM_TAGS, ["item_id", "tag"], [("model_version", "=", V_NEW), ("rank", "=", 1)])
    assert t.column_names == ["item_id", "tag"] and t.num_rows == N_ITEMS
    # partitioned as declared: one directory per model version, and delta-rs reads the partition column
    dt = analyst.delta_table(gold_lakehouse, gold.ITEM_TAGS)
    assert dt.metadata().partition_columns == ["model_version"]
    files = dt.file_uris(file_pruning_predicate=[("model_version", "=", V_NEW)])
    assert files and all(f"model_version={V_NEW}" in f for f in files)
    pl_df = read_polars(gold_lakehouse, gold.ITEM_TAGS, ["item_id", "probability"],
                        [("model_version", "=", V_OLD), ("item_id", "in", ["i001", "i002"])])
    assert pl_df.shape == (6, 2)
    lazy = scan_polars(gold_lakehouse, gold.ITEM_EMBEDDINGS)
    import polars as pl

    plan = lazy.filter(pl.col("model_version") == V_NEW).select("item_id").explain()
    assert "model_version" in plan  # the predicate sits in the scan, not after a full read
    assert lazy.filter(pl.col("model_version") == V_NEW).select("item_id").collect().height == N_ITEMS


def _counting_fs(root: str) -> tuple[Any, list[str]]:
    """A real local filesystem (fsspec) rooted at ``root`` that records which files are opened."""
    from fsspec.implementations.local import LocalFileSystem
    from pyarrow import fs as pa_fs

    opened: list[str] = []

    class Counting(LocalFileSystem):  # type: ignore[misc]
        def _open(self, path: str, mode: str = "rb", **kw: Any) -> Any:
            opened.append(path)
            return super()._open(path, mode=mode, **kw)

    handler = pa_fs.PyFileSystem(pa_fs.FSSpecHandler(Counting(skip_instance_cache=True)))
    return pa_fs.SubTreeFileSystem(root, handler), opened


def test_item_images_reads_only_files_that_hold_the_items(lakehouse: Path) -> None:
    # four commits with disjoint item ranges = four files (what maintain_tables' Z-order by item_id yields)
    for part in range(4):
        ids = [f"{part}{n:03d}" for n in range(25)]
        _write(lakehouse, silver.IMAGES, {
            "item_id": ids, "image_uri": [None] * 25, "sha256": ["0" * 64] * 25, "width": [8] * 25,
            "height": [8] * 25, "orig_width": [8] * 25, "orig_height": [8] * 25, "orig_mode": ["RGB"] * 25,
            "image": [bytes([part]) * 4096 for _ in ids], "run_id": ["r"] * 25,
        })
    fs, opened = _counting_fs(table_path(lakehouse, silver.IMAGES))
    t = read_arrow(lakehouse, silver.IMAGES, ["item_id", "image"], [("item_id", "in", ["2003", "2017"])], filesystem=fs)
    assert sorted(t.column("item_id").to_pylist()) == ["2003", "2017"]
    assert len(set(opened)) == 1, opened  # 1 of 4 files: the others were skipped on their statistics
    images = item_images(lakehouse, ["1000", "3024", "nope"])
    assert images == {"1000": bytes([1]) * 4096, "3024": bytes([3]) * 4096}


def test_duckdb_fixed_size_vectors_and_brute_force_top_k(gold_lakehouse: Path) -> None:
    con = analyst.duckdb_connect(gold_lakehouse)
    assert con.execute("SELECT typeof(vector) FROM catalog2vec_gold.item_vectors_latest LIMIT 1").fetchone() == (
        f"FLOAT[{DIM}]",
    )
    assert con.execute("SELECT DISTINCT model_version FROM catalog2vec_gold.item_tags_latest").fetchall() == [(V_NEW,)]
    examples = {e.name: e for e in sx.load(REPO / "sql" / "examples.sql")}
    got = sx.run_duckdb(con, examples["nearest_neighbours"], item_id="i005")
    vec = _vectors(2)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    scores = unit @ unit[5]
    scores[5] = -np.inf
    want = np.argsort(-scores, kind="stable")[:10]
    assert got["item_id"].tolist() == [f"i{j:03d}" for j in want]
    np.testing.assert_allclose(got["score"].to_numpy(), scores[want], rtol=1e-5)
    # an explicit other version through vector_view
    assert analyst.vector_view(con, V_OLD, "old_vectors") == DIM
    assert con.execute("SELECT count(*) FROM old_vectors").fetchone() == (N_ITEMS,)


def test_every_duckdb_example_query_runs(gold_lakehouse: Path) -> None:
    con = analyst.duckdb_connect(gold_lakehouse)
    examples = sx.load(REPO / "sql" / "examples.sql")
    ran = {}
    for ex in examples:
        if "duckdb" in ex.engines:
            ran[ex.name] = sx.run_duckdb(con, ex, item_id="i004", tag="red")
    assert set(ran) == {"model_versions", "top_tags_of_item", "items_with_top_tag", "tag_counts", "nearest_neighbours"}
    assert ran["model_versions"].to_dict("list") == {"model_version": [V_NEW, V_OLD], "items": [N_ITEMS, N_ITEMS]}
    assert ran["top_tags_of_item"]["tag"].tolist() == ["blue", "dress", "red"]  # i004: rotation 1
    assert ran["tag_counts"]["items"].sum() == N_ITEMS
    assert set(ran["items_with_top_tag"]["item_id"]) == {f"i{n:03d}" for n in range(0, N_ITEMS, 3)}


def test_hnsw_index_when_vss_is_available(gold_lakehouse: Path) -> None:
    con = analyst.duckdb_connect(gold_lakehouse)
    try:
        analyst.load_vss(con)
    except analyst.ExtensionUnavailableError as exc:
        pytest.skip(f"{exc} (offline: vss downloads from extensions.duckdb.org; no PyPI wheel for this DuckDB)")
    analyst.hnsw_index(con, "catalog2vec_gold.item_vectors_latest", "item_vectors_hnsw")
    ex = {e.name: e for e in sx.load(REPO / "sql" / "examples.sql")}["nearest_neighbours_hnsw"]
    exact = sx.run_duckdb(con, {e.name: e for e in sx.load(REPO / "sql" / "examples.sql")}["nearest_neighbours"],
                          item_id="i005")
    approx = sx.run_duckdb(con, ex, item_id="i005")
    assert len(set(approx["item_id"]) & set(exact["item_id"])) >= 8


def test_sql_examples_file_parses() -> None:
    examples = sx.load(REPO / "sql" / "examples.sql")
    assert len({e.name for e in examples}) == len(examples) >= 6
    assert all(e.doc and e.engines for e in examples)
    nn = next(e for e in examples if e.name == "nearest_neighbours")
    assert nn.params == ["item_id"] and "::" not in nn.sql
    with pytest.raises(ValueError, match="needs parameter"):
        sx.run_duckdb(None, nn)
