"""Vocabulary and weak-label rules shared by every engine (pure Python).

* :func:`finalize_vocab` — the top-K rule: keep tokens with ``count >= min_count``, order by count
  descending then token ascending (code-point order = Spark's UTF-8 binary order), take K, number
  them 0..K−1. ``vocab_version`` is a content hash of the result and the cleaning fingerprint.
* :func:`split_for` / :func:`split_fraction` — deterministic train/val/test split from a salted
  SHA-256 of item_id (the Spark job computes the identical expression:
  :func:`catalog2vec.text.labels_job.split_column`).
* Plain-Parquet vocabulary files and the ``CURRENT`` pointer (see :func:`write_vocab_files`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from catalog2vec import layout, storage
from catalog2vec.errors import InvalidInput, MissingInput
from catalog2vec.schemas import silver

if TYPE_CHECKING:
    import pyarrow as pa

SPLIT_HEX_DIGITS = 15  # 60 bits of the hash: fits a Spark long, exact in both engines


@dataclass(frozen=True)
class VocabEntry:
    vocab_version: str
    token: str
    index: int
    count: int
    doc_freq: int


def order_key(token: str, count: int) -> tuple[int, str]:
    return (-count, token)


def vocab_version(stats: Sequence[tuple[str, int, int]], fingerprint: str) -> str:
    """``v`` + 16 hex of SHA-256 over the cleaning fingerprint and the ordered (token, count, doc_freq)."""
    h = hashlib.sha256(fingerprint.encode())
    for token, count, doc_freq in stats:
        h.update(f"\n{token}\t{count}\t{doc_freq}".encode())
    return "v" + h.hexdigest()[:16]


def finalize_vocab(
    stats: Iterable[tuple[str, int, int]], vocab_size: int, min_count: int, fingerprint: str
) -> list[VocabEntry]:
    """``stats`` = (token, count, doc_freq) for at least the top candidates → the vocabulary."""
    if vocab_size < 1:
        raise InvalidInput(f"vocab_size must be >= 1, got {vocab_size}")
    kept = sorted(
        ((t, int(c), int(d)) for t, c, d in stats if int(c) >= min_count), key=lambda s: order_key(s[0], s[1])
    )[:vocab_size]
    version = vocab_version(kept, fingerprint)
    return [VocabEntry(version, t, i, c, d) for i, (t, c, d) in enumerate(kept)]


def vocab_to_arrow(entries: Sequence[VocabEntry]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist([asdict(e) for e in entries], schema=silver.VOCAB.arrow_schema())


def split_fraction(item_id: str, salt: str) -> float:
    """Uniform in [0, 1) from SHA-256(salt ':' item_id)."""
    digest = hashlib.sha256(f"{salt}:{item_id}".encode()).hexdigest()
    return int(digest[:SPLIT_HEX_DIGITS], 16) / float(16**SPLIT_HEX_DIGITS)


def check_ratios(train: float, val: float, test: float) -> None:
    if min(train, val, test) < 0 or abs(train + val + test - 1.0) > 1e-6:
        raise InvalidInput(f"labels.train/val/test must be >= 0 and sum to 1, got {train}/{val}/{test}")


def split_for(item_id: str, train: float, val: float, test: float, salt: str) -> str:
    check_ratios(train, val, test)
    f = split_fraction(item_id, salt)
    return "train" if f < train else ("val" if f < train + val else "test")


# --- plain Parquet copies of the vocabulary -------------------------------------------------------

CURRENT_FILE = layout.VOCAB_CURRENT_FILE
VOCAB_FILE = "vocab.parquet"


def write_vocab_parquet(entries: Sequence[VocabEntry], directory: str, manifest: dict[str, Any] | None = None) -> str:
    """Write ``<directory>/vocab.parquet`` (+ ``manifest.json``) through the storage layer (a local
    path or URI); returns the file path."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(vocab_to_arrow(entries), buf)
    path = storage.write_bytes(storage.join(directory, VOCAB_FILE), buf.getvalue())
    if manifest is not None:
        storage.write_json(storage.join(directory, "manifest.json"), manifest)
    return path


def write_vocab_files(
    entries: Sequence[VocabEntry], root: str, manifest: dict[str, Any] | None = None
) -> str:
    """Lakehouse copy: ``<lakehouse>/vocab/<vocab_version>/vocab.parquet``, then (the marker) the
    pointer file ``<lakehouse>/vocab/CURRENT`` (one line: the vocab_version build_labels uses)."""
    if not entries:
        raise ValueError("cannot write an empty vocabulary")
    version = entries[0].vocab_version
    path = write_vocab_parquet(entries, layout.vocab_dir(root, version), manifest)
    storage.publish(layout.vocab_current_file(root), version + "\n")
    return path


def current_vocab_version(root: str) -> str:
    """The vocab_version recorded in ``<lakehouse>/vocab/CURRENT`` by the last build_vocab."""
    pointer = layout.vocab_current_file(root)
    try:
        version = storage.read_text(pointer).strip()
    except FileNotFoundError as exc:
        raise MissingInput(
            f"no current vocabulary at {pointer}; run build_vocab first or pass --vocab-version"
        ) from exc
    if not version:
        raise InvalidInput(f"{pointer} is empty: run build_vocab again or pass --vocab-version")
    return version


def read_vocab_parquet(path: str) -> list[VocabEntry]:
    """Read a vocab.parquet file (or a directory of Parquet parts) back, ordered by index."""
    import pyarrow.parquet as pq

    filesystem, p = storage.filesystem(path)
    rows = pq.read_table(p, filesystem=filesystem).to_pylist()
    return sorted(
        (VocabEntry(r["vocab_version"], r["token"], int(r["index"]), int(r["count"]), int(r["doc_freq"])) for r in rows),
        key=lambda e: e.index,
    )
