"""Word lists used to filter tokens: NLTK's stop words and the packaged non-visual, marketing and
shop-name lists (``catalog2vec/resources/wordlists/*.txt``).

Everything is read from package data, so it works wherever the package is importable (driver,
Spark executors, Beam workers) without ``nltk.download``: the NLTK stopwords corpus is vendored
under ``catalog2vec/resources/nltk_data/corpora/stopwords`` and read through NLTK's own
``StopwordsCorpusReader``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from catalog2vec.errors import InvalidInput, MissingInput

PACKAGED_LISTS = ("nonvisual", "marketing", "shops")


def resources_dir() -> Path:
    """Directory of ``catalog2vec/resources`` (a real directory: the package ships unzipped)."""
    return Path(str(resources.files("catalog2vec.resources")))


def nltk_data_dir() -> Path:
    """The vendored NLTK data root (``corpora/stopwords`` below it); usable in ``nltk.data.path``."""
    return resources_dir() / "nltk_data"


def wordlist_path(name: str) -> Path:
    if name not in PACKAGED_LISTS:
        raise ValueError(f"unknown packaged word list {name!r}; choose from {PACKAGED_LISTS}")
    return resources_dir() / "wordlists" / f"{name}.txt"


def parse_wordlist(lines: Iterable[str]) -> frozenset[str]:
    """One word per line; ``#`` starts a comment; blank lines ignored; words lower-cased."""
    words = set()
    for line in lines:
        word = line.split("#", 1)[0].strip().lower()
        if word:
            words.add(word)
    return frozenset(words)


def read_wordlist_file(path: str | os.PathLike[str]) -> frozenset[str]:
    p = Path(path)
    if not p.is_file():
        raise MissingInput(f"word list file not found: {p}")
    with p.open(encoding="utf-8") as fh:
        return parse_wordlist(fh)


@functools.lru_cache(maxsize=8)
def packaged_wordlist(name: str) -> frozenset[str]:
    return read_wordlist_file(wordlist_path(name))


def _authorised_root(data_dir: str) -> str:
    """Find ``corpora/stopwords`` under ``data_dir`` through NLTK's loader. NLTK (3.9+) opens data
    only under a root listed in ``nltk.data.path`` (the vendored copy is appended on first use in
    each process: driver, executor, Beam worker) and refuses files writable by other accounts."""
    import nltk

    if data_dir not in nltk.data.path:
        nltk.data.path.append(data_dir)
    return str(nltk.data.find("corpora/stopwords", paths=[data_dir]))


def _private_copy() -> str:
    """Copy the vendored corpus to a private (0700/0600) temporary directory: used when the
    package was unpacked with a group-writable umask, which NLTK refuses to read."""
    tmp = Path(tempfile.mkdtemp(prefix="catalog2vec-nltk-"))
    dst = tmp / "corpora" / "stopwords"
    shutil.copytree(nltk_data_dir() / "corpora" / "stopwords", dst)
    for p in (tmp, tmp / "corpora", dst, *dst.iterdir()):
        p.chmod(0o700 if p.is_dir() else 0o600)
    return str(tmp)


@functools.lru_cache(maxsize=8)
def nltk_stopwords(language: str = "english") -> frozenset[str]:
    """NLTK's stop words for ``language``, read with NLTK's corpus reader from the vendored copy."""
    from nltk.corpus.reader import StopwordsCorpusReader

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            root = _authorised_root(str(nltk_data_dir()))
    except (LookupError, PermissionError):
        root = _authorised_root(_private_copy())
    reader = StopwordsCorpusReader(root, r"(?!README|\.).*", encoding="utf8")
    if language not in reader.fileids():
        raise InvalidInput(f"no NLTK stop words for language {language!r}; available: {sorted(reader.fileids())}")
    return frozenset(w.strip().lower() for w in reader.words(language) if w.strip())


def stopwords_source() -> dict[str, str]:
    """Where this process loads its lists from (the executor test reports it)."""
    return {
        "pid": str(os.getpid()),
        "nltk_stopwords": str(nltk_data_dir() / "corpora" / "stopwords"),
        "english_count": str(len(nltk_stopwords("english"))),
        "nonvisual_count": str(len(packaged_wordlist("nonvisual"))),
    }
