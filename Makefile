# Two commands do all set-up on a fresh machine (python3, pip and make only):
#   make demo   -- the demo agent, recorded until it fails, then the TUI on its dump
#   make test   -- ruff (lint + format check), mypy (flightrec and the TUI), pytest
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck bench fuzz clean

$(STAMP): pyproject.toml setup.py flightrec/_fastpath.c flightrec/_redact_native.c flightrec/_statecheck.c flightrec/_paging.c flightrec/_store.c flightrec/_lock.c flightrec/_msgpack.h
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flightrec demo

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Every benchmark, each comparing flightrec with the alternatives in one run (~10 minutes).
bench: $(STAMP)
	$(PY) benchmarks/record.py
	$(PY) benchmarks/redact.py
	$(PY) benchmarks/redact_core.py
	$(PY) benchmarks/checkpoint.py
	$(PY) benchmarks/agent_overhead.py --reps 10 --processes 4
	$(PY) benchmarks/tui.py
	$(PY) benchmarks/soak.py

# make fuzz [FUZZ_TIME=seconds]: the reader's coverage-guided fuzzer (atheris, new inputs in
# build/fuzz-corpus, crashes saved as build/crash-*), or a seeded mutation loop where atheris
# is not installed; then the hypothesis properties with many random examples. `make test`
# runs only their short, derandomized pass.
FUZZ_TIME ?= 300
fuzz: $(STAMP)
	mkdir -p build/fuzz-corpus
	if $(PY) -c "import atheris" 2>/dev/null; then \
		$(PY) tests/fuzz/fuzz_reader.py build/fuzz-corpus tests/fuzz/corpus -dict=tests/fuzz/reader.dict \
			-max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -artifact_prefix=build/; \
	else \
		echo "atheris is not installed: running the seeded mutation loop instead"; \
		$(PY) tests/fuzz/fuzz_reader.py --mutate 1000000000 --seed $$(date +%s) --max-seconds $(FUZZ_TIME); \
	fi
	FLIGHTREC_FUZZ_EXAMPLES=3000 $(PY) -m pytest -q tests/test_fuzz_reader.py -k "Mutated"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
