# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0: a CPU build where one is on hand (plain `torch` would pull several GB of CUDA);
# torchvision 0.28.0 is its match (BoxMOT and Ultralytics import it; a newer one pulls a new torch).
TORCH ?= torch==2.13.0
TORCHVISION ?= torchvision==0.28.0
# The trackers the integration tests run for real, at the versions the tests were written for.
CONSUMERS ?= boxmot==25.0.0 ultralytics==8.4.190
TORCHREID_SDIST := .cache/torchreid-0.2.5.tar.gz

.PHONY: demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" "$(TORCHVISION)"
	$(BIN)/python -m pip install -q -e ".[export,rtx,bench,dev,openvino]" \
		"tritonclient[grpc,http]>=2.50" $(CONSUMERS)
	# Triton's server binary from nvidia-pytriton, without its Python side's numpy<2 pin (boxmot
	# needs numpy 2; reid-trt only runs the binary, and its Python model takes either numpy).
	$(BIN)/python -m pip install -q --no-deps "nvidia-pytriton>=0.7"
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
