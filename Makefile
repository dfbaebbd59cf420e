# Quick start: `make report` then `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: install report test verify bench mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, spelled exactly so: this version is a CPU build on disk;
	# any other spelling downloads gigabytes of CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# setuptools notes ("Editable installation ...") that this layout (package-dir maps derivations/,
	# models/, ... into genverify) installs through an import hook: expected, so not printed.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# TeX is installed when missing and possible (scripts/system-deps.sh); without it the report is HTML only.
# genverify report ends by printing the paths it wrote (report/build/report.pdf, report.html).
report: $(STAMP)
	@bash scripts/system-deps.sh tex
	$(BIN)/genverify report

verify: $(STAMP)
	$(BIN)/genverify verify

# Tests that need TeX or a browser skip when those are missing, except under CI=true (.ci/run), where they fail.
# --dist loadscope: a test module runs on one worker, so its module-scoped fixtures are built once.
# Bytecode is written (even where PYTHONDONTWRITEBYTECODE is set): each worker and each CLI
# subprocess of the tests would otherwise compile the package again.
test: $(STAMP)
	@bash scripts/system-deps.sh tex browser
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(JOBS) --dist loadscope --hypothesis-profile=ci -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Mutation testing of numerics/, derivations/ and models/ (tools/mutate.py; hours on 2 cores).
# Score and surviving mutants: build/mutation/report.txt. `run` resumes where it stopped.
mutation: $(STAMP)
	$(BIN)/python tools/mutate.py baseline
	$(BIN)/python tools/mutate.py run
	$(BIN)/python tools/mutate.py report

clean:
	rm -rf $(VENV) report/build report/.genverify-cache kl-demo .pytest_cache .hypothesis
