"""``catalog2vec serve`` end to end in a real headless Chromium (Debian's chromium + chromedriver,
driven by Selenium): the real CLI serves a real lakehouse (tests/e2e/_browser_lakehouse.py), the page
loads, a title search leads to the item, whose neighbour grid equals an exact cosine search over
gold.item_embeddings (scores to 4 decimals), whose tags and cluster equal the gold tables, and an
uploaded picture of an item finds that item first at cosine 1.0000. Screenshots are saved to
``$CATALOG2VEC_TEST_ARTIFACTS/browser/`` (default ``test-artifacts/browser/``).

Installs nothing: without chromium/chromedriver (``make setup`` installs them as root) it skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import EXAMPLES, REPO
from tests.e2e import _browser_lakehouse as fixture

pytestmark = [pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
ARTIFACTS = Path(os.environ.get("CATALOG2VEC_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
QUERY_ITEM = "10039"  # "Reebok Men Raceon White Sports Shoes"
K = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromedriver not found (Debian: apt-get install -y chromium chromium-driver; "
                    "`make setup` installs them when run as root)")
    pytest.importorskip("selenium", reason="selenium is in the [dev] extra")
    root = tmp_path_factory.mktemp("browser") / "lakehouse"
    root.mkdir()
    info = fixture.build(root, EXAMPLES, limit=160)
    port = _free_port()
    log = (root.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog2vec.cli", "serve", "--lakehouse", str(root), "--port", str(port), "-k", str(K)],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"catalog2vec serve did not start:\n{(root.parent / 'serve.log').read_text()}")
            time.sleep(0.5)
        yield {"root": root, "base": base, **info}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def driver(served: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1500",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    drv.set_page_load_timeout(120)
    try:
        yield drv
    finally:
        drv.quit()


def _cells(drv: Any, grid: str) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return [(c.get_attribute("data-item-id"), c.get_attribute("data-score"))
            for c in drv.find_elements(By.CSS_SELECTOR, f"#{grid} .cell")]


def _click_and_wait(drv: Any, element: Any, wait_for_id: str) -> None:
    """Click a link/button, wait until the old page is gone and element ``wait_for_id`` is present."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old = drv.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(drv, 60).until(EC.staleness_of(old))
    WebDriverWait(drv, 60).until(EC.presence_of_element_located((By.ID, wait_for_id)))


def _all_images_loaded(drv: Any) -> bool:
    return bool(drv.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);"))


def _exact_neighbours(root: Path, item_id: str, k: int) -> tuple[list[str], np.ndarray]:
    """Brute-force cosine top-(k+1) straight from gold.item_embeddings (independent of faiss)."""
    import pyarrow.compute as pc

    from catalog2vec.lakehouse import read_arrow

    t = read_arrow(root, "gold.item_embeddings", columns=["model_version", "item_id", "embedding"])
    t = t.filter(pc.equal(t["model_version"], fixture.MODEL_VERSION))
    ids = [str(i) for i in t["item_id"].to_pylist()]
    x = np.asarray(t["embedding"].to_pylist(), dtype=np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x[ids.index(item_id)]
    sims[ids.index(item_id)] = -np.inf
    order = np.argsort(-sims, kind="stable")[: k + 1]
    return [ids[j] for j in order], sims[order]


def test_search_item_neighbours_tags_cluster_and_upload(driver: Any, served: dict[str, Any]) -> None:
    import pyarrow.compute as pc
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from catalog2vec.lakehouse import read_arrow

    root, base = served["root"], served["base"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # the page loads
    driver.get(base + "/")
    assert "catalog2vec" in driver.title
    assert driver.find_element(By.ID, "model-version").text == fixture.MODEL_VERSION
    assert len(_cells(driver, "examples")) == 12

    # search by title words -> results -> the item page
    box = driver.find_element(By.ID, "q")
    box.send_keys("raceon white")
    _click_and_wait(driver, driver.find_element(By.ID, "search"), "results")
    results = [i for i, _ in _cells(driver, "results")]
    assert QUERY_ITEM in results
    _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, f"#results .cell[data-item-id='{QUERY_ITEM}'] a"),
                    "neighbours")
    assert driver.find_element(By.ID, "item-title").text.startswith(f"{QUERY_ITEM}: Reebok Men Raceon")

    # the neighbour grid = exact cosine search, scores printed with 4 decimals
    cells = _cells(driver, "neighbours")
    assert len(cells) == K
    exact_ids, exact_scores = _exact_neighbours(root, QUERY_ITEM, K)
    page_scores = [float(s) for _, s in cells]
    assert all(len(s.split(".")[1]) == 4 for _, s in cells), cells
    np.testing.assert_allclose(page_scores, exact_scores[:K], atol=6e-5)  # 4-decimal rounding
    # same items in the same order, except where two exact scores tie below 1e-6 (float32 vs float64)
    ties = {j for j in range(K) if abs(exact_scores[j] - exact_scores[j + 1]) < 1e-6 or
            (j > 0 and abs(exact_scores[j] - exact_scores[j - 1]) < 1e-6)}
    assert [c[0] for j, c in enumerate(cells) if j not in ties] == [i for j, i in enumerate(exact_ids[:K]) if j not in ties]
    assert {c[0] for c in cells} - set(exact_ids) == set()
    assert QUERY_ITEM not in [c[0] for c in cells]

    # top tags = gold.item_tags, with 4-decimal probabilities
    tags = read_arrow(root, "gold.item_tags", columns=["item_id", "tag", "probability", "rank"])
    tags = tags.filter(pc.equal(tags["item_id"], QUERY_ITEM)).sort_by("rank").to_pydict()
    rows = driver.find_elements(By.CSS_SELECTOR, "#tags tr.tag")
    assert [r.get_attribute("data-tag") for r in rows] == tags["tag"]
    assert [r.get_attribute("data-probability") for r in rows] == [f"{p:.4f}" for p in tags["probability"]]

    # its cluster and that cluster's prototypes = gold.item_clusters / gold.clusters
    ids = served["ids"]
    want_cluster = int(served["assignment"][ids.index(QUERY_ITEM)])
    assert driver.find_element(By.ID, "cluster").get_attribute("data-cluster") == str(want_cluster)
    assert [i for i, _ in _cells(driver, "prototypes")] == served["clusters"].prototypes[want_cluster]
    WebDriverWait(driver, 60).until(_all_images_loaded)  # every picture of the page decoded
    driver.save_screenshot(str(ARTIFACTS / "item.png"))

    # query by an uploaded picture: the item itself comes first at cosine 1.0000
    driver.find_element(By.ID, "image").send_keys(str((EXAMPLES / "images" / f"{QUERY_ITEM}.jpg").resolve()))
    _click_and_wait(driver, driver.find_element(By.ID, "upload"), "query-title")
    assert driver.find_element(By.ID, "query-title").text.startswith("Query image")
    up = _cells(driver, "neighbours")
    assert up[0] == (QUERY_ITEM, "1.0000")
    assert len(up) == K and {i for i, _ in up[1:]} <= set(exact_ids)
    # the same model and bytes as the embed step: the predicted tags are the stored ones
    rows = driver.find_elements(By.CSS_SELECTOR, "#tags tr.tag")
    assert [r.get_attribute("data-tag") for r in rows] == tags["tag"]
    assert [r.get_attribute("data-probability") for r in rows] == [f"{p:.4f}" for p in tags["probability"]]
    assert driver.find_element(By.ID, "cluster").get_attribute("data-cluster") is not None
    WebDriverWait(driver, 60).until(_all_images_loaded)  # every picture of the page decoded
    driver.save_screenshot(str(ARTIFACTS / "query.png"))

    # an unknown item is a clear 404 page, not a traceback
    driver.get(base + "/item/no-such-item")
    assert "unknown item" in driver.find_element(By.ID, "error").text

    # another site's page that posts a form to the browser (CSRF): the real browser's request is refused
    driver.get("data:text/html,<form id=f method=post enctype=multipart/form-data action='" + base + "/query'>"
               "<input name=k value=3></form><script>document.getElementById('f').submit()</script>")
    WebDriverWait(driver, 60).until(lambda d: "cross-site request refused" in d.page_source)
    for name in ("item.png", "query.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
