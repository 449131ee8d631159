# The two commands of README.md:
#   make run    set up .venv (first time only) and execute every notebook headless -> build/<profile>/
#   make test   set up .venv (first time only), lint, then unit tests + every notebook at the smoke profile
# Variables: PROFILE=smoke|cpu|full (default: NBH_PROFILE, else full on a GPU and cpu otherwise),
#            NB="01 03" (a subset of notebooks), PYTHON=python3.11 (the interpreter for the venv).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?=
NB ?=

.PHONY: setup run test lint summary data

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -e .
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/python -m nbhelpers run $(NB) $(if $(PROFILE),--profile $(PROFILE))

test: setup lint
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env

lint: setup
	$(BIN)/ruff check .

summary: setup
	$(BIN)/python -m nbhelpers summary --write results/SUMMARY.md

data: setup
	$(BIN)/python -m nbhelpers data
