"""catalog2vec.text.clean: normalisation, tokenisation, filtering and bad input (no Spark)."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from catalog2vec.config import TextSection
from catalog2vec.errors import InvalidInput
from catalog2vec.text import clean, wordlists
from catalog2vec.text.clean import CleanerSettings, TextCleaner, normalise, tokenise
from catalog2vec.text.columnar import clean_arrow_batch
from catalog2vec.text.options import parse_text_columns


@pytest.fixture(scope="module")
def cleaner() -> TextCleaner:
    return TextCleaner(CleanerSettings(fields=(("title", 1), ("description", 1))))


def test_normalise_html_nfkc_lowercase_and_truncation() -> None:
    assert normalise("Red &amp; <b>Blue</b>&nbsp;Dress")[0].split() == ["red", "&", "blue", "dress"]
    assert normalise("&lt;p&gt;Linen&lt;/p&gt; shirt")[0].split() == ["linen", "shirt"]
    assert normalise("ＦＵＬＬ ｓｌｅｅｖｅ")[0] == "full sleeve"  # NFKC folds full-width letters
    assert normalise("ﬁne") == ("fine", False)  # ligature
    assert normalise("abcdef", max_chars=3) == ("abc", True)
    assert normalise(None) == ("", False) and normalise("") == ("", False)


def test_tokenise_keeps_t_shirt_and_splits_apostrophes() -> None:
    assert tokenise("navy t-shirt, round-neck women's top") == ["navy", "t-shirt", "round-neck", "women", "s", "top"]


def test_filters_stopwords_sizes_marketing_shops_digits(cleaner: TextCleaner) -> None:
    res = cleaner.clean(
        [
            "Buy the NEW wonderful Collection: Nike Men Navy Blue T-Shirt size XL 2 pack 100% cotton on Myntra",
            "Free shipping! 5-pocket jeans, 32 inch, 2kg, a_b",
        ]
    )
    assert res.tokens == ["nike", "men", "navy", "blue", "t-shirt", "cotton", "jeans"]
    assert res.weights == [1] * 7
    assert res.n_raw_tokens == 18 + 8
    for dropped in ("buy", "new", "wonderful", "collection", "the", "xl", "size", "pack", "myntra", "free", "inch"):
        assert dropped in cleaner.stop


def test_nltk_stopwords_come_from_vendored_corpus() -> None:
    words = wordlists.nltk_stopwords("english")
    assert len(words) == 179 and {"the", "and", "don", "it's"} <= words
    src = wordlists.stopwords_source()
    assert src["nltk_stopwords"].endswith("catalog2vec/resources/nltk_data/corpora/stopwords")
    assert Path(src["nltk_stopwords"], "english").is_file()
    with pytest.raises(ValueError, match="no NLTK stop words for language 'klingon'"):
        wordlists.nltk_stopwords("klingon")


def test_group_writable_package_falls_back_to_private_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    src = wordlists.nltk_data_dir()
    dst = tmp_path / "nltk_data"
    shutil.copytree(src, dst)
    english = dst / "corpora" / "stopwords" / "english"
    english.chmod(english.stat().st_mode | stat.S_IWGRP | stat.S_IWOTH)  # NLTK refuses this file
    monkeypatch.setattr(wordlists, "nltk_data_dir", lambda: dst)
    wordlists.nltk_stopwords.cache_clear()
    try:
        assert len(wordlists.nltk_stopwords("english")) == 179
    finally:
        wordlists.nltk_stopwords.cache_clear()


def test_bad_input_never_crashes(cleaner: TextCleaner) -> None:
    cases = {
        "none": [None, None],
        "empty": ["", "   "],
        "digits": ["12345 678", "2012.0"],
        "stopwords": ["the and of it is", "was were been"],
        "emoji": ["😀🔥 red dress 👗", None],
        "html": ["<script>x</script><div class='a'>silk scarf</div>", "&amp;&lt;&gt;"],
        "cyrillic": ["Красное платье", None],
        "cjk": ["红色连衣裙 dress", None],
        "huge": ["linen " * 200_000, "cotton"],  # 1.2 MB title, truncated at max_chars
    }
    out = {name: cleaner.clean(vals) for name, vals in cases.items()}
    assert out["none"].tokens == [] and out["empty"].tokens == []
    assert out["digits"].tokens == [] and out["digits"].n_raw_tokens == 4
    assert out["stopwords"].tokens == [] and out["stopwords"].n_raw_tokens == 8
    assert out["emoji"].tokens == ["red", "dress"]
    assert out["html"].tokens == ["silk", "scarf"]
    assert out["cyrillic"].tokens == ["красное", "платье"]
    assert out["cjk"].tokens == ["红色连衣裙", "dress"]
    assert out["huge"].truncated and out["huge"].tokens.count("linen") == 20000 // 6
    assert out["huge"].tokens[-1] == "cotton"


def test_field_weights_and_token_counts() -> None:
    c = TextCleaner(CleanerSettings(fields=(("title", 2), ("description", 1))))
    res = c.clean(["red dress", "red silk dress dress"])
    assert res.tokens == ["red", "dress", "red", "silk", "dress", "dress"]
    assert res.token_counts() == {"red": 3, "dress": 4, "silk": 1}
    with pytest.raises(ValueError, match="expected 2 field values"):
        c.clean(["only one"])


def test_config_extends_and_replaces_lists(tmp_path: Path) -> None:
    extra = tmp_path / "brands.txt"
    extra.write_text("# brands are not visual here\nnike\nPuma  # comment\n\n")
    repl = tmp_path / "marketing.txt"
    repl.write_text("gorgeous\n")
    cfg = dataclasses.replace(TextSection(), extra_stopwords=[str(extra)], replace_marketing=str(repl))
    s = CleanerSettings.from_config(cfg, {"title": 1})
    c = TextCleaner(s)
    assert c.clean(["Nike PUMA gorgeous wonderful red dress"]).tokens == ["wonderful", "red", "dress"]
    assert s.fingerprint() != CleanerSettings.from_config(TextSection(), {"title": 1}).fingerprint()
    with pytest.raises(FileNotFoundError, match="word list file not found"):
        CleanerSettings.from_config(dataclasses.replace(TextSection(), extra_nonvisual=["/nope.txt"]))
    with pytest.raises(InvalidInput, match="weight must be a positive integer"):
        CleanerSettings.from_config(TextSection(), {"title": 0})


def test_parse_text_columns() -> None:
    assert parse_text_columns("title, description:2") == {"title": 1, "description": 2}
    for bad in ("", "a:x", "a:0", "a,a"):
        with pytest.raises(InvalidInput):
            parse_text_columns(bad)


def test_clean_arrow_batch_shape() -> None:
    s = CleanerSettings(fields=(("title", 1), ("color", 3)))
    batch = pa.RecordBatch.from_pydict(
        {"item_id": ["a", "b", "c"], "title": ["Red red dress", None, "the 42"], "color": ["Red", None, None]}
    )
    out = clean_arrow_batch(batch, s).to_pydict()
    assert out["item_id"] == ["a", "b", "c"]
    assert out["tokens"] == [["red", "red", "dress", "red"], [], []]
    assert out["uniq_tokens"] == [["red", "dress"], [], []]
    assert out["uniq_counts"] == [[5, 1], [], []]  # red: 2×1 + 1×3
    assert out["n_raw_tokens"] == [4, 0, 2]


def test_fast_path_tokenises_exactly_like_nltk_regexp_tokenizer(examples_dir: Path) -> None:
    import csv

    texts = ["Navy T-Shirt -- 5-pocket\nround-neck  women's_top Кофта 红色", ""]
    with (examples_dir / "styles.csv").open(newline="") as fh:
        texts += [r["productDisplayName"] for r in csv.DictReader(fh)]
    for t in texts:
        norm = normalise(t)[0]
        assert clean._FINDALL(norm) == clean._TOKENIZER.tokenize(norm)
