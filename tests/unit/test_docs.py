"""The documentation cannot drift: the README is a front page whose links resolve, the generated
pages (job reference, site home) match the code, and the mkdocs site builds in strict mode — a
broken link or a page missing from the nav fails the build, and so this test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import gen_job_reference as gen  # noqa: E402

MKDOCS = Path(sys.executable).with_name("mkdocs")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _mkdocs(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site), "--config-file", str(root / "mkdocs.yml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )


def test_readme_is_a_front_page_whose_links_resolve() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "make demo" in readme and "make test" in readme and "make test-long" in readme
    targets = [t for t in LINK.findall(readme) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert len(targets) >= 20
    missing = [t for t in targets if not (REPO / t.split("#")[0]).exists()]
    assert missing == []


def test_generated_pages_are_current() -> None:
    for path, text in gen.pages().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(REPO)} is stale: run .venv/bin/python scripts/gen_job_reference.py and commit it"
        )


def test_job_reference_shows_every_job_and_its_defaults() -> None:
    page = gen.render()
    jobs = sorted(p.stem for p in (REPO / "jobs").glob("*.py") if not p.stem.startswith("_"))
    assert len(jobs) >= 16
    headings = re.findall(r"^## (\w+)$", page, flags=re.M)
    assert headings == jobs
    # a default set in the parser is rendered, a required flag says so, choices are listed
    build_vocab = page.split("## build_vocab\n")[1].split("\n## ")[0]
    assert "| `--format` `FORMAT` | `csv` | one of `csv`, `json`, `parquet`" in build_vocab
    assert "| `--id-column` `ID_COLUMN` | `item_id` |" in build_vocab
    ingest = page.split("## ingest_catalog\n")[1].split("\n## ")[0]
    assert "| `--input` `INPUT` | **required** |" in ingest
    assert "| `--set` `SECTION.KEY=VALUE` |" in page.split("## Common options (every job)")[1]


def test_site_builds_strict_and_a_broken_link_fails_it(tmp_path: Path) -> None:
    assert MKDOCS.exists(), "mkdocs is not installed: make setup (requirements/dev.lock has it)"
    done = _mkdocs(REPO, tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    for page in ("index.html", "getting-started.html", "jobs-reference.html", "performance.html"):
        assert (site / page).is_file(), page
    assert "build_vocab" in (site / "jobs-reference.html").read_text(encoding="utf-8")

    # the same site with one link to a page that does not exist: strict mode refuses it
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "docs", copy / "docs")
    shutil.copy(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    with (copy / "docs" / "concepts.md").open("a", encoding="utf-8") as f:
        f.write("\nSee [the missing page](no-such-page.md).\n")
    broken = _mkdocs(copy, copy / "site")
    assert broken.returncode != 0
    assert "no-such-page.md" in broken.stdout + broken.stderr


@pytest.mark.parametrize("name", ["LICENSE", "CHANGELOG.md", "DATA.md"])
def test_project_files_exist(name: str) -> None:
    assert (REPO / name).stat().st_size > 500


def test_job_help_shows_defaults() -> None:
    parser = gen.load_parser("build_vocab")
    text = " ".join(parser.format_help().split())
    assert "input format (json = JSON lines) (default: csv)" in text
    assert "column holding the item id (default: item_id)" in text
    # a default the help already states, or None (= from the config), is not repeated
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "random seed (default: 0)" in " ".join(gen.load_parser("simulate_impressions").format_help().split())


def test_readme_query_is_a_tested_example_query() -> None:
    """The README's one query is `tag_counts` of sql/examples.sql (which the analyst-read and
    metastore tests run on DuckDB and Spark), plus a LIMIT: one registry, no second copy to drift."""
    from catalog2vec.lakehouse import sql_examples

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## One query", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    sql = block.split('"""', 2)[1]
    examples = {e.name: e for e in sql_examples.load(REPO / "sql" / "examples.sql")}
    norm = " ".join(sql.split())
    assert norm == " ".join(examples["tag_counts"].sql.split()) + " LIMIT 10"
    assert "duckdb" in examples["tag_counts"].engines
