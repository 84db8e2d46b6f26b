"""TensorRT's text calibration cache, for trtexec --calib and TensorRT 10 users of implicit INT8.

Format: a header line 'TRT-<version>-<algorithm>', then 'tensor: <scale>' lines, the scale
(amax / 127) as big-endian float32 hex. TensorRT trusts a cache blindly, so the file name
carries a hash of the graph, the calibration set and the preprocessing: a stale cache has
another name and is never picked up by mistake.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import TensorsData

# Header version: TensorRT 10.3 (JetPack 6.1), the oldest TensorRT this project builds for.
CACHE_TRT_VERSION = 100300
ALGORITHMS = {"minmax": "MinMaxCalibration", "mse": "MinMaxCalibration",
              "entropy": "EntropyCalibration2",
              "percentile": "MinMaxCalibration"}


def calibration_hash(onnx_sha256: str, sample_ids: list[str], contract: dict) -> str:
    digest = hashlib.sha256()
    digest.update(onnx_sha256.encode())
    digest.update("\n".join(sample_ids).encode())
    digest.update(json.dumps(contract, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def cache_text(ranges: TensorsData, method: str) -> str:
    lines = [f"TRT-{CACHE_TRT_VERSION}-{ALGORITHMS[method]}"]
    for name, data in sorted(ranges.data.items()):
        low, high = float(np.min(data.range_value[0])), float(np.max(data.range_value[1]))
        amax = max(abs(low), abs(high), 1e-12)
        lines.append(f"{name}: {struct.pack('>f', amax / 127.0).hex()}")
    return "\n".join(lines) + "\n"


def cache_path(output: Path, digest: str) -> Path:
    return output.with_name(f"{output.stem}.{digest}.calib")
