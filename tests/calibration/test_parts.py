"""INT8 calibration's parts on the real osnet_x0_25 (MSMT17): ranges, equalisation, placement,
candidates and the search's early stop; the protocols of labelled sets (a dataset's own query and
gallery, --eval-data) on smaller calibrations; the command line's refusals. test_calibrate.py has
the full calibrations with the defaults."""

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from reid_trt.calibration import protocol
from reid_trt.calibration.api import (
    CalibrationConfig,
    Scorer,
    calibrate_onnx,
    load_sets,
)
from reid_trt.calibration.candidates import Int8Graph
from reid_trt.calibration.equalize import channel_ranges, equalize, lightconv_pairs
from reid_trt.calibration.placement import (
    activation_tensors,
    float_nodes,
    int8_layers,
    int8_work,
    residual_adds,
)
from reid_trt.calibration.quantize import QUANTIZED_OPS, Budget, Quantizer, layer_groups
from reid_trt.calibration.ranges import AbsHistograms, mse_threshold, tensor_ranges
from reid_trt.cli.export import app
from reid_trt.core.contract import contract_of
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import ort_disabled_optimizers, ort_session
from reid_trt.core.options import CalibrationMethod
from reid_trt.core.preprocess import graph_input
from reid_trt.data.datasets import load_dataset
from reid_trt.engine.build import BuildConfig, engine_from_onnx
from reid_trt.export.precision import qdq_to_fp16

pytestmark = pytest.mark.slow  # quantizer parts, protocols and smaller calibrations



def test_leave_camera_out_when_there_are_cameras(shared_data):
    dataset = load_dataset(shared_data / "reid" / "mot17-mini")  # two sequences: two cameras
    split = protocol.camera_split(dataset, seed=0)
    assert len(split.held_out_cameras) == 1 and not split.warnings
    assert {s.camid for s in split.pool}.isdisjoint(split.held_out_cameras)
    assert {s.camid for s in split.judged} == set(split.held_out_cameras)
    assert len(split.pool) + len(split.judged) == len(dataset.train)


def test_equalisation_keeps_the_function_and_flattens_ranges(sources, unseen):
    source = sources["msmt17"][0]
    x = graph_input(unseen["MOT17-02"][:32], contract_of(source))
    batches = [x[:16], x[16:]]
    equalized, pairs = equalize(source, batches)
    assert pairs == 60 == len(lightconv_pairs(source))
    a = ort_session(source).run(None, {"images": x})[0]
    b = ort_session(equalized).run(None, {"images": x})[0]
    assert cosine_rows(a, b).min() >= 0.99999
    tensors = [p.tensor for p in lightconv_pairs(source)][:8]
    before = channel_ranges(source, tensors, batches)
    after = channel_ranges(equalized, tensors, batches)
    for name in tensors:  # live channels (dead ones stay dead) end up with one range, or
        live = before[name] > 1e-6 * before[name].max()  # raised by the most it may be (64x)
        spread = lambda r, live=live: r[live].max() / r[live].min()  # noqa: E731
        assert spread(after[name]) < 1.01 or spread(after[name]) < spread(before[name]) / 32


def test_ranges_and_placement(sources, unseen):
    # MSE clips a long thin tail, keeps the maximum of a populated one.
    edges = np.linspace(0, 10, 1001)
    tail = np.zeros(1000, np.int64)
    tail[:100], tail[999] = 10_000, 1
    assert mse_threshold(tail, edges) < 5
    flat = np.full(1000, 100, np.int64)
    assert mse_threshold(flat, edges) > 9.5
    hist = AbsHistograms(bins=64)
    hist.add("t", np.array([0.5, -1.0]))
    hist.add("t", np.array([30.0]))  # widened, not dropped
    assert hist.counts["t"].sum() == 3 and hist.threshold("t", CalibrationMethod.MINMAX) >= 30

    source = sources["msmt17"][0]
    assert len(float_nodes(source)) == 49  # 48 gate convs on 1x1 maps and the Gemm
    assert len(residual_adds(source)) == 6
    x = graph_input(unseen["MOT17-02"][:16], contract_of(source))
    ranges = tensor_ranges(source, [x], CalibrationMethod.MINMAX, activation_tensors(source),
                           QUANTIZED_OPS)
    # The image input gets the pixels' whole range (white in the blue channel: (1 - 0.406) /
    # 0.225), whatever the calibration crops showed, and no headroom beyond it.
    assert float(np.abs(x).max()) <= (1 - 0.406) / 0.225 + 1e-5
    assert ranges.data["images"].range_value[1] == pytest.approx((1 - 0.406) / 0.225, rel=1e-5)
    model = Quantizer(source, ranges)()
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    adds = [n for n in model.graph.node if n.name in {a.name for a in residual_adds(source)}]
    assert all(a.input[1] in dq_outputs for a in adds)  # identity inputs quantized for fusion
    # Q/DQ only where TensorRT wants them: on the data inputs of weighted layers and the
    # identity inputs of residual Adds (no quantized outputs, no quantized gate inputs).
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    gate_inputs = {n.input[0] for n in source.graph.node if n.name in float_nodes(source)}
    assert quantized <= set(activation_tensors(source))
    assert not quantized & (gate_inputs - {a.input[1] for a in residual_adds(source)})
    work = int8_work(source, model)
    assert work.int8_mac_share == 1.0 and work.gemv_layers_float == 49


def test_fp16_remainder_against_fp32_remainder(sources, unseen, tmp_path):
    """The same Q/DQ graph with its float layers in FP16 or FP32: the same embeddings to within
    INT8 rounding, and TensorRT's strongly typed network computes the float layers in FP16."""
    source = sources["msmt17"][0]
    x = graph_input(unseen["MOT17-02"], contract_of(source))
    ranges = tensor_ranges(source, [x[:24], x[24:]], CalibrationMethod.MINMAX,
                           activation_tensors(source), QUANTIZED_OPS)
    float_blocks = {n for part in ("conv2.0", "conv2.1", "conv3.0")
                    for n in layer_groups(source)[part]}
    q32 = Quantizer(source, ranges)(float_blocks)
    q16 = qdq_to_fp16(q32)
    assert ort_disabled_optimizers(q16) == ["WeightBiasQuantization"]
    assert ort_disabled_optimizers(q32) == []
    a = ort_session(q32).run(None, {"images": x})[0]
    b = ort_session(q16).run(None, {"images": x})[0]
    cos = cosine_rows(a, b)
    assert cos.mean() > 0.995 and cos.min() > 0.98
    layers = {}
    for name, model in (("fp32", q32), ("fp16", q16)):
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, path)
        layers[name] = engine_from_onnx(path, tmp_path / f"{name}.plan",
                                        BuildConfig(unquantized=name)).manifest.weighted_layers
    assert set(layers["fp32"]) == {"fp32", "int8"} and set(layers["fp16"]) == {"fp16", "int8"}
    assert layers["fp16"]["fp16"] == layers["fp32"]["fp32"]
    assert layers["fp16"]["int8"] == layers["fp32"]["int8"] == 188 - layers["fp16"]["fp16"]


def test_candidates_are_the_quantizers_graphs(sources, unseen):
    """A candidate rewired from the all-INT8 graph computes what ONNX Runtime's quantizer writes
    when told to leave the same layers float."""
    source = sources["msmt17"][0]
    x = graph_input(unseen["MOT17-02"][:16], contract_of(source))
    ranges = tensor_ranges(source, [x], CalibrationMethod.MSE, activation_tensors(source),
                           QUANTIZED_OPS)
    left = {n for part in ("conv2.0", "conv3.1") for n in layer_groups(source)[part]}
    rewired = Int8Graph(source, ranges)(left)
    quantized = Quantizer(source, ranges)(left)
    assert int8_layers(rewired) == int8_layers(quantized)
    a = ort_session(rewired).run(None, {"images": x})[0]
    b = ort_session(quantized).run(None, {"images": x})[0]
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_a_failing_candidate_stops_early_and_a_holding_one_is_scored_in_full(sources,
                                                                            shared_data):
    """The search's full scorings stop once the rows so far prove the budget cannot hold; the
    figures known then bound the full ones, and a candidate that holds gets exactly the figures
    a full scoring gives (the chunks are the same, so are the bits)."""
    source = sources["msmt17"][0]
    mot04 = shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    sets = load_sets(mot04, CalibrationConfig(size=32, eval_size=32))
    score, budget = Scorer(source, contract_of(source), sets), Budget()
    x = graph_input(sets.calib_crops[:16], contract_of(source))
    ranges = tensor_ranges(source, [x], CalibrationMethod.MSE, activation_tensors(source),
                           QUANTIZED_OPS)
    graph = Int8Graph(source, ranges)
    everything = graph()  # every layer INT8: far from the budget on these crops
    full, early = score(everything), score(everything, budget)
    assert full.rows_scored is None and early.rows_scored < len(score.x) // 2
    assert not budget.holds(full) and not budget.holds(early)
    assert early.low_cosine >= full.low_cosine
    assert early.worst_mean_cosine >= full.worst_mean_cosine
    left = set(graph.int8[:-8])  # the last 8 layers INT8: holds
    assert budget.holds(score(graph(left))) and score(graph(left), budget) == score(graph(left))


def test_labelled_dataset_bounds_the_map_drop(sources, market_like, tmp_path):
    source, sha = sources["msmt17"]
    result = calibrate_onnx(source, sha, market_like, tmp_path / "m.int8.onnx",
                            CalibrationConfig(size=32, method="minmax", eval_size=32))
    report = result.report
    assert report.calibration_set.dataset == "market1501"
    assert report.protocol.split == f"labelled, {market_like}: the set's query vs its gallery, " \
        "across cameras"
    assert report.evaluation_set.queries == 8  # a quarter of the judged crops
    assert 0 < report.fp32_retrieval.mAP <= 1 and report.fp32_retrieval.rank1 > 0.5
    assert report.int8_vs_fp32.map_drop <= 0.5 and report.budget_held


def test_judged_on_a_labelled_cross_camera_set(sources, shared_data, tmp_path):
    """Issue 29: calibrated on MOT17-04 (one camera, no identities across cameras), judged on the
    real CUHK03 identities (--eval-data): the mAP and Rank-1 change are reported beside the
    cosine levels, and the mAP drop is within the budget."""
    source, sha = sources["msmt17"]
    cuhk03 = shared_data / "reid" / "cuhk03-detected"
    config = CalibrationConfig(size=32, method="minmax", eval_size=32, eval_data=cuhk03)
    report = calibrate_onnx(source, sha, shared_data / "reid" / "mot17-mini" / "train" /
                            "MOT17-04-FRCNN", tmp_path / "m.int8.onnx", config).report
    assert report.protocol.split.startswith(f"labelled, {cuhk03}: camera 1's crops query")
    assert report.protocol.warnings == [] and report.protocol.judged_unseen
    assert report.evaluation_set.queries == 8 and report.evaluation_set.images > 16
    assert 0.3 < report.fp32_retrieval.mAP <= 1  # real identities, not chance
    a = report.int8_vs_fp32
    assert a.map_drop is not None and a.rank1_drop is not None
    assert a.map_drop <= config.budget.max_map_drop and report.budget_held
    assert "query and gallery" in report.domains


def test_cli_eval_data_must_be_labelled_across_cameras(graphs, shared_data, tmp_path):
    mot = shared_data / "reid" / "mot17-mini"
    result = runner.invoke(app, ["calibrate", "--onnx", str(graphs["osnet_x0_25", "fp32"]),
                                 "--calib-data", str(mot), "--eval-data", str(mot),
                                 "-o", str(tmp_path / "m.int8.onnx")])
    assert result.exit_code == 1 and "\n" not in result.stderr.strip()
    assert f"--eval-data {mot}: no query/gallery split; MOT17 track ids" in result.stderr
    assert list(tmp_path.iterdir()) == []


runner = CliRunner()


@pytest.mark.parametrize("setup,options,message", [
    (lambda p: None, [], "no images"),
    (lambda p: (p / "a.txt").write_text("x"), [], "no images"),
    (lambda p: cv2.imwrite(str(p / "a.jpg"), np.zeros((8, 8, 3), np.uint8)),
     ["--calib-dataset", "market1501"], "has no bounding_box_train"),
    (lambda p: cv2.imwrite(str(p / "a.jpg"), np.zeros((8, 8, 3), np.uint8)),
     ["--calib-size", "5"], "--calib-size 5: larger than the set (1 images)"),
    # Issue 18: degenerate sets are refused, not calibrated with a budget "held".
    (lambda p: [cv2.imwrite(str(p / f"{i:04d}_c1s1_000001_00.png"), np.zeros((128, 64, 3),
                                                                                np.uint8))
                for i in range(12)], [], "12 of the 12 calibration images are blank"),
    (lambda p: [cv2.imwrite(str(p / f"{i:04d}_c1s1_000001_00.png"),
                            np.full((128, 64, 3), 40 + 15 * i, np.uint8)) for i in range(12)],
     [], "blank or nearly so"),
    (lambda p: [cv2.imwrite(str(p / f"{i:04d}_c1s1_000001_00.png"),
                            np.random.default_rng(0).integers(0, 255, (128, 64, 3), np.uint8))
                for i in range(12)], [], "only 1 distinct images among 12"),
])
def test_cli_bad_calibration_data(real_weights, tmp_path, setup, options, message):
    data = tmp_path / "data"
    data.mkdir()
    setup(data)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["calibrate", "-w", str(real_weights["msmt17"]), "--calib-data",
                                 str(data), "-o", str(out / "m.int8.onnx"), *options])
    assert result.exit_code == 1 and message in result.stderr and "\n" not in result.stderr.strip()
    assert list(out.iterdir()) == []


def test_cli_int8_needs_data_and_an_fp32_graph(real_weights, tmp_path, shared_data):
    result = runner.invoke(app, ["trt", "--int8", "-w", str(real_weights["msmt17"]),
                                 "-o", str(tmp_path / "m.plan")])
    assert result.exit_code == 1 and "--calib-data: INT8 needs" in result.stderr
    fp16 = tmp_path / "m.fp16.onnx"
    runner.invoke(app, ["onnx", "-w", str(real_weights["msmt17"]), "-o", str(fp16),
                        "--precision", "fp16"])
    result = runner.invoke(app, ["calibrate", "--onnx", str(fp16), "--calib-data",
                                 str(shared_data / "reid" / "market1501"), "--calib-size", "4"])
    assert result.exit_code == 1 and "calibration takes an fp32 graph" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fp16.onnx"]
