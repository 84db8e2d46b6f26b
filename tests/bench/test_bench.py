"""reid-bench on the CPU, CI-sized: ONNX Runtime subjects against the PyTorch baseline on the
real osnet_x0_25 weights; the JSON, Markdown and PNG outputs; retrieval on a labelled set; the
engine's companion graph; bad inputs."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from reid_trt.bench.report import int8_slower
from reid_trt.bench.run import BenchConfig, companion_onnx, run_bench
from reid_trt.bench.timing import summarize
from reid_trt.cli.bench import app
from reid_trt.core.machine import INT8_CPU_FLAGS
from reid_trt.engine.build import engine_from_onnx

pytestmark = pytest.mark.slow  # reid-bench runs

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(real_weights):
    return real_weights["msmt17"]


@pytest.fixture(scope="module")
def graphs(graphs, static4_graph):
    """The session's exports of the real osnet_x0_25 (MSMT17): read here, never written."""
    return {"fp32": graphs["osnet_x0_25", "fp32"], "fp16": graphs["osnet_x0_25", "fp16"],
            "static4": static4_graph}


@pytest.fixture(scope="module")
def cli_run(weights, graphs, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    result = runner.invoke(app, [
        "-w", str(weights), "--onnx", str(graphs["fp32"]), "--onnx", str(graphs["fp16"]),
        "--batch", "1,4", "--runs", "4", "--warmup", "1", "--rounds", "2",
        "--crops", str(shared_data / "reid" / "market1501"),
        "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--plot", str(out / "r.png")])
    assert result.exit_code == 0, result.output
    return result, out


def test_json_report(cli_run, weights):
    result, out = cli_run
    report = json.loads((out / "r.json").read_text())
    assert report["tool"] == "reid-bench" and report["settings"]["batches"] == [1, 4]
    assert report["schema"] == 4
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch"].startswith("2.")
    # Every figure names its machine: the CPU with family and model, and the kernel flags.
    from reid_trt.core.machine import cpu_flags, cpu_model

    assert report["machine"]["cpu"] == cpu_model() and report["machine"]["cpu_flags"] == cpu_flags()
    assert report["machine"]["machine"].startswith(cpu_model())
    # TensorRT's version where this process loaded it, never imported to say so
    from reid_trt.core.trt_compat import loaded_trt

    assert report["machine"].get("tensorrt") == (loaded_trt()[-1].label if loaded_trt() else None)
    # The crops it timed, their sizes, and what resizing them costs (the 9 Market-1501 crops are
    # all 128x64).
    sizes = report["settings"]["crop_sizes"]
    assert sizes == {"count": 9, "height": [128, 128, 128], "width": [64, 64, 64]}
    assert report["settings"]["isolated"] is True  # each subject timed in its own process
    resize = report["settings"]["resize_ms"]
    assert set(resize) == {"1", "4"} and 0 < resize["1"] < resize["4"]
    labels = [s["label"] for s in report["subjects"]]
    assert labels == ["pytorch fp32", "ort fp32", "ort fp16"]
    assert report["reference"] == "pytorch fp32"
    baseline, fp32, fp16 = report["subjects"]
    assert baseline["role"] == "baseline" and baseline["parity"] is None
    assert baseline["path"] == str(weights)
    # Parity on 9 real Market-1501 crops, against PyTorch in the same run.
    assert fp32["parity"]["crops"] == 9 and fp32["parity"]["min_cosine"] > 0.99999
    assert 0.999 < fp16["parity"]["min_cosine"] <= fp16["parity"]["mean_cosine"] <= 1.0 + 1e-6
    assert fp32["parity"]["topk_agreement"] == 1.0 and fp32["parity"]["k"] == 5
    assert fp32["same_weights"] is True and fp16["precision"] == "fp16"
    for subject in report["subjects"]:
        assert subject["device"] == "cpu" and subject["device_memory_mib"] is None
        assert [row["batch"] for row in subject["latency"]] == [1, 4]
        for row in subject["latency"]:
            for mode in ("end_to_end", "compute"):
                t = row[mode]
                assert t["runs"] == 4 and 0 < t["p50_ms"] <= t["p90_ms"] <= t["p99_ms"]
                assert t["throughput"] == pytest.approx(row["batch"] * 1000 / t["mean_ms"])
                reference = baseline["latency"][[1, 4].index(row["batch"])][mode]
                assert row[f"speedup_{mode}"] == pytest.approx(
                    t["throughput"] / reference["throughput"])
    assert all(row["speedup_end_to_end"] == 1.0 for row in baseline["latency"])


def test_terminal_markdown_and_plot(cli_run):
    result, out = cli_run
    assert "ort fp16" in result.output and "wrote" in result.output
    md = (out / "r.md").read_text().splitlines()
    assert md[0].startswith("reid-bench ") and "ratios against pytorch fp32" in md[0]
    assert "9 crops, 128-128 px tall (median 128), 64-64 px wide" in md[0]
    assert "torchreid's resize of them, inside every e2e figure:" in md[0]
    rows = [line for line in md if line.startswith("| ort fp32 | ")]
    assert len(rows) == 1 + 2  # one accuracy row, one latency row per batch size
    png = (out / "r.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_retrieval_on_a_labelled_set(weights, graphs, market_like):
    config = BenchConfig(batches=(2,), runs=1, warmup=0, rounds=1, num_crops=8,
                         dataset=("market1501", market_like), max_queries=20)
    report = run_bench([], [graphs["fp32"]], weights, config)
    torch_scores, ort_scores = (s.retrieval for s in report.subjects)
    assert report.settings.dataset.queries == 20
    assert report.settings.dataset.gallery > 20
    assert 0 < torch_scores.mAP <= 1 and torch_scores.rank1 > 0.5
    # Same weights in FP32: the same ranking up to float noise.
    assert ort_scores.mAP == pytest.approx(torch_scores.mAP, abs=1e-3)
    assert ort_scores.rank1 == torch_scores.rank1


def test_static_graph_and_first_subject_as_reference(graphs):
    """Without --weights the first subject is the reference; a static batch-4 graph is timed end
    to end at batch 1 (padded), but not compute only."""
    config = BenchConfig(batches=(1, 4), runs=3, warmup=0, rounds=2, num_crops=6)
    report = run_bench([], [graphs["static4"], graphs["fp32"]], None, config)
    static, dynamic = report.subjects
    assert report.reference == static.label == "ort fp32 osnet.static4.onnx"
    assert dynamic.parity.min_cosine > 0.99999 and dynamic.same_weights is None
    one, four = static.latency
    assert one.compute is None and one.note == "static batch 4"
    assert one.end_to_end.runs == 3 and four.compute.runs == 3  # 2 + 1 in 2 rounds

    # An INT8 subject slower than an FP32 one on the same device is noted, batch by batch, with
    # what this CPU has for INT8 (the dynamic graph relabelled INT8: the note reads the timings).
    dynamic.precision = "int8"
    slower = [row.batch for row, ref in zip(dynamic.latency, static.latency, strict=True)
              if row.end_to_end.throughput < ref.end_to_end.throughput]
    notes = int8_slower(report)
    assert len(notes) == (1 if slower else 0)
    for note in notes:
        assert "is slower than ort fp32 osnet.static4.onnx" in note
        assert "no VNNI or AMX" in note or any(flag in note for flag in INT8_CPU_FLAGS)
        assert all(f"batch {b}:" in note for b in slower)


def test_companion_onnx_of_an_engine(graphs, tmp_path):
    engine = tmp_path / "osnet.fp32.plan"
    onnx_copy = tmp_path / "osnet.fp32.onnx"
    onnx_copy.write_bytes(graphs["fp32"].read_bytes())
    (tmp_path / "osnet.other.onnx").write_bytes(graphs["fp16"].read_bytes())
    engine_from_onnx(onnx_copy, engine)
    assert companion_onnx(engine) == onnx_copy
    onnx_copy.unlink()
    assert companion_onnx(engine) is None  # the fp16 graph beside it is not its source


def test_timing_statistics():
    lat = summarize([0.001 * v for v in range(1, 101)], batch=10)
    assert (lat.p50_ms, lat.p90_ms, lat.p99_ms) == pytest.approx((50.5, 90.1, 99.01))
    assert lat.mean_ms == pytest.approx(50.5) and lat.throughput == pytest.approx(10 / 0.0505)


@pytest.mark.parametrize("args,message", [
    ([], "nothing to benchmark"),
    (["--onnx", "missing.onnx"], "missing.onnx: no such file"),
    (["--onnx", "{fp32}", "--batch", "0,4"], "--batch 0: must be between 1 and 4096"),
    (["--onnx", "{fp32}", "--batch", "a"], "not a list of batch sizes"),
    (["--onnx", "{fp32}", "--json", "{tmp}/no/such/dir/r.json"], "does not exist"),
    (["--onnx", "{fp32}", "--dataset", "mot17", "{mot}"], "no query/gallery split"),
    (["--onnx", "{fp32}", "--dataset", "market1501", "{tmp}/nothing"], "no such directory"),
    (["--onnx", "{fp32}", "--dataset", "market1501", "{tmp}"], "has no bounding_box_train"),
])
def test_bad_input(graphs, shared_data, tmp_path, args, message):
    values = {"fp32": graphs["fp32"], "tmp": tmp_path, "mot": shared_data / "reid" / "mot17-mini"}
    args = [a.format(**values) for a in args] + ["--runs", "1", "--batch", "1"] * (
        "--batch" not in args)
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert "--calib" not in result.output and "plain folder" not in result.output
    assert not any(p.suffix in (".json", ".md", ".png") for p in tmp_path.rglob("*"))


def test_engine_on_the_cpu_points_to_its_graph(graphs, tmp_path):
    engine = tmp_path / "osnet.plan"
    engine_from_onnx(graphs["fp32"], engine)
    result = runner.invoke(app, ["--engine", str(engine), "--device", "cpu", "--json",
                                 str(tmp_path / "r.json")])
    assert result.exit_code == 1 and "on the CPU use the .onnx" in result.output
    assert not (tmp_path / "r.json").exists()


def test_detector_like_crops_vary_in_size():
    from reid_trt.bench.run import bench_crops

    crops, note = bench_crops(BenchConfig(num_crops=16))
    heights = np.array([c.shape[0] for c in crops])
    assert len(crops) == 16 and "generated" in note
    assert heights.min() >= 60 and heights.max() < 400 and len(set(heights)) > 8


def test_crops_from_a_mot_tree(shared_data):
    from reid_trt.bench.run import bench_crops

    crops, note = bench_crops(BenchConfig(crops_dir=shared_data / "reid" / "mot17-mini",
                                          num_crops=24))
    assert len(crops) == 24 and "ground-truth boxes" in note
    assert all(c.ndim == 3 and c.shape[0] >= 32 for c in crops)


def test_graph_from_other_weights_is_flagged(real_weights, graphs, tmp_path):
    result = runner.invoke(app, ["-w", str(real_weights["market1501"]), "--onnx",
                                 str(graphs["fp32"]), "--batch", "1", "--runs", "1",
                                 "--num-crops", "4", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "was not exported from the --weights file" in " ".join(result.output.split())
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["subjects"][1]["same_weights"] is False and report["settings"]["rounds"] == 1
    assert report["subjects"][1]["parity"]["mean_cosine"] < 0.99  # two different models
