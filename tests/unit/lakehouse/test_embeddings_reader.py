"""One Arrow reader of ``gold.item_embeddings`` (issue 36): :func:`catalog2vec.lakehouse.gold.load_embeddings`
serves the analyst helpers (normalised) and the retrieval index (as stored), with one error type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from catalog2vec import retrieval
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import gold as g
from catalog2vec.lakehouse import table_path
from catalog2vec.schemas import gold


def _write(root: Path, rows: list[tuple[str, str, list[float]]]) -> None:
    cols = {"model_version": [r[0] for r in rows], "item_id": [r[1] for r in rows], "sha256": ["s"] * len(rows),
            "embedding": [r[2] for r in rows], "norm": [float(np.linalg.norm(r[2])) for r in rows],
            "run_id": ["r"] * len(rows)}
    write_deltalake(table_path(root, gold.ITEM_EMBEDDINGS), pa.table(cols, schema=gold.ITEM_EMBEDDINGS.arrow_schema()),
                    mode="append")


def test_one_reader_as_stored_and_normalised(tmp_path: Path) -> None:
    _write(tmp_path, [("m1", "b", [3.0, 4.0]), ("m1", "a", [1.0, 0.0]), ("m2", "a", [0.0, 2.0])])
    ids, mat = g.load_embeddings(tmp_path, "m1")
    assert ids == ["a", "b"] and mat.dtype == np.float32
    np.testing.assert_array_equal(mat, [[1.0, 0.0], [3.0, 4.0]])
    assert retrieval.load_embeddings is g.load_embeddings  # the index reads through the same function
    ids, mat = g.load_embeddings(tmp_path, "m1", item_ids=["b"])
    assert ids == ["b"] and mat.tolist() == [[3.0, 4.0]]
    ids, unit = g.embedding_matrix(tmp_path, "m1")
    np.testing.assert_allclose(unit, [[1.0, 0.0], [0.6, 0.8]], rtol=1e-6)


def test_missing_version_and_ragged_rows_are_one_error_type(tmp_path: Path) -> None:
    _write(tmp_path, [("m1", "a", [1.0, 0.0]), ("m1", "b", [1.0, 0.0, 0.0])])
    with pytest.raises(InvalidInput, match="no rows for model_version 'm9'"):
        g.load_embeddings(tmp_path, "m9")
    with pytest.raises(InvalidInput, match=r"different dimensions: \[2, 3\]"):
        g.embedding_matrix(tmp_path, "m1")
