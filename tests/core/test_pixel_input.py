"""ONNX Runtime on the CPU feeds an FP32 graph the resized uint8 batch, normalised inside the graph:
the same embeddings as NumPy's normalisation, on real boxes."""

from __future__ import annotations

import numpy as np
import onnx

from reid_trt.core.contract import contract_of
from reid_trt.core.onnxio import load_onnx, ort_session
from reid_trt.core.pixel_input import with_uint8_bgr_input
from reid_trt.core.preprocess import normalize_nhwc_bgr, resize_bgr
from reid_trt.data.mot import mot_crops
from reid_trt.runtime.embedder import Embedder


def test_the_uint8_graph_computes_what_the_float_one_does(graphs, shared_data):
    graph = load_onnx(graphs["osnet_x0_25", "fp32"])
    contract = contract_of(graph)
    wrapped = with_uint8_bgr_input(graph, contract)
    assert [n.op_type for n in wrapped.graph.node[:4]] == ["Cast", "Transpose", "Add", "Conv"]
    source = wrapped.graph.input[0]
    assert source.name == graph.graph.input[0].name
    assert source.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in source.type.tensor_type.shape.dim][1:] == [256, 128, 3]
    # the folded stem weights replace the old ones: one initializer more (the mean), none left over
    assert len(wrapped.graph.initializer) == len(graph.graph.initializer) + 1
    onnx.checker.check_model(wrapped)
    crops, _ = mot_crops(shared_data / "reid/mot17-mini/train/MOT17-04-FRCNN", max_frames=1)
    batch = resize_bgr(crops[:16], (256, 128))
    name = source.name
    want = ort_session(graph).run(None, {name: normalize_nhwc_bgr(batch)})[0]
    got = ort_session(wrapped).run(None, {name: batch})[0]
    cosine = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert cosine.min() >= 0.999999 and np.abs(want - got).max() < 1e-4


def test_only_fp32_graphs_read_by_convolutions_are_wrapped(graphs):
    fp16 = load_onnx(graphs["osnet_x0_25", "fp16"])
    assert with_uint8_bgr_input(fp16, contract_of(fp16)) is None
    graph = load_onnx(graphs["osnet_x0_25", "fp32"])
    stem = next(n for n in graph.graph.node if graph.graph.input[0].name in n.input)
    stem.op_type = "Relu"  # the input read by something else: left as it is
    del stem.input[1:]
    del stem.attribute[:]
    assert with_uint8_bgr_input(graph, contract_of(graph)) is None


def test_the_cpu_backend_says_what_it_takes(graphs):
    with Embedder(graphs["osnet_x0_25", "fp32"], device="cpu", backend="onnxruntime") as e:
        assert e.contract.input_format == "uint8-bgr"
        assert e.backend.model_contract.input_format == "float"
        assert e.backend.session.get_inputs()[0].type == "tensor(uint8)"
    with Embedder(graphs["osnet_x0_25", "fp16"], device="cpu", backend="onnxruntime") as e:
        assert e.contract.input_format == "float"  # left to NumPy
