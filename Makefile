# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0: a CPU build where one is on hand (plain `torch` would pull several GB of CUDA).
TORCH ?= torch==2.13.0
# The tests also run the trackers, and Ultralytics cannot be imported without torchvision. PyPI's
# torchvision for x86_64 is a CUDA build that does not import beside the CPU torch ("operator
# torchvision::nms does not exist"), so the tests take the pair that imports and runs on the CPU
# here: on x86_64 torch 2.14.1 with torchvision 0.29.1 (CUDA builds, 5.5 GB), on aarch64 torch
# 2.9.1 with torchvision 0.24.1 (CPU builds). `make demo` keeps the light CPU torch.
ifeq ($(shell uname -m),aarch64)
TEST_TORCH ?= torch==2.9.1 torchvision==0.24.1
else
TEST_TORCH ?= torch==2.14.1 torchvision==0.29.1
endif
# The trackers the integration tests run for real, at the versions the tests were written for.
CONSUMERS ?= boxmot==25.0.0 ultralytics==8.4.190
TORCHREID_SDIST := .cache/torchreid-0.2.5.tar.gz

.PHONY: demo test check lint clean

# opencv-python, the OpenCV the trackers require: one distribution owns cv2 (README, Set-up).
EXTRAS := .[export,rtx,bench,dev,openvino,opencv]
# --no-compile: Python compiles what it imports on first use; compiling all of torch at install
# time took about a third of the test environment's install (2-core machine).
PIP := $(BIN)/python -m pip install -q --no-compile
CONSUMER_PACKAGES := $(TEST_TORCH) "tritonclient[grpc,http]>=2.50" $(CONSUMERS)

NEW_VENV := $(PYTHON) -m venv --clear $(VENV) && $(PIP) --upgrade pip

$(VENV)/.installed: pyproject.toml
	$(NEW_VENV)
	$(PIP) "$(TORCH)"
	$(PIP) -e "$(EXTRAS)"
	touch $@

# On a fresh machine (CI) one resolve with the tests' torch, rather than the demo's torch first
# and then another (same packages, about 50 s less); on top of a `make demo` environment else.
$(VENV)/.consumers: pyproject.toml Makefile
	if [ -f $(VENV)/.installed ] && [ $(VENV)/.installed -nt pyproject.toml ]; then \
		$(PIP) $(CONSUMER_PACKAGES); \
	else \
		$(NEW_VENV) && $(PIP) -e "$(EXTRAS)" $(CONSUMER_PACKAGES) && touch $(VENV)/.installed; \
	fi
	# Triton's server binary from nvidia-pytriton, without its Python side's numpy<2 pin (boxmot
	# needs numpy 2; reid-trt only runs the binary, and its Python model takes either numpy).
	$(PIP) --no-deps "nvidia-pytriton>=0.7"
	touch $@

# torchreid's own osnet.py / osnet_ain.py: the reference the model tests compare against.
$(TORCHREID_SDIST):
	mkdir -p .cache
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
		-d .cache torchreid==0.2.5

demo: $(VENV)/.installed
	$(BIN)/reid-export demo

# Two processes, each taking whole test files (their fixtures are per file): exports trace in
# one Python thread and servers wait, which leaves a core idle in a single process. Each process
# runs its runtimes on its share of the cores (tests/conftest.py sets REID_TRT_THREADS and
# OMP_NUM_THREADS): with a thread per core in both, each waited on threads the other held
# (2-core Zen 3, clean clone: 800 s of tests and 1,464 CPU-seconds against 947 s and 1,854).
# xdist's own order (files with the most tests first) mixes the long calibrations with files
# that wait on servers; the longest files first, all calibrating at once on the 2 cores, took
# 1209 s against 932 s (both workers now end within a second of each other).
TEST_JOBS ?= 2
# Bytecode kept in .cache/pyc even where PYTHONDONTWRITEBYTECODE is set (as on our CI machines):
# the environment is installed --no-compile, so without it every Python process the tests start
# (servers' model processes, fresh-process and light-install checks, the two workers) compiles
# torch's and onnxscript's sources again, 3-9 s each.
PYC := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.cache/pyc
test: $(VENV)/.consumers $(TORCHREID_SDIST)
	$(PYC) $(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile

# The quick loop while changing code: lint, then every test not marked slow, in the same two
# processes as `make test`. `make test` (CI) runs everything.
check: $(VENV)/.consumers $(TORCHREID_SDIST)
	$(BIN)/ruff check reid_trt tests benchmarks
	$(PYC) $(BIN)/python -m pytest -p no:cacheprovider -q -m "not slow" -n $(TEST_JOBS) --dist loadfile

lint: $(VENV)/.installed
	$(BIN)/ruff check reid_trt tests benchmarks

clean:
	rm -rf $(VENV) .cache out
