"""catalog2vec.text.vocab: the top-K rule, vocab_version, the split, the Parquet copies; and the
quality of the vocabulary on real catalog text (pure Python, no Spark)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from catalog2vec.text import vocab as V
from catalog2vec.text.clean import CleanerSettings, TextCleaner

VISUAL = {"black", "blue", "white", "red", "green", "pink", "navy", "grey", "brown", "t-shirt", "shirt", "shoes",
          "jeans", "dress", "top", "watch", "kurta", "printed", "striped", "casual", "sports", "cotton", "silver"}
NOT_VISUAL = {"the", "and", "for", "with", "xl", "size", "cm", "pack", "buy", "new", "sale", "collection",
              "wonderful", "great", "love", "myntra"}


def test_finalize_vocab_orders_by_count_then_token_and_numbers_contiguously() -> None:
    stats = [("red", 5, 3), ("blue", 5, 4), ("dress", 9, 9), ("rare", 1, 1), ("zip", 2, 2)]
    out = V.finalize_vocab(stats, vocab_size=3, min_count=2, fingerprint="fp")
    assert [(e.token, e.index, e.count, e.doc_freq) for e in out] == [
        ("dress", 0, 9, 9), ("blue", 1, 5, 4), ("red", 2, 5, 3)
    ]
    assert len({e.vocab_version for e in out}) == 1
    again = V.finalize_vocab(list(reversed(stats)), 3, 2, "fp")
    assert again == out  # input order does not matter
    assert V.finalize_vocab(stats, 3, 2, "other")[0].vocab_version != out[0].vocab_version
    assert V.finalize_vocab(stats, 4, 2, "fp")[0].vocab_version != out[0].vocab_version
    assert V.finalize_vocab([("a", 1, 1)], 3, 2, "fp") == []
    with pytest.raises(ValueError):
        V.finalize_vocab(stats, 0, 1, "fp")


def test_split_is_deterministic_and_follows_ratios() -> None:
    ids = [str(i) for i in range(20000)]
    splits = [V.split_for(i, 0.8, 0.1, 0.1, "catalog2vec") for i in ids]
    assert splits == [V.split_for(i, 0.8, 0.1, 0.1, "catalog2vec") for i in ids]
    c = Counter(splits)
    assert abs(c["train"] / 20000 - 0.8) < 0.015 and abs(c["val"] / 20000 - 0.1) < 0.01
    assert sum(a != b for a, b in zip(splits, (V.split_for(i, 0.8, 0.1, 0.1, "x") for i in ids), strict=True)) > 3000
    with pytest.raises(ValueError, match="sum to 1"):
        V.split_for("1", 0.8, 0.3, 0.1, "s")


def test_vocab_files_and_current_pointer(tmp_path: Path) -> None:
    entries = V.finalize_vocab([("red", 3, 2), ("dress", 4, 2)], 10, 1, "fp")
    path = V.write_vocab_files(entries, str(tmp_path), {"k": 1})
    assert path == str(tmp_path / "vocab" / entries[0].vocab_version / "vocab.parquet")
    assert V.current_vocab_version(str(tmp_path)) == entries[0].vocab_version
    assert V.read_vocab_parquet(path) == entries
    with pytest.raises(FileNotFoundError, match="run build_vocab first"):
        V.current_vocab_version(str(tmp_path / "empty"))


def _top(counter: Counter[str], n: int) -> list[str]:
    return [t for t, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def test_vocabulary_of_the_bundled_sample_is_visual(examples_dir: Path) -> None:
    cleaner = TextCleaner(CleanerSettings(fields=(("title", 1), ("category", 1), ("color", 1))))
    counts: Counter[str] = Counter()
    with (examples_dir / "styles.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            counts.update(cleaner.clean([row["productDisplayName"], row["articleType"], row["baseColour"]]).tokens)
    top = _top(counts, 30)
    assert len(set(top) & VISUAL) >= 12, top
    assert not set(top) & NOT_VISUAL
    assert all(t.replace("-", "").isalpha() and len(t) >= 2 for t in top)


@pytest.mark.shared_data
def test_vocabulary_of_real_titles_and_reviews_is_visual(shared_data: Path) -> None:
    cleaner = TextCleaner(CleanerSettings(fields=(("title", 1),)))
    titles: Counter[str] = Counter()
    with (shared_data / "myntra_titles_44k.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            titles.update(cleaner.clean([row["productDisplayName"]]).tokens)
    top = _top(titles, 30)
    assert top[:4] == ["men", "women", "black", "blue"]
    assert {"white", "t-shirt", "shoes", "printed", "red", "watch", "shirt", "kurta", "top"} <= set(top)
    assert not set(top) & NOT_VISUAL

    reviews: Counter[str] = Counter()
    rc = TextCleaner(CleanerSettings(fields=(("title", 1), ("description", 1))))
    with (shared_data / "womens_clothing_reviews.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            reviews.update(rc.clean([row["Title"], row["Review Text"]]).tokens)
    rtop = _top(reviews, 30)
    assert {"dress", "color", "fabric", "top"} <= set(rtop), rtop
    assert not set(rtop) & (NOT_VISUAL | {"love", "great", "perfect", "size", "fit", "small", "really"}), rtop
