# The course's two commands: `make course` runs every notebook, `make test` runs the tests.
# Each creates the virtual environment .venv first when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick

.PHONY: course test lab venv clean-outputs sync-notebooks

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

course: $(STAMP)
	COURSE_PROFILE=$(PROFILE) $(BIN)/python -m utils.course $(NOTEBOOKS)

test: $(STAMP)
	COURSE_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax --nbval-current-env $(PYTEST_ARGS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# every notebook: its Colab badge, the one bootstrap cell (text in tools/sync_notebooks.py), no stored outputs
sync-notebooks: $(STAMP)
	$(BIN)/python tools/sync_notebooks.py

clean-outputs:
	rm -rf outputs/
