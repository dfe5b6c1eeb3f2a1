#!/usr/bin/env bash
# Regenerate the locks under requirements/ from pyproject.toml (`make lock`):
#   runtime.lock  catalog2vec[pipeline]                  Spark driver + executors (make package)
#   airflow.lock  runtime + [airflow]                    the Airflow scheduler/workers
#   dev.lock      airflow + every other extra            make setup (tests, lint, notebooks, deploy)
# Each lock is universal (environment markers for Linux/macOS/Windows, x86-64/arm64, Python
# 3.11-3.12) and is resolved under the previous one as a constraint, so a pin is the same in
# every file it appears in. Existing pins are kept (uv prefers the versions already in the output
# file); `scripts/lock.sh --upgrade` or `--upgrade-package NAME` moves them.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "lock.sh: no uv (run make setup first)" >&2; exit 1; }
export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
COMMON=(--universal --python-version 3.11 --native-tls --quiet --no-emit-package catalog2vec "$@")
mkdir -p requirements
"$UV" pip compile pyproject.toml --extra pipeline "${COMMON[@]}" \
  --custom-compile-command "make lock" -o requirements/runtime.lock
"$UV" pip compile pyproject.toml --extra pipeline --extra airflow -c requirements/runtime.lock "${COMMON[@]}" \
  --custom-compile-command "make lock" -o requirements/airflow.lock
"$UV" pip compile pyproject.toml --all-extras -c requirements/runtime.lock -c requirements/airflow.lock \
  "${COMMON[@]}" --custom-compile-command "make lock" -o requirements/dev.lock
for f in requirements/*.lock; do
  echo "[lock] $f: $(grep -c '^[a-zA-Z0-9]' "$f") pins"
done
