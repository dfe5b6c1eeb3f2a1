r"""Vectorised cleaning of whole Arrow arrays: the same tokens as :mod:`catalog2vec.text.clean`.

:func:`clean_arrow_batch` is the one per-batch cleaner of every engine (Spark ``mapInArrow``, the
Beam pipeline's batched ``DoFn``, the benchmark). Each text column goes through
``pyarrow.compute`` kernels, one call per step for the whole batch:

=================  ===========================================================================
truncate           ``utf8_length`` > ``max_chars`` → ``utf8_slice_codeunits`` (code points, as Python)
HTML entities      ``replace_substring`` for the common set (``&amp;`` last, so one pass = Python's)
tags               ``replace_substring_regex`` ``<[^<>]*>`` → space
NFKC, lower-case   ``utf8_normalize`` + ``utf8_lower`` on the non-ASCII rows, ``ascii_lower`` on the rest
tokenise           ``\w+(?:-\w+)*`` over the whole batch's UTF-8 bytes with numpy (character classes
                   from Python's own ``re`` and ``str.isalpha``, cached per code point)
filter             token length, ``is_in`` against the stop/non-visual/marketing/shop words, no digit
counts             dictionary codes + numpy: per item distinct tokens (first-seen order) and
                   weighted occurrences
=================  ===========================================================================

Where the kernels could disagree with the reference, the reference's own code runs, only there:

* rows holding a character on which Arrow's normalisation differs from Python's (checked once per
  character and process): Arrow 25's ``utf8_normalize`` never composes (``é`` comes back as
  ``e`` + U+0301), ``utf8_lower`` is the simple mapping (``İ``) without the final-sigma rule
  (``Σ``), unassigned code points. Those rows get ``unicodedata.normalize("NFKC") + str.lower``
  in Python; tokenising and filtering stay vectorised.
* rows cleaned wholly by :meth:`catalog2vec.text.clean.TextCleaner.clean_text` and spliced back:
  an ``&`` that starts anything but a common entity (``&copy;``, ``&#8217;``, ``&amp`` without
  ``;`` …: Python's ``html.unescape`` rules are long); a ``<`` in a text longer than 2,002
  characters (the reference strips tags of at most 2,000 characters; RE2 cannot bound a
  repetition above 1,000).

:func:`clean_arrow_batch_rowwise` is the per-row reference: every row of a batch through
:meth:`catalog2vec.text.clean.TextCleaner.clean`, the same columns out.

``tests/unit/text/test_columnar.py`` asserts identical tokens, counts and flags on the real
titles and reviews, on a hostile corpus and on seeded random mixtures.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog2vec.text.clean import CleanerSettings, TextCleaner, get_cleaner

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["ColumnarCleaner", "FieldResult", "clean_arrow_batch", "clean_arrow_batch_rowwise", "get_columnar_cleaner"]

# html.unescape treats "&" followed by anything but these as a possible entity
_ENTITY_CANDIDATE = r"&[^\t\n\f <&;]"
# entities replaced vectorised; "&amp;" last so that "&amp;lt;" stays "&lt;" as in one html.unescape pass
_ENTITIES: tuple[tuple[str, str], ...] = (
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    ("&apos;", "'"),
    ("&nbsp;", "\xa0"),
    ("&#39;", "'"),
    ("&#34;", '"'),
    ("&amp;", "&"),
)
_ENTITY_KNOWN = "&(?:" + "|".join(re.escape(e[1:-1]) for e, _ in _ENTITIES) + ");"
_TAG_ANY = r"<[^<>]*>"
_TAG_SAFE_LEN = 2002  # "<" + at most 2000 + ">": the reference pattern's longest tag

_JAMO = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))
_WORD_RE = re.compile(r"\w", re.UNICODE)
_SAFE: dict[int, bool] = {}  # code point -> Arrow's NFKC / lower-case equal Python's on it (per process)
_CLASS: dict[int, int] = {}  # code point -> _WORD | _NONALPHA bits, from Python's own re / str (per process)

# byte classes of the tokeniser: \w, "-", \w that is not a letter (digits, "_": the token is then
# not alphabetic), UTF-8 continuation byte
_WORD, _HYPHEN, _NONALPHA, _CONT = 1, 2, 4, 8
_ASCII_CLASS = np.zeros(256, dtype=np.uint8)
for _b in range(128):
    _c = chr(_b)
    if _WORD_RE.match(_c):
        _ASCII_CLASS[_b] = _WORD | (0 if _c.isalpha() else _NONALPHA)
_ASCII_CLASS[ord("-")] = _HYPHEN
_ASCII_CLASS[0x80:0xC0] = _CONT


def _check_chars(cps: NDArray[np.int64]) -> None:
    """Decide, once per process, for each new non-ASCII code point whether Arrow's NFKC and
    lower-case mapping give exactly Python's result on it (see the module docstring)."""
    chars = [chr(int(c)) for c in cps]
    arr = pa.array(chars, pa.string())
    a_nfkc = pc.utf8_normalize(arr, "NFKC").to_pylist()
    a_low = pc.utf8_lower(arr).to_pylist()
    for c, nf, low in zip(chars, a_nfkc, a_low, strict=True):
        _SAFE[ord(c)] = (
            unicodedata.category(c) not in ("Cn", "Cs", "Co")
            # Arrow's utf8_normalize (25.x) never composes (its "NFKC" is NFKD): a combining mark or
            # a Hangul jamo could compose with its neighbour in Python's NFKC
            and not unicodedata.category(c).startswith("M")
            and not unicodedata.combining(c)
            and not any(lo <= ord(c) <= hi for lo, hi in _JAMO)
            and c != "\u03a3"  # Python lower-cases a word-final capital sigma to "ς", Arrow to "σ"
            and unicodedata.normalize("NFKC", c) == nf
            and c.lower() == low
        )


def _char_class(cp: int) -> int:
    bits = _CLASS.get(cp)
    if bits is None:
        c = chr(cp)
        bits = _CLASS[cp] = (_WORD | (0 if c.isalpha() else _NONALPHA)) if _WORD_RE.match(c) else 0
    return bits


def _string_buffers(arr: pa.Array) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """(offsets rebased to 0, data bytes) of a string / large_string array, zero-copy."""
    n = len(arr)
    if pa.types.is_large_string(arr.type):
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    else:
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4).astype(np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8)[start:stop] if buf is not None and stop > start else np.zeros(0, np.uint8)
    return offsets - start, data


def _code_points(data: NDArray[np.uint8]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(positions of the multi-byte characters' lead bytes, their code points) in UTF-8 ``data``."""
    lead = np.flatnonzero(data >= 0xC0)
    if not len(lead):
        return lead, lead.astype(np.int64)
    padded = np.concatenate([data, np.zeros(4, np.uint8)]).astype(np.int64)
    b0 = padded[lead]
    b1, b2, b3 = padded[lead + 1] & 0x3F, padded[lead + 2] & 0x3F, padded[lead + 3] & 0x3F
    cp = np.where(
        b0 < 0xE0,
        ((b0 & 0x1F) << 6) | b1,
        np.where(b0 < 0xF0, ((b0 & 0x0F) << 12) | (b1 << 6) | b2, ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3),
    )
    return lead, cp


def _unsafe_rows(arr: pa.Array) -> NDArray[np.bool_]:
    """Rows of ``arr`` holding a code point on which Arrow's normalisation may differ from Python's."""
    bad = np.zeros(len(arr), dtype=bool)
    if not len(arr):
        return bad
    offsets, data = _string_buffers(arr)
    lead, cp = _code_points(data)
    if not len(lead):
        return bad
    uniq = np.unique(cp)
    new = np.array([c for c in uniq.tolist() if c not in _SAFE], dtype=np.int64)
    if len(new):
        _check_chars(new)
    unsafe_cps = np.array([c for c in uniq.tolist() if not _SAFE[c]], dtype=np.int64)
    if len(unsafe_cps):
        rows = np.searchsorted(offsets, lead[np.isin(cp, unsafe_cps)], side="right") - 1
        bad[rows] = True
    return bad


def _tokenise(arr: pa.Array) -> tuple[pa.Array, NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """``re.findall(r"\\w+(?:-\\w+)*")`` over every row of normalised text at once, on the UTF-8
    bytes with numpy (character classes from Python's own ``re``, cached per code point).

    Returns (tokens, row of each token, characters per token, token has a non-letter \\w)."""
    offsets, data = _string_buffers(arr)
    size = len(data)
    if not size:
        empty = np.zeros(0, dtype=np.int64)
        return pa.array([], pa.large_string()), empty, empty, empty.astype(bool)
    cls = _ASCII_CLASS[data]
    multibyte = bool(cls.max() & _CONT)
    if multibyte:
        lead, cp = _code_points(data)
        uniq, inverse = np.unique(cp, return_inverse=True)
        bits = np.array([_char_class(c) for c in uniq.tolist()], dtype=np.uint8)
        cls[lead] = bits[inverse.ravel()]
        # continuation bytes take their character's class (and keep the _CONT mark for counting)
        cont = (cls & _CONT) != 0
        owner = np.maximum.accumulate(np.where(cont, 0, np.arange(size)))
        cls = cls[owner] | (cont.view(np.uint8) * np.uint8(_CONT))
    word = (cls & _WORD) != 0
    brk = np.zeros(size + 1, dtype=bool)  # a row starts here: tokens never cross it
    brk[offsets[:-1][offsets[:-1] < size]] = True
    brk[size] = True
    joined = np.zeros(size + 1, dtype=bool)  # "the previous byte belongs to the same row"
    joined[1:size] = ~brk[1:size]
    # a hyphen joins two \\w characters of the same row
    in_tok = word.copy()
    hyph = np.flatnonzero(cls == _HYPHEN)
    if len(hyph):
        inner = hyph[(hyph > 0) & (hyph < size - 1)]
        ok = word[inner - 1] & word[inner + 1] & joined[inner] & joined[inner + 1]
        in_tok[inner[ok]] = True
    cont_prev = np.zeros(size, dtype=bool)
    cont_prev[1:] = in_tok[:-1]
    cont_prev &= joined[:size]
    cont_next = np.zeros(size, dtype=bool)
    cont_next[:-1] = in_tok[1:]
    cont_next &= joined[1:]
    starts = np.flatnonzero(in_tok & ~cont_prev)
    ends = np.flatnonzero(in_tok & ~cont_next) + 1
    lengths = ends - starts
    tok_off = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=tok_off[1:])
    packed = data[in_tok]
    tokens = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(tok_off), pa.py_buffer(packed))
    tok_rows = np.searchsorted(offsets, starts, side="right") - 1
    if not len(starts):
        return tokens, tok_rows.astype(np.int64), lengths, np.zeros(0, dtype=bool)
    packed_cls = cls[in_tok]
    has_nonalpha = np.logical_or.reduceat((packed_cls & _NONALPHA) != 0, tok_off[:-1])
    n_chars = lengths
    if multibyte:
        n_chars = lengths - np.add.reduceat(((packed_cls & _CONT) != 0).astype(np.int64), tok_off[:-1])
    return tokens, tok_rows.astype(np.int64), n_chars, has_nonalpha


def _rows_with_byte(offsets: NDArray[np.int64], data: NDArray[np.uint8], byte: int) -> NDArray[np.int64]:
    pos = np.flatnonzero(data == byte)
    return np.unique(np.searchsorted(offsets, pos, side="right") - 1) if len(pos) else pos


class FieldResult:
    """One text column cleaned: flat kept tokens with their row, and per-row counts/flags."""

    __slots__ = ("n_raw", "rows", "tokens", "truncated")

    def __init__(self, tokens: pa.Array, rows: NDArray[np.int64], n_raw: NDArray[np.int64],
                 truncated: NDArray[np.bool_]) -> None:
        self.tokens, self.rows, self.n_raw, self.truncated = tokens, rows, n_raw, truncated


class ColumnarCleaner:
    """Vectorised twin of :class:`TextCleaner` (same settings, same word lists, same results)."""

    def __init__(self, settings: CleanerSettings | None = None) -> None:
        self.settings = settings or CleanerSettings()
        self.reference: TextCleaner = get_cleaner(self.settings)
        self._stop = pa.array(sorted(self.reference.stop), pa.string())
        self._max = self.settings.max_chars
        self._min = self.settings.min_token_len
        self.fallback_rows = 0  # texts cleaned entirely by the reference path (tests, benchmark)
        self.python_normalised_rows = 0  # texts whose NFKC + lower-case ran in Python

    # -- one column ---------------------------------------------------------------------------
    def clean_column(self, column: pa.Array | pa.ChunkedArray) -> FieldResult:
        """Clean one text column (nulls contribute nothing, as ``None`` in the reference)."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        n = len(column)
        valid = column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else np.ones(n, bool)
        s = pc.fill_null(column, "") if column.null_count else column
        fallback = np.zeros(n, dtype=bool)

        truncated = np.zeros(n, dtype=bool)
        if self._max > 0:
            cut = pc.greater(pc.utf8_length(s), self._max)
            if pc.any(cut).as_py():
                truncated = cut.to_numpy(zero_copy_only=False)
                s = pc.if_else(cut, pc.utf8_slice_codeunits(s, 0, self._max), s)

        offsets, data = _string_buffers(s)
        amp = _rows_with_byte(offsets, data, 0x26)  # "&"
        if len(amp):
            sub = s.take(pa.array(amp))
            cand = pc.count_substring_regex(sub, _ENTITY_CANDIDATE)
            known = pc.count_substring_regex(sub, _ENTITY_KNOWN)
            fallback[amp[pc.not_equal(cand, known).to_numpy(zero_copy_only=False)]] = True
            for entity, repl in _ENTITIES:
                sub = pc.replace_substring(sub, entity, repl)
            mask = np.zeros(n, dtype=bool)
            mask[amp] = True
            s = pc.replace_with_mask(s, pa.array(mask), sub.cast(s.type))
            offsets, data = _string_buffers(s)
        lt = _rows_with_byte(offsets, data, 0x3C)  # "<"
        if len(lt):
            sub = s.take(pa.array(lt))
            fallback[lt[pc.greater(pc.utf8_length(sub), _TAG_SAFE_LEN).to_numpy(zero_copy_only=False)]] = True
            mask = np.zeros(n, dtype=bool)
            mask[lt] = True
            s = pc.replace_with_mask(s, pa.array(mask), pc.replace_substring_regex(sub, _TAG_ANY, " ").cast(s.type))

        ascii_ = pc.string_is_ascii(s)
        if pc.all(ascii_).as_py():
            s = pc.ascii_lower(s)
        else:
            ascii_np = ascii_.to_numpy(zero_copy_only=False)
            idx = np.flatnonzero(~ascii_np)
            sub = s.take(pa.array(idx))
            nfkc = pc.utf8_normalize(sub, "NFKC")
            norm = pc.utf8_lower(nfkc)
            # rows with a character Arrow normalises differently: Python's NFKC + lower, row by
            # row (C speed per row; tokenising and filtering stay vectorised)
            python_rows = np.flatnonzero(_unsafe_rows(sub) | _unsafe_rows(nfkc))
            if len(python_rows):
                self.python_normalised_rows += len(python_rows)
                texts = sub.take(pa.array(python_rows)).to_pylist()
                fixed = pa.array([unicodedata.normalize("NFKC", t).lower() for t in texts], norm.type)
                mask = np.zeros(len(sub), dtype=bool)
                mask[python_rows] = True
                norm = pc.replace_with_mask(norm, pa.array(mask), fixed)
            s = pc.replace_with_mask(pc.ascii_lower(s), pa.array(~ascii_np), norm.cast(s.type))

        raw_tok, raw_rows, n_chars, has_nonalpha = _tokenise(s)
        n_raw = np.bincount(raw_rows, minlength=n).astype(np.int64)
        keep = (n_chars >= self._min) & ~has_nonalpha
        keep &= ~pc.is_in(raw_tok, self._stop).to_numpy(zero_copy_only=False)
        tokens = raw_tok.filter(pa.array(keep))
        rows = raw_rows[keep]

        fallback &= valid
        if fallback.any():
            tokens, rows, n_raw, truncated = self._splice(column, fallback, tokens, rows, n_raw, truncated)
        n_raw[~valid] = 0
        return FieldResult(tokens, rows, n_raw, truncated & valid)

    def _splice(self, column: pa.Array, fallback: NDArray[np.bool_], tokens: pa.Array, rows: NDArray[np.int64],
                n_raw: NDArray[np.int64], truncated: NDArray[np.bool_]
                ) -> tuple[pa.Array, NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """Replace the results of ``fallback`` rows by the reference path's."""
        fb_idx = np.flatnonzero(fallback)
        self.fallback_rows += len(fb_idx)
        texts = column.take(pa.array(fb_idx)).to_pylist()
        fb_tokens: list[str] = []
        fb_rows: list[int] = []
        n_raw = n_raw.copy()
        truncated = truncated.copy()
        for i, text in zip(fb_idx.tolist(), texts, strict=True):
            kept, nr, cut = self.reference.clean_text(text)
            fb_tokens.extend(kept)
            fb_rows.extend([i] * len(kept))
            n_raw[i] = nr
            truncated[i] = cut
        keep = ~fallback[rows]
        merged_tokens = pa.concat_arrays([tokens.filter(pa.array(keep)).cast(pa.large_string()),
                                          pa.array(fb_tokens, pa.large_string())])
        merged_rows = np.concatenate([rows[keep], np.asarray(fb_rows, dtype=np.int64)])
        order = np.argsort(merged_rows, kind="stable")
        return merged_tokens.take(pa.array(order)), merged_rows[order], n_raw, truncated

    # -- a batch of items ------------------------------------------------------------------------
    def clean_columns(self, columns: Sequence[pa.Array | pa.ChunkedArray], n_rows: int) -> dict[str, pa.Array]:
        """The configured fields' columns (in ``settings.fields`` order) → per item: tokens (text
        order, fields in order), n_raw_tokens, truncated, uniq_tokens (first-seen order),
        uniq_counts (weighted occurrences), as Arrow arrays."""
        fields = self.settings.fields
        if len(columns) != len(fields):
            raise ValueError(f"expected {len(fields)} field columns, got {len(columns)}")
        n_raw = np.zeros(n_rows, dtype=np.int64)
        truncated = np.zeros(n_rows, dtype=bool)
        tok_parts: list[pa.Array] = []
        row_parts: list[NDArray[np.int64]] = []
        w_parts: list[NDArray[np.int64]] = []
        for f, (col, (_, weight)) in enumerate(zip(columns, fields, strict=True)):
            res = self.clean_column(col)
            n_raw += res.n_raw
            truncated |= res.truncated
            tok_parts.append(res.tokens.cast(pa.large_string()))
            row_parts.append(res.rows * len(fields) + f)  # sort key: row, then field
            w_parts.append(np.full(len(res.rows), weight, dtype=np.int64))
        key = np.concatenate(row_parts) if row_parts else np.zeros(0, np.int64)
        order = np.argsort(key, kind="stable")
        tokens = pa.concat_arrays(tok_parts).take(pa.array(order)) if tok_parts else pa.array([], pa.large_string())
        rows = key[order] // max(len(fields), 1)
        weights = np.concatenate(w_parts)[order] if w_parts else np.zeros(0, np.int64)
        counts = np.bincount(rows, minlength=n_rows)
        offsets = np.zeros(n_rows + 1, dtype=np.int32)
        np.cumsum(counts, out=offsets[1:])
        token_lists = pa.ListArray.from_arrays(pa.array(offsets), tokens.cast(pa.string()))

        uniq_tokens, uniq_counts = self._distinct(tokens, rows, weights, n_rows)
        return {
            "tokens": token_lists,
            "n_raw_tokens": pa.array(n_raw.astype(np.int32)),
            "truncated": pa.array(truncated),
            "uniq_tokens": uniq_tokens,
            "uniq_counts": uniq_counts,
        }

    @staticmethod
    def _distinct(tokens: pa.Array, rows: NDArray[np.int64], weights: NDArray[np.int64],
                  n_rows: int) -> tuple[pa.ListArray, pa.ListArray]:
        """Per row: distinct tokens in first-seen order and their weighted occurrences."""
        offsets = np.zeros(n_rows + 1, dtype=np.int32)
        if len(tokens) == 0:
            empty = pa.array(offsets)
            return (pa.ListArray.from_arrays(empty, pa.array([], pa.string())),
                    pa.ListArray.from_arrays(empty, pa.array([], pa.int64())))
        enc = pc.dictionary_encode(tokens)
        codes = enc.indices.to_numpy().astype(np.int64)
        key = rows * len(enc.dictionary) + codes
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        sums = np.bincount(inverse.ravel(), weights=weights, minlength=len(first)).astype(np.int64)
        order = np.argsort(first, kind="stable")
        first_sorted = first[order]
        per_row = np.bincount(rows[first_sorted], minlength=n_rows)
        np.cumsum(per_row, out=offsets[1:])
        off = pa.array(offsets)
        return (pa.ListArray.from_arrays(off, tokens.take(pa.array(first_sorted)).cast(pa.string())),
                pa.ListArray.from_arrays(off, pa.array(sums[order])))


@functools.cache
def get_columnar_cleaner(settings: CleanerSettings) -> ColumnarCleaner:
    """A per-process cached columnar cleaner (word lists loaded once per Python worker)."""
    return ColumnarCleaner(settings)


def clean_arrow_batch(batch: pa.RecordBatch | pa.Table, settings: CleanerSettings,
                      id_column: str = "item_id") -> pa.RecordBatch:
    """Clean one batch (``id_column`` + the configured fields) with whole-array kernels.

    Returns ``item_id, tokens, n_raw_tokens, truncated, uniq_tokens, uniq_counts`` — exactly what
    the per-row reference (:func:`clean_arrow_batch_rowwise`) returns."""
    cleaner = get_columnar_cleaner(settings)
    cols = [batch.column(name) for name in settings.field_names]
    out = cleaner.clean_columns(cols, batch.num_rows)
    ids = batch.column(id_column)
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if ids.type != pa.string():
        ids = ids.cast(pa.string())
    return pa.RecordBatch.from_arrays(
        [ids, out["tokens"], out["n_raw_tokens"], out["truncated"], out["uniq_tokens"], out["uniq_counts"]],
        names=["item_id", "tokens", "n_raw_tokens", "truncated", "uniq_tokens", "uniq_counts"],
    )


def clean_arrow_batch_rowwise(batch: pa.RecordBatch | pa.Table, settings: CleanerSettings,
                              id_column: str = "item_id") -> pa.RecordBatch:
    """The per-row reference of clean_arrow_batch: every row through :meth:`TextCleaner.clean`.

    Returns a RecordBatch with ``item_id, tokens, n_raw_tokens, truncated`` plus the per-item
    vocabulary contribution ``uniq_tokens`` (distinct tokens, first-seen order) and
    ``uniq_counts`` (weighted occurrences), so counting needs one explode and one shuffle."""
    cleaner = get_cleaner(settings)
    cols = [batch.column(name).to_pylist() for name in settings.field_names]
    ids = batch.column(id_column).to_pylist()
    out_tokens: list[list[str]] = []
    out_raw: list[int] = []
    out_trunc: list[bool] = []
    out_uniq: list[list[str]] = []
    out_counts: list[list[int]] = []
    for values in zip(*cols, strict=True) if cols else [()] * len(ids):
        res = cleaner.clean(values)
        counts = res.token_counts()
        out_tokens.append(res.tokens)
        out_raw.append(res.n_raw_tokens)
        out_trunc.append(res.truncated)
        out_uniq.append(list(counts))
        out_counts.append(list(counts.values()))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(out_tokens, pa.list_(pa.string())),
            pa.array(out_raw, pa.int32()),
            pa.array(out_trunc, pa.bool_()),
            pa.array(out_uniq, pa.list_(pa.string())),
            pa.array(out_counts, pa.list_(pa.int64())),
        ],
        names=["item_id", "tokens", "n_raw_tokens", "truncated", "uniq_tokens", "uniq_counts"],
    )
