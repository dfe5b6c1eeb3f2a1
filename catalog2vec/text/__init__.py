"""catalog2vec.text — catalog text → clean tokens → vocabulary → weak labels.

Pure functions (:mod:`.clean` — the per-row reference, :mod:`.columnar` — the same cleaning on
whole Arrow batches, :mod:`.vocab`, :mod:`.wordlists`, :mod:`.options`) shared by the Spark jobs
(:mod:`.vocab_job` with its ad-hoc reader :mod:`.adhoc_input`, :mod:`.labels_job`; launched by
``jobs/build_vocab.py``, ``jobs/build_labels.py``) and the Beam pipeline
(``pipelines/text_vocab.py``). The Spark modules are not imported here (no pyspark on import).
"""

from catalog2vec.text.clean import (
    TOKEN_PATTERN,
    CleanerSettings,
    CleanResult,
    TextCleaner,
    filter_tokens,
    get_cleaner,
    is_alphabetic,
    normalise,
    tokenise,
)
from catalog2vec.text.columnar import clean_arrow_batch, clean_arrow_batch_rowwise
from catalog2vec.text.vocab import (
    VocabEntry,
    current_vocab_version,
    finalize_vocab,
    read_vocab_parquet,
    split_for,
    split_fraction,
    vocab_version,
)
from catalog2vec.text.wordlists import nltk_stopwords, packaged_wordlist

__all__ = [
    "TOKEN_PATTERN",
    "CleanResult",
    "CleanerSettings",
    "TextCleaner",
    "VocabEntry",
    "clean_arrow_batch",
    "clean_arrow_batch_rowwise",
    "current_vocab_version",
    "filter_tokens",
    "finalize_vocab",
    "get_cleaner",
    "is_alphabetic",
    "nltk_stopwords",
    "normalise",
    "packaged_wordlist",
    "read_vocab_parquet",
    "split_for",
    "split_fraction",
    "tokenise",
    "vocab_version",
]
