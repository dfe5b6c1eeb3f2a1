"""Pure Pillow validation/normalisation (no Spark): every bad-image kind gets its documented outcome."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog2vec import storage
from catalog2vec.ingest.image_paths import ImagePolicy
from catalog2vec.ingest.images import ImageRejected, normalise_image, read_image_bytes
from catalog2vec.quality import Reason

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "data" / "images"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def real_jpeg() -> bytes:
    return sorted(EXAMPLES.glob("*.jpg"))[0].read_bytes()


def test_real_jpeg_is_kept_rgb_and_not_upscaled() -> None:
    out = normalise_image(real_jpeg(), short_side=256)
    assert (out.orig_width, out.orig_height, out.orig_mode) == (96, 96, "RGB")  # the sample is 96 px
    assert (out.width, out.height) == (96, 96)  # smaller than short_side: not enlarged
    up = normalise_image(real_jpeg(), short_side=256, upscale=True)
    assert (up.width, up.height) == (256, 256)
    small = normalise_image(real_jpeg(), short_side=64)
    img = _decode(small.data)
    assert img.format == "JPEG" and img.mode == "RGB" and img.size == (64, 64)


def test_downscale_keeps_aspect_ratio() -> None:
    img = Image.new("RGB", (800, 400), (10, 200, 30))
    out = normalise_image(_png(img), short_side=128)
    assert (out.width, out.height) == (256, 128)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.IMAGE_EMPTY),
        (b"this is a text file, not a jpeg\n" * 10, Reason.NOT_AN_IMAGE),
    ],
)
def test_rejections(data: bytes, reason: Reason) -> None:
    with pytest.raises(ImageRejected) as exc:
        normalise_image(data)
    assert exc.value.reason == reason


def test_truncated_jpeg_is_rejected() -> None:
    data = real_jpeg()
    with pytest.raises(ImageRejected) as exc:
        normalise_image(data[: len(data) // 2])
    assert exc.value.reason == Reason.IMAGE_TRUNCATED


def test_decompression_bomb_checked_from_header() -> None:
    data = _png(Image.new("1", (8000, 6000)))  # 48 Mpx, a few KiB on disk
    assert len(data) < 100_000
    with pytest.raises(ImageRejected) as exc:
        normalise_image(data, max_pixels=40_000_000)
    assert exc.value.reason == Reason.DECOMPRESSION_BOMB
    assert "8000x6000" in exc.value.detail


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (0, 0, 32, 64))  # left half opaque blue
    out = normalise_image(_png(rgba), short_side=64)
    arr = np.asarray(_decode(out.data)).astype(int)
    assert out.orig_mode == "RGBA"
    assert (arr[:, 48:] > 240).all()  # transparent -> white (not red, not black)
    assert arr[:, :16, 2].mean() > 200 and arr[:, :16, 0].mean() < 40


def test_cmyk_jpeg_converted_to_rgb() -> None:
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # red in CMYK
    buf = io.BytesIO()
    cmyk.save(buf, format="JPEG")
    out = normalise_image(buf.getvalue())
    r, g, b = np.asarray(_decode(out.data)).reshape(-1, 3).mean(0)
    assert out.orig_mode == "CMYK" and r > 200 and g < 60 and b < 60


def test_16bit_grayscale_png_scaled_not_clipped() -> None:
    ramp = (np.tile(np.linspace(0, 65535, 64), (32, 1))).astype(np.uint16)
    img = Image.fromarray(ramp)
    out = normalise_image(_png(img))
    arr = np.asarray(_decode(out.data)).astype(int)
    assert out.orig_mode.startswith("I")
    assert arr[:, 0].mean() < 10 and arr[:, -1].mean() > 245
    assert 100 < arr[:, 32].mean() < 160  # mid-grey stays mid-grey (a naive convert would be white)


def test_palette_and_grayscale_become_rgb() -> None:
    p = Image.new("P", (30, 30))
    p.putpalette([0, 128, 0] * 256)
    for img in (p, Image.new("L", (30, 30), 77), Image.new("LA", (30, 30), (0, 0))):
        out = normalise_image(_png(img))
        assert _decode(out.data).mode == "RGB"
    la = normalise_image(_png(Image.new("LA", (30, 30), (0, 0))))
    assert np.asarray(_decode(la.data)).min() > 240  # transparent black -> white


def test_read_image_bytes_missing_and_never_globbed(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected) as exc:
        read_image_bytes(str(tmp_path / "nope.jpg"))
    assert exc.value.reason == Reason.IMAGE_MISSING
    with pytest.raises(ImageRejected):
        read_image_bytes(None)
    (tmp_path / "a_1.jpg").write_bytes(b"x")
    for pattern in ("a_*.jpg", "a_?.jpg", "a_[12].jpg"):  # paths are literal: ids are data, not globs
        with pytest.raises(ImageRejected) as exc:
            read_image_bytes(str(tmp_path / pattern))
        assert exc.value.reason == Reason.IMAGE_MISSING
    assert read_image_bytes("a_1.jpg", image_root=str(tmp_path)) == b"x"
    with pytest.raises(ImageRejected) as exc:  # file:// is never allow-listed: a local image is a path
        read_image_bytes(f"file://{tmp_path}/a_1.jpg")
    assert exc.value.reason == Reason.IMAGE_PATH_INVALID


def test_read_image_bytes_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    import os

    def reason(uri: str, **kw: object) -> str:
        with pytest.raises(ImageRejected) as exc:
            read_image_bytes(uri, **kw)  # type: ignore[arg-type]
        return exc.value.reason.value

    (tmp_path / "d.jpg").mkdir()
    os.mkfifo(tmp_path / "f.jpg")
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    assert reason(str(tmp_path / "d.jpg")) == "image_missing"
    assert reason(str(tmp_path / "f.jpg")) == "image_path_invalid"  # a FIFO would block forever
    assert reason("/dev/zero") == "image_path_invalid"  # a device would never end
    assert reason(str(tmp_path / ("é" * 200 + ".jpg"))) == "image_path_invalid"  # ENAMETOOLONG
    assert reason(str(tmp_path / "a\x00b.jpg")) == "image_path_invalid"
    assert reason(str(tmp_path / "big.jpg"), max_bytes=100) == "image_too_large"
    http = ImagePolicy(schemes=("http",))
    assert reason("http://127.0.0.1:9/x.jpg", policy=http) == "image_fetch_failed"  # nothing listens: no network


@pytest.mark.parametrize("uri", ["local:///etc/passwd", "file:///etc/passwd", "memory://x/a.jpg", "a::b",
                                 "simplecache::file:///etc/passwd", "http://127.0.0.1:9/x.jpg", "s3://b/x.jpg"])
def test_read_image_bytes_refuses_uris_off_the_allow_list(uri: str) -> None:
    """Image ingest re-checks the allow-list before opening anything (bronze rows from an older
    ingest included): refused URIs are image_path_invalid with the URI in the detail."""
    storage.write_bytes("memory://x/a.jpg", b"readable")  # refused although it exists
    for policy in (ImagePolicy(), ImagePolicy(schemes=("s3",), prefixes=("s3://shop",))):
        with pytest.raises(ImageRejected) as exc:
            read_image_bytes(uri, policy=policy)
        assert exc.value.reason == Reason.IMAGE_PATH_INVALID and uri[:10] in exc.value.detail
