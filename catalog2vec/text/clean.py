"""Text cleaning: normalise → tokenise → filter. Pure Python, the reference of every engine: the
whole-batch cleaner (:mod:`catalog2vec.text.columnar`, run by Spark's ``mapInArrow`` and Beam's
``Map``) gives exactly its tokens and cleans through it the rows its kernels cannot.

* :func:`normalise` — truncate at ``max_chars`` (reported), unescape HTML entities, strip HTML
  tags, Unicode NFKC, lower-case.
* :func:`tokenise` — NLTK ``RegexpTokenizer`` (no downloaded model) with the pattern
  ``\\w+(?:-\\w+)*``: words, digits and hyphenated compounds (``t-shirt``, ``round-neck``) stay whole,
  apostrophes split (``women's`` → ``women``, ``s``).
* :func:`filter_tokens` — drop tokens shorter than ``min_token_len``, non-alphabetic tokens
  (digits, ``5-pocket``, ``a_b``), and every word of the stop list (NLTK stop words ∪ non-visual
  ∪ marketing ∪ shop names, see :mod:`catalog2vec.text.wordlists`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nltk.tokenize import RegexpTokenizer

from catalog2vec.errors import InvalidInput
from catalog2vec.text import wordlists

if TYPE_CHECKING:
    from catalog2vec.config import TextSection

TOKEN_PATTERN = r"\w+(?:-\w+)*"
_TOKENIZER = RegexpTokenizer(TOKEN_PATTERN)
# RegexpTokenizer.tokenize(text) is ``regexp.findall(text)`` after a per-call check that costs ~4×
# the matching itself (measured, benchmarks/text_vocab.py); the hot path calls the same compiled
# pattern with the tokenizer's own flags. tests/unit/text assert both give identical tokens.
_FINDALL = re.compile(TOKEN_PATTERN, _TOKENIZER._flags).findall
_TAG = re.compile(r"<[^<>]{0,2000}>")


def normalise(text: str | None, max_chars: int = 0) -> tuple[str, bool]:
    """Return ``(clean_text, truncated)``. ``max_chars <= 0`` means no limit.

    Truncation happens first so a huge description costs at most ``max_chars`` of work."""
    if not text:
        return "", False
    truncated = 0 < max_chars < len(text)
    if truncated:
        text = text[:max_chars]
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.lower(), truncated


def tokenise(text: str) -> list[str]:
    """Tokens of already-normalised text (NLTK ``RegexpTokenizer``; keeps ``t-shirt`` whole)."""
    return list(_TOKENIZER.tokenize(text))


def is_alphabetic(token: str) -> bool:
    """Letters only, optionally joined by hyphens (any script: ``kurta``, ``t-shirt``, ``футболка``)."""
    return token.isalpha() or ("-" in token and token.replace("-", "").isalpha() and "--" not in token)


def filter_tokens(tokens: Sequence[str], stop: frozenset[str], min_token_len: int = 2) -> list[str]:
    return [t for t in tokens if len(t) >= min_token_len and t not in stop and is_alphabetic(t)]


@dataclass(frozen=True)
class CleanResult:
    tokens: list[str]  # surviving tokens in text order (fields in configured order)
    weights: list[int]  # field weight of each token (same length as tokens)
    n_raw_tokens: int  # tokens before filtering
    truncated: bool  # some field was cut at max_chars

    def token_counts(self) -> dict[str, int]:
        """Weighted occurrences per distinct token (what the vocabulary counts)."""
        counts: dict[str, int] = {}
        for tok, w in zip(self.tokens, self.weights, strict=True):
            counts[tok] = counts.get(tok, 0) + w
        return counts


@dataclass(frozen=True)
class CleanerSettings:
    """Everything that determines the cleaning, resolved to plain values (picklable, small).

    Extra/replacement word lists given as file paths in the config are read once (on the driver)
    by :meth:`from_config`, so executors never need the user's files; the packaged lists and the
    NLTK corpus are loaded on each worker from package data."""

    fields: tuple[tuple[str, int], ...] = (("title", 1), ("description", 1), ("category", 1), ("color", 1))
    max_chars: int = 20000
    min_token_len: int = 2
    stopwords_language: str = "english"
    extra_words: frozenset[str] = field(default_factory=frozenset)
    replaced: tuple[tuple[str, frozenset[str]], ...] = ()  # (list name, words) replacing a packaged list

    @property
    def field_names(self) -> list[str]:
        return [f for f, _ in self.fields]

    @classmethod
    def from_config(cls, text_cfg: TextSection, fields: Mapping[str, int] | None = None) -> CleanerSettings:
        """Build from a :class:`catalog2vec.config.TextSection` (``fields`` overrides its fields)."""
        chosen = dict(fields if fields is not None else text_cfg.fields)
        if not chosen:
            raise InvalidInput("text.fields is empty: name at least one text field to tokenise")
        for name, weight in chosen.items():
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
                raise InvalidInput(f"text.fields.{name}: weight must be a positive integer, got {weight!r}")
        extra: set[str] = set()
        for path in (
            *text_cfg.extra_stopwords,
            *text_cfg.extra_nonvisual,
            *text_cfg.extra_marketing,
            *text_cfg.extra_shops,
        ):
            extra |= wordlists.read_wordlist_file(path)
        replaced = []
        for name, path in (
            ("stopwords", text_cfg.replace_stopwords),
            ("nonvisual", text_cfg.replace_nonvisual),
            ("marketing", text_cfg.replace_marketing),
            ("shops", text_cfg.replace_shops),
        ):
            if path:
                replaced.append((name, wordlists.read_wordlist_file(path)))
        if text_cfg.min_token_len < 1:
            raise InvalidInput("text.min_token_len must be >= 1")
        wordlists.nltk_stopwords(text_cfg.stopwords_language)  # fail early on an unknown language
        return cls(
            fields=tuple(chosen.items()),
            max_chars=int(text_cfg.max_chars),
            min_token_len=int(text_cfg.min_token_len),
            stopwords_language=text_cfg.stopwords_language,
            extra_words=frozenset(extra),
            replaced=tuple(replaced),
        )

    def stop_set(self) -> frozenset[str]:
        """The union of every filter list (loaded from package data in this process)."""
        replaced = dict(self.replaced)
        words: set[str] = set(replaced.get("stopwords", wordlists.nltk_stopwords(self.stopwords_language)))
        for name in wordlists.PACKAGED_LISTS:
            words |= replaced.get(name, wordlists.packaged_wordlist(name))
        words |= self.extra_words
        return frozenset(words)

    def fingerprint(self) -> str:
        """Hash of the effective cleaning (fields, limits, every filter word): part of vocab_version."""
        payload = {
            "pattern": TOKEN_PATTERN,
            "fields": [list(f) for f in self.fields],
            "max_chars": self.max_chars,
            "min_token_len": self.min_token_len,
            "stop": sorted(self.stop_set()),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class TextCleaner:
    """Cleans the configured fields of one item. Build once per worker (see :func:`get_cleaner`)."""

    def __init__(self, settings: CleanerSettings | None = None) -> None:
        self.settings = settings or CleanerSettings()
        self.stop = self.settings.stop_set()
        self._fields = self.settings.fields
        self._max = self.settings.max_chars
        self._min = self.settings.min_token_len

    def clean_text(self, text: str | None) -> tuple[list[str], int, bool]:
        """One text → ``(tokens, n_raw_tokens, truncated)``."""
        norm, truncated = normalise(text, self._max)
        raw = _FINDALL(norm) if norm else []
        stop, min_len = self.stop, self._min
        kept = [t for t in raw if len(t) >= min_len and t not in stop and (t.isalpha() or is_alphabetic(t))]
        return kept, len(raw), truncated

    def clean(self, values: Sequence[str | None]) -> CleanResult:
        """``values`` are the configured fields' texts, in ``settings.fields`` order."""
        if len(values) != len(self._fields):
            raise ValueError(f"expected {len(self._fields)} field values, got {len(values)}")
        tokens: list[str] = []
        weights: list[int] = []
        n_raw = 0
        truncated = False
        for value, (_, weight) in zip(values, self._fields, strict=True):
            if value is None:
                continue
            kept, n, cut = self.clean_text(value if isinstance(value, str) else str(value))
            tokens.extend(kept)
            weights.extend([weight] * len(kept))
            n_raw += n
            truncated = truncated or cut
        return CleanResult(tokens, weights, n_raw, truncated)

    def clean_record(self, record: Mapping[str, Any]) -> CleanResult:
        return self.clean([record.get(name) for name, _ in self._fields])


@functools.cache
def get_cleaner(settings: CleanerSettings) -> TextCleaner:
    """A per-process cached cleaner (word lists are loaded once per Python worker)."""
    return TextCleaner(settings)
