# sed_uda: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
DATA ?= data
CORPUS := $(DATA)/synth_esd
CACHE := $(DATA)/cache
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.DEFAULT_GOAL := help
.PHONY: help install demo notebook test test-fast lint format clean grid-slurm-check

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PINS)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv (python3.11), install pinned torch (TORCH_INDEX=URL: from that index), then sed_uda[dev]

demo: install ## The bundled corpus end to end: synth -> prepare -> DANN, MCC and both bounds (stats encoder) -> table
	$(BIN)/sed-uda demo --data $(DATA)

notebook: install ## Install JupyterLab into .venv (the `notebooks` extra) and open notebooks/
	@test -x $(BIN)/jupyter-lab || $(BIN)/pip install -q -e '.[dev,notebooks]'
	$(BIN)/jupyter-lab notebooks

test: install ## Run the whole test suite (tiny corpus, W&B disabled; what CI runs)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q

test-fast: install ## The fast tier for development: every test but the end-to-end `slow` ones (under 90 s)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q -m "not slow"

grid-slurm-check: install ## Start a one-node SLURM (Debian's slurm-wlm; root) and run a tiny grid on it
	benchmarks/slurm_local.sh

lint: install ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove caches, runs and generated data (keeps .venv)
	rm -rf $(DATA) runs wandb lightning_logs .pytest_cache .ruff_cache reports/demo_results.md
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
