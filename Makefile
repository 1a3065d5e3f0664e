PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install chromium demo test lint typecheck docs unit sandbox bench bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

install: $(STAMP) chromium

# The browser test (tests/e2e/test_sheet_browser.py) opens a batch's contact sheet in headless
# Chromium: Debian's package, installed when the machine has none (apt needs root).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

# Enqueue rate and memory at 100,000 lines, step cost at a 100,000-job backlog, 1 vs 10 accounts
# on one worker, CPU per edit: about 12 minutes; bench/SCALE.md and bench/scale.png.
bench-scale: $(BENCH_STAMP)
	$(BIN)/python -m bench.scale

demo: $(STAMP)
	$(BIN)/python -m wanedit.sandbox.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The site, into site/: a broken link or anchor fails it. Not --quiet: it hides the warnings
# that strict mode counts. The variable silences the theme's end-of-life notice.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint typecheck docs chromium
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

sandbox: $(STAMP)
	$(BIN)/wanedit sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
