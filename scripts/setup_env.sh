#!/usr/bin/env bash
# Idempotent environment set-up: .venv with the locked dependencies, the package in editable
# mode, Spark defaults that enable Delta (in the project's SPARK_CONF_DIR, conf/spark/), and a
# warm Delta jar cache (Maven, via Spark's own resolver) so that jobs and tests never resolve jars
# mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."

# prerequisites first (Java 17+, Python 3.11/3.12): one line with a hint when one is missing
PYTHON_BIN="$(bash scripts/check_prereqs.sh)"
VENV=.venv
UV_VERSION=0.13.9

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $PYTHON_BIN"
  "$PYTHON_BIN" -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/uv" ]; then
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
  "$VENV/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi
export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
echo "[setup] installing the locked development environment (requirements/dev.lock)"
"$VENV/bin/uv" pip install --quiet --native-tls -p "$VENV/bin/python" -r requirements/dev.lock
"$VENV/bin/uv" pip install --quiet --native-tls -p "$VENV/bin/python" --no-deps -e .
# checkov's bc-python-hcl2 and python-hcl2 both install the module `hcl2`; which copy survives a
# parallel install is arbitrary, and checkov only works with its own. Reinstall it last so the
# result is deterministic (the terraform tests accept either parser's output shape).
"$VENV/bin/uv" pip install --quiet --native-tls -p "$VENV/bin/python" --no-deps --reinstall \
  "$(grep -i '^bc-python-hcl2==' requirements/dev.lock | cut -d' ' -f1)"

# import check: PyPI's torchvision must match torch (a mismatched pair fails at import)
"$VENV/bin/python" -c "import torch, torchvision; print('[setup] torch', torch.__version__, 'torchvision', torchvision.__version__)"

bash scripts/install_browser.sh

echo "[setup] writing Spark defaults (Delta) into conf/spark (SPARK_CONF_DIR) and warming the Delta jar cache"
export SPARK_CONF_DIR="$PWD/conf/spark"
# an older setup wrote them into the installed pyspark (site-packages): no longer
SITE_CONF="$("$VENV/bin/python" -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "conf"))')"
rm -f "$SITE_CONF/spark-defaults.conf" "$SITE_CONF/catalog2vec-jars.txt" "$SITE_CONF/log4j2.properties"
"$VENV/bin/python" -m catalog2vec.spark --install-defaults --warm
echo "[setup] done"
