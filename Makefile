# Two entry points for a fresh clone: `make demo` and `make test`.
# Both build .venv with the pinned, known-good versions in constraints.txt
# (a CPU build of torch), then run.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.curvae-installed

.PHONY: demo test check compat fuzz explore wheel bench docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[cpu,train,plot,mcmc,dask,sklearn,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/curvae demo --out demo-out --force

test: $(STAMP)
	$(PY) -m pytest

# The edit-test loop: the unit tests and the parity tests that need no long training (about 80 s on 2 cores).
check: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not compat and not fuzz" tests/unit tests/parity

# The compat tier alone: fresh venvs with other onnxruntime versions and builds, other engines;
# rewrites the matrix in docs/portability.md. `make test` runs it too.
compat: $(STAMP)
	$(PY) -m pytest -m compat

# The browser explorer for a bundle: make explore MODEL=demo-out/model (onnxruntime-web from npm, served locally).
MODEL ?= demo-out/model
examples/web/node_modules/.package-lock.json: examples/web/package-lock.json
	cd examples/web && npm ci --no-audit --no-fund --ignore-scripts

explore: $(STAMP) examples/web/node_modules/.package-lock.json
	$(VENV)/bin/curvae explore $(MODEL)

# A wheel with the explorer's page and onnxruntime-web inside (setup.py), under dist/.
wheel: $(STAMP) examples/web/node_modules/.package-lock.json
	$(PY) -m pip wheel --no-deps --no-build-isolation -q -w dist .

# Deeper, randomised fuzzing of the file readers than `make test` runs (FUZZ_EXAMPLES per test).
FUZZ_EXAMPLES ?= 3000
fuzz: $(STAMP)
	CURVAE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -m fuzz -p no:cacheprovider

# chemotools only for the measured spectra file it ships (benchmarks/bench_families.py): no dependencies needed.
bench: $(STAMP)
	$(PY) -m pip install --quiet --no-deps -c constraints.txt chemotools
	$(PY) benchmarks/run_all.py

# docs/cli.md from the CLI's --help (docs/performance.md's table is written by `make bench`).
docs: $(STAMP)
	$(PY) scripts/gen_cli_docs.py
	@if [ -f build/browser/explorer-parameters.png ]; then cp build/browser/explorer-parameters.png docs/img/explorer.png; \
	  echo "docs/img/explorer.png: from the last browser test"; fi

clean:
	rm -rf $(VENV) demo-out .pytest_cache build examples/web/node_modules
