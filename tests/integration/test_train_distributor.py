"""jobs/train.py through pyspark's TorchDistributor: 2 local CPU processes (gloo), each rank trains
on a disjoint shard; the model card records both ranks. Uses the session-scoped spark fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.vision.helpers import write_sample_tables

pytestmark = pytest.mark.spark


def test_torch_distributor_two_processes_disjoint_shards(spark, lakehouse: Path, capsys) -> None:
    import train as train_job

    info = write_sample_tables(lakehouse, limit=48, short_side=40)
    rc = train_job.main([
        "--lakehouse", str(lakehouse), "--run-id", "dist", "--model-version", "dist2",
        "--set", "train.num_processes=2", "--set", "train.local_mode=true", "--set", "train.use_gpu=false",
        "--set", "train.image_size=32", "--set", "train.batch_size=4", "--set", "train.epochs=1",
        "--set", "train.workers=0", "--set", "train.num_negatives=8", "--set", "train.checkpoint_every=0",
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "model_version=dist2" in out
    model = lakehouse / "models" / "dist2"
    card = json.loads((model / "model_card.json").read_text())
    assert card["world_size"] == 2 and card["complete"] is True
    n_train = info["splits"]["train"]
    spe = n_train // 2 // 4
    assert card["steps"] == spe
    shards = json.loads((model / "shards.json").read_text())
    r0, r1 = set(shards["0"]), set(shards["1"])
    assert len(r0) == len(r1) == spe * 4  # each rank trained on steps x batch distinct items
    assert not (r0 & r1)  # disjoint
    assert card["data"]["ranks_disjoint"] is True
    assert [r["seen_items"] for r in card["data"]["ranks"]] == [spe * 4, spe * 4]
    assert card["metrics"]["per_epoch"][0]["val_n"] == info["splits"]["val"]
    assert (model / "model.pt").is_file() and (model / "vocab.parquet").is_file()
