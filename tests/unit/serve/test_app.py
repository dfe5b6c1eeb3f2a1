"""The neighbour browser's routes over a real (small, JVM-free) lakehouse, through FastAPI's test
client: search, item page = exact neighbours + gold tags + cluster, uploads, error pages, the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import EXAMPLES
from tests.e2e import _browser_lakehouse as fixture


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serve") / "lakehouse"
    root.mkdir()
    return {"root": root, **fixture.build(root, EXAMPLES, limit=48)}


@pytest.fixture(scope="module")
def client(built: dict[str, Any]) -> Any:
    from fastapi.testclient import TestClient

    from catalog2vec.serve.app import create_app
    from catalog2vec.serve.browser import NeighbourBrowser

    # the app answers only its own Host names (TrustedHostMiddleware): not TestClient's "testserver"
    return TestClient(create_app(NeighbourBrowser(built["root"], "latest", k=5)), base_url="http://127.0.0.1")


def _scores(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-item-id="([^"]+)" data-score="([^"]+)"', html)


def test_search_by_id_redirects_and_by_words_lists_matches(client: Any, built: dict[str, Any]) -> None:
    r = client.get("/?q=10039", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/item/10039"
    r = client.get("/?q=SPORTS shoes")
    titles = dict(zip(built["ids"], built["styles"]["productDisplayName"], strict=True))
    want = sorted(i for i, t in titles.items() if {"sports", "shoes"} <= set(re.findall(r"[0-9a-z]+", t.lower())))
    assert want and re.findall(r'class="cell " data-item-id="([^"]+)"', r.text) == want
    assert "Nothing matches" in client.get("/?q=zzzqqq").text


def test_item_page_neighbours_tags_cluster(client: Any, built: dict[str, Any]) -> None:
    ids, emb = built["ids"], built["embeddings"].astype(np.float64)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    q = ids.index("10039")
    sims = x @ x[q]
    sims[q] = -np.inf
    order = np.argsort(-sims)[:5]
    cells = _scores(client.get("/item/10039").text)
    assert [float(s) for _, s in cells] == pytest.approx([float(f"{sims[j]:.4f}") for j in order], abs=1.01e-4)
    assert all(re.fullmatch(r"\d\.\d{4}", s) for _, s in cells)
    api = client.get("/api/item/10039?k=7").json()
    assert api["model_version"] == fixture.MODEL_VERSION and len(api["neighbours"]) == 7
    assert [n["item_id"] for n in api["neighbours"][:5]] == [i for i, _ in cells]
    c = int(built["assignment"][q])
    assert api["cluster"]["cluster"] == c and api["cluster"]["prototypes"] == built["clusters"].prototypes[c]
    assert len(api["tags"]) == 5 and [t["rank"] for t in api["tags"]] == [1, 2, 3, 4, 5]
    assert client.get(f"/cluster/{c}").status_code == 200


def test_upload_finds_the_item_and_bad_uploads_are_400(client: Any) -> None:
    data = (EXAMPLES / "images" / "10039.jpg").read_bytes()
    r = client.post("/query", files={"image": ("q.jpg", data, "image/jpeg")}, data={"k": "3"})
    assert r.status_code == 200
    cells = _scores(r.text)
    assert len(cells) == 3 and cells[0] == ("10039", "1.0000")
    r = client.post("/query", files={"image": ("q.jpg", b"not an image", "image/jpeg")})
    assert r.status_code == 400 and "not an image" in r.text
    r = client.post("/query", files={"image": ("q.jpg", b"", "image/jpeg")})
    assert r.status_code == 400 and "empty upload" in r.text


def test_unknown_item_and_cluster_are_404_and_images_are_served(client: Any) -> None:
    assert client.get("/item/nope").status_code == 404
    assert client.get("/cluster/999").status_code == 404
    from catalog2vec.ingest.images import normalise_image

    r = client.get("/image/10039")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == normalise_image((EXAMPLES / "images" / "10039.jpg").read_bytes()).data  # silver.images
    assert client.get("/image/nope").status_code == 404
    assert client.get("/healthz").json()["items_indexed"] == 48


def test_cli_serve_rejects_bad_arguments(built: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    from catalog2vec.cli import main

    assert main(["serve", "--lakehouse", str(built["root"]), "--port", "0"]) == 2
    assert "--port must be" in capsys.readouterr().err
    assert main(["serve", "--lakehouse", str(tmp_path / "empty")]) == 2
    assert "no trained model" in capsys.readouterr().err


def test_cli_similar_prints_four_decimals(built: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    from catalog2vec.cli import main

    assert main(["similar", "--lakehouse", str(built["root"]), "--item-id", "10039", "-k", "3",
                 "--grid", str(tmp_path / "g.png")]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[2:5]]
    assert all(re.fullmatch(r"\d\.\d{4}", r[1]) for r in rows), rows
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_template_filters() -> None:
    from catalog2vec.templates import data_uri, num, pct, render, score

    assert score(0.99953) == "0.9995" and score(None) == "–"
    assert num(0.5) == "0.500" and num(float("nan")) == "–" and num(3) == "3" and num(0.12345, 2) == "0.12"
    assert pct(0.1234) == "12.3%" and data_uri(b"\x89PNG").startswith("data:image/png;base64,")
    html = render("serve/error.html", model_version="<mv>", indexed=1, default_k=5, message="<b>x</b>", query="")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "&lt;mv&gt;" in html  # autoescaped
