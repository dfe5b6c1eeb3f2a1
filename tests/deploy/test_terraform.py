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


# --------------------------------------------------------------------------------------------- issue 33
# what the production route needs from terraform (the production-shaped run: test_production_env.py)


def _resources(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in _parse(path).get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[f"{rtype}.{name}"] = body
    return out


def _lock_pins(lock: str) -> dict[str, str]:
    text = (REPO / "requirements" / lock).read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_mwaa_runs_the_locked_airflow_and_installs_the_wheel_with_locked_pins() -> None:
    from tests.deploy import tf_render

    mv = tf_render.airflow_module_vars("prod", catalog2vec_wheel="catalog2vec-1.0-py3-none-any.whl")
    pins = _lock_pins("airflow.lock")
    version = mv["var.airflow_version"]
    assert version == pins["apache-airflow"]  # >= 3.1: the DAG's DeadlineAlert
    assert tuple(int(x) for x in version.split(".")[:2]) >= (3, 1)
    reqs = tf_render.worker_requirements(mv)
    for req in reqs[:-1]:
        name, ver = req.split("==")
        assert pins[name.lower()] == ver, req
    assert {"apache-airflow-providers-apache-spark", "pyspark", "s3fs"} <= {r.split("==")[0] for r in reqs[:-1]}
    assert reqs[-1] == "/usr/local/airflow/plugins/catalog2vec-1.0-py3-none-any.whl"
    mwaa = _resources(TF / "modules" / "airflow" / "main.tf")["aws_mwaa_environment.this"]
    assert "aws_s3_object.plugins" in str(mwaa["plugins_s3_path"])


def test_mwaa_egress_reaches_s3_by_prefix_list_and_reads_published_models() -> None:
    res = _resources(TF / "modules" / "airflow" / "main.tf")
    s3 = res["aws_security_group_rule.mwaa_egress_s3"]
    assert _v(s3["type"]) == "egress" and _v(s3["to_port"]) == 443 and "s3_prefix_list_id" in str(s3["prefix_list_ids"])
    assert "alert_webhook_cidrs" in str(res["aws_security_group_rule.mwaa_egress_webhook"]["cidr_blocks"])
    prod = (TF / "environments" / "prod" / "main.tf").read_text()
    assert 'name = "com.amazonaws.${var.region}.s3"' in prod and "data.aws_ec2_managed_prefix_list.s3.id" in prod
    iam = (TF / "modules" / "iam" / "main.tf").read_text()
    block = iam[iam.index('sid       = "ReadPublishedModels"'):][:200]
    assert '"s3:GetObject"' in block and '"${local.data_arn}/models/*"' in block


def test_prod_registers_into_glue() -> None:
    res = _resources(TF / "modules" / "spark_cluster" / "main.tf")
    assert "aws_glue_catalog_database.layers" in res
    main = (TF / "modules" / "spark_cluster" / "main.tf").read_text()
    factory = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
    block = main[main.index('Classification = "spark-hive-site"'):][:400]
    assert f'"hive.metastore.client.factory.class" = "{factory}"' in block
    from tests.deploy import tf_render

    mv = tf_render.airflow_module_vars("prod", catalog2vec_wheel="w.whl")
    assert mv["var.spark_conf"]["spark.sql.catalogImplementation"] == "hive"  # register_tables' check_session passes
