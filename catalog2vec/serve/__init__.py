"""catalog2vec.serve: the neighbour browser behind ``catalog2vec serve`` (FastAPI + jinja2 pages).

:mod:`catalog2vec.serve.browser` holds the data (no web framework); :mod:`catalog2vec.serve.app`
the routes.
"""

from catalog2vec.serve.browser import BrowserError, NeighbourBrowser

__all__ = ["BrowserError", "NeighbourBrowser"]
