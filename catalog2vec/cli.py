"""The ``catalog2vec`` console script.

  catalog2vec similar --lakehouse DIR --item-id ID -k 10 [--grid out.png]
  catalog2vec similar --lakehouse DIR --image query.jpg -k 10 [--grid out.png]
  catalog2vec serve   --lakehouse DIR [--port 8000] [--model-version latest]

Reads ``gold.item_embeddings`` with delta-rs (no JVM), builds or loads the faiss index under
``<lakehouse>/indexes/<model_version>/`` and prints the k nearest items (cosine similarity).
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from catalog2vec import models, names, storage
from catalog2vec.config import load_config
from catalog2vec.errors import InvalidInput, UserError
from catalog2vec.retrieval.index import INDEX_KINDS, IndexParams


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catalog2vec", description="catalog2vec command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser(
        "similar",
        help="nearest items to an item or an image",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--lakehouse", default="lakehouse", help="lakehouse root (default ./lakehouse)")
    sim.add_argument(
        "--model-version", default="latest", type=names.arg_type("model_version", model_ref=True),
        help="model version (default: newest trained model)"
    )
    query = sim.add_mutually_exclusive_group(required=True)
    query.add_argument("--item-id", help="query by a catalog item already embedded")
    query.add_argument("--image", help="query by an image file, embedded on the fly with the model")
    sim.add_argument("-k", type=int, default=10, help="number of neighbours (default 10)")
    sim.add_argument("--index", choices=INDEX_KINDS, default="flat", help="index kind (default flat = exact)")
    sim.add_argument(
        "--rebuild", action="store_true", help="rebuild the saved index from gold.item_embeddings"
    )
    sim.add_argument("--grid", default=None, help="write a PNG grid of the query and its neighbours")
    sim.add_argument("--json", action="store_true", help="print JSON instead of a table")

    srv = sub.add_parser(
        "serve",
        help="neighbour browser: search, tags, neighbours, clusters, query by image (web page)",
        description="Start the neighbour browser (FastAPI) for one model version of a lakehouse.",
    )
    srv.add_argument("--lakehouse", default="lakehouse", help="lakehouse root (default ./lakehouse)")
    srv.add_argument(
        "--model-version", default="latest", type=names.arg_type("model_version", model_ref=True),
        help="model version (default: newest trained model)"
    )
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; no authentication)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("-k", type=int, default=12, help="neighbours per page (default 12)")
    srv.add_argument("--index", choices=INDEX_KINDS, default="flat", help="index kind (default flat = exact)")
    srv.add_argument("--rebuild", action="store_true", help="rebuild the saved index from gold.item_embeddings")
    srv.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                     help="a further Host name the browser answers (besides 127.0.0.1, localhost and --host; "
                          "repeatable), e.g. the machine's name when --host 0.0.0.0")
    srv.add_argument("--config", default=None, help="TOML run configuration for [images] (default: conf/local.toml)")
    srv.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override one config value, e.g. --set images.max_pixels=20000000 (repeatable)")
    return parser


# C0 controls (ESC starts a terminal escape sequence, BEL rings), DEL, C1 controls, and the Unicode
# bidirectional overrides/isolates that reorder what a terminal shows
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1, bidi controls) shown as its escape
    (``\\x1b``): crawled titles and ids are printed to a terminal, which would obey them."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def serve(args: argparse.Namespace) -> int:
    from catalog2vec.serve.app import serve as run_server

    if not 0 < args.port < 65536:
        raise InvalidInput(f"--port must be 1..65535, got {args.port}")
    cfg = load_config(args.config, args.overrides)
    run_server(args.lakehouse, host=args.host, port=args.port, model_version=args.model_version, k=args.k,
               index_kind=args.index, images=cfg.images, extra_hosts=args.allowed_host, rebuild_index=args.rebuild)
    return 0


def similar(args: argparse.Namespace) -> int:
    from catalog2vec.retrieval.query import embed_image_file, save_grid
    from catalog2vec.retrieval.store import build_or_load_index, item_images, item_titles

    if args.k < 1:
        raise InvalidInput("-k must be >= 1")
    mv = models.resolve(args.lakehouse, args.model_version)
    idx = build_or_load_index(args.lakehouse, mv, IndexParams(kind=args.index), rebuild=args.rebuild)
    if args.item_id is not None:
        if args.item_id not in idx:
            raise InvalidInput(
                f"item_id {args.item_id!r} has no embedding for model {mv} ({idx.size} items indexed)"
            )
        hits = idx.similar_to(args.item_id, args.k)
        query_label = f"item {args.item_id}"
    else:
        vec = embed_image_file(args.lakehouse, mv, args.image)
        hits = idx.neighbors(vec[None, :], args.k)[0]
        query_label = f"image {args.image}"
    ids = [h[0] for h in hits] + ([args.item_id] if args.item_id else [])
    titles = item_titles(args.lakehouse, ids)
    if args.json:
        out = [
            {"rank": r, "item_id": i, "score": round(s, 6), "title": titles.get(i, "")}
            for r, (i, s) in enumerate(hits, 1)
        ]
        print(json.dumps({"model_version": mv, "query": query_label, "neighbors": out}, indent=2))
    else:
        print(terminal_safe(
            f"model {mv}, {idx.params.kind} index of {idx.size} items; query: {query_label}"
            + (f" ({titles.get(args.item_id, '')})" if args.item_id else "")
        ))
        print(f"{'rank':>4}  {'score':>6}  {'item_id':<12} title")
        for r, (i, s) in enumerate(hits, 1):
            print(f"{r:>4}  {s:6.4f}  {terminal_safe(i):<12} {terminal_safe(titles.get(i, ''))}")
    if args.grid:
        images = item_images(args.lakehouse, ids)
        if args.item_id is not None:
            query_cell = (images.get(args.item_id), f"QUERY {args.item_id}: {titles.get(args.item_id, '')}")
        else:
            query_cell = (storage.read_bytes(args.image), f"QUERY {storage.basename(args.image)}")
        cells = [query_cell] + [
            (images.get(i), f"{r}. {s:.4f} {titles.get(i, i)}") for r, (i, s) in enumerate(hits, 1)
        ]
        per_row = 6
        rows = [cells[j : j + per_row] for j in range(0, len(cells), per_row)]
        path = save_grid(rows, args.grid, title=f"{query_label} — model {mv}")
        print(f"grid: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "similar":
            return similar(args)
        if args.command == "serve":
            return serve(args)
    except UserError as exc:
        print(f"catalog2vec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
