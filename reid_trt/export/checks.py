"""Invariants of an exported graph, checked before it is written."""

from __future__ import annotations

from collections import Counter

import onnx

from reid_trt.core.errors import ExportError

# Shape arithmetic: TensorRT handles it, but it blocks layer fusion and hides static shapes.
SHAPE_OPS = {"Shape", "Gather", "Concat", "Reshape", "Expand", "ConstantOfShape"}


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


def grouped_conv_count(model: onnx.ModelProto) -> int:
    return sum(1 for node in model.graph.node if node.op_type == "Conv"
               and any(a.name == "group" and a.i > 1 for a in node.attribute))


def batch_dim(model: onnx.ModelProto) -> int | str:
    """The batch dimension of the first input: an int, or the symbolic name if dynamic."""
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_param if dim.dim_param else dim.dim_value


def check_graph(model: onnx.ModelProto, instance_norms: int, dynamic_batch: bool) -> None:
    """Raises ExportError naming the first broken invariant of a clean OSNet graph."""
    counts = op_counts(model)
    problems = []
    if counts["BatchNormalization"]:
        problems.append(f"{counts['BatchNormalization']} BatchNormalization nodes left unfolded")
    if counts["InstanceNormalization"] != instance_norms:
        problems.append(f"{counts['InstanceNormalization']} InstanceNormalization nodes, "
                        f"expected {instance_norms} (decomposed into reductions?)")
    if not grouped_conv_count(model):
        problems.append("no grouped (depthwise) Conv: the depthwise convs were rewritten")
    shape_ops = sorted(op for op in SHAPE_OPS if counts[op])
    if shape_ops:
        problems.append(f"shape arithmetic in the graph: {', '.join(shape_ops)}")
    if dynamic_batch != isinstance(batch_dim(model), str):
        problems.append(f"batch axis is {batch_dim(model)!r}, "
                        f"expected {'dynamic' if dynamic_batch else 'static'}")
    if problems:
        raise ExportError("exported graph is not clean: " + "; ".join(problems) +
                          " (please report this with your torch and onnx versions)")
