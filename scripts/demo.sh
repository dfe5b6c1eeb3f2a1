#!/usr/bin/env bash
# make demo: the whole pipeline on the bundled sample with conf/local.toml (fresh lakehouse).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/demo.py --fresh "$@"
