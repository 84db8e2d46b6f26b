"""Peak memory of embedding 2,000 real crops: Embedder's chunked path against preprocessing the
whole input first (what Embedder did before: all crops resized and normalised into one float
tensor, then one backend call), in the same run.

Each mode runs in its own process, so its peak resident set size (ru_maxrss) is its own. The
model's own memory is the peak after opening the Embedder and one warm-up call on a full chunk;
what is reported is the peak above that, with and without the crops themselves (the caller's
input, decoded before the call).

Run: .venv/bin/python benchmarks/embedder_memory.py [--crops 2000] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from publish import publish  # benchmarks/publish.py

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MODES = ("chunked", "whole")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def real_crops(n: int) -> list:
    from reid_trt.data.datasets import load_dataset, read_samples
    from reid_trt.data.folder import read_crops

    crops, _, _ = read_samples(load_dataset(DATA / "reid" / "mot17-mini").train)
    for folder in ("market1501", "msmt17", "cuhk03"):
        crops += read_crops(DATA / "reid" / folder)
    return [crops[i % len(crops)].copy() for i in range(n)]  # distinct arrays, as a caller has


def child(graph: str, mode: str, n: int) -> dict:
    import numpy as np

    from reid_trt import Embedder

    embedder = Embedder(graph, device="cpu")
    warm = real_crops(embedder.chunk)
    embedder.embed(warm)
    model = peak_mib()
    crops = real_crops(n)
    inputs = sum(c.nbytes for c in crops) / 2**20
    with_inputs = peak_mib()
    if mode == "chunked":
        out = embedder.embed(crops)
    else:  # the old path: the whole input preprocessed, then one backend call
        out = embedder.backend.run(embedder.preprocess(crops))
    assert out.shape == (n, 512) and np.isfinite(out).all()
    final = peak_mib()
    return {"mode": mode, "crops": n, "model_peak_mib": model, "inputs_mib": inputs,
            "peak_with_inputs_mib": with_inputs, "peak_mib": final,
            "above_model_mib": final - model, "above_model_and_inputs_mib": final - with_inputs,
            "chunk": embedder.chunk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--child", nargs=2, metavar=("GRAPH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.crops)))
        return

    from reid_trt.core.machine import machine_label
    from reid_trt.export.api import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        graph = export_onnx(DATA / "weights" / "osnet_x0_25_msmt17.pth", Path(tmp) / "m.onnx").path
        rows = []
        for mode in MODES:
            run = subprocess.run([sys.executable, __file__, "--crops", str(args.crops),
                                  "--child", str(graph), mode], capture_output=True, text=True,
                                 check=True)
            rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
    import onnxruntime

    machine = f"{machine_label()}, onnxruntime {onnxruntime.__version__}"
    lines = [f"Embedder peak memory, {args.crops} real crops (MOT17 boxes and Market-1501/MSMT17/"
             f"CUHK03 crops, cycled), real osnet_x0_25 MSMT17 graph, ONNX Runtime CPU; {machine}.",
             "Command: `.venv/bin/python benchmarks/embedder_memory.py`", "",
             "| path | model's own peak MiB | crops MiB | peak above the model MiB | "
             "peak above model + crops MiB |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        name = (f"Embedder.embed (chunks of {r['chunk']})" if r["mode"] == "chunked"
                else "whole input preprocessed first (before this change)")
        lines.append(f"| {name} | {r['model_peak_mib']:.0f} | {r['inputs_mib']:.0f} | "
                     f"{r['above_model_mib']:.0f} | {r['above_model_and_inputs_mib']:.0f} |")
    chunked, whole = rows
    lines += ["", f"Chunked, the run never rose above the model's own warm-up peak (one chunk) by "
              f"more than {max(chunked['above_model_mib'], 1):.0f} MiB; preprocessing the whole "
              f"input first added {whole['above_model_and_inputs_mib']:.0f} MiB "
              "(a float tensor of every crop, and ONNX Runtime's activations for one huge batch)."]
    publish(lines, args.out, "embedder_memory_cpu.md")
    (args.out / "embedder_memory_cpu.json").write_text(json.dumps(
        {"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
