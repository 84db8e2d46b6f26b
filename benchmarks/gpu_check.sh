#!/usr/bin/env bash
# The GPU half of the checks, in one go on a lent GPU machine (../shared/device/README.md says how
# TensorRT-RTX gets there; `. /tmp/rtx/env.sh` first). CI never has a GPU: everything else is
# checked there. Each step runs even when an earlier one failed, and logs under $OUT:
#   gpu.txt         the GPU, driver and library versions
#   probe.log       engines built on the CPU machine (TensorRT-RTX's default targets) run here?
#   build.log       reid-export trt on this GPU (--compute-capability current) for each graph
#   pytest_gpu.log  the gpu test marker (tests/gpu)
#   bench.json/.md  reid-bench: the three engines beside PyTorch on the same GPU (or, where the
#                   engines cannot run, PyTorch on the GPU beside ONNX Runtime on the CPU)
# TensorRT-RTX 1.7 splits the `tensorrt_rtx` package (a few Python files) from its bindings, and
# the shared pack carries only the bindings: copy it from this project's .venv (site-packages/
# tensorrt_rtx) into a carried folder and put that folder on PYTHONPATH there.
# Usage: REID_TRT_DATA=<shared data> benchmarks/gpu_check.sh <folder with x025.{fp32,fp16,int8}
#        .onnx and, optionally, cpu-built .plan engines>
set -uo pipefail
DATA=${REID_TRT_DATA:?set REID_TRT_DATA to the shared data folder}
GRAPHS=${1:?name the folder of graphs}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
WEIGHTS=$DATA/weights/osnet_x0_25_msmt17.pth
CROPS=$DATA/reid/mot17-mini
ENGINES=$(mktemp -d)
reid_export() { python3 -c 'from reid_trt.cli.export import main; main()' "$@"; }
reid_bench() { python3 -c 'from reid_trt.cli.bench import main; main()' "$@"; }

{
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
  python3 - <<'EOF'
import platform, numpy, onnxruntime, torch
from cuda import bindings
from reid_trt.core.trt_compat import load_trt
print(f"python {platform.python_version()}, numpy {numpy.__version__}, onnxruntime "
      f"{onnxruntime.__version__}, torch {torch.__version__}, cuda-bindings {bindings.__version__}, "
      f"{load_trt().label}")
EOF
} >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

# Engines built without a GPU (as CI builds them) for TensorRT-RTX's default targets: do they
# deserialise and run on this GPU, and agree with ONNX Runtime on the same graph?
python3 - "$GRAPHS" "$CROPS" >"$OUT/probe.log" 2>&1 <<'EOF'
import sys
from pathlib import Path
from reid_trt import Embedder
from reid_trt.data.mot import mot_crops

graphs, crops = Path(sys.argv[1]), Path(sys.argv[2])
images, _ = mot_crops(crops / "train" / "MOT17-04-FRCNN", max_frames=2)
for plan in sorted(graphs.glob("*.plan")):
    try:
        with Embedder(plan) as engine, Embedder(plan.with_suffix(".onnx"), device="cpu") as ort:
            a, b = engine.embed(images), ort.embed(images)
        cos = (a * b).sum(axis=1)
        print(f"{plan.name}: ran on {engine.backend.device}; vs ONNX Runtime on {len(cos)} MOT17 "
              f"crops: min cosine {cos.min():.6f}, mean {cos.mean():.6f}")
    except Exception as e:
        print(f"{plan.name}: FAILED {type(e).__name__}: {e}")
EOF
cat "$OUT/probe.log"

for precision in fp32 fp16 int8; do
  start=$SECONDS
  reid_export trt --onnx "$GRAPHS/x025.$precision.onnx" --compute-capability current \
    -o "$ENGINES/x025.$precision.plan" && cp "$GRAPHS/x025.$precision.onnx" "$ENGINES/"
  echo "$precision engine: $((SECONDS - start)) s"
done >"$OUT/build.log" 2>&1
cat "$OUT/build.log"

python3 -m pytest -p no:cacheprovider -m gpu -s -q -rs -o addopts="" tests/gpu >"$OUT/pytest_gpu.log" 2>&1
tail -n 30 "$OUT/pytest_gpu.log"

# The engines beside PyTorch on this GPU; where they cannot run here, PyTorch on this GPU beside
# ONNX Runtime on this machine's CPU (the graphs the engines would be built from).
reid_bench --engine "$ENGINES/x025.fp32.plan" --engine "$ENGINES/x025.fp16.plan" \
  --engine "$ENGINES/x025.int8.plan" -w "$WEIGHTS" --crops "$CROPS" --batch 1,8,32,64 \
  --runs 60 --no-companion-onnx --json "$OUT/bench.json" --markdown "$OUT/bench.md" 2>&1 ||
reid_bench --onnx "$GRAPHS/x025.fp32.onnx" --onnx "$GRAPHS/x025.fp16.onnx" \
  --onnx "$GRAPHS/x025.int8.onnx" -w "$WEIGHTS" --crops "$CROPS" --batch 1,8,32,64 \
  --runs 30 --json "$OUT/bench.json" --markdown "$OUT/bench.md" 2>&1
