# Every target sets up what it needs: a fresh clone only needs python3 (>= 3.11) and make.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | $(PY) -c "import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:12])")
# Two install levels: the daemons need only the runtime dependencies (fast: `make demo` on
# a fresh machine), tests, lint and benchmarks need the dev extras too.
STAMP := $(VENV)/.installed-dev-$(HASH)
RUN_STAMP := $(VENV)/.installed-run-$(HASH)

.PHONY: venv test lint typecheck bench demo mock serve clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	rm -f $(VENV)/.installed-run-* && touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-dev-* && touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -bb -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check protocol gateway tests bench
	$(BIN)/mypy protocol gateway
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy protocol gateway

bench: $(STAMP)
	@for b in bench/*.py; do [ "$$b" = bench/report.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done
	$(BIN)/python bench/report.py

demo: $(RUN_STAMP)
	$(BIN)/mm7-gateway demo

mock: $(RUN_STAMP)
	$(BIN)/mm7-gateway mock-mmsc --config config/mock-mmsc.toml

serve: $(RUN_STAMP)
	$(BIN)/mm7-gateway serve --config config/gateway.toml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
