# catalog2vec — the README's commands. `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export PYTHONUNBUFFERED := 1
# the project's Spark settings (Delta, the jars, memory), written by make setup: conf/spark/README.md
export SPARK_CONF_DIR := $(abspath conf/spark)
PATH := $(abspath $(VENV))/bin:$(PATH)
export PATH

.PHONY: setup demo test test-fast test-standalone test-long lint bench clean package standalone-up standalone-down lock docs

# the prerequisites it cannot install (Java 17+, Python 3.11/3.12) are checked first: scripts/check_prereqs.sh
setup: $(STAMP)
	@bash scripts/check_prereqs.sh >/dev/null

# regenerate requirements/{runtime,airflow,dev}.lock from pyproject.toml (pins kept; see scripts/lock.sh)
lock:
	bash scripts/lock.sh

$(STAMP): pyproject.toml requirements/dev.lock scripts/setup_env.sh
	bash scripts/setup_env.sh
	touch $(STAMP)

demo: setup
	bash scripts/demo.sh

test: setup
	@bash scripts/install_browser.sh
	$(PY) -m pytest -q -m "not long" --durations=25

# the standalone-cluster suite alone (tests/integration/test_standalone.py, also in make test): master + 2 worker JVMs on loopback
test-standalone: setup
	$(PY) -m pytest -q -m "standalone and not long"

# the tests over 10 minutes, outside make test: the two-day scheduled DAG on the standalone cluster over S3
test-long: setup
	$(PY) -m pytest -q -m long --durations=25

# the documentation site: the generated pages (job reference, home page from README.md), then
# mkdocs in strict mode into site/ (offline; make test runs the same build in tests/unit/test_docs.py)
docs: setup
	$(PY) scripts/gen_job_reference.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not standalone and not long"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf lakehouse reports indexes spark-warehouse .pytest_cache

package: setup
	bash scripts/package.sh

# a Spark standalone master + 2 workers (1 core, 1500 MB each) on 127.0.0.1; state and logs in .standalone/
standalone-up: setup
	$(PY) -m catalog2vec.standalone up --run-dir .standalone

standalone-down:
	$(PY) -m catalog2vec.standalone down --run-dir .standalone
