# Two commands: `make run` (the API on :8050, SQLite under ./data) and `make test`;
# `make lint` checks the style CI holds the tree to.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*))
STAMP := $(VENV)/.installed
RUN_PORT := $(or $(PORT),$(FLOWS_CODE_ACTIONS_PORT),8050)
RUN_LOG_LEVEL := $(or $(FLOWS_CODE_ACTIONS_LOG_LEVEL),warning)

.PHONY: install run lint test clean

install: $(STAMP)

# (Re)install when any distribution's metadata changes.
$(STAMP): pyproject.toml $(foreach p,$(PLUGINS),$(p)/pyproject.toml)
	@echo "codeactions: installing into $(VENV) (the first time takes about a minute; log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel && \
	   $(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e '$(p)[test]'); \
	 } > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; echo "codeactions: install failed"; exit 1; }
	@touch $@

# Quiet: one line says where it listens; FLOWS_CODE_ACTIONS_PORT (or PORT) picks the port.
run: install
	@$(BIN)/codeactions migrate > /dev/null
	@echo "codeactions: listening on http://127.0.0.1:$(RUN_PORT) (Ctrl-C stops; docs at /docs)"
	@FLOWS_CODE_ACTIONS_PORT=$(RUN_PORT) FLOWS_CODE_ACTIONS_LOG_LEVEL=$(RUN_LOG_LEVEL) exec $(BIN)/codeactions serve

# ruff (pinned in pyproject.toml's test extra): its rules, then the formatting.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite waits on servers far more than it computes: TEST_WORKERS pytest processes
# (pytest-xdist) share it; TEST_WORKERS=0 runs it in this one process. Tests that measure
# CPU shares (marker `exclusive`) run afterwards, alone (exit 5: none was selected).
TEST_WORKERS ?= 3
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not exclusive" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m exclusive $(PYTEST_ARGS) || test $$? -eq 5

clean:
	rm -rf $(VENV) .pytest_cache
