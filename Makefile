# rtpose — two commands for a newcomer: `make demo` and `make test`.
# Everything is installed into a local virtualenv ($(VENV)); nothing touches the system Python.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch==2.13.0 is the CPU build on our machines; set TORCH_SPEC to use another build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.rtpose-installed
NATIVE_SOURCES := $(wildcard csrc/*.cpp csrc/*/*.cpp csrc/*/*.cu csrc/*/*.h csrc/include/*/*.h)
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: all install fetch demo test test-fast lint format bench clean

all: test

$(STAMP): pyproject.toml setup.py CMakeLists.txt $(NATIVE_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) "$(TORCH_SPEC)"
	$(PIP) "setuptools>=68" wheel "pybind11>=2.12" "cmake>=3.18" ninja
	$(PIP) --no-build-isolation -e ".[dev,torch,build,tensorrt-rtx,dali,openvino]"
	touch $@

install: $(STAMP)  ## create the virtualenv and install rtpose (editable, native extension built)

fetch: $(STAMP)  ## download the default weights and the sample video into $RTPOSE_HOME
	$(VENV)/bin/rtpose fetch

demo: fetch  ## run rtpose on the sample video: out/demo.mp4 and out/demo.jsonl
	mkdir -p out
	$(VENV)/bin/rtpose run "$$($(PY) -c 'from rtpose.assets import asset_path; print(asset_path("demo.mp4"))')" \
		--out out/demo.mp4 --jsonl out/demo.jsonl

test: fetch  ## the full CPU test suite (what CI runs)
	RTPOSE_REQUIRE_ASSETS=1 $(PY) -m pytest -q

test-fast: $(STAMP)  ## tests without the slow marker
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)  ## ruff (lint + format check) and clang-format
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if test -x $(VENV)/bin/clang-format; then \
		$(VENV)/bin/clang-format --dry-run --Werror $(filter %.cpp %.h %.cu,$(NATIVE_SOURCES)); \
	else echo "clang-format not installed; skipped"; fi

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/clang-format -i $(filter %.cpp %.h %.cu,$(NATIVE_SOURCES))

bench: fetch  ## CPU pipeline benchmark on the sample video -> benchmarks/results/
	$(PY) benchmarks/bench_cpu_pipeline.py

clean:
	rm -rf build out .pytest_cache .ruff_cache rtpose/_C*.so
