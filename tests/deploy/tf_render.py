"""What terraform would install on the MWAA workers, read from the .tf files (never retyped): the
prod environment's values flow through ``module "airflow"`` into ``templatefile(startup.sh.tftpl)``,
which is rendered here the way terraform renders it, and the worker's ``requirements.txt``.

A small evaluator of the expressions these files use (string interpolation, ``var.``/``local.``/
``module.`` references, ``join``, ``jsonencode``, a ``[for x in list : "…"]``); anything else raises,
so a new expression in the .tf files fails the tests instead of rendering something else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.deploy.conftest import REPO
from tests.deploy.test_terraform import _parse

TF = REPO / "terraform"
AIRFLOW_MODULE = TF / "modules" / "airflow"
# what only an apply knows (other modules' outputs), as a test deployment's values
APPLY_OUTPUTS = {
    "module.storage.lakehouse_bucket": "acme-catalog2vec-prod-lakehouse",
    "module.spark_cluster.master_private_dns": "ip-10-20-0-10.eu-west-1.compute.internal",
    "data.aws_ec2_managed_prefix_list.s3.id": "pl-6da54004",
}


def _split_top(text: str) -> list[str]:
    """``a, b`` split on top-level commas (not inside quotes or brackets)."""
    out, depth, quote, cur = [], 0, False, ""
    for ch in text:
        if ch == '"' and not cur.endswith("\\"):
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()] if cur.strip() else out


class Scope:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def expr(self, e: str) -> Any:
        e = e.strip()
        if m := re.fullmatch(r'\[for (\w+) in (.+?) : "(.*)"\]', e):
            name, seq, body = m.groups()
            return [Scope({**self.values, name: item}).string(body) for item in self.expr(seq)]
        if m := re.fullmatch(r"(join|jsonencode|concat)\((.*)\)", e):
            args = [self.expr(a) for a in _split_top(m.group(2))]
            if m.group(1) == "concat":
                return [x for a in args for x in a]
            return args[0].join(args[1]) if m.group(1) == "join" else json.dumps(args[0], separators=(",", ":"))
        if e.startswith("[") and e.endswith("]"):
            return [self.expr(a) for a in _split_top(e[1:-1])]
        if e.startswith('"') and e.endswith('"'):
            return self.string(e[1:-1])
        if re.fullmatch(r"-?\d+(\.\d+)?", e):
            return json.loads(e)
        if e in self.values:
            return self.values[e]
        if re.fullmatch(r"(module|data)\.[\w.]+", e):
            return f"<known after apply: {e}>"  # an output this render does not need (asserted absent)
        raise KeyError(f"tf_render cannot evaluate {e!r}")

    def string(self, s: str) -> str:
        return re.sub(r"\$\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", lambda m: str(self.expr(m.group(1))), s)

    def value(self, v: Any, attribute: bool = True) -> Any:
        """An attribute's value (``attribute``: unwrap the one-element list checkov's hcl2 puts
        around every attribute, and only that one)."""
        if attribute and _WRAPPED:
            assert isinstance(v, list) and len(v) == 1, v
            v = v[0]
        if isinstance(v, dict):
            return {k: self.value(x, False) for k, x in v.items() if not k.startswith("__")}
        if isinstance(v, list):
            return [self.value(x, False) for x in v]
        if isinstance(v, str):
            if v.startswith("${") and _closing(v, 1) == len(v) - 1:
                return self.expr(v[2:-1])  # one expression: keeps its type (list, map, number)
            return self.string(v)
        return v


# which of the two `hcl2` modules is installed (test_terraform._normalise): checkov's wraps every
# attribute value in a one-element list, python-hcl2 8 does not
_WRAPPED = isinstance(_parse(AIRFLOW_MODULE / "versions.tf")["terraform"][0]["required_version"], list)


def _closing(s: str, start: int) -> int:
    """Index of the brace closing the one at ``start``."""
    depth = 0
    for i in range(start, len(s)):
        depth += {"{": 1, "}": -1}.get(s[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced braces in {s!r}")


def _variables(path: Path, prefix: str = "var.") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in _parse(path).get("variable", []):
        for name, body in block.items():
            if "default" in body:
                out[prefix + name] = Scope({}).value(body["default"])
    return out


def _tfvars(path: Path) -> dict[str, Any]:
    return {f"var.{k}": json.loads(v) for k, v in re.findall(r"^(\w+)\s*=\s*(.+)$", path.read_text(), re.M)}


def airflow_module_vars(environment: str = "prod", **tfvars: Any) -> dict[str, Any]:
    """The ``var.*`` of modules/airflow as ``environments/<environment>`` sets them (its variable
    defaults, terraform.tfvars.example, ``tfvars`` on top)."""
    env_dir = TF / "environments" / environment
    scope = Scope({**APPLY_OUTPUTS, **_variables(env_dir / "variables.tf"), **_tfvars(env_dir / "terraform.tfvars.example"),
                   **{f"var.{k}": v for k, v in tfvars.items()}})
    doc = _parse(env_dir / "main.tf")
    for block in doc.get("locals", []):
        for name, v in block.items():
            if not name.startswith("__") and name != "tags":
                scope.values[f"local.{name}"] = scope.value(v)
    (airflow,) = [m["airflow"] for m in doc["module"] if "airflow" in m]
    args = {f"var.{k}": scope.value(v) for k, v in airflow.items() if k not in ("source", "tags") and not k.startswith("__")}
    return {**_variables(AIRFLOW_MODULE / "variables.tf"), **args}


def startup_script(module_vars: dict[str, Any]) -> str:
    """modules/airflow's startup.sh, rendered from its ``templatefile`` call like terraform does."""
    main = (AIRFLOW_MODULE / "main.tf").read_text()
    call = re.search(r'templatefile\("\$\{path.module\}/templates/startup.sh.tftpl", \{(.*?)\n\s*\}\)', main, re.S)
    assert call, "modules/airflow/main.tf: no templatefile(startup.sh.tftpl) call"
    scope = Scope(module_vars)
    tvars = {k: scope.expr(e) for k, e in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", call.group(1), re.M)}
    text = (AIRFLOW_MODULE / "templates" / "startup.sh.tftpl").read_text()

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "${"  # $${ is a literal ${
        return str(tvars[m.group(2)])  # KeyError: the template names a variable the call does not pass

    return re.sub(r"(\$\$\{)|\$\{(\w+)\}", sub, text)


def exports(script: str) -> dict[str, str]:
    """The ``export NAME='value'`` lines of the rendered startup script."""
    return dict(re.findall(r"^export (\w+)='(.*)'$", script, re.M))


def pools_json(script: str) -> dict[str, Any]:
    """The pools file the startup script imports (``airflow pools import``)."""
    m = re.search(r"<<'JSON'\n(.*?)\nJSON", script, re.S)
    assert m, "the startup script imports no pools"
    return dict(json.loads(m.group(1)))


def worker_requirements(module_vars: dict[str, Any]) -> list[str]:
    """requirements.txt of the MWAA workers (modules/airflow ``aws_s3_object.requirements``:
    ``var.requirements`` and the wheel from plugins.zip, ``local.wheel_path``)."""
    scope = Scope(dict(module_vars))
    for block in _parse(AIRFLOW_MODULE / "main.tf").get("locals", []):
        for name, v in block.items():
            if not name.startswith("__"):
                scope.values[f"local.{name}"] = scope.value(v)
    main = (AIRFLOW_MODULE / "main.tf").read_text()
    assert 'concat(var.requirements, [local.wheel_path, ""])' in main, "requirements.txt is built differently"
    return [*module_vars["var.requirements"], scope.values["local.wheel_path"]]
