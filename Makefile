# `make train ARGS='…'` and `make test` set up .venv on first use (and whenever pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup train test bench
setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

train: $(STAMP)
	$(VENV)/bin/python -m mlpjax.train $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/epoch_speed.py $(ARGS)
