"""Layers point down only (DESIGN.md, README "Architecture"): every ``catalog2vec`` import edge is
read from the source (AST, function-local imports included) and checked against the layer order.

    entry points   cli                       (jobs/, pipelines/ sit above the package)
    features       serve > ctr > evaluation > similarity > clustering > retrieval > embed > vision
                   > text > ingest           (a feature imports only features to its right)
    foundations    quality > lakehouse = schemas > models > tracking > config > layout > spark > alerts
                   > storage > names > redact > errors, config_rules, resources, templates, plots,
                   vectors, standalone   (import no feature and no entry point; a foundation imports
                   only foundations to its right, or its peer: schemas declares its tables with
                   lakehouse.table, and lakehouse's whole-lakehouse operations iterate schemas.TABLES)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ENTRY = ("cli",)
FEATURES = ("serve", "ctr", "evaluation", "similarity", "clustering", "retrieval", "embed", "vision", "text",
            "ingest")  # highest first
FOUNDATION_TIERS = (("quality",), ("lakehouse", "schemas"), ("models",), ("tracking",), ("config",), ("layout",),
                    ("spark",), ("alerts",), ("storage",), ("names",), ("redact",),
                    ("errors", "config_rules", "resources", "templates", "plots", "vectors", "standalone"))  # highest first
FOUNDATIONS = tuple(u for tier in FOUNDATION_TIERS for u in tier)
TIER = {u: i for i, tier in enumerate(FOUNDATION_TIERS) for u in tier}


def _sources() -> list[tuple[str, Path]]:
    """(top-level unit, file) for catalog2vec/ and schemas/ (shipped as catalog2vec.schemas)."""
    out = []
    for path in sorted((REPO / "catalog2vec").rglob("*.py")):
        rel = path.relative_to(REPO / "catalog2vec").parts
        out.append(("__init__" if rel == ("__init__.py",) else rel[0].removesuffix(".py"), path))
    out += [("schemas", p) for p in sorted((REPO / "schemas").rglob("*.py"))]
    return out


def _imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = ([f"{node.module}.{a.name}" for a in node.names] if node.module == "catalog2vec"
                     else [node.module])
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        units |= {n.split(".")[1] for n in names if n.startswith("catalog2vec.")}
    return units


def allowed(unit: str, target: str) -> bool:
    if unit == target or (target == "__init__" and unit in ENTRY):
        return True
    if unit in ENTRY:
        return True
    if unit in FEATURES:
        return target in FOUNDATIONS or (target in FEATURES and FEATURES.index(target) > FEATURES.index(unit))
    if unit in FOUNDATIONS:
        return target in FOUNDATIONS and TIER[target] >= TIER[unit]
    return unit == "__init__" and target in FOUNDATIONS


def test_every_unit_has_a_layer() -> None:
    units = {u for u, _ in _sources()} - {"__init__"}
    assert units <= set(ENTRY + FEATURES + FOUNDATIONS), units - set(ENTRY + FEATURES + FOUNDATIONS)


def test_no_import_points_up_a_layer() -> None:
    bad = sorted(f"{p.relative_to(REPO)}: {unit} -> {t}" for unit, p in _sources() for t in _imported_units(p)
                 if not allowed(unit, t))
    assert bad == []


@pytest.mark.parametrize(("unit", "target", "ok"), [
    ("evaluation", "similarity", True), ("similarity", "evaluation", False), ("vision", "evaluation", False),
    ("storage", "vision", False), ("schemas", "lakehouse", True), ("cli", "serve", True), ("text", "ingest", True),
    ("lakehouse", "models", True), ("models", "lakehouse", False), ("models", "layout", True), ("layout", "models", False),
    ("config", "storage", True), ("storage", "config", False), ("errors", "names", False), ("lakehouse", "schemas", True),
    ("quality", "lakehouse", True), ("lakehouse", "quality", False), ("vision", "layout", True),
])
def test_the_rule_itself(unit: str, target: str, ok: bool) -> None:
    assert allowed(unit, target) is ok


MAX_FUNCTION_LINES = 80  # issue 18: stage-sized functions are split at their seams


def test_no_library_function_is_over_80_lines() -> None:
    long = []
    for path in sorted((REPO / "catalog2vec").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}::{node.name} ({lines} lines)")
    assert long == []
