"""What an engine file says about itself, read without a GPU, and checked against its manifest.

The manifest is written by the build, but it is a text file beside a binary: it can be edited,
or copied beside another engine. Deserialising the engine to ask TensorRT needs a GPU, so this
reads the engine's bytes instead. TensorRT-RTX compiles the whole network with its graph
compiler, and its engines carry a text table of their tensors: each line
`tensor={ ... dims={ ... } name="..." ... type=half }`, constants with a `const_payload_size`.
From it come the bytes of weights by element type and the I/O tensors' shapes and types. That
table is TensorRT's internal format, not an API, so it is read only where it was verified: in
TensorRT-RTX engines (1.7). Full TensorRT compiles only parts of a network that way, so its
table holds only some of the weights, and its engines are not checked here (the engine
inspector shows their layers on a GPU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import sha256_file
from reid_trt.core.manifest import Manifest, element_type, manifest_path, rebuild_advice
from reid_trt.core.options import TrtFlavour

_CONSTANT = re.compile(rb'const_payload_size=(\d+) dims=\{[^}]*\} name="[^"]*"[^\n]{0,300}?'
                       rb'type=(\w+)')
_TENSOR = re.compile(rb'dims=\{ (?:"[^"]*" )?([0-9 ]*)\}[^\n]{0,120}?name="([^"]+)"'
                     rb'[^\n]{0,300}?type=(\w+)')


@dataclass
class EngineFile:
    """What the engine's own tensor table says; `readable` False when it has none."""

    readable: bool
    weight_bytes: dict[str, int] = field(default_factory=dict)  # element type -> constant bytes
    tensors: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)  # name -> type, dims

    @classmethod
    def of(cls, path: Path, manifest: Manifest) -> EngineFile:
        """The engine's table where it is known to be whole (TensorRT-RTX), else unreadable."""
        return cls.read(path) if manifest.trt_flavour == TrtFlavour.RTX else cls(False)

    @classmethod
    def read(cls, path: Path) -> EngineFile:
        data = Path(path).read_bytes()
        weights: dict[str, int] = {}
        for size, kind in _CONSTANT.findall(data):
            weights[kind.decode()] = weights.get(kind.decode(), 0) + int(size)
        tensors = {}
        for dims, name, kind in _TENSOR.findall(data):
            tensors.setdefault(name.decode(errors="replace"),
                               (element_type(kind.decode()),
                                tuple(int(d) for d in dims.split())))
        return cls(bool(weights), weights, tensors)

    def describe_weights(self) -> list[str]:
        return [f"{k} {v / 1024:.0f} KiB" for k, v in sorted(self.weight_bytes.items())]

    def io_tensor(self, name: str) -> tuple[str, tuple[int, ...]] | None:
        """An I/O tensor by the network's name (the compiler versions names: `images.1`)."""
        for key in (name, *(f"{name}.{i}" for i in range(4))):
            if key in self.tensors:
                return self.tensors[key]
        return None


def _share(weights: dict[str, int], kind: str) -> float:
    total = sum(weights.values())
    return weights.get(kind, 0) / total if total else 0.0


def disagreements(manifest: Manifest, engine: EngineFile) -> list[str]:
    """Where the manifest says what the engine is not: precision (from the engine's weights and
    from the builder's own layer report in the manifest) and I/O; empty when they agree. Full
    TensorRT's engines are not read (see `EngineFile.readable`): only the layer report is checked
    for them. A TensorRT-RTX manifest over a file without the table its engines carry
    disagrees."""
    found: list[str] = []
    precision, remainder = manifest.precision, manifest.unquantized
    if manifest.trt_flavour == TrtFlavour.RTX and not engine.readable:
        found.append("a TensorRT-RTX engine, but the file holds no tensor table (every "
                     "TensorRT-RTX engine has one: this file is not one it built)")
    if engine.readable:
        weights = engine.weight_bytes
        holds = ", ".join(engine.describe_weights())
        half = _share(weights, "half") > 0.01
        if precision == "int8" and not weights.get("int8"):
            found.append(f"precision int8, but the engine holds no INT8 weights ({holds})")
        elif precision != "int8" and weights.get("int8"):
            found.append(f"precision {precision}, but the engine holds INT8 weights ({holds})")
        if (precision == "fp16" or remainder == "fp16") and not half:
            found.append(f"{'unquantized layers' if remainder else 'precision'} fp16, but the "
                         f"engine holds no FP16 weights ({holds})")
        if (precision == "fp32" or remainder == "fp32") and half:
            found.append(f"{'unquantized layers' if remainder else 'precision'} fp32, but the "
                         f"engine holds FP16 weights ({holds})")
    recorded = None if manifest.engine_layers is None else manifest.engine_layers.int8_mac_share
    if precision == "int8" and recorded == 0:
        found.append("precision int8, but its own record of the built layers has no INT8 "
                     "convolution")
    if precision != "int8" and recorded:
        found.append(f"precision {precision}, but its own record of the built layers runs "
                     f"{recorded:.0%} of conv MACs in INT8")
    if not engine.readable:
        return found
    for io in manifest.io:
        tensor = engine.io_tensor(io.name)
        if tensor is None:
            found.append(f"{io.mode} '{io.name}' is not a tensor of the engine")
            continue
        kind, dims = tensor
        wanted = tuple(int(d) for d in io.shape[1:])
        if kind != io.dtype or dims[-len(wanted):] != wanted:
            found.append(f"{io.mode} '{io.name}' {io.dtype} {list(wanted)}, but the "
                         f"engine's is {kind} {list(dims[-len(wanted):] if wanted else dims)}")
    return found


def check_engine_sha256(path: Path, manifest: Manifest) -> None:
    """The one check of an engine's bytes against the sha256 its build recorded."""
    if manifest.engine_sha256 and sha256_file(path) != manifest.engine_sha256:
        raise ReidTrtError(f"{path} is not the engine its manifest describes (sha256 differs: "
                           "replaced, changed or truncated since the build, so it does not match "
                           f"its manifest); {rebuild_advice(path)}")


def check_engine_file(path: Path, manifest: Manifest) -> None:
    """Refuses an engine its manifest does not describe (edited, or beside another engine)."""
    check_engine_sha256(path, manifest)
    found = disagreements(manifest, EngineFile.of(path, manifest))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ReidTrtError(f"{path}: its manifest {manifest_path(Path(path)).name} says "
                           f"{found[0]}{more}; the manifest was edited or belongs to another "
                           f"engine: {rebuild_advice(path)}")
