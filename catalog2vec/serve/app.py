"""``catalog2vec serve``: a small neighbour browser (FastAPI, server-rendered jinja2 pages).

Routes (all GET unless noted); an item id is one URL-encoded path segment (``/`` → ``%2F``), and
the routes take the rest of the path, so ids holding ``/ ? # %`` can be browsed:

* ``/`` — search by item id or title words (``?q=``); an exact item id opens the item page;
* ``/item/{item_id}?k=`` — the item's picture and catalog fields, its top tags with probabilities,
  its k nearest neighbours as an image grid (cosine scores, 4 decimals), its cluster and the
  cluster's prototypes;
* ``/cluster/{cluster}`` — a cluster's prototypes;
* ``POST /query`` — query by an uploaded image (form field ``image``), normalised like ingest
  (``images.max_pixels`` checked from the header, before decoding) and embedded with the model;
* ``/image/{item_id}`` — the item's picture from ``silver.images`` only (never a URI a crawled row
  names); ``/api/item/{item_id}`` — the item page as JSON; ``/healthz`` — model version and index size.

The server binds 127.0.0.1 by default: it has no authentication. It answers only Host names it was
given (127.0.0.1, localhost, ``--host``, ``--allowed-host``), refuses cross-site POSTs and bodies
over :data:`MAX_BODY_BYTES` (:mod:`catalog2vec.serve.guard`), and runs every blocking step (Delta
reads, decoding, the forward, the index search) in the thread pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message

from catalog2vec.serve.browser import BrowserError, NeighbourBrowser
from catalog2vec.serve.guard import RequestGuard
from catalog2vec.templates import data_uri, render

if TYPE_CHECKING:
    from catalog2vec.config import ImagesSection

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024  # the upload plus its multipart framing and the k field
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def item_path(item_id: str) -> str:
    """The URL path segment of an item id: every reserved character encoded, ``/`` included."""
    return quote(item_id, safe="")


def allowed_hosts(host: str = "127.0.0.1", extra: Sequence[str] = ()) -> list[str]:
    """The Host names the server answers: the loopback names, the bind address, ``extra``."""
    hosts = [*LOCAL_HOSTS, host, *extra]
    return list(dict.fromkeys(h.strip().strip("[]").lower() for h in hosts if h.strip()))


def _mime(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def create_app(browser: NeighbourBrowser, hosts: Sequence[str] | None = None) -> FastAPI:
    """The FastAPI application over one :class:`NeighbourBrowser`, answering the Host names
    ``hosts`` (default :func:`allowed_hosts`)."""
    app = FastAPI(title="catalog2vec neighbour browser", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts or allowed_hosts()), www_redirect=False)
    app.add_middleware(RequestGuard, max_body=MAX_BODY_BYTES)  # outermost: its headers go on every answer
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
            return RedirectResponse(f"/item/{item_path(q)}", status_code=303)
        examples = sorted(browser.index.item_ids)[:12] if not q else []
        return page("index.html", query=q, results=results, examples=examples,
                    titles=browser.titles)

    @app.get("/item/{item_id:path}", response_class=HTMLResponse)
    def item(item_id: str, k: int | None = None) -> HTMLResponse:
        it = browser.item(item_id, clamp_k(k))
        return page("item.html", query="", item=it, k=clamp_k(k), titles=browser.titles)

    @app.get("/cluster/{cluster}", response_class=HTMLResponse)
    def cluster(cluster: int) -> HTMLResponse:
        if cluster not in browser.clusters:
            raise BrowserError(f"unknown cluster {cluster} for model {browser.model_version}")
        return page("cluster.html", query="", cluster=browser.clusters[cluster], titles=browser.titles,
                    clusters=sorted(browser.clusters.values(), key=lambda c: c.cluster))

    # a def endpoint: FastAPI runs it in the thread pool, so decoding and the forward never block the loop
    @app.post("/query", response_class=HTMLResponse)
    def query(image: UploadFile = File(...), k: int | None = Form(None)) -> HTMLResponse:  # noqa: B008
        data = image.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise BrowserError(f"upload larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        result = browser.query_image(data, clamp_k(k))
        return page("query.html", query="", result=result, filename=image.filename or "upload",
                    upload_uri=data_uri(result.image, "image/jpeg"), titles=browser.titles, k=clamp_k(k))

    @app.get("/image/{item_id:path}")
    def image(item_id: str) -> Response:
        data = browser.images([item_id]).get(item_id)
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type=_mime(data), headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/item/{item_id:path}")
    def api_item(item_id: str, k: int | None = None) -> JSONResponse:
        return JSONResponse({"model_version": browser.model_version, **asdict(browser.item(item_id, clamp_k(k)))})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_version": browser.model_version, "items_indexed": browser.index.size}

    return app


async def _asgi_request(app: ASGIApp, method: str, path: str, host: str, body: bytes = b"",
                        content_type: str = "") -> int:
    """One request straight through the ASGI application (no socket); its status code."""
    status = 0
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    headers = [(b"host", host.encode("idna")), (b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
               "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
               "headers": headers, "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}, receive, send)
    return status


async def warm_up(app: ASGIApp, host: str = "127.0.0.1") -> None:
    """The home page and one upload (a small generated picture) through the whole application
    before the server answers: the model's weights, torch's first forward, the form parser and the
    templates are loaded now, not by the first real upload while other requests wait on the GIL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, format="JPEG")
    boundary = "catalog2vec-warm-up"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="warm.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    try:
        statuses = [await _asgi_request(app, "GET", "/", host),
                    await _asgi_request(app, "POST", "/query", host, body, f"multipart/form-data; boundary={boundary}")]
    except Exception as exc:  # the pages can still be browsed; the upload will answer the same error
        log.warning("browser warm-up failed (uploads may not work): %s: %s", type(exc).__name__, exc)
        return
    if statuses != [200, 200]:
        log.warning("browser warm-up requests answered %s (home page, upload)", statuses)


def serve(root: str, host: str = "127.0.0.1", port: int = 8000, model_version: str = "latest",
          k: int = 12, index_kind: str = "flat", images: ImagesSection | None = None,
          extra_hosts: Sequence[str] = (), rebuild_index: bool = False) -> None:
    """Load the browser for ``lakehouse`` and serve it with uvicorn until interrupted."""
    import uvicorn

    browser = NeighbourBrowser(root, model_version, k=k, index_kind=index_kind, images=images,
                               rebuild_index=rebuild_index)
    hosts = allowed_hosts(host, extra_hosts)
    app = create_app(browser, hosts)
    asyncio.run(warm_up(app, hosts[0]))
    print(f"catalog2vec serve: model {browser.model_version}, {browser.index.size} items — "
          f"open http://{host}:{port}/ (answers Host {', '.join(hosts)})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False,
                proxy_headers=False)


__all__ = ["MAX_BODY_BYTES", "MAX_UPLOAD_BYTES", "allowed_hosts", "create_app", "item_path", "serve"]
