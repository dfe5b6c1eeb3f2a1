#!/usr/bin/env bash
# The prerequisites `make setup` cannot install itself: a Java runtime (17 or newer, for Spark 4.2)
# and Python 3.11 or 3.12. Prints the interpreter to use on stdout; on a missing prerequisite,
# one line on stderr with the hint and exit 1. PYTHON_BIN picks the interpreter explicitly.
set -euo pipefail

fail() { echo "[setup] $*" >&2; exit 1; }

# Python: PYTHON_BIN, else python3.11, python3.12, else python3 when it is one of those.
if [ -n "${PYTHON_BIN:-}" ]; then
  candidates=("$PYTHON_BIN")
else
  candidates=(python3.11 python3.12 python3)
fi
PY=""
for c in "${candidates[@]}"; do
  p=$(command -v "$c" 2>/dev/null) || continue
  v=$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
  case "$v" in
    3.11|3.12) PY=$p; break ;;
    *) found="$p is Python $v" ;;
  esac
done
[ -n "$PY" ] || fail "needs Python 3.11 or 3.12 (${found:-none found on PATH}): install one (e.g. 'pyenv install 3.11' or 'apt-get install python3.11-venv') or set PYTHON_BIN=/path/to/python3.11"

# Java: $JAVA_HOME/bin/java, else java on PATH; major version 17 or newer.
JAVA=""
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; fi
[ -n "$JAVA" ] || JAVA=$(command -v java 2>/dev/null) || true
[ -n "$JAVA" ] || fail "needs a Java 17+ runtime for Spark 4.2 (no java on PATH, no JAVA_HOME): install a JDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless' or 'brew install openjdk@17') and put it on PATH"
jv=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -1)
major=${jv%% *}
[ "$major" = "1" ] && major=${jv##* }   # "1.8.0_x" -> 8
if [ -z "$major" ] || [ "$major" -lt 17 ]; then
  fail "needs a Java 17+ runtime for Spark 4.2 ($JAVA is version ${major:-unknown}): install a JDK 17 and put it first on PATH or set JAVA_HOME"
fi
echo "$PY"
