"""MLflow tracking + registry on a local sqlite tracking store under tmp_path (no server): training with
train.mlflow = true logs params, per-epoch metrics, the model card and the model (signature), registers
it as a candidate (alias ``challenger``, never ``champion``); the promotion step moves ``champion``;
``jobs/embed.py --model-version champion`` embeds with that version (resolved by the model owner,
catalog2vec.models); a newer run takes ``challenger`` and ``champion`` follows only when promoted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.vision.helpers import write_sample_tables

pytestmark = [pytest.mark.slow]

TINY = ["train.arch=\"resnet18\"", "train.image_size=32", "train.batch_size=8", "train.epochs=2",
        "train.workers=0", "train.num_negatives=10", "train.checkpoint_every=0", "train.lr=0.01",
        "train.seed=7", "train.mlflow=true"]


@pytest.fixture(autouse=True)
def _offline_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _train(root: Path, uri: str, version: str) -> Any:
    from catalog2vec.config import load_config
    from catalog2vec.vision.train import train

    cfg = load_config(None, [*TINY, f'train.model_version="{version}"', f'mlflow.tracking_uri="{uri}"',
                             f'mlflow.artifact_location="{root.parent / "mlartifacts"}"'],
                      lakehouse=str(root), run_id=f"run-{version}")
    result = train(cfg)
    assert result is not None and result.complete
    return cfg


@pytest.mark.spark
def test_training_is_tracked_registered_and_embed_resolves_the_champion(spark: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import embed
    import mlflow
    from mlflow import MlflowClient

    from catalog2vec import models, tracking
    from catalog2vec.lakehouse import read_pandas

    torch.set_num_threads(1)
    root = tmp_path / "lh"
    write_sample_tables(root, limit=48, short_side=40)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _train(root, uri, "tracked-1")

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("catalog2vec")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "tracked-1" and run.info.status == "FINISHED"
    assert run.data.params["arch"] == "resnet18" and run.data.params["image_size"] == "32"
    assert run.data.params["vocab_version"] and run.data.tags[tracking.VERSION_TAG] == "tracked-1"
    card = json.loads((root / "models" / "tracked-1" / "model_card.json").read_text())
    spe = card["steps_per_epoch"]
    history = client.get_metric_history(run.info.run_id, "val_map")
    assert [m.step for m in history] == [spe, 2 * spe]  # one point per epoch, at its step
    assert [m.value for m in history] == pytest.approx([e["val_map"] for e in card["metrics"]["per_epoch"]])
    assert "test_recall_at_5" in run.data.metrics
    assert str(tmp_path / "mlartifacts") in run.info.artifact_uri  # not ./mlruns in the cwd
    logged_card = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/model_card.json")
    assert logged_card["model_version"] == "tracked-1" and logged_card["metrics"] == card["metrics"]

    # registered, tagged with the catalog2vec version, alias challenger: a candidate, no champion yet
    mv = client.get_model_version_by_alias("catalog2vec", "challenger")
    assert str(mv.version) == "1" and mv.tags[tracking.VERSION_TAG] == "tracked-1"
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("catalog2vec", "champion")
    from catalog2vec.evaluation import gate

    moved = gate.promote(cfg, "tracked-1")  # the promotion step's model half (the gate is test_promotion.py's)
    assert moved["registry_version"] == "1" and models.read_latest(root) == "tracked-1"
    mv = client.get_model_version_by_alias("catalog2vec", "champion")
    assert str(mv.version) == "1" and mv.tags[tracking.VERSION_TAG] == "tracked-1" and mv.run_id == run.info.run_id
    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info("models:/catalog2vec@champion")
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 3, 32, 32]
    logged = mlflow.pytorch.load_model("models:/catalog2vec@champion")
    x = torch.rand(3, 3, 32, 32)
    from catalog2vec.vision.model import load_model_dir

    local = load_model_dir(root / "models" / "tracked-1").model
    with torch.inference_mode():
        np.testing.assert_allclose(logged.eval()(x).numpy(), local(x).numpy(), rtol=1e-5, atol=1e-6)
    # beside it the JPEG-bytes pyfunc (its URI on the registered version): the embed core's outputs
    import pandas as pd

    from catalog2vec.embed.core import InferenceModel

    images = [p.read_bytes() for p in sorted((Path(__file__).resolve().parents[2] / "examples" / "data" / "images")
                                             .glob("*.jpg"))[:2]]
    out = mlflow.pyfunc.load_model(mv.tags[tracking.JPEG_TAG]).predict(pd.DataFrame({"image": images}))
    core = InferenceModel.from_dir(str(root / "models" / "tracked-1"), top_n=cfg.embed.top_n, device="cpu")
    expected = core.predict(images)
    np.testing.assert_allclose(np.array(out["embedding"].tolist(), dtype=np.float32), expected.embedding, atol=1e-5)
    assert out["tags"].map(list).tolist() == [[core.tokens[i] for i in row] for row in expected.tag_index]

    # the model owner resolves the alias (bare, with the configured registry, or as a models:/ URI)
    reg = tracking.registry(cfg)
    assert models.resolve(root, "champion", reg) == "tracked-1"
    assert models.resolve(root, "models:/catalog2vec@champion", tracking.Registry(uri)) == "tracked-1"
    assert models.resolve(root, "challenger", reg) == "tracked-1"
    with pytest.raises(models.ModelNotFoundError, match="unknown model_version 'runner-up'"):
        models.resolve(root, "runner-up", reg)
    with pytest.raises(tracking.TrackingError, match="no alias 'nope'"):
        models.resolve(root, "models:/catalog2vec@nope", reg)
    with monkeypatch.context() as m:  # no registry configured (mlflow.set_tracking_uri sets the variable)
        m.delenv("MLFLOW_TRACKING_URI", raising=False)
        with pytest.raises(models.ModelNotFoundError):  # a bare name is then only a version name
            models.resolve(root, "champion")

    # jobs/embed.py --model-version champion embeds with tracked-1
    rc = embed.main(["--lakehouse", str(root), "--run-id", "e1", "--model-version", "champion",
                     "--set", f'mlflow.tracking_uri="{uri}"', "--set", "embed.device=\"cpu\""])
    assert rc == 0
    emb = read_pandas(root, "gold.item_embeddings")
    assert set(emb["model_version"]) == {"tracked-1"} and len(emb) == 48

    # a newer run registers version 2 and takes challenger; champion moves only when it is promoted
    cfg2 = _train(root, uri, "tracked-2")
    assert str(client.get_model_version_by_alias("catalog2vec", "challenger").version) == "2"
    assert models.resolve(root, "champion", reg) == "tracked-1" and models.read_latest(root) == "tracked-1"
    gate.promote(cfg2, "tracked-2")
    assert str(client.get_model_version_by_alias("catalog2vec", "champion").version) == "2"
    assert models.resolve(root, "champion", reg) == "tracked-2"
    assert client.get_model_version("catalog2vec", "1").tags[tracking.VERSION_TAG] == "tracked-1"


def test_alias_on_a_version_registered_outside_catalog2vec_is_a_clear_error(tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    from catalog2vec import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("other", artifact_location=str(tmp_path / "mlartifacts"))
    mlflow.set_experiment("other")
    with mlflow.start_run():
        mlflow.log_dict({"a": 1}, "x.json")
        run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model("catalog2vec")
    v = client.create_model_version("catalog2vec", f"runs:/{run_id}/x.json", run_id=run_id)
    client.set_registered_model_alias("catalog2vec", "champion", v.version)
    with pytest.raises(tracking.TrackingError, match=r"has no 'catalog2vec\.model_version' tag"):
        tracking.resolve_alias("champion", tracking.Registry(uri))
    assert tracking.resolve_alias("challenger", tracking.Registry(uri)) is None
