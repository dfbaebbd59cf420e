# Quick start: `make report` then `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: install report test verify bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, spelled exactly so: this version is a CPU build on disk;
	# any other spelling downloads gigabytes of CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# TeX is installed when missing and possible (scripts/system-deps.sh); without it the report is HTML only.
report: $(STAMP)
	@scripts/system-deps.sh tex
	$(BIN)/genverify report

verify: $(STAMP)
	$(BIN)/genverify verify

# Tests that need TeX or a browser skip when those are missing, except under CI=true (.ci/run), where they fail.
test: $(STAMP)
	@scripts/system-deps.sh tex browser
	$(BIN)/python -m pytest -n $(JOBS) --hypothesis-profile=ci -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) report/build report/.genverify-cache kl-demo .pytest_cache .hypothesis
