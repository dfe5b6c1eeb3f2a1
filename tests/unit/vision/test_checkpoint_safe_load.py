"""Training checkpoints load with ``torch.load(weights_only=True)``: every RNG state is stored as
tensors, ints and tuples, and restoring it reproduces the same random streams; a checkpoint that
carries a pickled object is refused (no code runs on resume)."""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from catalog2vec.vision.train import load_latest_checkpoint, rng_state, save_checkpoint, set_rng_state


def _draws() -> tuple[float, float, float]:
    return float(torch.rand(1)), float(np.random.rand()), random.random()


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path: Path) -> None:
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    _draws()
    path = save_checkpoint(str(tmp_path), {"step": 7, "rng": rng_state(), "history": [{"epoch": 1, "loss": 0.5}],
                                           "config": {"train": {"lr": 0.1}}})
    expected = _draws()
    _draws()  # move every stream on
    ckpt = load_latest_checkpoint(str(tmp_path))
    assert ckpt is not None and ckpt["step"] == 7 and path.endswith("ckpt-00000007.pt")
    set_rng_state(ckpt["rng"])
    assert _draws() == expected


class _Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("code ran on load",))


def test_a_checkpoint_with_a_pickled_object_is_not_loaded(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    torch.save({"step": 1, "evil": _Payload()}, buf, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    (tmp_path / "ckpt-00000001.pt").write_bytes(buf.getvalue())
    assert load_latest_checkpoint(str(tmp_path)) is None  # refused (logged), never executed
    assert "code ran on load" not in capsys.readouterr().out
