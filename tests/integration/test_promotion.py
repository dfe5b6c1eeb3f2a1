"""Promotion gated by evaluation (issue 33, DESIGN's promotion rule), on real components: tiny models
trained for real on the bundled sample, a local sqlite MLflow registry, real Spark + Delta, and
``jobs/promote.py`` / ``jobs/embed.py`` called as spark-submit calls them.

Training publishes a candidate only (alias ``challenger``; no ``models/LATEST``, no ``champion``).
The first candidate is promoted (no champion yet); a better one is promoted over it; one made worse
on purpose (``--max-steps 1``) is rejected: exit 3, ``LATEST``, ``champion`` and the gold tables stay
on the previous model, and the decision record says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.unit.vision.helpers import write_sample_tables

pytestmark = [pytest.mark.slow, pytest.mark.spark]

TINY = ["train.arch=\"resnet18\"", "train.image_size=32", "train.batch_size=16", "train.workers=0",
        "train.num_negatives=10", "train.checkpoint_every=0", "train.lr=0.01", "train.mlflow=true"]


@pytest.fixture(autouse=True)
def _offline_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _mlflow_sets(tmp_path: Path) -> list[str]:
    return [f'mlflow.tracking_uri="sqlite:///{tmp_path / "mlflow.db"}"',
            f'mlflow.artifact_location="{tmp_path / "mlartifacts"}"']


def _train(root: Path, tmp_path: Path, version: str, *extra: str) -> None:
    from catalog2vec.config import load_config
    from catalog2vec.vision.train import train

    cfg = load_config(None, [*TINY, *_mlflow_sets(tmp_path), f'train.model_version="{version}"', *extra],
                      lakehouse=str(root), run_id=f"run-{version}")
    assert train(cfg) is not None


def _promote(root: Path, tmp_path: Path, run_id: str) -> tuple[int, dict[str, Any]]:
    import promote

    from catalog2vec import models
    from catalog2vec.evaluation import gate

    argv = ["--lakehouse", str(root), "--run-id", run_id, *[f"--set={s}" for s in ["train.mlflow=true",
                                                                                   *_mlflow_sets(tmp_path)]]]
    rc = promote.main(argv)
    record = json.loads(Path(gate.decision_path(root, models.newest_version(root))).read_text())
    return rc, record


def _aliases(tmp_path: Path) -> dict[str, str]:
    from mlflow import MlflowClient

    from catalog2vec import tracking

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = {}
    for alias in ("champion", "challenger"):
        try:
            out[alias] = client.get_model_version_by_alias("catalog2vec", alias).tags[tracking.VERSION_TAG]
        except Exception:  # no such alias yet
            out[alias] = ""
    return out


def test_the_first_candidate_is_promoted_and_a_worse_one_rejected(spark: Any, tmp_path: Path) -> None:
    """make test's slice (no MLflow, no embed): a real candidate, then one trained for one step."""
    import promote

    from catalog2vec import models
    from catalog2vec.evaluation import gate

    torch.set_num_threads(2)
    root = tmp_path / "lh"
    write_sample_tables(root, limit=120, short_side=40)
    no_mlflow = "train.mlflow=false", "train.deterministic=true"  # the same weights on every run
    _train(root, tmp_path, "good-1", *no_mlflow, "train.epochs=3", "train.seed=2")
    assert models.read_latest(root) == ""  # training publishes a candidate only
    assert promote.main(["--lakehouse", str(root), "--run-id", "p1"]) == 0
    assert models.read_latest(root) == "good-1"
    _train(root, tmp_path, "worse-2", *no_mlflow, "train.max_steps=1", "train.seed=3")
    assert promote.main(["--lakehouse", str(root), "--run-id", "p2"]) == 3
    record = json.loads(Path(gate.decision_path(root, "worse-2")).read_text())
    worse, good = record["scores"]["worse-2"]["tag_recall@5"], record["scores"]["good-1"]["tag_recall@5"]
    assert record["champion"] == "good-1" and not record["promoted"] and worse < good, record
    assert record["heldout_items"] >= 8 and record["scores"]["good-1"]["retrieval_precision@10"] is None  # no bronze
    assert models.read_latest(root) == "good-1" and models.resolve(root, "latest") == "good-1"
    # promotion.fail_if_worse = false: the decision is recorded, the candidate promoted anyway
    assert promote.main(["--lakehouse", str(root), "--run-id", "p3", "--set=promotion.fail_if_worse=false"]) == 0
    record = json.loads(Path(gate.decision_path(root, "worse-2")).read_text())
    assert record["promoted"] and not record["passed"] and "promoted anyway" in record["reason"]
    assert models.read_latest(root) == "worse-2"


@pytest.mark.long
def test_a_worse_candidate_is_rejected_and_a_better_one_promoted(spark: Any, tmp_path: Path) -> None:
    """The whole story with a registry and gold tables (~11 min on the loaded 2-core machine)."""
    import embed

    from catalog2vec import models
    from catalog2vec.lakehouse import read_pandas, table_path

    torch.set_num_threads(2)
    root = tmp_path / "lh"
    write_sample_tables(root, limit=160, short_side=40)

    # 1. a weak first candidate: published, alias challenger, nothing else moves ...
    _train(root, tmp_path, "weak-1", "train.max_steps=1", "train.seed=1")
    assert models.read_latest(root) == "" and _aliases(tmp_path) == {"champion": "", "challenger": "weak-1"}
    # ... until the gate promotes it: there is no champion yet
    rc, record = _promote(root, tmp_path, "p1")
    assert rc == 0 and record["promoted"] and record["champion"] == "" and "no champion yet" in record["reason"]
    assert models.read_latest(root) == "weak-1" and _aliases(tmp_path)["champion"] == "weak-1"

    # 2. a better candidate (trained for real) beats it on the same held-out items and is promoted
    _train(root, tmp_path, "good-2", "train.epochs=4", "train.seed=2")
    assert models.read_latest(root) == "weak-1" and _aliases(tmp_path) == {"champion": "weak-1", "challenger": "good-2"}
    rc, record = _promote(root, tmp_path, "p2")
    good, weak = record["scores"]["good-2"]["tag_recall@5"], record["scores"]["weak-1"]["tag_recall@5"]
    assert rc == 0 and record["passed"] and record["champion"] == "weak-1" and good >= weak, record
    assert record["heldout_items"] >= 10 and record["metric"] == "tag_recall@5"
    assert models.read_latest(root) == "good-2" and _aliases(tmp_path)["champion"] == "good-2"
    assert embed.main(["--lakehouse", str(root), "--run-id", "e2", "--model-version", "latest",
                       "--set", 'embed.device="cpu"']) == 0
    gold = table_path(root, "gold/item_embeddings")
    log_before = sorted(p.name for p in (Path(gold) / "_delta_log").glob("*.json"))

    # 3. a candidate made worse on purpose (--max-steps 1) is rejected: exit 3, nothing moves
    _train(root, tmp_path, "worse-3", "train.max_steps=1", "train.seed=3")
    rc, record = _promote(root, tmp_path, "p3")
    assert rc == 3 and not record["passed"] and not record["promoted"] and record["champion"] == "good-2"
    worse, good = record["scores"]["worse-3"]["tag_recall@5"], record["scores"]["good-2"]["tag_recall@5"]
    assert worse < good and record["reason"].startswith(f"tag_recall@5 {worse:.4f} < champion {good:.4f}")
    assert models.read_latest(root) == "good-2" and models.resolve(root, "latest") == "good-2"
    assert _aliases(tmp_path) == {"champion": "good-2", "challenger": "worse-3"}
    # the daily run goes on with the champion: gold tables stay on good-2 (embed has nothing new to write)
    assert embed.main(["--lakehouse", str(root), "--run-id", "e3", "--model-version", "latest",
                       "--set", 'embed.device="cpu"']) == 0
    emb = read_pandas(root, "gold.item_embeddings")
    assert set(emb["model_version"]) == {"good-2"}
    assert sorted(p.name for p in (Path(gold) / "_delta_log").glob("*.json")) == log_before
