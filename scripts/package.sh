#!/usr/bin/env bash
# Build the cluster artifacts (`make package`):
#   dist/catalog2vec-<version>-py3-none-any.whl   the library (+ schemas, word lists, NLTK data)
#   dist/catalog2vec-env.tar.gz                   relocatable Python environment (venv-pack) for
#       spark-submit --archives dist/catalog2vec-env.tar.gz#environment \
#                    --conf spark.pyspark.python=./environment/bin/python ...
#   dist/jobs/                                    the spark-submit entry points (jobs/*.py)
#   dist/conf/                                    the run configurations (conf/*.toml)
#   dist/catalog2vec-env.manifest.txt             every distribution (name==version) inside the archive
#   dist/jars/                                    the jars a cluster needs beyond Spark's own (Delta,
#       hadoop-aws 3.5.0 + the AWS SDK bundle, ...) for spark-submit --jars, and jars.txt naming them;
#       copied (hard links) from the local Ivy cache `make setup` resolved: nothing is downloaded
#   dist/mwaa/plugins.zip                         the wheel, for MWAA's plugins (terraform modules/airflow)
#
# venv-pack refuses environments with editable installs, and .venv has catalog2vec editable, so
# the archive is packed from a fresh venv in build/package.XXXXXX/env: the distributions of the
# RUNTIME lock (requirements/runtime.lock, the [pipeline] set, markers evaluated for this
# platform) are copied from .venv file by file from their RECORDs (hard links: no extra disk, no
# network), and the freshly built wheel is installed into it with pip (--no-index --no-deps).
# The Airflow stack, test, lint and deploy tools of .venv (requirements/dev.lock) stay out. Every
# runtime pin is checked to be present at its exact version (except those excluded on purpose
# with --exclude-dist, which are listed in the manifest).
#
# Size: the runtime environment is ~6 GB unpacked (torch ships the CUDA libraries, nvidia-* ~3.2
# GB): that is what GPU executors need. Nothing is excluded by default.
#
# usage: scripts/package.sh [--out DIR] [--exclude-dist NAME_GLOB]... [--compress-level N]
#                           [--python-prefix PATH] [--skip-env]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

OUT=dist
COMPRESS=4
PY_PREFIX=""
SKIP_ENV=0
EXCLUDES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --exclude-dist) EXCLUDES+=("$2"); shift 2 ;;
    --compress-level) COMPRESS=$2; shift 2 ;;
    --python-prefix) PY_PREFIX=$2; shift 2 ;;  # where python lives on the cluster nodes, e.g. /usr
    --skip-env) SKIP_ENV=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "package.sh: $PY not found; run 'make setup' first" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# per-run staging dir inside the checkout (same filesystem as .venv, so files are hard-linked)
mkdir -p "$REPO/build"
BUILD=$(mktemp -d "$REPO/build/package.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
t0=$(date +%s)

echo "[package] 1/4 building the wheel"
rm -f "$OUT"/catalog2vec-*.whl
if "$PY" -m pip --version >/dev/null 2>&1; then
  "$PY" -m pip wheel --no-deps --no-build-isolation -q -w "$OUT" .
else
  # no pip in .venv (uv-managed): call the PEP 517 backend directly (setuptools is installed)
  "$PY" - "$OUT" > "$BUILD/wheel.log" 2>&1 <<'PYEOF' || { cat "$BUILD/wheel.log" >&2; exit 1; }
import os, sys
from setuptools import build_meta
print("[package] wheel:", os.path.join(sys.argv[1], build_meta.build_wheel(sys.argv[1])))
PYEOF
fi
rm -rf build/lib build/bdist.* catalog2vec.egg-info/SOURCES.txt.bak 2>/dev/null || true
WHEEL=$(ls "$OUT"/catalog2vec-*.whl | head -1)
"$PY" - "$WHEEL" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["catalog2vec/__init__.py", "catalog2vec/schemas/__init__.py", "catalog2vec/spark.py"]
missing = [n for n in need if n not in names]
if missing:
    sys.exit(f"[package] wheel is missing {missing}")
print(f"[package] wheel has {len(names)} files")
PYEOF

# MWAA installs the DAG's own dependency from plugins.zip (requirements.txt names
# /usr/local/airflow/plugins/<wheel>, terraform/modules/airflow): the wheel at the zip's top level
mkdir -p "$OUT/mwaa"
rm -f "$OUT/mwaa/plugins.zip"
"$PY" -c "import sys, zipfile, os; zipfile.ZipFile(sys.argv[1], 'w').write(sys.argv[2], os.path.basename(sys.argv[2]))" \
  "$OUT/mwaa/plugins.zip" "$WHEEL"
echo "[package] $OUT/mwaa/plugins.zip holds $(basename "$WHEEL") (terraform: catalog2vec_wheel)"

echo "[package] 2/4 copying jobs/ and conf/"
rm -rf "$OUT/jobs" "$OUT/conf"
mkdir -p "$OUT/jobs" "$OUT/conf"
cp jobs/*.py "$OUT/jobs/"
cp conf/*.toml "$OUT/conf/"

echo "[package] jars: Delta, hadoop-aws and the AWS SDK bundle from the local Ivy cache -> $OUT/jars/"
rm -rf "$OUT/jars"
mkdir -p "$OUT/jars"
"$PY" - "$OUT/jars" <<'PYEOF'
"""The jars catalog2vec.spark resolved at setup that Spark does not ship (one rule, one owner:
catalog2vec.spark.extra_classpath), hard-linked under their Maven artifact file names."""
import os, shutil, sys
from pathlib import Path

from catalog2vec import spark

out = Path(sys.argv[1])
jars = [Path(j) for j in spark.extra_classpath().split(":") if j]
need = ("delta-spark_", "delta-storage-", "hadoop-aws-", "bundle-")
names = []
for jar in jars:
    ivy = any(part.startswith(".ivy2") for part in jar.parts)  # Ivy names files <org>_<artifact>-<rev>.jar
    name = jar.name.split("_", 1)[1] if ivy and "_" in jar.name else jar.name
    try:
        os.link(jar, out / name)
    except OSError:
        shutil.copy2(jar, out / name)
    names.append(name)
missing = [n for n in need if not any(x.startswith(n) for x in names)]
if missing:
    sys.exit(f"[package] the Ivy cache lacks {missing}: run 'make setup' (it resolves the jars once)")
(out / "jars.txt").write_text("\n".join(names) + "\n")
size = sum((out / n).stat().st_size for n in names)
print(f"[package] {len(names)} jars ({size / 2**20:.0f} MiB) in {out}")
PYEOF

if [ "$SKIP_ENV" = 1 ]; then
  echo "[package] --skip-env: no environment archive"; exit 0
fi

echo "[package] 3/4 staging a fresh venv from the locked distributions + the wheel"
BASE_HOME=$(sed -n 's/^home *= *//p' "$VENV/pyvenv.cfg")
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
BASE_PY="$BASE_HOME/python$PYVER"
[ -x "$BASE_PY" ] || BASE_PY="$BASE_HOME/python3"
ENV_DIR="$BUILD/env"
"$BASE_PY" -m venv "$ENV_DIR"
"$PY" - "$VENV" "$ENV_DIR" requirements/runtime.lock "$OUT/catalog2vec-env.manifest.txt" "${EXCLUDES[@]+"${EXCLUDES[@]}"}" <<'PYEOF'
"""Copy the runtime lock's distributions of the source venv into the fresh venv, file by file from
its RECORD (hard links where possible), rewriting the absolute shebangs of console scripts."""
import fnmatch, os, re, shutil, sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import Requirement

src_venv, dst_venv, lock, manifest = (Path(a).resolve() for a in sys.argv[1:5])
excludes = [e.lower() for e in sys.argv[5:]]
ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
src_sp, dst_sp = src_venv / "lib" / ver / "site-packages", dst_venv / "lib" / ver / "site-packages"
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = {}  # the runtime lock's pins that apply to this platform (environment markers evaluated)
for line in lock.read_text().splitlines():
    line = line.split("#")[0].strip()
    if "==" in line and not line.startswith("-"):
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            pins[norm(req.name)] = str(req.specifier).removeprefix("==")
skipped, copied, left_out, nbytes = [], [], 0, 0
for dist in distributions(path=[str(src_sp)]):
    name = norm(dist.metadata["Name"])
    if name in ("catalog2vec", "pip", "setuptools"):
        continue  # the editable install is replaced by the wheel; pip/setuptools: the venv's own
    if name not in pins:
        left_out += 1  # not a runtime dependency (Airflow, tests, lint, notebooks, deploy tools)
        continue
    if any(fnmatch.fnmatch(name, e) for e in excludes):
        skipped.append(f"{name}=={dist.version}")
        continue
    for f in dist.files or []:
        src = (src_sp / f).resolve()
        rel = os.path.relpath(src, src_venv)
        if rel.startswith(".."):
            continue  # outside the venv
        dst = dst_venv / rel
        if not src.is_file() or dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith("bin" + os.sep):
            data = src.read_bytes()
            if data.startswith(b"#!" + str(src_venv).encode()):
                data = data.replace(str(src_venv).encode(), str(dst_venv).encode(), 1)
            dst.write_bytes(data)
            shutil.copymode(src, dst)
        else:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        nbytes += dst.stat().st_size
    copied.append(f"{name}=={dist.version}")
have = {c.split("==")[0]: c.split("==")[1] for c in copied}
excluded = {s.split("==")[0] for s in skipped}
wrong = [f"{n}=={v} (have {have.get(n)})" for n, v in pins.items()
         if n not in excluded and n not in ("catalog2vec", "pip", "setuptools") and have.get(n) != v]
if wrong:
    sys.exit(f"[package] the source venv does not match {lock.name}: " + ", ".join(wrong[:20]))
manifest.write_text("\n".join(sorted(copied)) + "\n" + "".join(f"# EXCLUDED {s}\n" for s in sorted(skipped)))
print(f"[package] staged {len(copied)} distributions, {nbytes / 2**30:.2f} GiB; all {len(pins)} locked pins present"
      f" ({lock.name}); {left_out} non-runtime distributions of the dev venv left out"
      + (f"; EXCLUDED on request: {', '.join(sorted(skipped))}" if skipped else ""))
PYEOF
"$ENV_DIR/bin/python" -m pip install --no-index --no-deps --no-compile -q "$WHEEL"
"$ENV_DIR/bin/python" -m pip uninstall -y -q pip setuptools 2>/dev/null || true
(cd / && "$ENV_DIR/bin/python" -c "import catalog2vec, catalog2vec.schemas, catalog2vec.config; print('[package] import check ok:', catalog2vec.__file__)")

echo "[package] 4/4 venv-pack (compress level $COMPRESS)"
ARCHIVE="$OUT/catalog2vec-env.tar.gz"
rm -f "$ARCHIVE"
PACK_ARGS=(-p "$ENV_DIR" -o "$ARCHIVE" --compress-level "$COMPRESS" --quiet)
[ -n "$PY_PREFIX" ] && PACK_ARGS+=(--python-prefix "$PY_PREFIX")
"$VENV/bin/venv-pack" "${PACK_ARGS[@]}"
size=$(du -h "$ARCHIVE" | cut -f1)
echo "[package] done in $(( $(date +%s) - t0 ))s:"
echo "  $WHEEL"
echo "  $ARCHIVE ($size)"
echo "  $OUT/jobs/ $OUT/conf/ $OUT/catalog2vec-env.manifest.txt"
