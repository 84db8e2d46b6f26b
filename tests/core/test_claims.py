"""Files checked against what they claim (issue 30): a graph carrying reid-trt metadata copied
from a real export, but computing something else, is refused with one line by every command
and API that reads graphs, before any build, conversion or session, and nothing is written."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from reid_trt import Embedder
from reid_trt.cli.export import app
from reid_trt.core.contract import contract_of
from reid_trt.core.errors import ReidTrtError

runner = CliRunner()


def forged(real: onnx.ModelProto, out_channels: int = 4, output_rank: int = 4,
           input_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """One Conv (output N,C,254,126, or flattened to N,C*...) under the real export's metadata."""
    weight = numpy_helper.from_array(np.ones((out_channels, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["images", "w"], ["conv"])]
    out_shape = ["N", out_channels, 254, 126]
    if output_rank == 2:
        nodes.append(helper.make_node("Flatten", ["conv"], ["embeddings"]))
        out_shape = ["N", out_channels * 254 * 126]
    else:
        nodes[0].output[0] = "embeddings"
    graph = helper.make_graph(
        nodes, "forged", [helper.make_tensor_value_info("images", input_type, ["N", 3, 256, 128])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, out_shape)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    model.metadata_props.extend(real.metadata_props)
    return model


@pytest.fixture(scope="module")
def real(graphs):
    return onnx.load(graphs["osnet_x0_25", "fp32"])


@pytest.mark.parametrize("kwargs,why", [
    ({}, "output shape ('N', 4, 254, 126), not (N, 512)"),
    ({"output_rank": 2}, "output shape ('N', 128016), not (N, 512)"),
    ({"input_type": TensorProto.UINT8}, "input uint8, not float32"),
])
def test_the_contract_must_describe_the_graph(real, kwargs, why):
    assert contract_of(real).embedding_dim == 512  # the real export passes
    with pytest.raises(ReidTrtError, match="its reid-trt metadata does not describe this graph"
                       ) as e:
        contract_of(forged(real, **kwargs), "forged.onnx")
    assert why in str(e.value) and "reid-export adopt" in str(e.value)


def test_every_reader_refuses_a_forged_graph(real, tmp_path):
    path = tmp_path / "forged.onnx"
    onnx.save(forged(real), path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(ReidTrtError, match="does not describe this graph"):
            Embedder(path, backend=backend)
    for args in (["trt", "--onnx", str(path), "-o", str(tmp_path / "f.plan")],
                 ["openvino", "--onnx", str(path), "-o", str(tmp_path / "f.xml")],
                 ["triton", "--onnx", str(path), "--repo", str(tmp_path / "repo")],
                 ["inspect", str(path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert "does not describe this graph" in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_an_ir_whose_contract_is_not_its_graph(real, graphs, tmp_path):
    """An OpenVINO IR carrying a contract that disagrees with its own ports (edited, or copied
    from another model) is refused by Embedder with what disagrees."""
    import dataclasses

    import openvino as ov

    from reid_trt.core.openvino_ir import write_contract

    model = ov.convert_model(str(graphs["osnet_x0_25", "fp32"]))
    write_contract(model, dataclasses.replace(contract_of(real), embedding_dim=256, height=384))
    xml = tmp_path / "edited.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    with pytest.raises(ReidTrtError) as e:
        Embedder(xml)
    assert "not ('N', 3, 384, 128)" in str(e.value) and "not (N, 256)" in str(e.value)


def test_a_third_party_graph_is_pointed_to_adopt(shared_data, tmp_path):
    """The shared BoxMOT-style export carries no contract: Embedder and every command that reads
    graphs say to adopt it (issue 30), not to export it."""
    graph = shared_data / "weights" / "osnet_x0_25_msmt17.onnx"
    with pytest.raises(ReidTrtError, match="'reid-export adopt GRAPH'"):
        Embedder(graph, backend="onnxruntime")
    for args in (["trt", "--onnx", str(graph), "-o", str(tmp_path / "t.plan")],
                 ["openvino", "--onnx", str(graph), "-o", str(tmp_path / "t.xml")],
                 ["inspect", str(graph)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "reid-export adopt GRAPH" in result.stderr, args
    assert list(tmp_path.iterdir()) == []
