"""terraform/: every .tf parses (python-hcl2), every variable has a description and a type, every
output a description, each module has a README, checkov passes with no failed check (skips only
inline with a justification), and `terraform fmt -check` / `validate` pass when a terraform binary
is available (validate runs offline against a local provider mirror, see TF_PLUGIN_DIR)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import REPO

TF = REPO / "terraform"
TF_FILES = sorted(TF.rglob("*.tf"))
MODULES = ["storage", "spark_cluster", "airflow", "iam"]
ENVIRONMENTS = ["dev", "prod"]
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _normalise(node: Any) -> Any:
    """Two packages install the `hcl2` module (checkov's bc-python-hcl2 and python-hcl2 8), and which
    one wins depends on install order: python-hcl2 8 keeps the quotes of block labels and string
    literals and marks blocks with `__is_block__`. Normalise to one shape."""
    if isinstance(node, dict):
        return {_unquote(k): _normalise(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [_normalise(v) for v in node]
    return _unquote(node)


def _parse(path: Path) -> dict[str, Any]:
    import hcl2

    with path.open() as fh:
        return _normalise(hcl2.load(fh))


def _v(value: Any) -> Any:
    """Attribute value: checkov's bundled hcl2 wraps every attribute in a one-element list."""
    while isinstance(value, list) and len(value) == 1 and not isinstance(value[0], dict):
        value = value[0]
    return value


def test_layout() -> None:
    for m in MODULES:
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            assert (TF / "modules" / m / f).is_file(), f"modules/{m}/{f}"
    for e in ENVIRONMENTS:
        for f in ("main.tf", "variables.tf", "outputs.tf", "terraform.tfvars.example"):
            assert (TF / "environments" / e / f).is_file(), f"environments/{e}/{f}"
    assert len(TF_FILES) >= 22


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TF)))
def test_every_tf_file_parses_with_hcl2(path: Path) -> None:
    doc = _parse(path)
    assert doc, f"{path} parsed to nothing"


def test_every_variable_has_description_and_type_and_every_output_a_description() -> None:
    n_vars = n_outs = 0
    for path in TF_FILES:
        doc = _parse(path)
        for block in doc.get("variable", []):
            for name, body in block.items():
                n_vars += 1
                assert str(_v(body.get("description", ""))).strip(), f"{path}: variable {name} has no description"
                assert "type" in body, f"{path}: variable {name} has no type"
        for block in doc.get("output", []):
            for name, body in block.items():
                n_outs += 1
                assert str(_v(body.get("description", ""))).strip(), f"{path}: output {name} has no description"
    assert n_vars > 40 and n_outs > 15


def test_storage_bucket_is_encrypted_versioned_private_and_logged() -> None:
    doc = _parse(TF / "modules" / "storage" / "main.tf")
    resources: dict[str, dict[str, Any]] = {}
    for block in doc["resource"]:
        for rtype, named in block.items():
            for name, body in named.items():
                resources[f"{rtype}.{name}"] = body
    sse = resources["aws_s3_bucket_server_side_encryption_configuration.lakehouse"]
    assert _v(sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"]) == "aws:kms"
    assert _v(resources["aws_s3_bucket_versioning.lakehouse"]["versioning_configuration"][0]["status"]) == "Enabled"
    pab = resources["aws_s3_bucket_public_access_block.lakehouse"]
    assert all(_v(pab[k]) is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                            "restrict_public_buckets"))
    assert "aws_s3_bucket.logs" in _v(resources["aws_s3_bucket_logging.lakehouse"]["target_bucket"])
    assert _v(resources["aws_kms_key.lakehouse"]["enable_key_rotation"]) is True


def test_checkov_skips_are_inline_and_justified() -> None:
    skips = []
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                m = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_\d+):(.{20,})", line)
                assert m, f"{path}: skip without an ID and a justification: {line.strip()}"
                skips.append(m.group(1))
    assert len(skips) <= 8, skips


def test_checkov_passes_with_no_failed_check() -> None:
    checkov = Path(sys.executable).parent / "checkov"
    if not checkov.exists():
        pytest.skip("checkov is not installed in this environment")
    proc = subprocess.run(
        [str(checkov), "-d", str(TF), "--skip-download", "--quiet", "--compact", "--framework", "terraform",
         "-o", "cli"],
        capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout + proc.stderr
    m = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", out)
    assert m, out[-3000:]
    passed, failed, _ = map(int, m.groups())
    assert failed == 0 and proc.returncode == 0, out[-6000:]
    assert passed > 150


def _terraform() -> str:
    tf = shutil.which("terraform")
    if not tf:
        pytest.skip("no terraform binary on PATH: skipping `terraform fmt -check` and `terraform validate` "
                    "(install terraform >= 1.5 to run them)")
    return tf


def test_terraform_fmt_check() -> None:
    proc = subprocess.run([_terraform(), "fmt", "-check", "-recursive", "-diff", str(TF)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"terraform fmt -check failed:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_terraform_validate(environment: str, tmp_path: Path) -> None:
    tf = _terraform()
    if not (PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no local AWS provider mirror at {PLUGIN_DIR} (set TF_PLUGIN_DIR): `terraform validate` "
                    "needs the provider schema and this test never downloads")
    work = tmp_path / "terraform"
    shutil.copytree(TF, work, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_DATA_DIR": str(tmp_path / "tfdata"),
           "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    cwd = work / "environments" / environment
    init = subprocess.run([tf, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    val = subprocess.run([tf, "validate", "-no-color"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert val.returncode == 0 and "Success" in val.stdout, val.stdout + val.stderr
