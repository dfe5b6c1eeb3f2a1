"""MLflow tracking of training under TorchDistributor, and the logged model as a pyfunc over JPEG bytes.

On a cluster the ranks run in the executors' runtime archive, which has no mlflow: here the two
local ranks (``train.num_processes=2``, local mode: torchrun on the driver) get a ``mlflow`` package
that fails on import (first on their ``PYTHONPATH``), so the run can only have been logged by the
driver after the distributor returned. The run has the layout of in-process tracking (params,
per-epoch metrics at their steps, test metrics, card, the registered candidate), and its ``jpeg``
model, loaded with ``mlflow.pyfunc.load_model``, gives for 3 JPEG files of examples/data the
embeddings (1e-5) and top tags of the embed job's core (:class:`catalog2vec.embed.core.InferenceModel`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.vision.helpers import write_sample_tables

pytestmark = [pytest.mark.spark, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data" / "images"


@pytest.fixture
def ranks_without_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``mlflow`` that raises ImportError in every fresh interpreter (the torchrun ranks); this
    process has already imported the real one."""
    import mlflow  # noqa: F401  (the driver's, imported before PYTHONPATH changes)

    shadow = tmp_path / "no_mlflow" / "mlflow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("mlflow is not in the runtime archive")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_distributor_training_is_tracked_by_the_driver_and_serves_jpeg_bytes(
        spark: Any, tmp_path: Path, ranks_without_mlflow: None) -> None:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from catalog2vec import tracking
    from catalog2vec.config import load_config
    from catalog2vec.embed.core import InferenceModel
    from catalog2vec.vision.train import run_distributed

    root = tmp_path / "lh"
    write_sample_tables(root, limit=48, short_side=40)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(None, [
        "train.arch=\"resnet18\"", "train.image_size=32", "train.batch_size=4", "train.epochs=1", "train.workers=0",
        "train.num_negatives=8", "train.checkpoint_every=0", "train.num_processes=2", "train.local_mode=true",
        "train.use_gpu=false", "train.mlflow=true", 'train.model_version="dist-tracked"', "embed.top_n=5",
        f'mlflow.tracking_uri="{uri}"', f'mlflow.artifact_location="{tmp_path / "mlartifacts"}"'],
        lakehouse=str(root), run_id="dist-mlflow")
    result = run_distributed(spark, cfg)
    assert result["complete"] and result["model_version"] == "dist-tracked"

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("catalog2vec").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "dist-tracked" and run.info.status == "FINISHED"
    assert run.data.params["num_processes"] == "2" and run.data.params["vocab_version"] == result["vocab_version"]
    card = json.loads((root / "models" / "dist-tracked" / "model_card.json").read_text())
    assert card["world_size"] == 2
    history = client.get_metric_history(run.info.run_id, "val_map")
    assert [m.step for m in history] == [e["step"] for e in card["metrics"]["per_epoch"]] == [card["steps"]]
    assert [m.value for m in history] == pytest.approx([e["val_map"] for e in card["metrics"]["per_epoch"]])
    assert run.data.metrics["test_recall_at_5"] == pytest.approx(card["metrics"]["test"]["recall@5"])
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/model_card.json")["steps"] == card["steps"]
    mv = client.get_model_version_by_alias("catalog2vec", "challenger")  # the candidate, no champion
    assert mv.tags[tracking.VERSION_TAG] == "dist-tracked" and mv.run_id == run.info.run_id

    # the JPEG-bytes pyfunc named by the registered version: the embed core's embeddings and tags
    jpeg_uri = mv.tags[tracking.JPEG_TAG]
    info = mlflow.models.get_model_info(jpeg_uri)
    assert info.signature.inputs.input_names() == ["image"]
    assert info.signature.outputs.input_names() == ["ok", "embedding", "tags", "tag_probabilities"]
    images = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.jpg"))[:3]]
    model = mlflow.pyfunc.load_model(jpeg_uri)
    out = model.predict(pd.DataFrame({"image": [*images, b"not a jpeg"]}))
    core = InferenceModel.from_dir(str(root / "models" / "dist-tracked"), top_n=5, device="cpu")
    expected = core.predict(images)
    assert list(out["ok"]) == [1, 1, 1, 0] and out["embedding"].iloc[3] == []
    got = np.array([np.asarray(e, dtype=np.float32) for e in out["embedding"].iloc[:3]])
    assert got.shape == expected.embedding.shape == (3, card["embedding_dim"])
    np.testing.assert_allclose(got, expected.embedding, rtol=0, atol=1e-5)
    assert [list(t) for t in out["tags"].iloc[:3]] == [[core.tokens[i] for i in row] for row in expected.tag_index]
    np.testing.assert_allclose(np.array([list(p) for p in out["tag_probabilities"].iloc[:3]]),
                               expected.tag_probability, atol=1e-5)
