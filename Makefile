# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0: a CPU build where one is on hand (plain `torch` would pull several GB of CUDA).
TORCH ?= torch==2.13.0
TORCHREID_SDIST := .cache/torchreid-0.2.5.tar.gz

.PHONY: demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[export,rtx,bench,dev,serve,openvino]"
	touch $@

# torchreid's own osnet.py / osnet_ain.py: the reference the model tests compare against.
$(TORCHREID_SDIST):
	mkdir -p .cache
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
		-d .cache torchreid==0.2.5

demo: $(VENV)/.installed
	$(BIN)/reid-export demo

test: $(VENV)/.installed $(TORCHREID_SDIST)
	$(BIN)/python -m pytest -p no:cacheprovider

lint: $(VENV)/.installed
	$(BIN)/ruff check reid_trt tests benchmarks

clean:
	rm -rf $(VENV) .cache out
