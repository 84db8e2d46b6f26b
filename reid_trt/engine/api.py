"""`reid-export trt` as one library call: from a graph, or from weights through a verified export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.engine.build import BuildConfig, BuildResult, engine_from_onnx
from reid_trt.errors import ReidTrtError
from reid_trt.fileio import check_writable


def build_from_onnx_or_weights(onnx_path: Path | None, weights: Path | None,
                               output: Path | None, config: BuildConfig,
                               verify_crops: list[np.ndarray] | None = None,
                               trust_checkpoint: bool = False):
    """Returns (ExportResult or None, BuildResult).

    From weights, the graph is exported at the requested precision (verified as by
    `reid-export onnx`) and kept beside the engine as <engine stem>.onnx.
    """
    if (onnx_path is None) == (weights is None):
        raise ReidTrtError("pass exactly one of --onnx (an exported graph) or --weights "
                           "(a torchreid checkpoint)")
    exported = None
    if weights is not None:
        from reid_trt.export.api import ExportConfig, export_onnx

        precision = config.precision or "fp32"
        if precision == "int8":
            raise ReidTrtError("--precision int8 from --weights needs calibration: pass --int8 "
                               "--calib-data DIR, or a graph from 'reid-export calibrate' as --onnx")
        engine = check_writable(output or Path(Path(weights).stem + f".{precision}.plan"))
        exported = export_onnx(weights, engine.with_suffix(".onnx"),
                               ExportConfig(precision=precision, trust_checkpoint=trust_checkpoint),
                               verify_crops)
        onnx_path, output = exported.path, engine
    return exported, engine_from_onnx(onnx_path, output, config)


__all__ = ["BuildConfig", "BuildResult", "build_from_onnx_or_weights"]
