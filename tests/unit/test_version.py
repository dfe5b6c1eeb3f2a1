"""The version comes from git tags (setuptools-scm), with 0.1.0 for a tree with no git metadata,
and ``catalog2vec.__version__`` is the installed distribution's version (what model cards record
on a cluster, where there is no checkout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import catalog2vec

REPO = Path(__file__).resolve().parents[2]


def test_version_is_the_installed_metadata() -> None:
    assert catalog2vec.__version__ == version("catalog2vec")
    assert catalog2vec.__version__ != "0+unknown"


def _wheel(src: Path, out: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (wheel,) = out.glob("catalog2vec-*.whl")
    return wheel.name.split("-")[1]


def _git(tree: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=tree, check=True,
                   capture_output=True)


def test_wheel_version_from_tag_and_fallback_without_git(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, tree / name)
    for package in ("catalog2vec", "schemas"):
        shutil.copytree(REPO / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))

    # a copy with no git metadata at all: the fallback version
    assert _wheel(tree, tmp_path / "plain") == "0.1.0"

    # a clone without tags builds (a dev version naming the commit), a tagged commit is that release
    (tree / ".gitignore").write_text("build/\n*.egg-info/\n")  # what the in-tree build leaves behind
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "init")
    untagged = _wheel(tree, tmp_path / "untagged")
    assert ".dev" in untagged and "+g" in untagged
    _git(tree, "tag", "v0.2.0")
    assert _wheel(tree, tmp_path / "tagged") == "0.2.0"
