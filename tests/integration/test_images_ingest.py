"""jobs/ingest_images on a folder of real and bad images: documented outcome per file, accounting,
idempotent re-run, incremental (only changed bytes are reprocessed). Real Spark + Delta."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog2vec.lakehouse import delta_version, read_pandas
from catalog2vec.schemas import bronze, silver

pytestmark = pytest.mark.spark

REAL_IDS = ["10039", "10113", "10164"]


def _save(img: Image.Image, path: Path, fmt: str) -> None:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def make_bad_folder(root: Path, examples: Path) -> dict[str, str]:
    """item_id -> expected outcome ("ok" or a reason code)."""
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    for i in REAL_IDS:
        shutil.copy(examples / "images" / f"{i}.jpg", img_dir / f"{i}.jpg")
    real = (examples / "images" / f"{REAL_IDS[0]}.jpg").read_bytes()
    (img_dir / "zero.jpg").write_bytes(b"")
    (img_dir / "trunc.jpg").write_bytes(real[: len(real) // 3])
    (img_dir / "text.jpg").write_text("<html>404 not found</html>\n")
    rgba = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (0, 0, 150, 200))
    _save(rgba, img_dir / "alpha.png", "PNG")
    _save(Image.new("CMYK", (260, 260), (0, 255, 255, 0)), img_dir / "cmyk.jpg", "JPEG")
    _save(
        Image.fromarray((np.tile(np.linspace(0, 65535, 300), (280, 1))).astype(np.uint16)),
        img_dir / "gray16.png",
        "PNG",
    )
    _save(Image.new("1", (9000, 5000)), img_dir / "huge.png", "PNG")
    lines = ["id,productDisplayName,image"]
    expected = {}
    for i in REAL_IDS:
        lines.append(f"{i},Real product {i},{img_dir}/{i}.jpg")
        expected[i] = "ok"
    for name, fname, outcome in [
        ("zero", "zero.jpg", "image_empty"),
        ("trunc", "trunc.jpg", "image_truncated"),
        ("text", "text.jpg", "not_an_image"),
        ("alpha", "alpha.png", "ok"),
        ("cmyk", "cmyk.jpg", "ok"),
        ("gray16", "gray16.png", "ok"),
        ("huge", "huge.png", "decompression_bomb"),
        ("missing", "does_not_exist.jpg", "image_missing"),
    ]:
        lines.append(f"{name},Bad product {name},{img_dir}/{fname}")
        expected[name] = outcome
    (root / "catalog.csv").write_text("\n".join(lines) + "\n")
    return expected


def run_ingest(root: Path, lakehouse: Path, *extra: str) -> None:
    import ingest_images

    assert (
        ingest_images.main(
            ["--lakehouse", str(lakehouse), "--run-id", "t1", "--set", "images.short_side=128", *extra]
        )
        == 0
    )


def test_bad_images_each_handled(spark, lakehouse: Path, tmp_path: Path, examples_dir: Path, capsys) -> None:
    import ingest_catalog

    src = tmp_path / "src"
    expected = make_bad_folder(src, examples_dir)
    assert (
        ingest_catalog.main(
            [
                "--input",
                str(src / "catalog.csv"),
                "--format",
                "csv",
                "--lakehouse",
                str(lakehouse),
                "--mapping",
                "id=item_id,productDisplayName=title,image=image_uri",
                "--source",
                "bad",
            ]
        )
        == 0
    )
    capsys.readouterr()
    run_ingest(src, lakehouse)
    out = capsys.readouterr().out
    n_ok = sum(v == "ok" for v in expected.values())
    assert f"items={len(expected)} written={n_ok} unchanged=0 quarantined={len(expected) - n_ok}" in out

    images = read_pandas(lakehouse, silver.IMAGES).set_index("item_id")
    assert sorted(images.index) == sorted(k for k, v in expected.items() if v == "ok")
    for _, row in images.iterrows():
        img = Image.open(io.BytesIO(row["image"]))
        img.load()
        assert img.format == "JPEG" and img.mode == "RGB"
        assert img.size == (row["width"], row["height"]) and min(img.size) <= 128
        assert len(row["sha256"]) == 64
    assert images.loc["alpha", "orig_mode"] == "RGBA" and images.loc["cmyk", "orig_mode"] == "CMYK"
    assert images.loc["gray16", "orig_mode"].startswith("I")
    assert (images.loc["alpha", "width"], images.loc["alpha", "height"]) == (192, 128)
    alpha = np.asarray(Image.open(io.BytesIO(images.loc["alpha", "image"])))
    assert alpha[:, -20:].min() > 235  # transparent half is white
    assert (images.loc["10039", "width"], images.loc["10039", "orig_width"]) == (96, 96)  # never upscaled

    q = read_pandas(lakehouse, bronze.QUARANTINE)
    q = q[q["job"] == "ingest_images"].set_index("item_id")
    assert dict(q["reason"]) == {k: v for k, v in expected.items() if v != "ok"}
    assert "9000x5000" in q.loc["huge", "detail"]

    # idempotent: a re-run reprocesses nothing and commits nothing to silver/images
    v_before = delta_version(lakehouse, silver.IMAGES)
    run_ingest(src, lakehouse)
    out = capsys.readouterr().out
    assert f"written=0 unchanged={n_ok} quarantined={len(expected) - n_ok}" in out
    assert delta_version(lakehouse, silver.IMAGES) == v_before
    q2 = read_pandas(lakehouse, bronze.QUARANTINE)
    assert len(q2[q2["job"] == "ingest_images"]) == len(q)

    # incremental: change one image's bytes -> only that one is rewritten; a now-broken one leaves silver
    img_dir = src / "images"
    shutil.copy(examples_dir / "images" / "10210.jpg", img_dir / "10039.jpg")
    (img_dir / "10113.jpg").write_bytes(b"")
    run_ingest(src, lakehouse)
    out = capsys.readouterr().out
    assert f"written=1 unchanged={n_ok - 2} quarantined={len(expected) - n_ok + 1}" in out
    images2 = read_pandas(lakehouse, silver.IMAGES).set_index("item_id")
    assert "10113" not in images2.index
    assert images2.loc["10039", "sha256"] != images.loc["10039", "sha256"]
    assert images2.loc["cmyk", "run_id"] == images.loc["cmyk", "run_id"]
