"""What the neighbour browser shows, without any web framework: one model version's items, their
top tags, k nearest neighbours, cluster and the cluster's prototypes, and queries by an uploaded image.

Everything is read JVM-free (delta-rs) once at start-up, except image bytes, which are read per page
(only the items shown, from ``silver.images`` only: validated, re-encoded JPEG, never a URI a crawled
row names) and kept in a small cache. An uploaded picture passes the ingest normaliser
(:func:`catalog2vec.ingest.images.normalise_image`: ``images.max_pixels`` checked from the header
before decoding, re-encoded like ``silver.images``) before the model sees it. The kNN index is the saved faiss index of
``catalog2vec similar`` (``<lakehouse>/indexes/<model_version>/``, built on first use), so the page
and the CLI return the same neighbours.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from catalog2vec import models
from catalog2vec.config import ImagesSection
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_arrow, table_exists
from catalog2vec.retrieval.index import EmbeddingIndex, IndexParams
from catalog2vec.schemas import analysis, bronze, gold

if TYPE_CHECKING:
    from catalog2vec.embed.core import InferenceModel

log = logging.getLogger(__name__)

_WORD = re.compile(r"[0-9a-z]+")


class BrowserError(InvalidInput):
    """A request the browser cannot answer (unknown item, not an image): shown as a 4xx page."""


@dataclass(frozen=True)
class Tag:
    tag: str
    probability: float
    rank: int


@dataclass(frozen=True)
class Neighbour:
    rank: int
    item_id: str
    score: float
    title: str


@dataclass(frozen=True)
class Cluster:
    cluster: int
    size: int
    prototypes: list[str]
    distance: float | None = None  # the item's (cosine) distance to the centroid / nearest prototype


@dataclass
class ImageQuery:
    """The answer to an uploaded picture: its neighbours, predicted tags and nearest-prototype cluster."""

    neighbours: list[Neighbour]
    tags: list[Tag]
    cluster: Cluster | None
    embedding_dim: int
    image: bytes = b""  # the upload as the model saw it: normalised JPEG, like silver.images


@dataclass
class Item:
    item_id: str
    title: str
    tags: list[Tag]
    neighbours: list[Neighbour]
    cluster: Cluster | None
    meta: dict[str, str] = field(default_factory=dict)


class NeighbourBrowser:
    """The data behind ``catalog2vec serve`` for one lakehouse and one model version."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        model_version: str = "latest",
        k: int = 12,
        index_kind: str = "flat",
        image_cache: int = 2048,
        images: ImagesSection | None = None,
        decode_slots: int = 2,
        rebuild_index: bool = False,
    ) -> None:
        from catalog2vec.retrieval.store import build_or_load_index

        if k < 1:
            raise BrowserError(f"k must be >= 1, got {k}")
        self.lakehouse = str(root)
        self.model_version = models.resolve(self.lakehouse, model_version)
        self.k = int(k)
        self.images_config = images or ImagesSection()
        self.index: EmbeddingIndex = build_or_load_index(
            self.lakehouse, self.model_version, IndexParams(kind=index_kind), rebuild=rebuild_index
        )
        self.items = _catalog(self.lakehouse)
        self.titles = {i: m.get("title", "") for i, m in self.items.items()}
        self.tags = _tags(self.lakehouse, self.model_version)
        self.clusters, self.item_cluster = _clusters(self.lakehouse, self.model_version)
        self._words = {i: set(_WORD.findall(t.lower())) for i, t in self.titles.items()}
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._image_cache = image_cache
        self._lock = threading.Lock()
        # at most this many uploads decoded at once (a 40 MP upload holds ~120 MB of pixels)
        self._decode_slots = threading.BoundedSemaphore(max(1, decode_slots))
        self._model: InferenceModel | None = None
        log.info(
            "browser: model %s, %d items indexed, %d titles, %d tagged, %d clusters",
            self.model_version, self.index.size, len(self.titles), len(self.tags), len(self.clusters),
        )  # fmt: skip

    # --- search -----------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 60) -> list[tuple[str, str]]:
        """(item_id, title) matching ``query``: the item whose id it is, else items whose title
        contains every word of it (case-insensitive), indexed items first, then by item_id."""
        q = query.strip()
        if not q:
            return []
        if q in self.index or q in self.titles:
            return [(q, self.titles.get(q, ""))]
        words = set(_WORD.findall(q.lower()))
        if not words:
            return []
        hits = [i for i, ws in self._words.items() if words <= ws]
        hits.sort(key=lambda i: (i not in self.index, i))
        return [(i, self.titles.get(i, "")) for i in hits[:limit]]

    # --- one item ---------------------------------------------------------------------------------
    def neighbours(self, item_id: str, k: int | None = None) -> list[Neighbour]:
        if item_id not in self.index:
            raise BrowserError(
                f"item {item_id!r} has no embedding for model {self.model_version} ({self.index.size} items)"
            )
        hits = self.index.similar_to(item_id, k or self.k)
        return [Neighbour(r, i, s, self.titles.get(i, "")) for r, (i, s) in enumerate(hits, 1)]

    def item(self, item_id: str, k: int | None = None) -> Item:
        if item_id not in self.index and item_id not in self.titles:
            raise BrowserError(f"unknown item {item_id!r}")
        nbrs = self.neighbours(item_id, k) if item_id in self.index else []
        meta = {key: v for key, v in self.items.get(item_id, {}).items() if v and key != "title"}
        return Item(item_id, self.titles.get(item_id, ""), self.tags.get(item_id, []), nbrs,
                    self.cluster_of(item_id), meta)

    def cluster_of(self, item_id: str) -> Cluster | None:
        found = self.item_cluster.get(item_id)
        if found is None:
            return None
        c, dist = found
        base = self.clusters.get(c)
        return Cluster(c, base.size if base else 0, base.prototypes if base else [], dist)

    # --- an uploaded image ------------------------------------------------------------------------
    def query_image(self, data: bytes, k: int | None = None) -> ImageQuery:
        """Normalise ``data`` like ingest does for ``silver.images``, embed it with the model
        directory (the embed job's preprocessing and forward) and return its neighbours, predicted
        tags and the cluster of its nearest prototype. Blocking: call it off the event loop."""
        if not data:
            raise BrowserError("empty upload: choose an image file")
        jpeg = self.normalise_upload(data)
        model = self._inference_model()
        with self._lock:  # one forward at a time: torch threads are shared by the server's workers
            out = model.predict([jpeg])
        if not int(out.ok[0]):
            raise BrowserError("the upload is not an image that PIL can decode (JPEG, PNG, WebP, ...)")
        vec = out.embedding[0]
        hits = self.index.neighbors(vec[None, :], k or self.k)[0]
        tags = [
            Tag(model.tokens[int(i)], float(p), r)
            for r, (i, p) in enumerate(zip(out.tag_index[0], out.tag_probability[0], strict=True), 1)
        ]
        return ImageQuery(
            [Neighbour(r, i, s, self.titles.get(i, "")) for r, (i, s) in enumerate(hits, 1)],
            tags,
            self._nearest_prototype(vec),
            int(vec.shape[0]),
            jpeg,
        )

    def normalise_upload(self, data: bytes) -> bytes:
        """The ingest normaliser on an upload: the pixel count read from the header and refused
        over ``images.max_pixels`` before anything is decoded; then decoded, oriented, converted
        to RGB, resized and re-encoded exactly as ``silver.images`` holds a catalog picture."""
        from catalog2vec.ingest.images import ImageRejected, normalise_image
        from catalog2vec.quality import Reason

        cfg = self.images_config
        try:
            with self._decode_slots:
                return normalise_image(data, cfg.short_side, cfg.max_pixels, cfg.jpeg_quality, cfg.upscale).data
        except ImageRejected as exc:
            if exc.reason in (Reason.NOT_AN_IMAGE, Reason.IMAGE_EMPTY):
                raise BrowserError("the upload is not an image that PIL can decode (JPEG, PNG, WebP, ...)") from exc
            raise BrowserError(f"the upload cannot be used ({exc.reason.value}): {exc.detail}") from exc

    def _inference_model(self) -> InferenceModel:
        from catalog2vec.embed.core import InferenceModel
        from catalog2vec.vision import model_dir

        with self._lock:
            if self._model is None:
                # as many tags as gold.item_tags holds per item (the embed job's embed.top_n)
                top_n = max((len(t) for t in self.tags.values()), default=10)
                self._model = InferenceModel.from_dir(model_dir(self.lakehouse, self.model_version),
                                                      top_n=top_n, device="cpu")
            return self._model

    def _nearest_prototype(self, vec: np.ndarray) -> Cluster | None:
        from catalog2vec.clustering.kmeans import assign_to_prototypes

        rows = [(p, c) for c, cl in self.clusters.items() for p in cl.prototypes if p in self.index]
        if not rows:
            return None
        protos = np.stack([self.index.vector(p) for p, _ in rows])
        cluster, dist, _ = assign_to_prototypes(vec[None, :], protos, np.asarray([c for _, c in rows]))
        base = self.clusters[int(cluster[0])]
        return Cluster(base.cluster, base.size, base.prototypes, float(dist[0]))

    # --- pictures ---------------------------------------------------------------------------------
    def images(self, item_ids: list[str]) -> dict[str, bytes]:
        """Image bytes of ``item_ids`` from ``silver.images`` (an item without a row has none), cached."""
        from catalog2vec.retrieval.store import item_images

        with self._lock:
            missing = [i for i in dict.fromkeys(item_ids) if i not in self._images]
        fetched = item_images(self.lakehouse, missing) if missing else {}
        with self._lock:
            self._images.update(fetched)
            while len(self._images) > self._image_cache:
                self._images.popitem(last=False)
            return {i: self._images[i] for i in item_ids if i in self._images}


def _catalog(root: str) -> dict[str, dict[str, str]]:
    """item_id -> {title, category, brand, color, gender} from bronze.catalog_items (empty if absent)."""
    if not table_exists(root, bronze.CATALOG_ITEMS):
        return {}
    cols = [c for c in ("item_id", "title", "category", "brand", "color", "gender")
            if c in bronze.CATALOG_ITEMS.column_names]
    t = read_arrow(root, bronze.CATALOG_ITEMS, columns=cols).to_pydict()
    return {
        str(iid): {c: str(t[c][j] or "") for c in cols if c != "item_id"} for j, iid in enumerate(t["item_id"])
    }


def _tags(root: str, model_version: str) -> dict[str, list[Tag]]:
    import pyarrow.compute as pc

    if not table_exists(root, gold.ITEM_TAGS):
        return {}
    t = read_arrow(root, gold.ITEM_TAGS, columns=["model_version", "item_id", "tag", "probability", "rank"])
    t = t.filter(pc.equal(t["model_version"], model_version)).sort_by([("item_id", "ascending"), ("rank", "ascending")])
    out: dict[str, list[Tag]] = {}
    d = t.to_pydict()
    for iid, tag, p, r in zip(d["item_id"], d["tag"], d["probability"], d["rank"], strict=True):
        out.setdefault(str(iid), []).append(Tag(str(tag), float(p), int(r)))
    return out


def _clusters(root: str, model_version: str) -> tuple[dict[int, Cluster], dict[str, tuple[int, float]]]:
    import pyarrow.compute as pc

    clusters: dict[int, Cluster] = {}
    members: dict[str, tuple[int, float]] = {}
    if table_exists(root, analysis.CLUSTERS):
        t = read_arrow(root, analysis.CLUSTERS, columns=["model_version", "cluster", "size", "prototypes"])
        d = t.filter(pc.equal(t["model_version"], model_version)).to_pydict()
        for c, size, protos in zip(d["cluster"], d["size"], d["prototypes"], strict=True):
            clusters[int(c)] = Cluster(int(c), int(size), [str(p) for p in protos or []])
    if table_exists(root, analysis.ITEM_CLUSTERS):
        t = read_arrow(root, analysis.ITEM_CLUSTERS, columns=["model_version", "item_id", "cluster", "distance"])
        d = t.filter(pc.equal(t["model_version"], model_version)).to_pydict()
        members = {
            str(i): (int(c), float(dist)) for i, c, dist in zip(d["item_id"], d["cluster"], d["distance"], strict=True)
        }
    return clusters, members


__all__ = ["BrowserError", "Cluster", "ImageQuery", "Item", "Neighbour", "NeighbourBrowser", "Tag"]
