"""OpenVINO: the import, device names, and the preprocessing contract in an IR's runtime info
(written by `reid-export openvino`, read by the OpenVINO backend), so an .xml carries what an
exported .onnx carries in its metadata."""

from __future__ import annotations

import re
from pathlib import Path

from reid_trt.core.contract import METADATA_PREFIX, Contract, check_io
from reid_trt.core.errors import MissingDependencyError, ReidTrtError
from reid_trt.core.options import ConfigError
from reid_trt.core.threads import ThreadSettings

RT_INFO_KEY = "reid_trt"  # rt_info section: reid_trt/<contract field> = JSON value
_DEVICE = re.compile(r"^(cpu|gpu|npu|auto)(?:[.:](\d{1,2}))?$")


def openvino(purpose: str = "running models with OpenVINO"):
    try:
        import openvino as ov
    except ImportError:
        raise MissingDependencyError("openvino", "openvino", purpose) from None
    return ov


def ov_device(value: str | None, field: str = "device") -> str:
    """'cpu', 'gpu', 'gpu:N' (or 'gpu.N'), 'npu' or 'auto' -> OpenVINO's CPU, GPU, GPU.N, NPU,
    AUTO; None -> CPU."""
    if value is None:
        return "CPU"
    found = _DEVICE.match(str(value).strip().lower())
    if found is None or (found.group(2) is not None and found.group(1) != "gpu"):
        raise ConfigError(field, value, "OpenVINO runs on 'cpu', 'gpu', 'gpu:N', 'npu' or 'auto'")
    name = found.group(1).upper()
    return f"{name}.{found.group(2)}" if found.group(2) is not None else name


def compile_for(core, model, target: str, threads: ThreadSettings, config: dict | None = None,
                source: str = "the model"):
    """The package's one OpenVINO compile: `model` (an ov.Model) for device `target` with the
    thread settings (core/threads.py) on top of `config`; a device that cannot take it is a
    one-line error naming the devices there are."""
    try:
        return core.compile_model(model, target, {**(config or {}),
                                                  **threads.openvino_config(target)})
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:200]
        raise ReidTrtError(f"OpenVINO cannot compile {source} for {target} ({reason}); "
                           f"available here: {', '.join(core.available_devices)}") from None


def write_contract(model, contract: Contract) -> None:
    """Stores `contract` in an ov.Model's runtime info (saved with the IR)."""
    for key, value in contract.to_metadata().items():
        model.set_rt_info(value, [RT_INFO_KEY, key.removeprefix(METADATA_PREFIX)])


def read_contract(model, source: Path | str) -> Contract:
    """The contract an IR carries; one without it is an error that says how to make one."""
    if not model.has_rt_info([RT_INFO_KEY]):
        raise ReidTrtError(f"{source} carries no reid-trt contract in its runtime info; convert "
                           "the .onnx from reid-export with 'reid-export openvino'")
    section = model.get_rt_info([RT_INFO_KEY])
    try:
        keys = list(section.astype(dict))
    except Exception:  # an rt_info entry of another shape
        raise ReidTrtError(f"{source}: its '{RT_INFO_KEY}' runtime info is not a mapping; "
                           "convert the model again with 'reid-export openvino'") from None
    meta = {METADATA_PREFIX + k: model.get_rt_info([RT_INFO_KEY, k]).astype(str) for k in keys}
    contract = Contract.from_metadata(meta, str(source))
    check_io([(port.get_any_name(), *_port(port)) for port in model.inputs],
             {port.get_any_name(): _port(port) for port in model.outputs}, contract, str(source))
    return contract


# OpenVINO's element type names, as core/contract.check_io names them.
_ELEM_TYPES = {"f32": "float32", "f16": "float16", "u8": "uint8"}


def _port(port) -> tuple[str, list]:
    """(element type, dims: int where fixed, '?' where free) of an ov.Model input or output."""
    kind = port.get_element_type().get_type_name()
    shape = port.get_partial_shape()
    dims = [] if shape.rank.is_dynamic else [
        d.get_length() if d.is_static else "?" for d in shape]
    return _ELEM_TYPES.get(kind, kind), dims


def ir_files(xml: Path) -> tuple[Path, Path]:
    """(.xml, .bin) of an IR; the weights must lie beside the topology."""
    xml = Path(xml)
    weights = xml.with_suffix(".bin")
    if not weights.is_file():
        raise ReidTrtError(f"{xml}: no weights file {weights.name} beside it; an OpenVINO IR is "
                           "an .xml and its .bin, copy both")
    return xml, weights
