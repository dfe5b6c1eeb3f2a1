"""A local disk that fills up (issue 35): the lakehouse and the checkpoint directory on a small
tmpfs. A Delta commit or a checkpoint that fails half-way leaves the table at its last version and
the last good checkpoint loadable; once space is back, the re-run gives what a clean run gives.
Skipped with a clear message where this process may not mount a tmpfs."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog2vec import storage

pytestmark = [pytest.mark.spark]


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()[:200]}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_delta_commit_on_a_full_disk_leaves_the_last_version(spark: Any, small_disk: Path) -> None:
    from catalog2vec.lakehouse import read_arrow, read_table, write_table
    from catalog2vec.schemas import gold

    root = str(small_disk / "lake")

    def rows(version: str, n: int) -> Any:
        data = [(version, f"i{i:05d}", "0" * 64, [float(i)] * 16, float(i), "r1") for i in range(n)]
        return spark.createDataFrame(data, gold.ITEM_EMBEDDINGS.spark_schema())

    write_table(spark, rows("m1", 100), gold.ITEM_EMBEDDINGS, root, mode="replace_where", version="m1")
    before = sorted(tuple(r) for r in read_table(spark, root, gold.ITEM_EMBEDDINGS).select("item_id", "norm").collect())
    filler = _fill(small_disk)
    with pytest.raises(Exception) as exc:  # a Py4J-wrapped IOException: No space left on device
        write_table(spark, rows("m2", 20_000), gold.ITEM_EMBEDDINGS, root, mode="replace_where", version="m2")
    assert "No space left on device" in str(exc.value) or "ENOSPC" in str(exc.value), str(exc.value)[-2000:]
    # the table is at its last good version, for Spark and for a JVM-free reader
    after = sorted(tuple(r) for r in read_table(spark, root, gold.ITEM_EMBEDDINGS).select("item_id", "norm").collect())
    assert after == before
    assert read_arrow(root, "gold/item_embeddings", columns=["model_version"]).num_rows == 100
    filler.unlink()
    write_table(spark, rows("m2", 20_000), gold.ITEM_EMBEDDINGS, root, mode="replace_where", version="m2")
    table = read_arrow(root, "gold/item_embeddings", columns=["model_version"]).column("model_version").to_pylist()
    assert table.count("m1") == 100 and table.count("m2") == 20_000


def test_a_checkpoint_on_a_full_disk_keeps_the_last_good_one(small_disk: Path) -> None:
    import torch

    from catalog2vec.vision.train import list_checkpoints, load_latest_checkpoint, save_checkpoint

    ckpt_dir = str(small_disk / "ckpt")
    weights = {"w": torch.arange(1000, dtype=torch.float32)}
    save_checkpoint(ckpt_dir, {"step": 10, "model": weights})
    filler = _fill(small_disk)
    with pytest.raises(OSError) as exc:
        save_checkpoint(ckpt_dir, {"step": 20, "model": {"w": torch.zeros(2_000_000)}})
    assert exc.value.errno == errno.ENOSPC
    assert [s for s, _ in list_checkpoints(ckpt_dir)] == [10]  # no half-written ckpt-00000020.pt
    assert not [f for f in os.listdir(ckpt_dir) if f.endswith(".tmp")]  # the temporary file is gone
    ckpt = load_latest_checkpoint(ckpt_dir)
    assert ckpt is not None and ckpt["step"] == 10 and torch.equal(ckpt["model"]["w"], weights["w"])
    filler.unlink()
    save_checkpoint(ckpt_dir, {"step": 20, "model": {"w": torch.zeros(2_000_000)}})
    assert [s for s, _ in list_checkpoints(ckpt_dir)] == [10, 20]
    assert storage.exists(os.path.join(ckpt_dir, "ckpt-00000020.pt"))
