"""Score a training checkpoint (``checkpoints/ckpt-<step>.pt``) on the test split like
benchmarks/recipe_search.py scores a finished model: the seven headline metrics, the probes'
macro-F1 and the collapse diagnostics. For runs that cannot finish on a loaded machine.

    python benchmarks/score_checkpoint.py --lakehouse /tmp/lh --checkpoint <model_dir>/checkpoints/ckpt-00000100.pt
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    import torch
    from recipe_search import headline

    from catalog2vec.config import config_from_dict
    from catalog2vec.retrieval.query import embed_images
    from catalog2vec.vision.data import latest_vocab_version, load_image_bytes, load_index
    from catalog2vec.vision.model import build_model, torch_load

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lakehouse", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--styles", default=str(REPO / "examples" / "data" / "styles.csv"))
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    ckpt = torch_load(args.checkpoint, weights_only=False)
    t = config_from_dict(ckpt["config"]).train
    index = load_index(args.lakehouse, latest_vocab_version(args.lakehouse))
    model = build_model(t.arch, index.vocab.size, t.embed_dim, t.dropout, "", t.loss, t.head)
    model.load_state_dict(ckpt["model"])
    model.eval()
    with open(args.styles, encoding="utf-8") as fh:
        meta = {r["id"]: {"category": r["articleType"], "color": r["baseColour"], "gender": r["gender"]}
                for r in csv.DictReader(fh)}
    te, tr = index.splits["test"], index.splits["train"]
    xt = embed_images(model, t.image_size, load_image_bytes(args.lakehouse, te.item_ids))
    xtr = embed_images(model, t.image_size, load_image_bytes(args.lakehouse, tr.item_ids))
    scores = headline(xt, xtr, [meta[i] for i in te.item_ids], [meta[i] for i in tr.item_ids], te.labels, tr.labels,
                      index.vocab.size, max(2, min(12, len(te.item_ids) // 2)))
    line = {"checkpoint": args.checkpoint, "step": int(ckpt["step"]), "history": ckpt.get("history", []),
            "model": scores}
    print(json.dumps(line))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
