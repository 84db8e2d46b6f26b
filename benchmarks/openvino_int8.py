"""The INT8 Q/DQ graph from `reid-export calibrate` on OpenVINO as it is, against ONNX Runtime and
against NNCF (OpenVINO's own post-training quantizer, defaults, on the same calibration crops):
agreement with FP32 on cameras and conditions calibration never saw (the protocol of
int8_cross_camera.py), and compute time per call, in one run. NNCF is not a dependency of
reid-trt: `pip install nncf` to include it (it is skipped, and said so, without it).

Make the graphs first (osnet_x0_25 MSMT17, calibrated with the defaults on MOT17-04 only):
  reid-export onnx -w osnet_x0_25_msmt17.pth -o osnet.onnx
  reid-export calibrate --onnx osnet.onnx --calib-data .../MOT17-04-FRCNN -o osnet.int8.onnx
Run: .venv/bin/python benchmarks/openvino_int8.py --fp32 osnet.onnx --int8 osnet.int8.onnx
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SHIFTS = ("brighter", "darker", "more contrast", "less contrast", "blur", "mirrored")


def compute_ms(embedder, crops, runs: int = 30) -> float:
    """The backend call alone, on the batch this embedder feeds it (OpenVINO: uint8, normalised
    inside the model)."""
    x = embedder.preprocess(crops)
    embedder.backend.run(x)
    start = time.perf_counter()
    for _ in range(runs):
        embedder.backend.run(x)
    return (time.perf_counter() - start) / runs * 1000


def nncf_subject(fp32: Path, calib_data: Path, subjects: dict) -> str:
    """Adds "OpenVINO INT8 (NNCF)": the FP32 graph quantized by nncf.quantize with its defaults
    on the crops `reid-export calibrate` calibrates on (same sampling, same set)."""
    try:
        import nncf
    except ImportError:
        return "NNCF: not installed here (`pip install nncf`), so not compared."
    import tempfile

    import openvino as ov

    from reid_trt import Embedder
    from reid_trt.calibration.api import CalibrationConfig, load_sets
    from reid_trt.core.contract import contract_of
    from reid_trt.core.onnxio import load_onnx
    from reid_trt.core.openvino_ir import write_contract
    from reid_trt.core.preprocess import preprocess_numpy

    contract = contract_of(load_onnx(fp32))
    crops = load_sets(calib_data, CalibrationConfig()).calib_crops
    start = time.perf_counter()
    model = nncf.quantize(ov.Core().read_model(str(fp32)),
                          nncf.Dataset([preprocess_numpy([c]) for c in crops]),
                          subset_size=len(crops))
    seconds = time.perf_counter() - start
    write_contract(model, contract)
    folder = Path(tempfile.mkdtemp(prefix="nncf."))
    ov.save_model(model, str(folder / "osnet.nncf.xml"), compress_to_fp16=False)
    subjects["OpenVINO INT8 (NNCF)"] = Embedder(folder / "osnet.nncf.xml")
    return (f"NNCF {nncf.__version__}: nncf.quantize defaults (preset performance, bias "
            f"correction) on the {len(crops)} crops calibration samples from {calib_data.name}, "
            f"{seconds:.0f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, required=True)
    parser.add_argument("--int8", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--calib-data", type=Path,
                        default=DATA / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN")
    args = parser.parse_args()

    import openvino

    from reid_trt import Embedder
    from reid_trt.core.machine import machine_label
    from reid_trt.data.folder import read_crops
    from reid_trt.data.mot import mot_crops
    from reid_trt.data.shifts import shifted_copies

    mot02, _ = mot_crops(DATA / "reid" / "mot17-mini" / "train" / "MOT17-02-FRCNN")
    reid = [c for d in ("market1501", "msmt17", "cuhk03") for c in read_crops(DATA / "reid" / d)]
    sets = {"MOT17-02 (unseen camera)": mot02, "Market-1501/MSMT17/CUHK03": reid,
            **{f"unseen crops, {k}": v for k, v in shifted_copies(mot02 + reid, SHIFTS).items()}}
    fp32 = Embedder(args.fp32, device="cpu")
    subjects = {"ONNX Runtime INT8": Embedder(args.int8, device="cpu"),
                "OpenVINO INT8": Embedder(args.int8, backend="openvino")}
    nncf_note = nncf_subject(args.fp32, args.calib_data, subjects)
    lines = [f"INT8 Q/DQ graph vs FP32 (ONNX Runtime), cosine per crop mean / min; {machine_label()}, "
             f"openvino {openvino.__version__}.", "",
             "Command: `.venv/bin/python benchmarks/openvino_int8.py --fp32 osnet.onnx --int8 "
             "osnet.int8.onnx` (osnet_x0_25 MSMT17, calibrated with the defaults on MOT17-04 "
             "only)", "", "| crops | n | " + " | ".join(subjects) + " |",
             "| --- | --- |" + " --- |" * len(subjects)]
    for name, crops in sets.items():
        reference = fp32.embed(crops)
        cells = []
        for embedder in subjects.values():
            cos = (embedder.embed(crops) * reference).sum(1)
            cells.append(f"{cos.mean():.4f} / {cos.min():.4f}")
        lines.append(f"| {name} | {len(crops)} | " + " | ".join(cells) + " |")
    batch = [mot02[i % len(mot02)] for i in range(32)]
    lines += ["", "Compute only (resized batch in, embeddings out), ms per call:", "",
              "| subject | batch 1 | batch 32 |", "| --- | --- | --- |"]
    for name, embedder in {"ONNX Runtime FP32": fp32, **subjects}.items():
        lines.append(f"| {name} | {compute_ms(embedder, batch[:1]):.2f} | "
                     f"{compute_ms(embedder, batch):.2f} |")
    text = "\n".join(lines + ["", nncf_note]) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "openvino_int8_cpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
