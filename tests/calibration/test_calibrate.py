"""INT8 calibration of the real osnet_x0_25 weights: judged across cameras, as issue 11 asks.

Calibrated with the defaults on the MOT17-04 boxes only (one camera), judged in a plain ONNX
Runtime session on cameras and datasets calibration never saw (MOT17-02, Market-1501, MSMT17,
CUHK03) and on shifted copies of them; the written graph is right in every runtime and builds.
Issue 18: the same graph from a fresh process and from slightly different images, most of the
work in INT8, and the engine's own layer report agreeing with the graph."""

import json
import os
import shutil
import struct
import subprocess
import sys

import cv2
import onnx
import onnxruntime as ort
import pytest

from reid_trt.calibration import protocol
from reid_trt.calibration.api import (
    calibrate_onnx,
)
from reid_trt.calibration.cache import calibration_hash
from reid_trt.calibration.placement import (
    int8_layers,
)
from reid_trt.core.contract import contract_of
from reid_trt.core.engine_file import EngineFile, disagreements
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import ort_disabled_optimizers, ort_session
from reid_trt.core.preprocess import graph_input
from reid_trt.engine.build import BuildConfig, engine_from_onnx
from tests.calibration.conftest import CAMERA_SHIFTS

pytestmark = pytest.mark.slow  # full INT8 calibrations with the defaults (about 5 minutes)



@pytest.fixture(scope="module")
def fresh_process(real_weights, shared_data, tmp_path_factory):
    """The MSMT17 weights calibrated (defaults, MOT17-04) in a fresh Python process, started
    before the calibrations in this one so that the two run side by side (issue 18: neither
    the process nor the load beside it may move the result)."""
    mot04 = shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    out = tmp_path_factory.mktemp("fresh") / "fresh.int8.onnx"
    process = subprocess.Popen(
        [sys.executable, "-c", CALIBRATE_IN_A_FRESH_PROCESS, str(real_weights["msmt17"]),
         str(mot04), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONHASHSEED": "123"})
    yield process
    process.kill()
    process.communicate()


@pytest.fixture(scope="module")
def calibrated(sources, real_weights, shared_data, tmp_path_factory, fresh_process):
    """weights name -> CalibrationResult, defaults, MOT17-04 boxes only."""
    mot04 = shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    return {name: calibrate_onnx(*sources[name], mot04, tmp_path_factory.mktemp(name) /
                                 f"{name}.int8.onnx")
            for name in real_weights}


def test_int8_holds_on_cameras_it_never_saw(calibrated, sources, unseen):
    for name, result in calibrated.items():
        source = sources[name][0]
        contract = contract_of(source)
        fp32 = ort.InferenceSession(source.SerializeToString(), providers=["CPUExecutionProvider"])
        # Q/DQ as written, in float: what TensorRT computes (ONNX Runtime's fused integer kernels
        # saturate on x86 CPUs without VNNI, core/onnxio.ort_session)
        int8 = ort_session(result.path, int8_in_float=True)
        for label, crops in unseen.items():
            x = graph_input(crops, contract)
            cos = cosine_rows(int8.run(None, {"images": x})[0], fp32.run(None, {"images": x})[0])
            print(f"{name} {label}: mean {cos.mean():.4f} min {cos.min():.4f}")
            assert cos.mean() >= 0.995 and cos.min() >= 0.98, (name, label)
        report = result.report
        assert report.budget_held and report.int8_work.int8_mac_share >= 0.8
        # Keeping the gates' GEMV layers float is what makes INT8 hold at all; the search
        # then keeps only the blocks that still cost accuracy.
        assert report.int8_work.gemv_layers_float == 49


def test_int8_graph_holds_on_openvino_as_it_is(calibrated, sources, unseen, monkeypatch, tmp_path):
    """The same file on OpenVINO (issue 14): its integer kernels meet the same levels."""
    from reid_trt.core.machine import int8_kernels_unsafe
    from reid_trt.runtime.embedder import Embedder

    for name, result in calibrated.items():
        if int8_kernels_unsafe():  # no VNNI/AMX: OpenVINO's INT8 is refused, not wrong
            with pytest.raises(ReidTrtError, match="without VNNI or AMX.*backend='onnxruntime'"):
                Embedder(result.path, backend="openvino")
            monkeypatch.delenv("REID_TRT_CPU_BACKEND", raising=False)  # the choice, unpinned
            monkeypatch.setenv("REID_TRT_CACHE_DIR", str(tmp_path / name))
            with Embedder(result.path) as chosen:  # the CPU choice falls back to ONNX Runtime
                assert chosen.backend_name == "onnxruntime"
                assert "openvino cannot run it" in chosen.cpu_choice.reason
            continue
        fp32 = ort.InferenceSession(sources[name][0].SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        contract = contract_of(sources[name][0])
        with Embedder(result.path, backend="openvino", normalize=False) as int8:
            for label, crops in unseen.items():
                x = graph_input(crops, contract)
                # the Embedder feeds OpenVINO the resized uint8 batch (normalisation compiled in)
                cos = cosine_rows(int8.embed(crops), fp32.run(None, {"images": x})[0])
                assert cos.mean() >= 0.995 and cos.min() >= 0.98, (name, label)


def test_int8_retrieval_on_real_cross_camera_identities(calibrated, sources, shared_data,
                                                        tmp_path, monkeypatch):
    """Issue 29: with the defaults (MOT17-04 alone), INT8 keeps mAP within 0.5 points and Rank-1
    within 1.0 of the FP32 graph on real identities in two cameras (CUHK03, camera 1 queries
    camera 2), through Embedder, on crops of every size, computed as TensorRT computes it: the
    Q/DQ pairs in float, the arithmetic calibration judged, the same on every machine (ONNX
    Runtime's own on x86 CPUs without VNNI). (The FP32 graph's own figures are held to
    torchreid's pipeline within 0.1 in tests/bench/test_retrieval.py.)

    A CPU with VNNI or AMX runs the graph on ONNX Runtime's and OpenVINO's integer kernels, which
    round elsewhere: on an AMD EPYC Zen 5 the MSMT17 graph's mean cosine to FP32 was the same
    (0.9973) but it lost 0.50 / 0.52 mAP and 1.6 / 2.5 Rank-1 points (4 and 6 of 243 queries)
    against 0.36 / 0.4 in float. Those kernels are held to 1.0 mAP and 4.0 Rank-1 points (10
    queries: Rank-1 moves in steps of 0.41 here, and the two kernels already differ by 0.8)."""
    from reid_trt.bench.accuracy import load_protocol, retrieval
    from reid_trt.core.machine import int8_kernels_unsafe
    from reid_trt.runtime.backends import onnxruntime as ort_backend
    from reid_trt.runtime.embedder import Embedder

    def scored(path, backend):
        with Embedder(path, device="cpu", backend=backend) as embedder:
            return retrieval(embedder, cuhk03)

    cuhk03 = load_protocol("auto", shared_data / "reid" / "cuhk03-detected", None)
    kernels = () if int8_kernels_unsafe() else ("onnxruntime", "openvino")
    for name, result in calibrated.items():
        fp32_path = tmp_path / f"{name}.fp32.onnx"
        onnx.save(sources[name][0], fp32_path)
        want = scored(fp32_path, "onnxruntime")
        with monkeypatch.context() as float_qdq:  # what the runtime does on a CPU without VNNI
            float_qdq.setattr(ort_backend, "int8_kernels_unsafe", lambda: True)
            int8 = scored(result.path, "onnxruntime")
        on_kernels = {backend: scored(result.path, backend) for backend in kernels}
        print(name, {k: (round(100 * v.mAP, 2), round(100 * v.rank1, 2))
                     for k, v in {"fp32": want, "int8": int8, **on_kernels}.items()})
        # real models on real identities, not chance (~0.03): MSMT17 ~0.5, Market-1501 0.27
        assert 0.2 < want.mAP < 0.9, name
        # INT8 may lose at most 0.5 mAP / 1.0 Rank-1 points; a larger move either way is drift
        # (measured against PyTorch: MSMT17 -0.3 / -0.4, Market-1501 +0.5 / +1.2 on 243 queries)
        assert want.mAP - int8.mAP <= 0.005 and want.rank1 - int8.rank1 <= 0.010, name
        assert abs(int8.mAP - want.mAP) <= 0.015 and abs(int8.rank1 - want.rank1) <= 0.025, name
        for backend, got in on_kernels.items():
            assert want.mAP - got.mAP <= 0.010 and want.rank1 - got.rank1 <= 0.040, (name, backend)


def test_openvino_converts_the_default_int8_graph(calibrated, tmp_path):
    """Issue 29: `reid-export openvino` judges an INT8 graph by INT8's tolerance (two runtimes
    round a value a level apart), on CPUs without VNNI with the Q/DQ computed as written."""
    from reid_trt.export.openvino import export_openvino

    result = export_openvino(calibrated["msmt17"].path, tmp_path / "int8.xml")
    assert result.parity.passed and result.parity.tolerance == 0.985
    assert 0.99 <= result.parity.min_cosine <= 1.0 + 1e-6
    assert result.contract.precision == "int8"
    assert result.xml.is_file() and result.weights.stat().st_size > 100_000


def test_one_camera_is_said_loudly_and_judged_on_shifts(calibrated):
    report = calibrated["msmt17"].report
    assert report.protocol.split == "single camera"
    assert report.protocol.warnings == [protocol.SINGLE_CAMERA_WARNING]
    assert set(CAMERA_SHIFTS) <= set(report.protocol.shifts)
    assert set(CAMERA_SHIFTS) <= set(report.domains)
    # 201 boxes, fewer than the default 256: all of them, with a note.
    assert report.calibration_set.images == 201
    assert any("all of them are used" in note for note in report.notes)
    assert report.equalization.used and report.equalization.pairs == 60
    assert report.equalization.min_cosine_to_source >= 0.99999


def test_artifact_is_right_in_every_runtime(calibrated, sources, unseen, tmp_path):
    """The written graph (float parts FP32) gives the same embeddings in a default ONNX Runtime
    session, with every optimisation and in reid-trt's own session; TensorRT-RTX builds it with
    its float parts in FP16 (or FP32, when asked)."""
    result = calibrated["market1501"]
    model = onnx.load(result.path)
    assert contract_of(model).precision == "int8" and ort_disabled_optimizers(model) == []
    x = graph_input(unseen["MOT17-02"] + unseen["Market-1501/MSMT17/CUHK03"],
                    contract_of(model))
    plain = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    tuned = ort.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])
    ours = ort_session(result.path)
    a = plain.run(None, {"images": x})[0]
    for other in (tuned, ours):
        assert cosine_rows(other.run(None, {"images": x})[0], a).min() >= 0.9999
    onnx.checker.check_model(model, full_check=True)

    built = engine_from_onnx(result.path, tmp_path / "int8.plan")
    m = built.manifest
    assert m.precision == "int8" and m.unquantized == "fp16"
    assert set(m.weighted_layers) == {"fp16", "int8"} and sum(m.weighted_layers.values()) == 188
    assert m.weighted_layers["int8"] == result.report.int8_work.int8_layers
    # What the engine itself runs (the builder's layer report, not the graph): every conv the
    # graph quantized is an INT8 kernel, and the MAC share is the graph's.
    engine = m.engine_layers
    assert set(engine.int8_layers) == int8_layers(model)
    assert engine.int8_mac_share == pytest.approx(result.report.int8_work.int8_mac_share)
    assert engine.weighted_layers["int8"] == m.weighted_layers["int8"]
    assert engine.reformat_layers == 0
    fp32 = engine_from_onnx(result.path, tmp_path / "int8.fp32.plan",
                            BuildConfig(unquantized="fp32")).manifest
    assert set(fp32.weighted_layers) == {"fp32", "int8"} and fp32.unquantized == "fp32"
    # The engines' own tensor tables agree with their manifests; swapped, they disagree.
    own, other = EngineFile.read(built.engine), EngineFile.read(tmp_path / "int8.fp32.plan")
    assert own.weight_bytes["int8"] > 0 and own.weight_bytes["half"] > 0
    assert other.weight_bytes["int8"] > 0 and "half" not in other.weight_bytes
    assert disagreements(m, own) == [] and disagreements(fp32, other) == []
    assert disagreements(m, other) == ["unquantized layers fp16, but the engine holds no FP16 "
                                       f"weights ({', '.join(other.describe_weights())})"]


def test_calibration_cache_and_report(calibrated):
    result = calibrated["market1501"]
    lines = result.cache.read_text().splitlines()
    assert lines[0] == "TRT-100300-MinMaxCalibration"
    scales = {}
    for line in lines[1:]:
        name, value = line.split(": ")
        scales[name] = struct.unpack(">f", bytes.fromhex(value))[0]
    assert len(scales) > 100 and all(0 < s < 10 for s in scales.values())
    assert result.report.calibration_hash in result.cache.name
    report = json.loads(result.report_path.read_text())
    assert report == json.loads(json.dumps(result.report.to_dict()))  # the object, as JSON
    assert report["schema"] == 3
    assert report["method"] == "mse" and set(report["methods_tried"]) == {"mse"}
    tried = report["methods_tried"]["mse"]
    assert tried["equalized"] is True and 0.9 < tried["all_int8_quick"]["mean_cosine"] <= 1
    # the search's log as the file has always held it: the figures inline in each step
    first, *_ = steps = report["search_steps"]
    assert first["excluded"] == 0 and first["rows"] in ("all", "subset")
    assert all({"excluded", "mean_cosine", "low_cosine"} <= set(s) for s in steps)
    assert {"crops", "mean_cosine", "min_cosine"} == set(next(iter(report["domains"].values())))
    assert report["bias_correction"]["layers"] == report["int8_work"]["int8_layers"]
    assert set(report["stage_seconds"]) >= {"reading", "ranges", "bias_correction", "search"}
    work = report["int8_work"]
    assert 0 < work["int8_macs_per_crop"] <= work["macs_per_crop"]
    assert work["int8_layers"] + work["float_layers"] + work["gemv_layers_float"] == 188
    assert report["artifact_vs_fp32"]["mean_cosine"] > 0.99
    assert report["int8_sha256"] and report["seconds"] > 0
    # Another calibration set, graph or preprocessing gives another cache name.
    base = calibration_hash("a", ["x.jpg"], {"height": 256})
    assert len({base, calibration_hash("b", ["x.jpg"], {"height": 256}),
                calibration_hash("a", ["y.jpg"], {"height": 256}),
                calibration_hash("a", ["x.jpg"], {"height": 128})}) == 4


CALIBRATE_IN_A_FRESH_PROCESS = """
import json, sys
from reid_trt.calibration.api import calibrate_onnx, source_graph
source, sha, _ = source_graph(None, sys.argv[1])
result = calibrate_onnx(source, sha, sys.argv[2], sys.argv[3])
print(json.dumps(result.report.to_dict()))
"""


def _reencoded_mot(src, dst, quality=95):
    """A copy of a MOT sequence whose frames went through JPEG once more."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.jpg"))
    for frame in sorted((src / "img1").glob("*.jpg")):
        image = cv2.imread(str(frame))
        cv2.imwrite(str(dst / "img1" / frame.name), image, [cv2.IMWRITE_JPEG_QUALITY, quality])


def test_same_graph_from_a_fresh_process_and_from_reencoded_images(calibrated, sources,
                                                                   fresh_process, shared_data,
                                                                   tmp_path):
    """Issue 18: the placement and the graph do not depend on the process (what ran before in
    it, thread pools, imports, another calibration running beside it), and a JPEG re-encode of
    every frame (pixels off by a level or two) does not move a single layer."""
    mot04 = shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    ours = calibrated["msmt17"].report.to_dict()
    stdout, stderr = fresh_process.communicate(timeout=900)
    assert fresh_process.returncode == 0, stderr[-2000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["int8_sha256"] == ours["int8_sha256"]
    assert report["unquantized_parts"] == ours["unquantized_parts"]

    reencoded = tmp_path / "MOT17-04-reencoded"
    _reencoded_mot(mot04, reencoded)
    source, sha = sources["msmt17"]
    moved = calibrate_onnx(source, sha, reencoded, tmp_path / "reencoded.int8.onnx").report
    assert moved.unquantized_parts == ours["unquantized_parts"]
    assert moved.int8_work.int8_mac_share == ours["int8_work"]["int8_mac_share"]
