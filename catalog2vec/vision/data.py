"""Training data read JVM-free from the lakehouse (delta-rs → Arrow): ``silver/images`` joined to
``silver/item_labels`` for one ``vocab_version``, plus the vocabulary from ``silver/vocab``.

Sharding: the sorted item ids of a split are dealt round-robin to ranks (``ids[rank::world]``),
so ranks hold disjoint shards and each rank reads only its own image bytes. Every rank runs the
same number of steps per epoch (``len(ids) // world // batch``; the tail is dropped, as with
``drop_last``). Within a rank the items are shuffled per epoch by ``(seed, epoch, rank)``; DataLoader
workers split the batches of that order between them (no duplicates). Each sample's augmentation
and its sampled positive word are seeded by ``(seed, epoch, item)``, so a resumed run reproduces
exactly the same batches whatever the number of workers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from catalog2vec import storage
from catalog2vec.errors import InvalidInput, MissingInput
from catalog2vec.lakehouse import open_delta, read_arrow, table_exists, table_path
from catalog2vec.schemas import silver
from catalog2vec.vision.transforms import decode_image, eval_transform, train_transform

SPLITS = ("train", "val", "test")


@dataclass
class Vocab:
    vocab_version: str
    tokens: list[str]
    counts: np.ndarray  # int64, by index

    @property
    def size(self) -> int:
        return len(self.tokens)


@dataclass
class SplitIndex:
    """The ids and labels of every item of one split that has both labels and an image."""

    item_ids: list[str]
    labels: list[list[int]]

    def shard(self, rank: int, world: int) -> SplitIndex:
        return SplitIndex(self.item_ids[rank::world], self.labels[rank::world])


@dataclass
class DataIndex:
    vocab: Vocab
    splits: dict[str, SplitIndex]
    counts: dict[str, Any] = field(default_factory=dict)


def latest_vocab_version(root: str) -> str:
    """The current vocabulary: ``<lakehouse>/vocab/CURRENT`` written by build_vocab, or, where
    there is no pointer, the vocab_version of the most recent write to ``silver/vocab``."""
    from catalog2vec.text.vocab import current_vocab_version

    try:
        return current_vocab_version(root)
    except FileNotFoundError:
        pass
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not table_exists(root, silver.VOCAB):
        raise MissingInput(f"no silver/vocab table under {root}; run jobs/build_vocab.py first")
    path = table_path(root, silver.VOCAB)
    dt = open_delta(root, silver.VOCAB)

    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    best: tuple[int, str] | None = None
    for act in actions:
        file = act["path"] if "://" in act["path"] else storage.join(path, act["path"])
        with storage.open_file(file) as fh:
            versions = pc.unique(pq.read_table(fh, columns=["vocab_version"]).column("vocab_version")).to_pylist()
        mtime = int(act["modification_time"].timestamp() * 1000) if hasattr(act["modification_time"], "timestamp") \
            else int(act["modification_time"])
        for v in versions:
            if best is None or (mtime, v) > best:
                best = (mtime, v)
    if best is None:
        raise InvalidInput(f"silver/vocab under {root} is empty")
    return best[1]


def load_vocab(root: str, vocab_version: str) -> Vocab:
    import pyarrow.compute as pc

    tbl = read_arrow(root, silver.VOCAB, columns=["vocab_version", "token", "index", "count"])
    tbl = tbl.filter(pc.equal(tbl.column("vocab_version"), vocab_version)).sort_by("index")
    if tbl.num_rows == 0:
        raise InvalidInput(f"vocab_version {vocab_version!r} not found in silver/vocab")
    idx = tbl.column("index").to_pylist()
    if idx != list(range(len(idx))):
        raise ValueError(f"silver/vocab {vocab_version}: indices are not 0..{len(idx) - 1}")
    return Vocab(vocab_version, [str(t) for t in tbl.column("token").to_pylist()],
                 np.asarray(tbl.column("count").to_pylist(), dtype=np.int64))


def load_index(root: str, vocab_version: str, max_label_share: float = 1.0) -> DataIndex:
    """Labels ⋈ image ids for ``vocab_version`` (no image bytes read); ids sorted per split.

    ``max_label_share < 1`` drops, from every item's label set, the words that label more than
    that share of the *training* items (near-ubiquitous words such as ``men``/``women``); the
    vocabulary (and so the model's K) is unchanged, the dropped words are listed in
    ``counts["dropped_words"]`` (recorded in the model card) and items left without labels are
    counted in ``labelled_without_valid_labels``."""
    import pyarrow.compute as pc

    vocab = load_vocab(root, vocab_version)
    for spec, job in ((silver.ITEM_LABELS, "build_labels"), (silver.IMAGES, "ingest_images")):
        if not table_exists(root, spec):
            raise MissingInput(f"no {spec.qualified_name} table under {root}; run jobs/{job}.py first")
    labels = read_arrow(root, silver.ITEM_LABELS, columns=["vocab_version", "item_id", "labels", "split"])
    labels = labels.filter(pc.equal(labels.column("vocab_version"), vocab_version))
    if labels.num_rows == 0:
        raise InvalidInput(f"silver/item_labels has no rows for vocab_version {vocab_version!r}; run build_labels")
    image_ids = set(read_arrow(root, silver.IMAGES, columns=["item_id"]).column("item_id").to_pylist())
    rows = sorted(zip(labels.column("item_id").to_pylist(), labels.column("labels").to_pylist(),
                      labels.column("split").to_pylist(), strict=True))
    if not 0 < max_label_share <= 1:
        raise ValueError(f"train.max_label_share must be in (0, 1], got {max_label_share}")
    dropped: dict[int, float] = {}
    if max_label_share < 1:
        train_rows = [labs for item_id, labs, split in rows if split == "train" and item_id in image_ids]
        df = np.zeros(vocab.size, dtype=np.int64)
        for labs in train_rows:
            df[sorted({int(x) for x in labs if 0 <= int(x) < vocab.size})] += 1
        share = df / max(len(train_rows), 1)
        dropped = {int(w): float(share[w]) for w in np.flatnonzero(share > max_label_share)}
    splits: dict[str, SplitIndex] = {s: SplitIndex([], []) for s in SPLITS}
    missing_image = 0
    empty = 0
    for item_id, labs, split in rows:
        if item_id not in image_ids:
            missing_image += 1
            continue
        labs = sorted({int(x) for x in labs if 0 <= int(x) < vocab.size and int(x) not in dropped})
        if not labs or split not in splits:
            empty += 1
            continue
        splits[split].item_ids.append(item_id)
        splits[split].labels.append(labs)
    counts: dict[str, Any] = {
        "vocab_size": vocab.size,
        "labelled_items": labels.num_rows,
        "images": len(image_ids),
        "labelled_without_image": missing_image,
        "labelled_without_valid_labels": empty,
        **{f"{s}_items": len(splits[s].item_ids) for s in SPLITS},
    }
    if max_label_share < 1:
        counts["max_label_share"] = max_label_share
        counts["dropped_words"] = {vocab.tokens[w]: round(v, 4) for w, v in sorted(dropped.items())}
    return DataIndex(vocab, splits, counts)


def load_image_bytes(root: str, item_ids: list[str]) -> list[bytes]:
    """Normalised JPEG bytes of ``item_ids`` (in that order) from ``silver/images``."""
    import pyarrow.compute as pc

    if not item_ids:
        return []
    ds = open_delta(root, silver.IMAGES).to_pyarrow_dataset()
    tbl = ds.to_table(columns=["item_id", "image"], filter=pc.field("item_id").isin(item_ids))
    by_id = dict(zip(tbl.column("item_id").to_pylist(), tbl.column("image").to_pylist(), strict=True))
    missing = [i for i in item_ids if i not in by_id]
    if missing:
        raise ValueError(f"silver/images lost {len(missing)} items while reading (e.g. {missing[:3]})")
    return [by_id[i] for i in item_ids]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class ImageLabelDataset(Dataset[dict[str, Any]]):
    """Indexed by ``(epoch, i)``: decodes item ``i``, augments it (train) or resizes + center-crops
    (eval), samples one positive word uniformly; all randomness seeded by ``(seed, epoch, i)``."""

    def __init__(self, images: list[bytes], labels: list[list[int]], image_size: int, train: bool,
                 seed: int = 0, scale_min: float = 0.25, augment: str = "crop", raw: bool = False,
                 brightness: float = 0.0, contrast: float = 0.0) -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels
        self.train = train
        self.seed = seed
        # raw: samples carry the JPEG bytes and their seed ("jpeg", "seed"), decoded and augmented a
        # batch at a time by catalog2vec.vision.batch_input.BatchInput (on the GPU when training there)
        self.raw = raw
        self.transform = (train_transform(image_size, scale_min, augment, brightness, contrast) if train
                          else eval_transform(image_size))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Any]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        s = sample_seed(self.seed, epoch, i)
        labs = self.labels[i]
        if self.raw:
            return {"jpeg": self.images[i], "seed": s, "index": i, "positive": random.Random(s).choice(labs),
                    "labels": labs}
        img = decode_image(self.images[i])
        if self.train:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                x = self.transform(img)
        else:
            x = self.transform(img)
        return {"image": x, "index": i, "positive": random.Random(s).choice(labs), "labels": labs}


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    if "jpeg" in batch[0]:  # raw samples: bytes and seeds for the batched input path
        head: dict[str, Any] = {"jpeg": [b["jpeg"] for b in batch], "seed": [b["seed"] for b in batch]}
    else:
        head = {"image": torch.stack([b["image"] for b in batch])}
    return {
        **head,
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
        "positive": torch.tensor([b["positive"] for b in batch], dtype=torch.long),
        "labels": [b["labels"] for b in batch],
    }


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, i)`` keys over a shard: a per-epoch permutation seeded by (seed, epoch,
    rank), ``steps_per_epoch`` full batches, starting at batch ``start`` (for a resumed epoch)."""

    def __init__(self, n: int, batch_size: int, steps_per_epoch: int, seed: int, rank: int, shuffle: bool = True) -> None:
        if steps_per_epoch * batch_size > n:
            raise ValueError(f"{steps_per_epoch} steps of {batch_size} need more than the {n} items of the shard")
        self.n, self.batch_size, self.steps, self.seed, self.rank, self.shuffle = (
            n, batch_size, steps_per_epoch, seed, rank, shuffle)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(sample_seed(self.seed, epoch, 1_000_000 + self.rank))
        return [int(i) for i in torch.randperm(self.n, generator=g)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = self.order(self.epoch)
        for b in range(self.start, self.steps):
            yield [(self.epoch, i) for i in order[b * self.batch_size:(b + 1) * self.batch_size]]

    def __len__(self) -> int:
        return self.steps - self.start


__all__ = [
    "DataIndex",
    "EpochBatchSampler",
    "ImageLabelDataset",
    "SplitIndex",
    "Vocab",
    "collate",
    "latest_vocab_version",
    "load_image_bytes",
    "load_index",
    "load_vocab",
]
