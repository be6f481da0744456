# Each target sets up what it needs: a fresh machine only needs python3 (>= 3.11) and make.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.provlink-installed

.PHONY: install demo test goldens bench browser clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Chromium for the lineage page's browser test (Debian package; skipped with a reason if absent).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser test will be skipped"; }

demo: install
	$(PY) example_pipelines/run_demo.py

# Lint and types first (seconds with a warm .mypy_cache): a finding fails the target.
test: install browser
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

# Rewrite the golden events after a deliberate change to what is emitted (review the diff).
goldens: install
	UPDATE_GOLDENS=1 $(PY) -m pytest -q -p no:cacheprovider tests/integration -k golden
	git diff --stat tests/integration/golden/

# Every benchmark, one after the other (figures and how to read them: benchmarks/README.md).
bench: install
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_file_capture.py
	$(PY) benchmarks/bench_mlflow.py
	$(PY) benchmarks/bench_dagster.py
	$(PY) benchmarks/bench_airflow.py --tasks 50 --repeats 3
	$(PY) benchmarks/bench_scheduler.py
	$(PY) benchmarks/bench_server.py
	$(PY) benchmarks/bench_spool.py

clean:
	rm -rf $(VENV) .pytest_cache
