"""catalog2vec: crawled fashion catalog → visual vocabulary → weakly supervised image model →
Delta Lake feature tables (embeddings, tag probabilities) for retrieval, clustering and CTR."""

__version__ = "0.1.0"
