# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0: a CPU build where one is on hand (plain `torch` would pull several GB of CUDA).
TORCH ?= torch==2.13.0
# The trackers the integration tests run for real, at the versions the tests were written for.
CONSUMERS ?= boxmot==25.0.0 ultralytics==8.4.190
TORCHREID_SDIST := .cache/torchreid-0.2.5.tar.gz

.PHONY: demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	# opencv-python: the OpenCV the trackers require, so one distribution owns cv2.
	$(BIN)/python -m pip install -q -e ".[export,rtx,bench,dev,openvino,opencv]" \
		"tritonclient[grpc,http]>=2.50" $(CONSUMERS)
	# The trackers pull PyPI's torchvision, a CUDA build that does not import beside the CPU torch
	# ("operator torchvision::nms does not exist"); the working pair is a 5.5 GB CUDA torch. Neither
	# reid-trt nor the trackers' re-ID and tracking paths import it (tests/test_environment.py).
	$(BIN)/python -m pip uninstall -q -y torchvision
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
