"""torch -> ONNX for OSNet: export, simplify, precision, metadata and graph checks."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from reid_trt.core import defaults
from reid_trt.core.contract import Contract
from reid_trt.core.errors import ExportError, MissingDependencyError, opt
from reid_trt.core.options import InputFormat
from reid_trt.core.pixel_input import with_pixel_input
from reid_trt.export.checks import SHAPE_OPS, check_graph, op_counts
from reid_trt.export.graph import ExportGraph, example_input
from reid_trt.export.precision import simplified as _simplify
from reid_trt.export.precision import to_fp16
from reid_trt.export.trace_cache import cached_trace, traced_contract
from reid_trt.models import get_variant

MAX_DYNAMIC_BATCH = 4096
TRACE_BATCH = 2  # a dynamic-batch graph is traced at this batch, then its axis freed


def _torch_export(graph: ExportGraph, contract: Contract, batch: int | None,
                  opset: int) -> onnx.ModelProto:
    dynamic = batch is None
    x = example_input(contract, batch=2 if dynamic else batch)
    dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)}} \
        if dynamic else None
    log = io.StringIO()
    try:
        # The exporter prints progress and warns about its own internals: keep the CLI quiet.
        with contextlib.redirect_stdout(log), warnings.catch_warnings(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (x,), dynamo=True, opset_version=opset,
                                        input_names=[contract.input_name],
                                        output_names=[contract.output_name],
                                        dynamic_shapes=dynamic_shapes, optimize=True,
                                        external_data=False)
    except ModuleNotFoundError as e:
        raise MissingDependencyError(e.name or "onnxscript", "export", "torch.onnx export") from e
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for {contract.variant}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
    model = program.model_proto
    got = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:
        raise ExportError(f"{opt('opset')} {opset}: the exporter produced opset {got} (conversion "
                          f"failed); use {opt('opset')} {defaults.ONNX_OPSET} or newer")
    if dynamic:  # name the batch axis identically on input and output
        for value in (model.graph.input[0], model.graph.output[0]):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return model


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def traced_graph(model: torch.nn.Module, contract: Contract, batch: int | None, opset: int,
                 key: tuple | None = None) -> onnx.ModelProto:
    """The simplified FP32 graph of `model` that honours `contract` (its precision aside): one
    dynamic-batch trace of the model alone, kept and reused by `key` (export/trace_cache.py),
    with the contract's input format, normalisation, names and `batch` added (with_contract).
    A trace is 90% of an export: every input format, `--normalize`, `--for` and `--batch` of a
    checkpoint at one size then share one."""
    core = traced_contract(contract)

    def trace() -> onnx.ModelProto:
        graph = ExportGraph(model).eval()
        freed = with_free_batch(_simplify(_torch_export(graph, core, TRACE_BATCH, opset)))
        if freed is not None:
            return freed
        return _simplify(_torch_export(graph, core, None, opset))

    return with_contract(trace() if key is None else cached_trace(key, trace), contract, batch)


def with_contract(traced: onnx.ModelProto, contract: Contract,
                  batch: int | None) -> onnx.ModelProto:
    """The traced graph (traced_contract: normalised float in, raw embeddings out, free batch)
    made to honour `contract` and `batch`: the same nodes the traced module would have added."""
    model = traced
    if contract.input_format != InputFormat.FLOAT:
        model = with_pixel_input(model, contract.input_format, contract.mean, contract.std)
        if model is None:
            raise ExportError(f"{contract.variant}: its input is not read by FP32 convolutions "
                              f"alone, so {opt('input')} {contract.input_format} cannot be "
                              f"folded into it; export with {opt('input')} float")
    if contract.normalized:
        model = with_l2_output(model)
    model = renamed(model, contract.input_name, contract.output_name)
    return model if batch is None else with_static_batch(model, batch)


def with_l2_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose output is L2-normalised as torch's
    `v / vector_norm(v, dim=1, keepdim=True).clamp_min(eps)` exports."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    raw = g.output[0].name
    norm, clamped, axes, eps = (f"{raw}__reid_trt_{s}" for s in ("norm", "clamped", "axes", "eps"))
    g.initializer.extend([numpy_helper.from_array(np.array([1], np.int64), axes),
                          numpy_helper.from_array(np.array(defaults.L2_EPS, np.float32), eps)])
    named = f"{raw}__reid_trt_raw"
    for node in g.node:
        node.output[:] = [named if o == raw else o for o in node.output]
        node.input[:] = [named if i == raw else i for i in node.input]
    g.node.extend([
        helper.make_node("ReduceL2", [named, axes], [norm], keepdims=1),
        helper.make_node("Clip", [norm, eps], [clamped]),
        helper.make_node("Div", [named, clamped], [raw]),
    ])
    return out


def renamed(model: onnx.ModelProto, input_name: str, output_name: str) -> onnx.ModelProto:
    """`model` with its one input and one output named so (a copy where a name changes)."""
    old_in, old_out = model.graph.input[0].name, model.graph.output[0].name
    if (old_in, old_out) == (input_name, output_name):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = {old_in: input_name, old_out: output_name}
    for node in out.graph.node:
        node.input[:] = [names.get(i, i) for i in node.input]
        node.output[:] = [names.get(o, o) for o in node.output]
    out.graph.input[0].name, out.graph.output[0].name = input_name, output_name
    return out


def with_static_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """A copy of `model` (its batch axis symbolic: freed by with_free_batch, or traced dynamic
    where it could not be) whose input and output take exactly `batch` rows."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    for value in (out.graph.input[0], out.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = batch  # replaces the dim_param
    return out


def with_free_batch(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """`model`, traced at TRACE_BATCH, with its batch axis symbolic; None if any of its nodes
    depends on that batch (shape arithmetic, a constant that broadcasts over the batch), as
    strict shape inference from a symbolic input batch shows. torch.export's symbolic shapes
    cost some 40% of an OSNet trace (osnet_x0_25: 11.3 s against 7.0 s, 2-core AMD EPYC), and
    OSNet computes each row on its own: the two traces are the same graph."""
    if op_counts(model).keys() & SHAPE_OPS:
        return None
    freed = onnx.ModelProto()
    freed.CopyFrom(model)
    del freed.graph.value_info[:]
    freed.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    output = freed.graph.output[0].type.tensor_type
    declared = onnx.TensorShapeProto()
    declared.CopyFrom(output.shape)
    output.ClearField("shape")  # inferred below, not declared
    try:
        inferred = onnx.shape_inference.infer_shapes(freed, strict_mode=True)
    except onnx.shape_inference.InferenceError:
        return None
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    if not dims or dims[0].dim_param != "batch":
        return None
    output.shape.CopyFrom(declared)
    output.shape.dim[0].dim_param = "batch"
    return freed


def onnx_from_model(model: torch.nn.Module, contract: Contract, batch: int | None = None,
                    opset: int = defaults.ONNX_OPSET, trace: tuple | None = None
                    ) -> onnx.ModelProto:
    """A clean, simplified ONNX graph of `model` that honours `contract`.

    Args:
        model: an eval-mode OSNet of `contract.variant` (not modified).
        contract: input format, normalisation, precision and I/O dtype of the graph.
        batch: a static batch size, or None for a dynamic batch axis.
        opset: the ONNX opset to target.
        trace: `trace_key(...)` when `model` is exactly the checkpoint the contract names: its
            trace is then kept and reused within this process.
    """
    onnx_model = traced_graph(model, contract, batch, opset, trace)
    if contract.precision == "fp16":
        # Simplified again: the converter appends its Casts out of topological order.
        onnx_model = _simplify(to_fp16(onnx_model, keep_fp32_io=contract.io_dtype == "fp32"))
    elif contract.precision != "fp32":
        raise ExportError(f"{opt('precision')} {contract.precision}: export writes fp32 or fp16 graphs; "
                          "INT8 graphs come from 'reid-export calibrate'")
    check_graph(onnx_model, get_variant(contract.variant).instance_norms, batch is None)
    onnx_model.producer_name = "reid-trt"
    onnx_model.producer_version = contract.reid_trt_version
    del onnx_model.metadata_props[:]
    onnx.helper.set_model_props(onnx_model, contract.to_metadata())
    onnx.checker.check_model(onnx_model)
    return onnx_model
