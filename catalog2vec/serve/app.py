"""``catalog2vec serve``: a small neighbour browser (FastAPI, server-rendered jinja2 pages).

Routes (all GET unless noted):

* ``/`` — search by item id or title words (``?q=``); an exact item id opens the item page;
* ``/item/{item_id}?k=`` — the item's picture and catalog fields, its top tags with probabilities,
  its k nearest neighbours as an image grid (cosine scores, 4 decimals), its cluster and the
  cluster's prototypes;
* ``/cluster/{cluster}`` — a cluster's prototypes;
* ``POST /query`` — query by an uploaded image (form field ``image``), embedded with the model;
* ``/image/{item_id}`` — the item's picture; ``/api/item/{item_id}`` — the item page as JSON;
  ``/healthz`` — model version and index size.

The server binds 127.0.0.1 by default: it has no authentication.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from catalog2vec.serve.browser import BrowserError, NeighbourBrowser
from catalog2vec.templates import data_uri, render

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _mime(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def create_app(browser: NeighbourBrowser) -> FastAPI:
    """The FastAPI application over one :class:`NeighbourBrowser`."""
    app = FastAPI(title="catalog2vec neighbour browser", docs_url=None, redoc_url=None)
    common = {"model_version": browser.model_version, "indexed": browser.index.size, "default_k": browser.k}

    def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(render(f"serve/{template}", **common, **context), status_code=status_code)

    def clamp_k(k: int | None) -> int:
        return max(1, min(int(k or browser.k), 100))

    @app.exception_handler(BrowserError)
    async def _user_error(request: Request, exc: BrowserError) -> HTMLResponse:
        return page("error.html", status_code=404 if "unknown" in str(exc) or "no embedding" in str(exc) else 400,
                    message=str(exc), query="")

    @app.get("/", response_class=HTMLResponse)
    def index(q: str = "") -> Response:
        q = q.strip()
        results = browser.search(q) if q else []
        if q and len(results) == 1 and results[0][0] == q:
            return RedirectResponse(f"/item/{q}", status_code=303)
        examples = sorted(browser.index.item_ids)[:12] if not q else []
        return page("index.html", query=q, results=results, examples=examples,
                    titles=browser.titles)

    @app.get("/item/{item_id}", response_class=HTMLResponse)
    def item(item_id: str, k: int | None = None) -> HTMLResponse:
        it = browser.item(item_id, clamp_k(k))
        return page("item.html", query="", item=it, k=clamp_k(k), titles=browser.titles)

    @app.get("/cluster/{cluster}", response_class=HTMLResponse)
    def cluster(cluster: int) -> HTMLResponse:
        if cluster not in browser.clusters:
            raise BrowserError(f"unknown cluster {cluster} for model {browser.model_version}")
        return page("cluster.html", query="", cluster=browser.clusters[cluster], titles=browser.titles,
                    clusters=sorted(browser.clusters.values(), key=lambda c: c.cluster))

    @app.post("/query", response_class=HTMLResponse)
    async def query(image: UploadFile = File(...), k: int | None = Form(None)) -> HTMLResponse:  # noqa: B008
        data = await image.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise BrowserError(f"upload larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        result = browser.query_image(data, clamp_k(k))
        return page("query.html", query="", result=result, filename=image.filename or "upload",
                    upload_uri=_data_uri(data), titles=browser.titles, k=clamp_k(k))

    @app.get("/image/{item_id}")
    def image(item_id: str) -> Response:
        data = browser.images([item_id]).get(item_id)
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type=_mime(data), headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/item/{item_id}")
    def api_item(item_id: str, k: int | None = None) -> JSONResponse:
        return JSONResponse({"model_version": browser.model_version, **asdict(browser.item(item_id, clamp_k(k)))})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_version": browser.model_version, "items_indexed": browser.index.size}

    return app


def _data_uri(data: bytes) -> str:
    return data_uri(data, _mime(data))


def serve(lakehouse: str, host: str = "127.0.0.1", port: int = 8000, model_version: str = "latest",
          k: int = 12, index_kind: str = "flat") -> None:
    """Load the browser for ``lakehouse`` and serve it with uvicorn until interrupted."""
    import uvicorn

    browser = NeighbourBrowser(lakehouse, model_version, k=k, index_kind=index_kind)
    print(f"catalog2vec serve: model {browser.model_version}, {browser.index.size} items — "
          f"open http://{host}:{port}/", flush=True)
    uvicorn.run(create_app(browser), host=host, port=port, log_level="warning")


__all__ = ["MAX_UPLOAD_BYTES", "create_app", "serve"]
