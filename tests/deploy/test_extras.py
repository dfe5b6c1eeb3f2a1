"""Each feature extra installs what its feature imports: a fresh venv gets the wheel with ONE extra
(uv, offline, from the cache `make setup` filled, at the dev lock's versions) and runs the
feature's imports and its smallest use — with nothing from the pipeline (no pyspark, no Beam)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")

SERVE = """
import importlib.util
import numpy as np, torch, torchvision
from PIL import Image
import catalog2vec.embed.core, catalog2vec.serve.app, catalog2vec.serve.browser
from catalog2vec.retrieval.index import build_index
from catalog2vec.templates import environment
from catalog2vec.lakehouse import read_arrow

vectors = np.random.default_rng(0).normal(size=(20, 8)).astype("float32")
index = build_index([f"i{k}" for k in range(20)], vectors)
hits = index.neighbors(vectors[:1], 3)[0]
out = torchvision.models.resnet18(weights=None).eval()(torch.zeros(1, 3, 64, 64))
page = environment().get_template("serve/item.html")  # the package data the app renders
Image.new("RGB", (8, 8)).save("x.jpg")
absent = [m for m in ("pyspark", "apache_beam", "lightgbm") if importlib.util.find_spec(m)]
print("SERVE", hits[0][0], tuple(out.shape), page.name, absent)
"""

NOTEBOOKS = """
import importlib.util
import jupytext, nbclient, ipykernel, jupyterlab, duckdb, deltalake
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.decomposition import PCA
import catalog2vec.lakehouse.gold

nb = jupytext.read(NOTEBOOK)
xy = PCA(n_components=2).fit_transform(np.random.default_rng(0).normal(size=(30, 5)))
fig, ax = plt.subplots()
ax.scatter(xy[:, 0], xy[:, 1])
fig.savefig("pca.png")
absent = [m for m in ("pyspark", "apache_beam", "torch") if importlib.util.find_spec(m)]
print("NOTEBOOKS", len(nb.cells) > 3, Image.open("pca.png").size[0] > 100, matplotlib.get_backend().lower(), absent)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not UV.is_file():
        pytest.skip("no uv in the venv (make setup installs it)")
    # built from a copy of the sources, so the checkout gets no build/ directory from this test
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    for package in ("catalog2vec", "schemas"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, text=True, timeout=300)
    return next(out.glob("catalog2vec-*.whl"))


def _venv_with(extra: str, wheel: Path, where: Path) -> Path:
    env = {**os.environ, "UV_OFFLINE": "1", "VIRTUAL_ENV": ""}
    subprocess.run([str(UV), "venv", "-q", "-p", sys.executable, str(where)], env=env, check=True,
                   capture_output=True, timeout=300)
    py = where / "bin" / "python"
    inst = subprocess.run([str(UV), "pip", "install", "-q", "--offline", "-p", str(py),
                           "-c", str(REPO / "requirements" / "dev.lock"), f"{wheel}[{extra}]"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-3000:]
    return py


def _run(py: Path, script: str, cwd: Path) -> str:
    # a clean environment and a directory outside the checkout: only the venv's packages import
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "MPLCONFIGDIR": str(cwd / "mpl")}
    run = subprocess.run([str(py), "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_serve_extra_runs_the_browser_stack(wheel: Path, tmp_path: Path) -> None:
    py = _venv_with("serve", wheel, tmp_path / "serve")
    out = _run(py, SERVE, tmp_path)
    assert "SERVE i0 (1, 1000) serve/item.html []" in out, out


def test_notebooks_extra_runs_the_notebook_stack(wheel: Path, tmp_path: Path) -> None:
    py = _venv_with("notebooks", wheel, tmp_path / "nb")
    script = f"NOTEBOOK = {str(REPO / 'notebooks' / 'explore_embeddings.py')!r}\n" + NOTEBOOKS
    out = _run(py, script, tmp_path)
    assert "NOTEBOOKS True True agg []" in out, out
