# Set-up and everyday targets.  `make demo` and `make test` each work on a
# fresh machine with only Python 3.11+: they create .venv and install into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The suite on two pytest-xdist workers: most of its time is vrclog processes starting and
# tests waiting on signals and kills, so two overlap well (6:05 against 11:19 in one, on this
# 2-core machine); worksteal keeps the long tests from ending the run on one worker.
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist worksteal

.PHONY: browser screenshot demo test lint plugins bench stress soak clean install dev plugin-template wheels-check

# What running needs (72 MB), for `make demo` and `make install`; the dev tools
# (pytest, mypy, ruff and the 411 MB zig toolchain the tests build plugins with)
# only for the targets that use them.
$(BIN)/vrclog: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@# Bytecode written now, even where PYTHONDONTWRITEBYTECODE=1 (this machine sets it):
	@# an editable install leaves compiling to each start, ~37 ms of every run.
	$(BIN)/python -m compileall -q vrclog_cli
	@touch $@

$(VENV)/.dev: $(BIN)/vrclog
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.plugins $(VENV)/.bench  # dev includes the zig toolchain and Dask

# The zig toolchain alone, for building plugins.
$(VENV)/.plugins: $(BIN)/vrclog
	$(BIN)/python -m pip install --quiet -e '.[plugins]'
	@touch $@

# Dask, for the benchmarks' cluster row (a fresh clone's `make bench` failed there), and
# Playwright for the sessions page's row (a fresh clone's run could not measure it).
$(VENV)/.bench: $(BIN)/vrclog
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@

install: $(BIN)/vrclog
dev: $(VENV)/.dev

## The built-in parser over a VRChat log with every event type, the VRPoker sample
## plugin over its sample log, then the visits of three sample logs (vrclog sessions).
demo: install
	@$(BIN)/python -m compileall -q vrclog_cli  # what changed since the install
	$(BIN)/vrclog parse --format pretty sample_logs/vrchat.log
	$(BIN)/vrclog parse --plugin sample_plugins/vrpoker.wasm sample_logs/vrpoker.log
	$(BIN)/vrclog sessions --format pretty --log-dir sample_logs/sessions

## Runs lint, type checks and the whole test suite (what CI runs).
test: dev browser
	$(BIN)/ruff check vrclog_cli tests benchmarks
	$(BIN)/mypy vrclog_cli tests benchmarks
	$(BIN)/mypy --platform win32 vrclog_cli
	$(BIN)/mypy --platform darwin vrclog_cli
	$(PYTEST)

# A Chromium for the sessions page's browser tests (tests/test_page.py): Debian's, installed
# here when it is missing and this is root on Debian (~20 s). Elsewhere the tests skip with
# the reason, unless VRCLOG_REQUIRE_BROWSER=1 (.ci/run) makes a missing browser a failure.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || command -v google-chrome >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the page's browser tests"; \
	    apt-get install -y -q chromium >/dev/null 2>&1 \
	      || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "note: no Chromium: tests/test_page.py will skip (Debian: sudo apt-get install chromium)"; fi; }

## The README's picture of the sessions page (Chromium; CJK names need fonts-noto-cjk).
screenshot: dev browser
	$(BIN)/python -m tests.test_page docs/sessions-page.png

# The package type-checked as Windows and macOS see it too: what cannot run there shows.
lint: dev
	$(BIN)/ruff check vrclog_cli tests benchmarks
	$(BIN)/mypy vrclog_cli tests benchmarks
	$(BIN)/mypy --platform win32 vrclog_cli
	$(BIN)/mypy --platform darwin vrclog_cli

## Rebuilds the sample plugins from source: C with the pinned ziglang, the Python
## component with componentize-py, the JS one with jco (npm, pinned in package.json).
plugins: $(VENV)/.plugins
	$(MAKE) -B -C sample_plugins PYTHON=$(abspath $(BIN)/python)
	$(MAKE) -B -C sample_plugins/python PYTHON=$(abspath $(BIN)/python) VRCLOG=$(abspath $(BIN)/vrclog)
	$(MAKE) -B -C sample_plugins/js VRCLOG=$(abspath $(BIN)/vrclog)

## Benchmarks: throughput, ratios vs a plain wasmtime-py host, memory, Ctrl-C.
bench: $(VENV)/.bench browser
	@# Byte-compiled, as an installed vrclog is (pip compiles a wheel's modules; an editable
	@# install leaves it to the first run, and PYTHONDONTWRITEBYTECODE=1 forbids that):
	@# otherwise compiling 28 modules adds ~37 ms to every measured start-up.
	$(BIN)/python -m compileall -q vrclog_cli
	$(BIN)/python benchmarks/bench.py

## Copies a plugin template into the folder NAME (a name or a path; relative to this
## folder), ready to build: make plugin-template NAME=~/plugins/myparser [LANG=c|python|js]
# LANG only from the command line: the environment's LANG is the locale.
TEMPLATE_LANG := $(if $(filter command line,$(origin LANG)),$(LANG),c)
plugin-template: $(VENV)/.plugins
	@test -n "$(NAME)" || { echo "usage: make plugin-template NAME=myparser [LANG=c|python|js]" >&2; exit 2; }
	@test ! -e "$(NAME)" || { echo "$(abspath $(NAME)) already exists" >&2; exit 2; }
	@case "$(TEMPLATE_LANG)" in c|python|js) ;; \
	  *) echo "LANG=$(TEMPLATE_LANG): the templates are c, python and js" >&2; exit 2;; esac
	@mkdir -p "$(NAME)"
ifeq ($(TEMPLATE_LANG),c)
	@cp sample_plugins/template/plugin.c sample_plugins/template/Makefile \
	   sample_plugins/template/README.md sample_plugins/include/vrclog_plugin.h "$(NAME)/"
	@sed -i -e 's|^NAME   ?= plugin$$|NAME   ?= $(notdir $(NAME))|' \
	       -e 's|^PYTHON ?= python3$$|PYTHON ?= $(abspath $(BIN)/python)|' "$(NAME)/Makefile"
	@sed -i 's|NAME\.wasm|$(notdir $(NAME)).wasm|g' "$(NAME)/plugin.c" "$(NAME)/README.md"
else
	@cp -R sample_plugins/template-$(TEMPLATE_LANG)/. "$(NAME)/"
	@mkdir -p "$(NAME)/wit" && cp vrclog_cli/host/wit/plugin.wit "$(NAME)/wit/"
	@sed -i -e 's|^NAME   ?= plugin$$|NAME   ?= $(notdir $(NAME))|' \
	       -e 's|^PYTHON ?= python3$$|PYTHON ?= $(abspath $(BIN)/python)|' \
	       -e 's|^VRCLOG ?= vrclog$$|VRCLOG ?= $(abspath $(BIN)/vrclog)|' "$(NAME)/Makefile"
	@sed -i 's|NAME\.wasm|$(notdir $(NAME)).wasm|g' "$(NAME)/README.md" "$(NAME)"/app.*
endif
	@echo "created $(abspath $(NAME))/ - build it with: cd $(abspath $(NAME)) && make"

## Under load (not in CI; ~15 min): with 4 CPU-bound hogs on the cores, the harness
## (benchmarks/stress.py: no timeout, output identical to an idle run, fresh templates
## pass their check), then the whole test suite.  STRESS_ARGS=--no-templates skips npm.
stress: $(VENV)/.dev
	$(BIN)/python -m compileall -q vrclog_cli
	$(BIN)/python benchmarks/stress.py $(STRESS_ARGS)
	$(BIN)/python benchmarks/hogs.py -- $(PYTEST)

## Soak (not in CI): 2 M lines with 1 % hostile lines; memory must not grow.
soak: install
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## Whether every runtime dependency has a wheel for each platform and Python we support
## (queries PyPI; nothing is installed).  The README's "Platforms" section records the result.
WHEEL_PLATFORMS := "win_amd64" \
  "macosx_14_0_arm64 macosx_11_0_arm64" "macosx_14_0_x86_64 macosx_10_13_x86_64" \
  "manylinux_2_28_x86_64 manylinux2014_x86_64 manylinux1_x86_64" \
  "manylinux_2_28_aarch64 manylinux2014_aarch64"
wheels-check: install
	@$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > $(VENV)/.deps
	@for tags in $(WHEEL_PLATFORMS); do for py in 3.11 3.12 3.13; do \
	  flags=$$(for t in $$tags; do printf -- '--platform %s ' $$t; done); \
	  if $(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version $$py \
	       $$flags -d $(VENV)/.wheels -r $(VENV)/.deps >/dev/null 2>&1; \
	  then echo "ok       $${tags%% *} Python $$py"; else echo "MISSING  $${tags%% *} Python $$py"; fi; \
	done; done
	@ls $(VENV)/.wheels | grep -v -- '-none-any\.whl$$' | sort
