"""export -> calibrate -> build as one object: `reid-export calibrate` and `reid-export trt`
(with or without --int8) are two entries into it.

Everything that can be checked is checked once, before any work starts: the source, every
output path (engine, manifest, the graph kept beside the engine, the calibration report),
build options against the installed TensorRT, and the calibration set itself, read and refused
if degenerate before a checkpoint is exported. The pipeline names the files it writes; files
made on the way to an engine are staged beside it and moved into place only once the engine is
built, so a failure at any step leaves nothing behind.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.fileio import check_output, sha256_file
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
    from reid_trt.calibration.api import CalibrationConfig, CalibrationSets
    from reid_trt.calibration.report import CalibrationResult
    from reid_trt.export.api import ExportResult
    from reid_trt.export.convert import Conversion


@dataclass
class EnginePipelineResult:
    build: BuildResult
    exported: ExportResult | None = None  # when built from weights
    calibrated: CalibrationResult | None = None  # for INT8
    converted: Conversion | None = None  # fp16 from an fp32 graph


def default_engine_path(source: Path, precision: str | None) -> Path:
    suffix = f".{precision}.plan" if precision else ".plan"
    return Path(source.stem + suffix)


def default_int8_path(source: Path) -> Path:
    return Path(source.stem + ".int8.onnx")


class Pipeline:
    """From a graph (`onnx_path`) or a torchreid checkpoint (`weights`), optionally through INT8
    calibration on `calib_data` (`calibration` None: no INT8).

    Args:
        verify_crops: crops to verify a fresh export on (default: generated ones).
        progress: called with a short line as each step starts.
    """

    def __init__(self, onnx_path: Path | str | None = None, weights: Path | str | None = None, *,
                 calib_data: Path | str | None = None,
                 calibration: CalibrationConfig | None = None, trust_checkpoint: bool = False,
                 verify_crops: list[np.ndarray] | None = None,
                 progress: Callable[[str], None] = lambda _: None):
        if (onnx_path is None) == (weights is None):
            raise ReidTrtError(f"pass exactly one of {opt('onnx')} (an exported graph) or "
                               f"{opt('weights')} (a torchreid checkpoint)")
        if calibration is not None and calib_data is None:
            raise ConfigError("calib_data", None, "INT8 needs a re-ID dataset or a folder of crops")
        self.onnx_path = Path(onnx_path) if onnx_path is not None else None
        self.weights = Path(weights) if weights is not None else None
        self.calib_data = Path(calib_data) if calib_data is not None else None
        self.calibration = calibration
        self.trust_checkpoint = trust_checkpoint
        self.verify_crops = verify_crops
        self.progress = progress

    @property
    def source(self) -> Path:
        return self.onnx_path or self.weights

    @functools.cached_property
    def graph(self) -> onnx.ModelProto:
        """The `onnx_path` graph, read once however many steps look at it."""
        return load_onnx(self.onnx_path)

    @property
    def inputs(self) -> list[Path]:
        """Files the pipeline reads: no output may overwrite one."""
        return [p for p in (self.onnx_path, self.weights, self.calib_data) if p is not None]

    # -- entry 1: reid-export calibrate ------------------------------------------------------

    def calibrate(self, output: Path | str | None = None) -> CalibrationResult:
        """The INT8 graph (default: <source stem>.int8.onnx), its TensorRT calibration cache and
        its report."""
        from reid_trt.calibration.api import check_calibration_output

        if self.calibration is None:
            raise ReidTrtError("Pipeline.calibrate needs calibration=CalibrationConfig(...) (and "
                               "calib_data)")
        started = time.perf_counter()
        output = check_calibration_output(Path(output) if output else
                                          default_int8_path(self.source), self.inputs)
        sets = self._calibration_sets()
        return self._quantized(sets, output, started)

    # -- entry 2: reid-export trt [--int8] ---------------------------------------------------

    def engine(self, output: Path | str | None = None,
               config: BuildConfig | None = None) -> EnginePipelineResult:
        """The engine and its manifest (default: <source stem>[.<precision>].plan, here), and
        the graph it was built from beside it when that graph was made on the way."""
        config = config or BuildConfig()
        int8 = self.calibration is not None
        if int8 and config.precision not in (None, Precision.INT8):
            raise ConfigError("precision", str(config.precision), "contradicts INT8 calibration")
        if not int8 and self.weights is not None and config.precision == Precision.INT8:
            raise ConfigError("precision", "int8", f"from weights needs calibration: pass "
                              f"{opt('int8')} {opt('calib_data')} DIR, or a graph from "
                              f"'reid-export calibrate' as {opt('onnx')}")
        precision = "int8" if int8 else (config.precision or (None if self.onnx_path else "fp32"))
        engine = Path(output) if output else default_engine_path(self.source,
                                                                 precision and str(precision))
        staged_graph = engine.with_suffix(".onnx") if self.weights is not None or int8 else None
        check_engine_output(engine, self.inputs)
        if staged_graph is not None:
            from reid_trt.calibration.report import report_path_for

            check_output(staged_graph, f"the graph kept beside {opt('output')} {engine}",
                         (".onnx",), inputs=self.inputs,
                         side_files=[report_path_for(staged_graph)] if int8 else [])
        preflight(config)  # no TensorRT, or an option it cannot take: nothing has been written
        sets = self._calibration_sets() if int8 else None
        if staged_graph is None:
            if config.precision == Precision.FP16 and \
                    graph_precision(self.graph) == Precision.FP32:
                return self._fp16_engine(engine, config)
            return EnginePipelineResult(engine_from_onnx(self.onnx_path, engine, config))

        with tempfile.TemporaryDirectory(prefix=f".{engine.name}.", dir=engine.parent or ".") \
                as tmp:
            staging = Path(tmp) / staged_graph.name
            exported = calibrated = None
            if int8:
                calibrated = self._quantized(sets, staging, time.perf_counter())
            else:
                exported = self._exported(staging, str(precision))
            self.progress("building engine")
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

    # -- the steps ----------------------------------------------------------------------------

    def _calibration_sets(self) -> CalibrationSets:
        """The calibration and judged crops, read (and a degenerate set refused) before any
        export. The source is checked first, as cheaply as it can be: a graph that is not fp32,
        or a file that is no OSNet checkpoint, is refused before the data is read."""
        from reid_trt.calibration.api import check_source, load_sets

        if self.onnx_path is not None:
            check_source(self.graph, str(self.onnx_path))
        else:
            from reid_trt.models.checkpoint import load_model

            load_model(self.weights, "auto", trust=self.trust_checkpoint)  # a second is cheap
        self.progress("reading the dataset")
        return load_sets(self.calib_data, self.calibration)

    def _quantized(self, sets: CalibrationSets, output: Path, started: float
                   ) -> CalibrationResult:
        from reid_trt.calibration.api import quantize

        source, sha = self._fp32_source()
        return quantize(source, sha, sets, output, self.calibration, self.progress, started)

    def _fp32_source(self) -> tuple[onnx.ModelProto, str]:
        if self.onnx_path is not None:
            self.progress("reading the graph")
            return self.graph, sha256_file(self.onnx_path)
        with tempfile.TemporaryDirectory() as tmp:
            exported = self._exported(Path(tmp) / "fp32.onnx", "fp32")
            return onnx.load(str(exported.path)), sha256_file(exported.path)

    def _exported(self, path: Path, precision: str) -> ExportResult:
        from reid_trt.export.api import ExportConfig, export_onnx

        self.progress("exporting")
        return export_onnx(self.weights, path, ExportConfig(
            precision=precision, trust_checkpoint=self.trust_checkpoint), self.verify_crops)

    def _fp16_engine(self, engine: Path, config: BuildConfig) -> EnginePipelineResult:
        """An FP16 engine from an FP32 graph: the graph converted (InstanceNorm and L2 kept
        FP32) and verified against the FP32 one first; the manifest records the conversion."""
        from reid_trt.export.convert import fp16_from_fp32

        self.progress("converting the graph to fp16")
        conversion = fp16_from_fp32(self.onnx_path, self.verify_crops)
        with tempfile.TemporaryDirectory(prefix=f".{engine.name}.", dir=engine.parent or ".") \
                as tmp:
            staged = Path(tmp) / f"{self.onnx_path.stem}.fp16.onnx"
            onnx.save(conversion.model, staged)
            self.progress("building engine")
            built = engine_from_onnx(staged, engine, config, conversion=conversion.to_dict())
        built.notes.append(f"converted {self.onnx_path} to fp16 first: "
                           f"{conversion.parity.summary()}")
        return EnginePipelineResult(built, converted=conversion)


def _moved(calibrated: CalibrationResult, old: Path, new: Path) -> CalibrationResult:
    for name in ("path", "cache", "report_path"):
        if getattr(calibrated, name) == old:
            setattr(calibrated, name, new)
    return calibrated


def calibrate(calib_data: Path | str | None, output: Path | str | None,
              config: CalibrationConfig, *, onnx_path: Path | str | None = None,
              weights: Path | str | None = None, trust_checkpoint: bool = False,
              progress: Callable[[str], None] = lambda _: None) -> CalibrationResult:
    """`reid-export calibrate`: Pipeline(...).calibrate(output)."""
    return Pipeline(onnx_path, weights, calib_data=calib_data, calibration=config,
                    trust_checkpoint=trust_checkpoint, progress=progress).calibrate(output)


def build_engine(output: Path | str | None, config: BuildConfig, *,
                 onnx_path: Path | str | None = None, weights: Path | str | None = None,
                 calibration: CalibrationConfig | None = None,
                 calib_data: Path | str | None = None,
                 verify_crops: list[np.ndarray] | None = None, trust_checkpoint: bool = False,
                 progress: Callable[[str], None] = lambda _: None) -> EnginePipelineResult:
    """`reid-export trt`: Pipeline(...).engine(output, config)."""
    return Pipeline(onnx_path, weights, calib_data=calib_data, calibration=calibration,
                    trust_checkpoint=trust_checkpoint, verify_crops=verify_crops,
                    progress=progress).engine(output, config)
