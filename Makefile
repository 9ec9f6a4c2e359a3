# The README contract: `make demo` and `make test` work on a fresh clone with nothing installed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/segue demo

# the report's screenshot test opens the report in Debian's chromium: installed here where apt-get
# can (as root); elsewhere the test skips and says why
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: tests/metrics/test_report.py's browser check will skip"
	$(PY) -m pytest

# every benchmark, one after the other (about 30 minutes on 2 cores; see bench/README.md)
bench: $(STAMP)
	$(PY) bench/ease_speed.py
	$(PY) bench/listens_quality.py
	$(PY) bench/scoring_memory.py
	$(PY) bench/cf_quality.py
	$(PY) bench/cf_speed.py
	$(PY) bench/service_latency.py
	$(PY) bench/two_stage.py
	$(PY) bench/two_stage_melon.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
