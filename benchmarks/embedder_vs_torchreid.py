"""The headline comparison: reid-trt's Embedder against torchreid-style feature extraction.

torchreid's FeatureExtractor (what trackers such as StrongSORT/BoxMOT users started from) embeds
crops one PIL image at a time: Image.fromarray, Resize((256, 128)) bilinear, ToTensor, Normalize,
then the eager model on the stacked batch. That path is the reference here; against it, in the same
run and on the same real osnet_x0_25 (MSMT17) weights and MOT17 ground-truth boxes:
  - pytorch fp32: the Embedder's PyTorch backend (OpenCV preprocessing, same eager model),
  - ort fp32:     the Embedder on the exported FP32 graph (ONNX Runtime),
  - ort fp32 u8-in: the same graph taking raw uint8 BGR crops (normalisation inside the graph),
  - ort int8:     the calibrated Q/DQ INT8 graph (reid-export calibrate --unquantized fp32,
                  defaults otherwise),
  - openvino fp32 / int8: the FP32 and INT8 graphs on OpenVINO (normalisation compiled into the
                  model by its PrePostProcessor, as Embedder(backend="openvino") does),
  - openvino fp32, numpy normalisation: the same without it; its compute column is OpenVINO's
                  raw compute on the preprocessed float batch, the base of the e2e/compute ratio.
On a machine with a GPU, pass --engine model.plan to add TensorRT engines.

Run: .venv/bin/python benchmarks/embedder_vs_torchreid.py [--out benchmarks/results] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reid_trt.bench.report import print_tables, write_outputs
from reid_trt.bench.run import BenchConfig, Subject, measure, open_subjects
from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
from reid_trt.cli.common import console
from reid_trt.core.batching import BatchLimits
from reid_trt.core.contract import Contract
from reid_trt.core.defaults import IMAGENET_MEAN, IMAGENET_STD
from reid_trt.export.api import ExportConfig, export_onnx
from reid_trt.models.checkpoint import load_model
from reid_trt.runtime.backends.openvino import OpenVINOBackend
from reid_trt.runtime.embedder import Embedder

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
WEIGHTS = DATA / "weights" / "osnet_x0_25_msmt17.pth"
MOT = DATA / "reid" / "mot17-mini"


class TorchreidStyle:
    """torchreid.utils.FeatureExtractor's path: the Embedder's interface for the bench, and its
    own backend (reid_trt.runtime.backends.base.Backend); not Profiled, so its compute column
    times `run`."""

    name = backend_name = "torch"
    device = "cpu"
    limits = BatchLimits()
    accepts_device_tensors = False

    def __init__(self, weights: Path):
        loaded = load_model(weights)
        self.torch = torch
        self.model = loaded.model.eval()
        self.contract = Contract(variant=loaded.variant)
        self.backend = self
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def preprocess(self, crops) -> torch.Tensor:
        images = []
        for crop in crops:  # OpenCV BGR in; torchreid takes RGB PIL images
            image = Image.fromarray(np.ascontiguousarray(crop[..., ::-1]))
            image = image.resize((128, 256), Image.BILINEAR)  # torchvision Resize on PIL
            tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
            images.append((tensor - self.mean) / self.std)  # ToTensor, Normalize
        return torch.stack(images)

    def embed(self, crops) -> np.ndarray:
        with torch.no_grad():
            return self.model(self.preprocess(crops)).numpy()

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        return batch  # preprocess already made the CPU tensor

    def run(self, batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.model(batch).numpy()

    def run_device(self, tensor) -> np.ndarray:
        return self.run(tensor)

    def close(self) -> None:
        pass


def raw_openvino(graph: Path) -> Subject:
    embedder = Embedder(graph, backend="openvino")
    embedder._attach(OpenVINOBackend(graph, preprocess_in_model=False), None, True)
    return Subject("openvino fp32, numpy normalisation", "subject", graph, embedder, True)


def graphs(folder: Path, quick: bool) -> list[Path]:
    fp32 = export_onnx(WEIGHTS, folder / "osnet.onnx", ExportConfig()).path
    u8 = export_onnx(WEIGHTS, folder / "osnet.u8.onnx",
                     ExportConfig(input_format="uint8-bgr", normalize=True)).path
    if quick:
        return [fp32, u8]
    source, sha, _ = source_graph(None, WEIGHTS)
    # Unquantized layers in FP32: ONNX Runtime's CPU kernels are FP32 (FP16 would only add casts).
    int8 = calibrate_onnx(source, sha, MOT, folder / "osnet.int8.onnx",
                          CalibrationConfig(unquantized="fp32")).path
    return [fp32, u8, int8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--engine", type=Path, action="append", default=[])
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="batches 1,8; 6 runs; no INT8")
    args = parser.parse_args()
    config = BenchConfig(batches=(1, 8) if args.quick else (1, 8, 32, 64),
                         runs=6 if args.quick else 30, crops_dir=MOT, num_crops=64,
                         device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = graphs(Path(tmp), args.quick)
        on_openvino = [onnx[0], *onnx[2:]]  # FP32 and INT8; OpenVINO compiles uint8 in itself
        subjects = open_subjects(args.engine, onnx, WEIGHTS, config, openvino=on_openvino)
        subjects.append(raw_openvino(onnx[0]))
        reference = Subject("torchreid-style (PIL + eager)", "baseline", WEIGHTS,
                            TorchreidStyle(WEIGHTS), True)
        with console.status("benchmarking") as status:
            report = measure([reference, *subjects], config,
                             lambda what, done, total: status.update(f"{what} ({done}/{total})"))
    report.command = "python benchmarks/embedder_vs_torchreid.py" + (" --quick" * args.quick)
    print_tables(report, console)
    gpu = report.machine.get("gpu")
    name = f"embedder_vs_torchreid_{'gpu' if gpu else 'cpu'}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_outputs(report, *(args.out / f"{name}.{ext}" for ext in ("json", "md", "png")))


if __name__ == "__main__":
    sys.exit(main())
