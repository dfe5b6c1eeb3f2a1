"""``bronze/catalog_items.image_uri`` → ``silver/images`` (+ ``bronze/quarantine``).

For each item the image_uri is first checked against the one allow-list of image URIs
(:class:`catalog2vec.ingest.image_paths.ImagePolicy` from ``[ingest]``: nothing is opened for a refused
URI, whatever an older ingest let into bronze); then the bytes are read (a local path taken
literally — no glob, no ``~`` — and only if it is a regular file; an allow-listed URI, ``s3://``
for a lakehouse on S3, through :mod:`catalog2vec.storage`), validated and normalised with Pillow
(:func:`normalise_image`): EXIF orientation applied; CMYK, grayscale (8/16-bit), palette and
alpha images converted to RGB (alpha composited on white); shorter side reduced to
``images.short_side``; re-encoded as JPEG. Rejections, with their reason code:

* ``image_missing``      no image_uri, nothing at that path, or a directory
* ``image_path_invalid`` a URI the allow-list refuses (``file://``, ``local://``, ``memory://``,
  ``a::b`` chains, ``http://`` and every scheme not in ``ingest.image_schemes``), a path that
  cannot be a file name (too long, NUL byte) or is not a regular file (FIFO, device)
* ``image_fetch_failed`` a remote image_uri that cannot be read (no network, credentials, driver)
* ``image_too_large``    the source file is over ``images.max_bytes``
* ``image_empty``        zero bytes
* ``not_an_image``       Pillow does not recognise the format (a text file named .jpg, …)
* ``decompression_bomb`` width × height over ``images.max_pixels`` (checked from the header,
  before decoding)
* ``image_truncated``    the file ends before the image data does
* ``image_undecodable``  anything else Pillow cannot decode

Incremental: the sha256 of the source bytes is compared with the stored row; an unchanged image
is not decoded again. Accounting: ``items = written + unchanged + quarantined``.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog2vec import storage
from catalog2vec.config import Config, ImagesSection
from catalog2vec.ingest.image_paths import LOCAL_ONLY, ImagePolicy
from catalog2vec.lakehouse import read_table, table_exists, table_path, write_table
from catalog2vec.lakehouse.io import with_conflict_retry
from catalog2vec.quality import JobCounts, Reason, write_quarantine
from catalog2vec.schemas import bronze, silver

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image
    from pyspark.sql import SparkSession

JOB = "ingest_images"
SOURCE = "bronze.catalog_items"


class ImageRejected(ValueError):
    """An image that cannot be used, with its quarantine reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class NormalisedImage:
    data: bytes  # JPEG
    width: int
    height: int
    orig_width: int
    orig_height: int
    orig_mode: str


@dataclass(frozen=True)
class ImageCounts(JobCounts):
    JOB = "ingest_images"
    items: int
    written: int
    unchanged: int
    quarantined: int

    def balances(self) -> tuple[tuple[int, int], ...]:
        return ((self.items, self.written + self.unchanged + self.quarantined),)


def _to_8bit_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB; alpha composited on white, 16/32-bit gray scaled to 8 bits."""
    import numpy as np
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 255.0
        arr8 = np.clip(np.rint(arr * 255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def normalise_image(
    data: bytes,
    short_side: int = 256,
    max_pixels: int = 40_000_000,
    jpeg_quality: int = 90,
    upscale: bool = False,
) -> NormalisedImage:
    """Validate and normalise one image; raises :class:`ImageRejected` with a reason code."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageRejected(Reason.IMAGE_EMPTY, "zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise ImageRejected(Reason.NOT_AN_IMAGE, f"not a recognised image format ({len(data)} bytes)") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(Reason.DECOMPRESSION_BOMB, str(exc)) from exc
        except Exception as exc:
            raise ImageRejected(Reason.IMAGE_UNDECODABLE, f"{type(exc).__name__}: {exc}") from exc
        w, h = img.size
        if w * h > max_pixels:
            raise ImageRejected(Reason.DECOMPRESSION_BOMB, f"{w}x{h} = {w * h} pixels > images.max_pixels={max_pixels}")
        if w < 1 or h < 1:
            raise ImageRejected(Reason.IMAGE_UNDECODABLE, f"empty dimensions {w}x{h}")
        orig_mode = str(img.mode)
        try:
            img.load()
        except OSError as exc:
            if "truncated" in str(exc).lower() or "premature end" in str(exc).lower():
                raise ImageRejected(Reason.IMAGE_TRUNCATED, str(exc)) from exc
            raise ImageRejected(Reason.IMAGE_UNDECODABLE, f"{type(exc).__name__}: {exc}") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(Reason.DECOMPRESSION_BOMB, str(exc)) from exc
        except Exception as exc:
            raise ImageRejected(Reason.IMAGE_UNDECODABLE, f"{type(exc).__name__}: {exc}") from exc
    try:
        img = ImageOps.exif_transpose(img) or img  # type: ignore[assignment]
        rgb = _to_8bit_rgb(img)
    except Exception as exc:
        raise ImageRejected(Reason.IMAGE_UNDECODABLE, f"cannot convert mode {orig_mode}: {exc}") from exc
    rw, rh = rgb.size
    shorter = min(rw, rh)
    if shorter != short_side and (upscale or shorter > short_side):
        scale = short_side / shorter
        size = (max(1, round(rw * scale)), max(1, round(rh * scale)))
        rgb = rgb.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=jpeg_quality, optimize=True)
    return NormalisedImage(buf.getvalue(), rgb.size[0], rgb.size[1], w, h, orig_mode)


def resolve_uri(uri: str, image_root: str = "") -> str:
    """Absolute path (or URI) for an image_uri: relative paths resolve against ``image_root``.
    Nothing is expanded: no glob, no ``~`` — the value is a literal path."""
    if "://" in uri and not uri.lower().startswith("file://"):
        return uri
    path = uri[7:] if uri.lower().startswith("file://") else uri
    if image_root and not os.path.isabs(path):
        path = os.path.join(image_root, path)
    return os.path.abspath(path)


def _read_local(path: str, max_bytes: int) -> bytes:
    if "\x00" in path:
        raise ImageRejected(Reason.IMAGE_PATH_INVALID, f"image path {path[:200]!a} holds a NUL byte")
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise ImageRejected(Reason.IMAGE_MISSING, f"no file at {path[:500]}") from exc
    except OSError as exc:  # ENAMETOOLONG, ENOTDIR, ELOOP, EACCES, ...
        raise ImageRejected(Reason.IMAGE_PATH_INVALID, f"cannot use {path[:300]}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ImageRejected(Reason.IMAGE_MISSING, f"{path[:500]} is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO, socket or device (/dev/zero) is never read
        raise ImageRejected(Reason.IMAGE_PATH_INVALID, f"{path[:500]} is not a regular file")
    if st.st_size > max_bytes:
        raise ImageRejected(Reason.IMAGE_TOO_LARGE, f"{st.st_size} bytes > images.max_bytes={max_bytes}")
    try:
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageRejected(Reason.IMAGE_PATH_INVALID, f"cannot read {path[:300]}: {exc.strerror or exc}") from exc


def _read_remote(uri: str, max_bytes: int) -> bytes:
    """``s3://``, ``http(s)://``, ``memory://`` … through the storage layer; every failure is a
    quarantine reason of this one image (a missing driver, no network, no such object)."""
    try:
        if storage.size(uri) > max_bytes:
            raise ImageRejected(Reason.IMAGE_TOO_LARGE, f"{uri[:300]} is over images.max_bytes={max_bytes}")
        return storage.read_bytes(uri)
    except ImageRejected:
        raise
    except FileNotFoundError as exc:
        if storage.scheme(uri) in ("http", "https"):  # fsspec reports a refused connection as "not found"
            raise ImageRejected(Reason.IMAGE_FETCH_FAILED, f"cannot fetch {uri[:300]}: {str(exc)[:300]}") from exc
        raise ImageRejected(Reason.IMAGE_MISSING, f"no object at {uri[:500]}") from exc
    except IsADirectoryError as exc:
        raise ImageRejected(Reason.IMAGE_MISSING, f"{uri[:500]} is a directory, not an image") from exc
    except Exception as exc:
        raise ImageRejected(Reason.IMAGE_FETCH_FAILED, f"cannot read {uri[:300]}: {type(exc).__name__}: "
                            f"{str(exc)[:300]}") from exc


def read_image_bytes(uri: str | None, image_root: str = "", max_bytes: int = 64 << 20,
                     policy: ImagePolicy = LOCAL_ONLY) -> bytes:
    """Read the bytes of one image; raises :class:`ImageRejected` with the reason otherwise. A URI
    (``scheme://``, or any ``::`` chain) is read only if ``policy`` allows it — by default none is."""
    if uri is None or not uri.strip():
        raise ImageRejected(Reason.IMAGE_MISSING, "no image_uri")
    uri = uri.strip()
    if "://" in uri or "::" in uri:
        why = policy.refuse_uri(uri) if "://" in uri else f"image_uri {uri[:300]!r} chains filesystems (::)"
        if why:
            raise ImageRejected(Reason.IMAGE_PATH_INVALID, why)
    target = resolve_uri(uri, image_root)
    data = _read_remote(target, max_bytes) if "://" in target else _read_local(target, max_bytes)
    if len(data) > max_bytes:
        raise ImageRejected(Reason.IMAGE_TOO_LARGE, f"over images.max_bytes={max_bytes}")
    return data


OUT_SCHEMA = (
    "item_id string, image_uri string, sha256 string, width int, height int, orig_width int, "
    "orig_height int, orig_mode string, image binary, status string, reason string, detail string"
)


def process_rows(rows: pd.DataFrame, cfg_images: ImagesSection, policy: ImagePolicy = LOCAL_ONLY) -> pd.DataFrame:
    """Pure pandas transform: (item_id, image_uri, old_sha256) → one output row per input row with
    ``status`` = written | unchanged | quarantined (see :data:`OUT_SCHEMA`); ``policy`` = the
    image-URI allow-list."""
    import pandas as pd

    out: list[dict[str, Any]] = []
    for item_id, uri, old_sha in zip(rows["item_id"], rows["image_uri"], rows["old_sha256"], strict=True):
        row: dict[str, Any] = {"item_id": item_id, "image_uri": uri, "sha256": None, "width": None,
                               "height": None, "orig_width": None, "orig_height": None, "orig_mode": None,
                               "image": None, "status": "quarantined", "reason": None, "detail": None}
        try:
            data = read_image_bytes(uri, cfg_images.image_root, cfg_images.max_bytes, policy)
            sha = hashlib.sha256(data).hexdigest()
            row["sha256"] = sha
            if isinstance(old_sha, str) and old_sha == sha:
                row["status"] = "unchanged"
            else:
                img = normalise_image(
                    data, cfg_images.short_side, cfg_images.max_pixels, cfg_images.jpeg_quality, cfg_images.upscale
                )
                row.update(width=img.width, height=img.height, orig_width=img.orig_width,
                           orig_height=img.orig_height, orig_mode=img.orig_mode, image=img.data, status="written")
        except ImageRejected as exc:
            row.update(status="quarantined", reason=exc.reason.value, detail=exc.detail[:2000])
        except Exception as exc:
            row.update(status="quarantined", reason=Reason.IMAGE_UNDECODABLE.value,
                       detail=f"{type(exc).__name__}: {exc}"[:2000], width=None, height=None, image=None)
        out.append(row)
    df = pd.DataFrame(out, columns=[c.split()[0] for c in OUT_SCHEMA.split(", ")])
    for c in ("width", "height", "orig_width", "orig_height"):
        df[c] = df[c].astype("Int32")
    return df


def ingest_images(spark: SparkSession, cfg: Config) -> ImageCounts:
    """Run the whole image ingest; returns counts (which add up, or this raises)."""
    from pyspark.sql import functions as F

    items = read_table(spark, cfg.lakehouse, bronze.CATALOG_ITEMS).select("item_id", "image_uri")
    if table_exists(cfg.lakehouse, silver.IMAGES):
        old = read_table(spark, cfg.lakehouse, silver.IMAGES).select(
            "item_id", F.col("sha256").alias("old_sha256"), F.col("image_uri").alias("_old_uri")
        )
        # a changed image_uri is reprocessed even when the bytes are identical (the row changes)
        items = items.join(old, "item_id", "left").select(
            "item_id",
            "image_uri",
            F.when(F.col("_old_uri").eqNullSafe(F.col("image_uri")), F.col("old_sha256")).alias("old_sha256"),
        )
    else:
        items = items.withColumn("old_sha256", F.lit(None).cast("string"))
    images_cfg = cfg.images
    policy = ImagePolicy.from_config(cfg.ingest, cfg.lakehouse)
    n_parts = max(1, min(64, items.rdd.getNumPartitions() * 2))

    def work(batches: Iterator[Any]) -> Iterator[Any]:
        for pdf in batches:
            yield process_rows(pdf, images_cfg, policy)

    result = items.repartition(n_parts, "item_id").mapInPandas(work, OUT_SCHEMA).cache()
    counts_by = {r["status"]: int(r["count"]) for r in result.groupBy("status").count().collect()}
    n_items = sum(counts_by.values())

    bad = result.where(F.col("status") == "quarantined").select(
        F.lit(SOURCE).alias("source"),
        F.to_json(F.struct("item_id", "image_uri", "sha256")).alias("record"),
        "item_id",
        "reason",
        "detail",
    )
    n_bad = write_quarantine(spark, bad, cfg.lakehouse, JOB, cfg.run_id)

    good = result.where(F.col("status") == "written").select(
        *[c for c in silver.IMAGES.column_names if c != "run_id"], F.lit(cfg.run_id).alias("run_id")
    )
    n_written = counts_by.get("written", 0)
    if n_written:
        write_table(spark, good, silver.IMAGES, cfg.lakehouse, mode="merge")
    # an item whose image is now rejected must not keep a stale image row
    bad_ids = [r["item_id"] for r in result.where(F.col("status") == "quarantined").select("item_id").collect()]
    if bad_ids and table_exists(cfg.lakehouse, silver.IMAGES):
        from delta.tables import DeltaTable

        spark_ids = spark.createDataFrame([(i,) for i in bad_ids], "item_id string")
        stale = read_table(spark, cfg.lakehouse, silver.IMAGES).join(spark_ids, "item_id", "left_semi")
        if stale.limit(1).count():  # a delete that removes nothing would still commit a version
            with_conflict_retry("delete stale silver.images rows", lambda: (
                DeltaTable.forPath(spark, table_path(cfg.lakehouse, silver.IMAGES))
                .alias("t")
                .merge(spark_ids.alias("s"), "t.item_id = s.item_id")
                .whenMatchedDelete()
                .execute()
            ))
    result.unpersist()
    counts = ImageCounts(n_items, n_written, counts_by.get("unchanged", 0), n_bad)
    counts.check()
    return counts


__all__ = [
    "ImageCounts",
    "ImageRejected",
    "NormalisedImage",
    "ingest_images",
    "normalise_image",
    "process_rows",
    "read_image_bytes",
    "resolve_uri",
]
