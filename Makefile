# Set-up and everyday targets.  `make demo` and `make test` each work on a
# fresh machine with only Python 3.11+: they create .venv and install into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint plugins bench soak clean install plugin-template

$(BIN)/vrclog: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/vrclog

## Runs the VRPoker sample plugin over the bundled sample log.
demo: install
	$(BIN)/vrclog parse --plugin sample_plugins/vrpoker.wasm sample_logs/vrpoker.log

## Runs lint, type checks and the whole test suite (what CI runs).
test: install
	$(BIN)/ruff check vrclog_cli tests
	$(BIN)/mypy vrclog_cli tests
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check vrclog_cli tests
	$(BIN)/mypy vrclog_cli tests

## Rebuilds the sample plugins from source with the pinned ziglang package.
plugins: install
	$(BIN)/python -m pip install --quiet -e '.[plugins]'
	$(MAKE) -B -C sample_plugins PYTHON=$(abspath $(BIN)/python)

## Benchmarks: throughput, ratios vs a plain wasmtime-py host, memory, Ctrl-C.
bench: install
	$(BIN)/python benchmarks/bench.py

## Copies the plugin template into ./$(NAME)/, ready to build: make plugin-template NAME=myparser
plugin-template:
	@test -n "$(NAME)" || { echo "usage: make plugin-template NAME=myparser" >&2; exit 2; }
	@test ! -e "$(NAME)" || { echo "$(NAME) already exists" >&2; exit 2; }
	mkdir -p "$(NAME)"
	cp sample_plugins/template/plugin.c sample_plugins/template/Makefile \
	   sample_plugins/template/README.md sample_plugins/include/vrclog_plugin.h "$(NAME)/"
	sed -i 's/^NAME   ?= plugin$$/NAME   ?= $(notdir $(NAME))/' "$(NAME)/Makefile"
	@echo "created $(NAME)/: cd $(NAME) && make PYTHON=$(abspath $(BIN)/python)"

## Soak (not in CI): 2 M lines with 1 % hostile lines; memory must not grow.
soak: install
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
