"""catalog2vec: crawled fashion catalog → visual vocabulary → weakly supervised image model →
Delta Lake feature tables (embeddings, tag probabilities) for retrieval, clustering and CTR."""

from importlib.metadata import PackageNotFoundError, version

try:  # the installed distribution's version: from the git tag it was built at (setuptools-scm)
    __version__ = version("catalog2vec")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
