"""One path builder per artifact kind (issue 36): :mod:`catalog2vec.layout` is the only module that
joins an artifact directory under the lakehouse root, and the model owner publishes and resolves the
CTR models through it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from catalog2vec import layout, models
from catalog2vec.errors import InvalidInput

REPO = Path(__file__).resolve().parents[3]
# the directory and pointer names the layout owns (a join that names one of them builds an artifact path)
ARTIFACT_NAMES = {layout.MODELS, layout.INDEXES, layout.REPORTS, layout.SIMILARITY, layout.VOCAB, layout.RUNS,
                  layout.METASTORE, layout.LATEST_FILE, layout.VOCAB_CURRENT_FILE, layout.CTR}


def _named_artifact(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        head = node.value.strip("/").split("/", 1)[0]
        return node.value if head in ARTIFACT_NAMES else None
    if isinstance(node, ast.JoinedStr) and node.values:
        return _named_artifact(node.values[0]) if isinstance(node.values[0], ast.Constant) else None
    return None


def artifact_joins(source: str) -> list[tuple[int, str]]:
    """(line, name) of every ``*.join(..., "<artifact>", ...)`` and ``path / "<artifact>"`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        parts: list[ast.expr] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            parts = list(node.args) if name in ("join", "joinpath") else []
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts = [node.right]
        found += [(node.lineno, hit) for p in parts if (hit := _named_artifact(p)) is not None]
    return found


def test_the_detector_sees_each_way_of_joining() -> None:
    src = ('storage.join(root, "models", v)\nos.path.join(r, "_runs", rid)\nPath(r) / "indexes"\n'
           'storage.join(root, f"reports/{v}")\nstorage.join(d, "model.pt")\nstorage.join(d, "gold/item_embeddings")\n')
    assert artifact_joins(src) == [(1, "models"), (2, "_runs"), (3, "indexes"), (4, "reports/")]


def test_no_artifact_path_is_joined_outside_the_layout_module() -> None:
    files = [p for d in ("catalog2vec", "jobs", "pipelines") for p in sorted((REPO / d).rglob("*.py"))]
    bad = [f"{p.relative_to(REPO)}:{line}: {name!r}" for p in files if p != REPO / "catalog2vec" / "layout.py"
           for line, name in artifact_joins(p.read_text(encoding="utf-8"))]
    assert bad == [], "build artifact paths with catalog2vec.layout:\n" + "\n".join(bad)


def test_one_function_per_artifact_kind() -> None:
    root = "/lake"
    assert layout.model_dir(root, "m1") == "/lake/models/m1"
    assert layout.latest_file(root) == "/lake/models/LATEST"
    assert layout.ctr_model_dir(root, "c1") == "/lake/models/ctr/c1"
    assert layout.ctr_features_file(root, "all-raw") == "/lake/models/ctr/features/all-raw.json"
    assert layout.index_dir(root, "m1") == "/lake/indexes/m1"
    assert layout.report_dir(root, "m1") == "/lake/reports/m1"
    assert layout.ctr_report_dir(root, "c1") == "/lake/reports/ctr/c1"
    assert layout.similarity_dir(root, "m1") == "/lake/similarity/m1"
    assert layout.vocab_dir(root, "v1") == "/lake/vocab/v1"
    assert layout.vocab_current_file(root) == "/lake/vocab/CURRENT"
    assert layout.run_record(root, "r1", "embed") == "/lake/_runs/r1/embed.json"
    assert layout.metastore_dir(root) == "/lake/_metastore"
    assert layout.table_dir(root, "gold/item_embeddings") == "/lake/gold/item_embeddings"
    assert layout.model_dir("s3://bucket/lake", "m1") == "s3://bucket/lake/models/m1"


@pytest.mark.parametrize("name", ["", "..", ".", "a/b", "../x", "a b", "-x"])
def test_every_segment_is_a_validated_name(name: str) -> None:
    for build in (layout.model_dir, layout.index_dir, layout.report_dir, layout.similarity_dir, layout.ctr_model_dir):
        with pytest.raises(InvalidInput):
            build("/lake", name)
    with pytest.raises(InvalidInput):
        layout.run_record("/lake", name, "embed")


def test_ctr_models_are_published_and_resolved_by_the_model_owner(tmp_path: Path) -> None:
    root = str(tmp_path)
    card = {"model_version": "c1", "kind": "ctr_trees_lr", "z_last": 1, "a_first": 2}
    path = models.publish_ctr(root, "c1", card, {"feature_spec.json": b"{}"})
    assert path == str(tmp_path / "models" / "ctr" / "c1" / "model_card.json")
    assert Path(path).read_text() == json.dumps(card, indent=2)  # the card's bytes: key order kept
    assert (tmp_path / "models" / "ctr" / "c1" / "feature_spec.json").read_bytes() == b"{}"
    (tmp_path / "models" / "ctr" / "half").mkdir()  # no card: not published
    assert models.list_ctr_versions(root) == ["c1"]
    assert models.read_ctr_card(root, "c1") == card
    with pytest.raises(models.ModelNotFoundError):
        models.read_ctr_card(root, "half")
    assert models.list_versions(root) == []  # models/ctr is no vision model version
