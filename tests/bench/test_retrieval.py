"""Real cross-camera retrieval (issue 29): the shared CUHK03 crops (50 identities, camera 1
queries camera 2) scored through Embedder equal torchreid's own pipeline's mAP and Rank-1 in
FP32 and FP16; reid-bench evaluates a query+gallery root and a flat set and names its protocol;
its subjects run the runtime their option names, each once."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from reid_trt import Embedder
from reid_trt.bench.accuracy import load_protocol, retrieval
from reid_trt.bench.run import BenchConfig, run_bench
from reid_trt.cli.bench import app
from reid_trt.core.metrics import evaluate
from reid_trt.models.checkpoint import load_model
from tests.conftest import torchreid_embed

pytestmark = pytest.mark.slow  # embeds the 492 crops several times

runner = CliRunner()


@pytest.fixture(scope="module")
def cuhk03(shared_data):
    return shared_data / "reid" / "cuhk03-detected"


@pytest.fixture(scope="module")
def protocol(cuhk03):
    return load_protocol("auto", cuhk03, None)


def torchreid_scores(weights, protocol):
    """torchreid's test pipeline (PIL resize, the network), scored by cosine."""
    model = load_model(weights).model.eval()
    p = protocol
    return evaluate(torchreid_embed(model, p.query_crops), [s.pid for s in p.query],
                    [s.camid for s in p.query], torchreid_embed(model, p.gallery_crops),
                    [s.pid for s in p.gallery], [s.camid for s in p.gallery])


def test_the_protocol_is_camera_1_against_camera_2(protocol, cuhk03):
    names = [p.name for p in cuhk03.iterdir()]
    assert len(protocol.query) == sum("_c1s" in n for n in names) > 200
    assert len(protocol.gallery) == sum("_c2s" in n for n in names) > 200
    assert {s.camid for s in protocol.query} == {0} and {s.camid for s in protocol.gallery} == {1}
    assert "camera 1" in protocol.name and protocol.unreadable == 0


def test_fp32_and_fp16_equal_torchreid(protocol, graphs, real_weights):
    want = torchreid_scores(real_weights["msmt17"], protocol)
    assert 0.3 < want.mAP < 0.9  # a real model on real identities, not chance (~0.03)
    for precision, points in (("fp32", 0.1), ("fp16", 0.3)):
        with Embedder(graphs["osnet_x0_25", precision], device="cpu") as embedder:
            got = retrieval(embedder, protocol)
        print(f"{precision}: mAP {100 * got.mAP:.2f} / R-1 {100 * got.rank1:.2f} against "
              f"torchreid {100 * want.mAP:.2f} / {100 * want.rank1:.2f}")
        assert abs(got.mAP - want.mAP) * 100 <= points, precision
        assert abs(got.rank1 - want.rank1) * 100 <= points, precision


def test_reid_bench_on_a_query_gallery_root_without_training_split(graphs, market_like, tmp_path):
    root = tmp_path / "eval"
    for split in ("query", "bounding_box_test"):
        shutil.copytree(market_like / split, root / split)
    config = BenchConfig(batches=(2,), runs=1, warmup=0, rounds=1, num_crops=4,
                         dataset=("market1501", root))
    report = run_bench([], [str(graphs["osnet_x0_25", "fp32"])], None, config)  # str paths too
    scores = report.subjects[0].retrieval
    assert report.settings.dataset.queries == len(list((root / "query").iterdir()))
    assert "query vs its gallery" in report.settings.dataset.protocol
    assert 0 < scores.mAP <= 1 and set(scores.cmc) == {1, 5, 10}


def test_reid_bench_cli_on_the_flat_set_with_honest_subjects(graphs, cuhk03, tmp_path):
    """--onnx runs ONNX Runtime and --openvino OpenVINO on the same file: two rows, each naming
    its runtime; --embedder on a file that resolves to a subject already there adds no row."""
    graph = str(graphs["osnet_x0_25", "fp32"])
    out = tmp_path / "r.md"
    result = runner.invoke(app, ["--onnx", graph, "--openvino", graph, "--embedder", graph,
                                 "--onnx", graph, "--batch", "8", "--runs", "1", "--warmup", "0",
                                 "--rounds", "1", "--num-crops", "4", "--max-queries", "60",
                                 "--dataset", "cuhk03", str(cuhk03), "--markdown", str(out),
                                 "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["label"] for s in report["subjects"]] == ["ort fp32", "openvino fp32"]
    assert "camera 1's crops query the other cameras'" in text and "60 queries" in text
    assert report["settings"]["dataset"]["queries"] == 60
    for subject in report["subjects"]:
        scores = subject["retrieval"]
        assert scores["queries"] == 60
        assert 0 < scores["mAP"] <= 1 and scores["rank1"] <= scores["rank5"] <= 1


def test_onnx_subject_must_be_a_graph(graphs, tmp_path):
    ir = tmp_path / "m.xml"
    ir.write_text("<net/>")
    result = runner.invoke(app, ["--onnx", str(ir)])
    assert result.exit_code == 1
    assert "--onnx" in result.output and "--openvino" in result.output
    assert "Traceback" not in result.output
