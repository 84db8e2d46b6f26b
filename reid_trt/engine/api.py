"""`reid-export trt` as one library call: from a graph, from weights through a verified export,
or from weights or a graph through INT8 calibration.

Everything that can be checked is checked before any work starts: build options against the
installed TensorRT, every output path (engine, manifest, the exported graph, the calibration
report). The exported graph and calibration files are staged beside the engine and moved into
place only once the engine is built, so a failure at any step leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.fileio import check_output
from reid_trt.core.onnxio import graph_precision, load_onnx
from reid_trt.core.options import ConfigError, Precision
from reid_trt.engine.build import (
    BuildConfig,
    BuildResult,
    check_engine_output,
    engine_from_onnx,
    preflight,
)

if TYPE_CHECKING:
    from reid_trt.calibration.report import CalibrationResult


@dataclass
class EnginePipelineResult:
    build: BuildResult
    exported: object | None = None  # export.api.ExportResult, when built from weights
    calibrated: CalibrationResult | None = None  # for INT8
    converted: object | None = None  # export.convert.Conversion, for fp16 from an fp32 graph


def default_engine_path(source: Path, precision: str | None) -> Path:
    suffix = f".{precision}.plan" if precision else ".plan"
    return Path(source.stem + suffix)


def build_engine(output: Path | None, config: BuildConfig, *, onnx_path: Path | None = None,
                 weights: Path | None = None, calibration=None, calib_data: Path | None = None,
                 verify_crops: list[np.ndarray] | None = None, trust_checkpoint: bool = False,
                 progress: Callable[[str], None] = lambda _: None) -> EnginePipelineResult:
    """Builds an engine from `onnx_path` or `weights`.

    Args:
        output: the engine path (default: <source stem>[.<precision>].plan, here).
        config: build options.
        calibration: a CalibrationConfig to quantize to INT8 first (needs `calib_data`).
        verify_crops: crops to verify a fresh export on (default: generated ones).
    """
    if (onnx_path is None) == (weights is None):
        raise ReidTrtError(f"pass exactly one of {opt('onnx')} (an exported graph) or "
                           f"{opt('weights')} (a torchreid checkpoint)")
    int8 = calibration is not None
    if int8:
        if config.precision not in (None, Precision.INT8):
            raise ConfigError("precision", str(config.precision), "contradicts INT8 calibration")
        if calib_data is None:
            raise ConfigError("calib_data", None, "INT8 needs a re-ID dataset or a folder of crops")
    elif weights is not None and config.precision == Precision.INT8:
        raise ConfigError("precision", "int8", f"from weights needs calibration: pass {opt('int8')} "
                          f"{opt('calib_data')} DIR, or a graph from 'reid-export calibrate' as "
                          f"{opt('onnx')}")
    source = Path(onnx_path or weights)
    precision = "int8" if int8 else (config.precision or (None if onnx_path else "fp32"))
    engine = Path(output) if output else default_engine_path(source, precision and str(precision))
    inputs = [onnx_path, weights, calib_data]
    staged_graph = engine.with_suffix(".onnx") if weights is not None or int8 else None
    check_engine_output(engine, inputs)
    if staged_graph is not None:
        from reid_trt.calibration.api import report_path_for

        side = [report_path_for(staged_graph)] if int8 else []
        check_output(staged_graph, f"the graph kept beside {opt('output')} {engine}", (".onnx",),
                     inputs=inputs, side_files=side)
    preflight(config)  # no TensorRT, or an option it cannot take: nothing has been written yet
    if staged_graph is None and config.precision == Precision.FP16 and \
            graph_precision(load_onnx(onnx_path)) == Precision.FP32:
        return _fp16_engine(onnx_path, engine, config, verify_crops, progress)
    if staged_graph is None:
        return EnginePipelineResult(engine_from_onnx(onnx_path, engine, config))

    with tempfile.TemporaryDirectory(prefix=f".{engine.name}.", dir=engine.parent or ".") as tmp:
        staging = Path(tmp) / staged_graph.name
        exported = calibrated = None
        if int8:
            from reid_trt.calibration.api import calibrate_onnx, source_graph

            progress("exporting" if weights else "reading the graph")
            graph, sha, _ = source_graph(onnx_path, weights, trust_checkpoint)
            calibrated = calibrate_onnx(graph, sha, calib_data, staging, calibration, progress,
                                        inputs=tuple(p for p in inputs if p))
        else:
            from reid_trt.export.api import ExportConfig, export_onnx

            progress("exporting")
            exported = export_onnx(weights, staging, ExportConfig(
                precision=precision, trust_checkpoint=trust_checkpoint), verify_crops)
        progress("building engine")
        built = engine_from_onnx(staging, engine, config)
        # Built: move the staged graph (and calibration files) to their final names.
        for path in sorted(Path(tmp).iterdir()):
            final = engine.parent / path.name
            os.replace(path, final)
            if calibrated is not None:
                calibrated = _moved(calibrated, path, final)
            if exported is not None and exported.path == path:
                exported.path = final
    return EnginePipelineResult(built, exported, calibrated)


def _fp16_engine(onnx_path: Path, engine: Path, config: BuildConfig, verify_crops,
                 progress) -> EnginePipelineResult:
    """An FP16 engine from an FP32 graph: the graph converted (InstanceNorm and L2 kept FP32)
    and verified against the FP32 one first; the manifest records the conversion."""
    from reid_trt.export.convert import fp16_from_fp32

    progress("converting the graph to fp16")
    conversion = fp16_from_fp32(onnx_path, verify_crops)
    with tempfile.TemporaryDirectory(prefix=f".{engine.name}.", dir=engine.parent or ".") as tmp:
        staged = Path(tmp) / f"{Path(onnx_path).stem}.fp16.onnx"
        onnx.save(conversion.model, staged)
        progress("building engine")
        built = engine_from_onnx(staged, engine, config, conversion=conversion.to_dict())
    built.notes.append(f"converted {onnx_path} to fp16 first: {conversion.parity.summary()}")
    return EnginePipelineResult(built, converted=conversion)


def _moved(calibrated, old: Path, new: Path):
    for name in ("path", "cache", "report_path"):
        if getattr(calibrated, name) == old:
            setattr(calibrated, name, new)
    return calibrated


__all__ = ["BuildConfig", "BuildResult", "EnginePipelineResult", "build_engine"]
