"""Hostile command lines: each gets exit 1 and one line naming the file or option (or exit 2 and
Click's usage error naming the option), and leaves the folder exactly as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from reid_trt.cli.bench import app as bench_app
from reid_trt.cli.export import app as export_app
from tests.hostile.conftest import edit_manifest, one_line, run_cli, snapshot


def _random_engine(ws):
    """Random bytes in place of the engine, its manifest's sha256 brought up to date."""
    import hashlib

    data = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    (ws / "m.plan").write_bytes(data)
    edit_manifest(ws, lambda d: {**d, "engine_sha256": hashlib.sha256(data).hexdigest(),
                                 "engine_bytes": len(data)})


def _checkpoint_with(ws, name: str, value: float):
    state = torch.load(ws / "w.pth", weights_only=True)
    state["conv1.conv.weight"][0, 0, 0, 0] = value
    torch.save(state, ws / name)


def _graph_with_metadata(ws, key: str, value: str):
    model = onnx.load(ws / "m.onnx")
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
    onnx.save(model, ws / "meta.onnx")


def _images(ws, folder: str, size: tuple[int, int], count: int = 4):
    for i in range(count):
        ws.write(f"{folder}/0001_c1s1_{i:06d}_00.jpg", cv2.imencode(
            ".jpg", np.full((*size, 3), 90 + i, np.uint8))[1].tobytes())


def _mot_tree(ws, gt: str):
    ws.write("mot/seq/gt/gt.txt", gt)
    ws.write("mot/seq/img1/000001.jpg", cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1]
             .tobytes())


def _msmt_tree(ws, line: str):
    ws.write("msmt/list_train.txt", line + "\n")
    (ws / "msmt" / "train").mkdir()


# (id, setup or None, args, exit code, fragments of the message)
EXPORT_CASES = [
    ("onnx-missing-weights", None, ["onnx", "-w", "missing.pth"], 1, ["missing.pth", "no such file"]),
    ("onnx-text-weights", None, ["onnx", "-w", "notes.txt"], 1,
     ["notes.txt", "not a readable PyTorch checkpoint"]),
    ("onnx-text-weights-pth", None, ["onnx", "-w", "text.pth"], 1,
     ["text.pth", "not a readable PyTorch checkpoint"]),
    ("onnx-weights-dir", None, ["onnx", "-w", "empty"], 1, ["empty"]),
    ("onnx-output-is-input", None, ["onnx", "-w", "w.pth", "-o", "w.pth"], 1, ["-o w.pth", ".onnx"]),
    ("onnx-output-is-input-same-suffix", lambda ws: (ws / "w.pth").rename(ws / "w.onnx.pth"),
     ["onnx", "-w", "m.onnx", "-o", "m.onnx"], 1, ["would overwrite the input m.onnx"]),
    ("onnx-output-folder-slash", None, ["onnx", "-w", "w.pth", "-o", "newdir/"], 1,
     ["-o newdir", "must end in .onnx", "newdir/model.onnx"]),
    ("onnx-output-is-dir", lambda ws: (ws / "d.onnx").mkdir(), ["onnx", "-w", "w.pth", "-o", "d.onnx"],
     1, ["d.onnx is a directory"]),
    ("onnx-output-parent-missing", None, ["onnx", "-w", "w.pth", "-o", "nope/m.onnx"], 1,
     ["nope does not exist"]),
    ("onnx-batch-zero", None, ["onnx", "-w", "w.pth", "--batch", "0"], 1, ["--batch 0", ">= 1"
                                                                           .replace(">= 1", "1 and")]),
    ("onnx-batch-huge", None, ["onnx", "-w", "w.pth", "--batch", "100000"], 1,
     ["--batch 100000", "4096"]),
    ("onnx-input-size-huge", None, ["onnx", "-w", "w.pth", "--input-size", "32000x32000"], 1,
     ["--input-size 32000x32000", "1024x1024"]),
    ("onnx-input-size-zero", None, ["onnx", "-w", "w.pth", "--input-size", "0x0"], 1,
     ["--input-size 0x0"]),
    ("onnx-input-size-text", None, ["onnx", "-w", "w.pth", "--input-size", "big"], 2,
     ["'big' is not HEIGHTxWIDTH"]),
    ("onnx-precision-int8", None, ["onnx", "-w", "w.pth", "--precision", "int8"], 1,
     ["--precision int8", "reid-export calibrate"]),
    ("onnx-precision-unknown", None, ["onnx", "-w", "w.pth", "--precision", "fp64"], 2,
     ["'--precision'", "fp64"]),
    ("onnx-io-fp16-on-fp32", None, ["onnx", "-w", "w.pth", "--io-dtype", "fp16"], 1,
     ["--io-dtype fp16", "needs precision fp16"]),
    ("onnx-input-unknown", None, ["onnx", "-w", "w.pth", "--input", "rgb"], 2, ["'--input'"]),
    ("onnx-opset-old", None, ["onnx", "-w", "w.pth", "--opset", "7"], 1, ["--opset 7"]),
    ("onnx-variant-unknown", None, ["onnx", "-w", "w.pth", "--variant", "osnet_x9"], 1,
     ["unknown variant 'osnet_x9'"]),
    ("onnx-variant-wrong", None, ["onnx", "-w", "w.pth", "--variant", "osnet_x1_0"], 1,
     ["does not fit osnet_x1_0", "looks like osnet_x0_25"]),
    ("onnx-inf-weights", lambda ws: _checkpoint_with(ws, "inf.pth", float("inf")),
     ["onnx", "-w", "inf.pth"], 1, ["inf.pth", "NaN or Inf", "conv1.conv.weight"]),
    ("onnx-nan-weights", lambda ws: _checkpoint_with(ws, "nan.pth", float("nan")),
     ["onnx", "-w", "nan.pth"], 1, ["nan.pth", "NaN or Inf"]),
    ("onnx-verify-data-missing", None, ["onnx", "-w", "w.pth", "--verify-data", "nope"], 1,
     ["nope: no such directory"]),
    ("onnx-verify-data-empty", None, ["onnx", "-w", "w.pth", "--verify-data", "empty"], 1,
     ["empty: no readable images"]),
    ("onnx-static-and-dynamic", None, ["onnx", "-w", "w.pth", "--batch", "2", "--dynamic-batch"],
     1, ["--batch 2 makes the batch static"]),
    ("verify-missing-graph", None, ["verify", "--onnx", "nope.onnx", "-w", "w.pth"], 1,
     ["nope.onnx: no such file"]),
    ("verify-truncated-graph", None, ["verify", "--onnx", "truncated.onnx", "-w", "w.pth"], 1,
     ["truncated.onnx is not a readable ONNX model"]),
    ("verify-text-graph", None, ["verify", "--onnx", "notes.txt", "-w", "w.pth"], 1, ["notes.txt"]),
    ("verify-corrupt-metadata", lambda ws: _graph_with_metadata(ws, "reid_trt.height", "{oops"),
     ["verify", "--onnx", "meta.onnx", "-w", "w.pth"], 1,
     ["meta.onnx", "reid_trt.height", "not valid JSON"]),
    ("verify-wrong-metadata-type", lambda ws: _graph_with_metadata(ws, "reid_trt.height", '"tall"'),
     ["verify", "--onnx", "meta.onnx", "-w", "w.pth"], 1, ["meta.onnx", "height='tall'"]),
    ("verify-unknown-input-format", lambda ws: _graph_with_metadata(
        ws, "reid_trt.input_format", '"yuv"'), ["inspect", "meta.onnx"], 1,
     ["meta.onnx", "input_format='yuv'"]),
    ("trt-truncated-graph", None, ["trt", "--onnx", "truncated.onnx", "-o", "t.plan"], 1,
     ["truncated.onnx is not a readable ONNX model"]),
    ("trt-output-onto-graph", None, ["trt", "--onnx", "m.onnx", "-o", "m.onnx"], 1,
     ["-o m.onnx", ".plan"]),
    ("trt-output-onto-engine-input", lambda ws: (ws / "m.onnx").rename(ws / "g.plan"),
     ["trt", "--onnx", "g.plan", "-o", "g.plan"], 1, ["would overwrite the input g.plan"]),
    ("trt-manifest-path-is-dir", lambda ws: (ws / "x.plan.json").mkdir(),
     ["trt", "--onnx", "m.onnx", "-o", "x.plan"], 1, ["x.plan.json is a directory"]),
    ("trt-workspace-negative", None, ["trt", "--onnx", "m.onnx", "--workspace", "-5"], 1,
     ["--workspace -5"]),
    ("trt-workspace-huge", None, ["trt", "--onnx", "m.onnx", "--workspace", str(10**9)], 1,
     ["--workspace 1000000000", "more than any GPU has"]),
    ("trt-opt-level", None, ["trt", "--onnx", "m.onnx", "--opt-level", "9"], 1, ["--opt-level 9"]),
    ("trt-profile-inverted", None, ["trt", "--onnx", "m.onnx", "--min-batch", "8", "--max-batch",
                                    "4"], 1, ["--min-batch 8, --opt-batch 4 (default), "
                                              "--max-batch 4: ", "min <= opt <= max"]),
    ("trt-max-batch-huge", None, ["trt", "--onnx", "m.onnx", "--max-batch", "100000"], 1,
     ["--max-batch 100000"]),
    ("trt-flavour-unknown", None, ["trt", "--onnx", "m.onnx", "--trt", "foo"], 2, ["'--trt'"]),
    ("trt-plugin-on-rtx", None, ["trt", "--onnx", "m.onnx", "--trt", "rtx", "--instancenorm",
                                 "plugin"], 1, ["--instancenorm plugin", "TensorRT-RTX"]),
    ("trt-dla-on-rtx", None, ["trt", "--onnx", "m.onnx", "--trt", "rtx", "--dla-core", "0"], 1,
     ["--dla-core 0", "no DLA"]),
    ("trt-dla-negative", None, ["trt", "--onnx", "m.onnx", "--dla-core", "-1"], 1,
     ["--dla-core -1"]),
    ("trt-timing-cache-on-rtx", None, ["trt", "--onnx", "m.onnx", "--trt", "rtx", "--timing-cache",
                                       "t.cache"], 1, ["--timing-cache t.cache"]),
    ("trt-cc-malformed", None, ["trt", "--onnx", "m.onnx", "--compute-capability", "turing"], 1,
     ["--compute-capability turing", "sm86"]),
    ("trt-cc-unknown", None, ["trt", "--onnx", "m.onnx", "--compute-capability", "sm12"], 1,
     ["--compute-capability sm12"]),
    ("trt-hwcompat-on-rtx", None, ["trt", "--onnx", "m.onnx", "--trt", "rtx",
                                   "--hardware-compatibility", "ampere_plus"], 1,
     ["--hardware-compatibility ampere_plus"]),
    # (fp16 on an fp32 graph converts it since issue 21: tests/export/test_convert.py)
    ("trt-precision-mismatch", None, ["trt", "--onnx", "m.onnx", "--precision", "int8"], 1,
     ["m.onnx is an fp32 graph but --precision int8"]),
    ("trt-both-sources", None, ["trt", "--onnx", "m.onnx", "-w", "w.pth"], 1,
     ["exactly one of --onnx"]),
    ("trt-weights-bad-option-leaves-nothing", None,
     ["trt", "-w", "w.pth", "--dla-core", "0", "-o", "e.plan"], 1, ["--dla-core 0"]),
    ("trt-int8-bad-option-leaves-nothing", None,
     ["trt", "--int8", "-w", "w.pth", "--calib-data", "crops", "--opt-level", "7", "-o", "q.plan"],
     1, ["--opt-level 7"]),
    ("trt-int8-without-data", None, ["trt", "--int8", "--onnx", "m.onnx"], 1,
     ["--calib-data", "INT8 needs"]),
    ("trt-calib-data-without-int8", None, ["trt", "--onnx", "m.onnx", "--calib-data", "crops"], 2,
     ["--calib-data is for INT8"]),
    ("trt-int8-and-fp16", None, ["trt", "--int8", "--onnx", "m.onnx", "--calib-data", "crops",
                                 "--precision", "fp16"], 1, ["--precision fp16", "INT8"]),
    ("trt-eval-data-without-int8", None, ["trt", "--onnx", "m.onnx", "--eval-data", "crops"], 2,
     ["--eval-data is for INT8 calibration: add --int8, or drop --eval-data"]),
    ("calibrate-no-data", None, ["calibrate", "--onnx", "m.onnx"], 1, ["--calib-data"]),
    ("calibrate-missing-data", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "nope"], 1,
     ["--calib-data nope: no such directory"]),
    ("calibrate-size-zero", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                   "--calib-size", "0"], 1, ["--calib-size 0"]),
    ("calibrate-size-above-set", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                        "--calib-size", "500"], 1, ["--calib-size 500",
                                                                    "larger than the set"]),
    ("calibrate-method-unknown", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                        "--calib-method", "magic"], 2, ["'--calib-method'"]),
    ("calibrate-dataset-unknown", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                         "--calib-dataset", "imagenet"], 1,
     ["--calib-dataset imagenet"]),
    ("calibrate-augment-negative", None, ["calibrate", "--onnx", "m.onnx", "--calib-data",
                                          "crops", "--calib-augment", "-1"], 1,
     ["--calib-augment -1"]),
    ("calibrate-augment-huge", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                      "--calib-augment", "50"], 1, ["--calib-augment 50"]),
    ("trt-unquantized-int8", None, ["trt", "--onnx", "m.onnx", "--unquantized", "int8"], 1,
     ["--unquantized int8", "fp16 or fp32"]),
    ("calibrate-unquantized-int8", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                          "--unquantized", "int8"], 1, ["--unquantized int8"]),
    ("calibrate-map-drop-negative", None, ["calibrate", "--onnx", "m.onnx", "--calib-data",
                                           "crops", "--max-map-drop", "-1"], 1, ["--max-map-drop"]),
    ("calibrate-output-is-input", None, ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops",
                                         "-o", "m.onnx"], 1, ["would overwrite the input m.onnx"]),
    ("calibrate-report-path-is-dir", lambda ws: (ws / "q.calib.json").mkdir(),
     ["calibrate", "--onnx", "m.onnx", "--calib-data", "crops", "-o", "q.onnx"], 1,
     ["q.calib.json is a directory"]),
    ("calibrate-tiny-images", lambda ws: _images(ws, "tiny", (1, 1)),
     ["calibrate", "--onnx", "m.onnx", "--calib-data", "tiny", "--calib-size", "4"], 1,
     ["--calib-data tiny", "32x8 px"]),
    ("calibrate-malformed-gt", lambda ws: _mot_tree(ws, "1,1,oops,3\n"),
     ["calibrate", "--onnx", "m.onnx", "--calib-data", "mot"], 1,
     ["gt.txt is not MOT ground truth"]),
    ("calibrate-short-gt-rows", lambda ws: _mot_tree(ws, "1,1,10,10,20,40\n"),
     ["calibrate", "--onnx", "m.onnx", "--calib-data", "mot"], 1, ["gt.txt: rows need 9 finite values"]),
    ("calibrate-malformed-msmt-list", lambda ws: _msmt_tree(ws, "train/0001/a.jpg one"),
     ["calibrate", "--onnx", "m.onnx", "--calib-data", "msmt"], 1, ["list_train.txt:1"]),
    ("calibrate-weights-text", None, ["calibrate", "-w", "notes.txt", "--calib-data", "crops"], 1,
     ["notes.txt"]),
    ("inspect-missing", None, ["inspect", "nope.plan"], 1, ["nope.plan: no such file"]),
    ("inspect-unknown-suffix", None, ["inspect", "notes.txt"], 1, ["notes.txt", ".onnx"]),
    ("inspect-truncated-graph", None, ["inspect", "truncated.onnx"], 1, ["truncated.onnx"]),
    ("inspect-manifest-list", lambda ws: edit_manifest(ws, lambda d: [d]), ["inspect", "m.plan"],
     1, ["m.plan.json is not a valid reid-trt manifest", "list"]),
    ("inspect-manifest-bad-profile", lambda ws: edit_manifest(ws, lambda d: {
        **d, "profile": {"min": 8, "opt": 1, "max": 4}}), ["inspect", "m.plan"], 1,
     ["m.plan.json", "profile"]),
    ("inspect-manifest-wrong-type", lambda ws: edit_manifest(ws, lambda d: {**d, "io": "x"}),
     ["inspect", "m.plan"], 1, ["m.plan.json", "field 'io'"]),
    ("inspect-manifest-io-strings", lambda ws: edit_manifest(ws, lambda d: {
        **d, "io": ["images", "embeddings"]}), ["inspect", "m.plan"], 1,
     ["m.plan.json is not a valid reid-trt manifest", "io[0] is not an object", "rebuild"]),
    ("inspect-manifest-io-shape", lambda ws: edit_manifest(ws, lambda d: {
        **d, "io": [{**t, "shape": "[-1, 512]"} for t in d["io"]]}), ["inspect", "m.plan"], 1,
     ["m.plan.json is not a valid reid-trt manifest", "io[0].shape is not a list of sizes"]),
    ("inspect-manifest-counts-text", lambda ws: edit_manifest(ws, lambda d: {
        **d, "weighted_layers": {"int8": "many"}}), ["inspect", "m.plan"], 1,
     ["m.plan.json is not a valid reid-trt manifest", "weighted_layers['int8'] is a str"]),
    ("inspect-manifest-layer-share-text", lambda ws: edit_manifest(ws, lambda d: {
        **d, "engine_layers": {"weighted_layers": {}, "int8_mac_share": "most",
                               "int8_layers": [], "reformat_layers": 0}}), ["inspect", "m.plan"],
     1, ["m.plan.json is not a valid reid-trt manifest", "int8_mac_share is not a share"]),
    ("inspect-manifest-unknown-precision", lambda ws: edit_manifest(ws, lambda d: {
        **d, "precision": "int4"}), ["inspect", "m.plan"], 1,
     ["m.plan.json is not a valid reid-trt manifest", "'int4' is not a valid Precision",
      "rebuild"]),
    ("inspect-manifest-fifo", lambda ws: ((ws / "m.plan.json").unlink(),
                                          os.mkfifo(ws / "m.plan.json")),
     ["inspect", "m.plan"], 1, ["m.plan.json: no manifest"]),
    ("inspect-random-file-as-rtx-engine", _random_engine, ["inspect", "m.plan"], 1,
     ["m.plan", "a TensorRT-RTX engine, but the file holds no tensor table"]),
    ("inspect-manifest-bad-contract", lambda ws: edit_manifest(ws, lambda d: {
        **d, "contract": {**d["contract"], "std": [0, 0, 0]}}), ["inspect", "m.plan"], 1,
     ["m.plan.json", "std"]),
    ("inspect-manifest-not-json", lambda ws: ws.write("m.plan.json", "{"), ["inspect", "m.plan"],
     1, ["m.plan.json is not a valid reid-trt manifest"]),
    ("inspect-manifest-missing", lambda ws: (ws / "m.plan.json").unlink(), ["inspect", "m.plan"],
     1, ["m.plan.json: no manifest"]),
    ("inspect-manifest-is-dir", lambda ws: ((ws / "m.plan.json").unlink(),
                                            (ws / "m.plan.json").mkdir()),
     ["inspect", "m.plan"], 1, ["m.plan.json is a directory"]),
    # a manifest edited after the build, or beside another engine: the engine's own tensors say
    ("inspect-manifest-says-int8", lambda ws: edit_manifest(ws, lambda d: {
        **d, "precision": "int8"}), ["inspect", "m.plan"], 1,
     ["m.plan: its manifest does not describe it", "precision int8, but the engine holds no "
      "INT8 weights", "rebuild"]),
    ("inspect-manifest-output-width", lambda ws: edit_manifest(ws, lambda d: {
        **d, "io": [t if t["mode"] == "input" else {**t, "shape": [-1, 256]} for t in d["io"]]}),
     ["inspect", "m.plan"], 1, ["output 'embeddings' FLOAT [256], but the engine's is FLOAT [512]"]),
    ("inspect-manifest-input-size", lambda ws: edit_manifest(ws, lambda d: {
        **d, "io": [t if t["mode"] == "output" else {**t, "shape": [-1, 3, 128, 64]}
                    for t in d["io"]]}),
     ["inspect", "m.plan"], 1, ["input 'images' FLOAT [3, 128, 64], but the engine's is FLOAT "
                                "[3, 256, 128]"]),
    ("inspect-engine-replaced", lambda ws: ws.write("m.plan", (ws / "m.plan").read_bytes()[:-7]),
     ["inspect", "m.plan"], 1, ["m.plan: its manifest does not describe it", "sha256 differs"]),
    ("demo-output-is-file", None, ["demo", "-o", "notes.txt"], 1, ["--output-dir notes.txt is a file"]),
    ("demo-variant-unknown", None, ["demo", "-o", "d", "--variant", "resnet50"], 1,
     ["unknown variant 'resnet50'"]),
]
# reid-export triton: every refusal before the repository folder is even created.
TRITON_CASES = [
    ("triton-engine-without-manifest", lambda ws: (ws / "m.plan.json").unlink(),
     ["triton", "--engine", "m.plan", "--repo", "repo"], 1, ["m.plan.json: no manifest"]),
    ("triton-engine-manifest-says-int8", lambda ws: edit_manifest(ws, lambda d: {
        **d, "precision": "int8"}), ["triton", "--engine", "m.plan", "--repo", "repo"], 1,
     ["m.plan: its manifest m.plan.json says precision int8, but the engine holds no INT8"]),
    ("triton-max-batch-above-profile", None,
     ["triton", "--engine", "m.plan", "--repo", "repo", "--max-batch", "16"], 1,
     ["--max-batch 16", "largest batch 8"]),
    ("triton-repo-is-file", None, ["triton", "--onnx", "m.onnx", "--repo", "notes.txt"], 1,
     ["--repo notes.txt is a file"]),
    ("triton-repo-parent-missing", None, ["triton", "--onnx", "m.onnx", "--repo", "a/b"], 1,
     ["--repo a/b", "a does not exist"]),
    ("triton-name-slash", None, ["triton", "--onnx", "m.onnx", "--repo", "repo", "--name",
                                 "a/b"], 1, ["--name a/b", "no '/'"]),
    ("triton-name-dot", None, ["triton", "--onnx", "m.onnx", "--repo", "repo", "--name", ".."],
     1, ["--name .."]),
    ("triton-plan-kind-for-graph", None, ["triton", "--onnx", "m.onnx", "--repo", "repo",
                                          "--kind", "plan"], 1, ["--kind plan", "m.onnx is a graph"]),
    ("triton-onnx-kind-for-engine", None, ["triton", "--engine", "m.plan", "--repo", "repo",
                                           "--kind", "onnx"], 1, ["--kind onnx", "is an engine"]),
    ("triton-kind-unknown", None, ["triton", "--onnx", "m.onnx", "--repo", "repo", "--kind",
                                   "tf"], 1, ["--kind tf", "plan, onnx, python"]),
    ("triton-both-models", None, ["triton", "--onnx", "m.onnx", "--engine", "m.plan", "--repo",
                                  "repo"], 1, ["one of --engine", "--onnx"]),
    ("triton-instances-zero", None, ["triton", "--onnx", "m.onnx", "--repo", "repo",
                                     "--instances", "0"], 1, ["--instances 0"]),
    ("triton-queue-delay-negative", None, ["triton", "--onnx", "m.onnx", "--repo", "repo",
                                           "--max-queue-delay-us", "-1"], 1,
     ["--max-queue-delay-us -1"]),
    ("triton-truncated-graph", None, ["triton", "--onnx", "truncated.onnx", "--repo", "repo"], 1,
     ["truncated.onnx"]),
    ("triton-weights-as-model", None, ["triton", "--onnx", "w.pth", "--repo", "repo"], 1,
     ["w.pth"]),
    ("triton-model-name-is-file", lambda ws: ws.write("repo/osnet", "x"),
     ["triton", "--onnx", "m.onnx", "--repo", "repo"], 1, ["repo/osnet is a file", "--name"]),
]

OPENVINO_CASES = [
    ("openvino-output-suffix", None, ["openvino", "--onnx", "m.onnx", "-o", "m.onnx"], 1,
     ["-o m.onnx", ".xml"]),
    ("openvino-output-is-dir", lambda ws: (ws / "d.xml").mkdir(),
     ["openvino", "--onnx", "m.onnx", "-o", "d.xml"], 1, ["d.xml is a directory"]),
    ("openvino-weights-file-is-dir", lambda ws: (ws / "m.bin").mkdir(),
     ["openvino", "--onnx", "m.onnx", "-o", "m.xml"], 1, ["m.bin is a directory"]),
    ("openvino-truncated-graph", None, ["openvino", "--onnx", "truncated.onnx"], 1,
     ["truncated.onnx"]),
    ("openvino-checkpoint-as-graph", None, ["openvino", "--onnx", "w.pth"], 1, ["w.pth"]),
]

TRACKER_CASES = [
    ("for-unknown-tracker", None, ["onnx", "-w", "w.pth", "--for", "norfair"], 2, ["--for"]),
    ("for-boxmot-no-architecture", None, ["onnx", "-w", "w.pth", "--for", "boxmot", "-o",
                                          "reid.onnx"], 1, ["-o reid.onnx", "architecture"]),
    ("for-deepstream-with-input", None, ["onnx", "-w", "w.pth", "--for", "deepstream", "--input",
                                         "uint8-bgr", "-o", "x.onnx"], 1,
     ["--input uint8-bgr", "deepstream feeds float-rgb255"]),
    ("deepstream-engine-manifest-says-fp16", lambda ws: edit_manifest(ws, lambda d: {
        **d, "precision": "fp16"}), ["deepstream", "--engine", "m.plan", "-o", "t.yml"], 1,
     ["m.plan.json says precision fp16, but the engine holds no FP16 weights"]),
    ("deepstream-float-graph", None, ["deepstream", "--onnx", "m.onnx", "-o", "t.yml"], 1,
     ["m.onnx takes float input", "--for deepstream"]),
    ("deepstream-engine-of-float-graph", None, ["deepstream", "--engine", "m.plan", "-o",
                                                "t.yml"], 1, ["m.plan takes float input"]),
    ("deepstream-output-suffix", None, ["deepstream", "--onnx", "m.onnx", "-o", "t.txt"], 1,
     ["-o t.txt", ".yml"]),
    ("deepstream-nothing", None, ["deepstream", "-o", "t.yml"], 1,
     ["pass either --engine PLAN or --onnx MODEL"]),
    ("deepstream-check-missing", None, ["deepstream", "--onnx", "m.onnx", "-o", "none.yml",
                                        "--check"], 1, ["m.onnx takes float input"]),
    ("deepstream-check-not-yaml", lambda ws: ws.write("bad.yml", "ReID: [unclosed"),
     ["deepstream", "--onnx", "m.onnx", "-o", "bad.yml", "--check"], 1, ["m.onnx"]),
]

# reid-export adopt and fp16 (issue 21).
GRAPH_CASES = [
    ("adopt-text-file", None, ["adopt", "notes.txt", "-o", "a.onnx"], 1, ["notes.txt"]),
    ("adopt-truncated", None, ["adopt", "truncated.onnx", "-o", "a.onnx"], 1,
     ["truncated.onnx"]),
    ("adopt-onto-input", None, ["adopt", "m.onnx", "-o", "m.onnx"], 1,
     ["would overwrite the input m.onnx"]),
    ("adopt-mean-two-numbers", None, ["adopt", "m.onnx", "--mean", "0.4,0.4", "-o", "a.onnx"],
     2, ["--mean 0.4,0.4"]),
    ("adopt-mean-nan", None, ["adopt", "m.onnx", "--mean", "nan,nan,nan", "-o", "a.onnx"],
     2, ["--mean nan,nan,nan: give three numbers"]),
    ("adopt-std-zero", None, ["adopt", "m.onnx", "--std", "0,0,0", "-o", "a.onnx"],
     2, ["--std 0,0,0: a standard deviation divides"]),
    ("adopt-uint8-on-nchw", None, ["adopt", "m.onnx", "--input", "uint8-bgr", "-o", "a.onnx"],
     1, ["--input uint8-bgr", "N,3,H,W"]),
    ("adopt-size-mismatch", None, ["adopt", "m.onnx", "--input-size", "128x64", "-o",
                                   "a.onnx"], 1, ["--input-size 128x64", "256x128"]),
    ("adopt-weights-text", None, ["adopt", "m.onnx", "-w", "text.pth", "-o", "a.onnx"], 1,
     ["text.pth"]),
    ("fp16-text-file", None, ["fp16", "--onnx", "notes.txt", "-o", "h.onnx"], 1,
     ["notes.txt"]),
    ("fp16-output-suffix", None, ["fp16", "--onnx", "m.onnx", "-o", "h.plan"], 1,
     ["-o h.plan", ".onnx"]),
]

BENCH_CASES = [
    ("bench-nothing", None, [], 1, ["nothing to benchmark"]),
    ("bench-triton-target", None, ["--triton", "osnet"], 1, ["--triton osnet", "HOST:PORT/MODEL"]),
    ("bench-triton-nobody-there", None, ["--triton", "127.0.0.1:9/osnet"], 1,
     ["no Triton server answers at 127.0.0.1:9"]),
    ("bench-openvino-checkpoint", None, ["--openvino", "w.pth"], 1, ["OpenVINO runs an .onnx"]),
    ("bench-clients-negative", None, ["--onnx", "m.onnx", "--clients", "-1"], 1, ["--clients -1"]),
    ("bench-json-onto-graph", None, ["--onnx", "m.onnx", "--json", "m.onnx"], 1,
     ["--json m.onnx", ".json"]),
    ("bench-json-onto-manifest", None, ["--engine", "m.plan", "--json", "m.plan.json"], 1,
     ["would overwrite the input m.plan.json"]),
    ("bench-json-onto-weights", lambda ws: (ws / "w.pth").rename(ws / "w.json"),
     ["--onnx", "m.onnx", "--json", "m.onnx.json", "--markdown", "m.onnx.json"], 1,
     ["same file"]),
    ("bench-json-folder", None, ["--onnx", "m.onnx", "--json", "out/"], 1, ["--json out", ".json"]),
    ("bench-json-is-dir", lambda ws: (ws / "r.json").mkdir(), ["--onnx", "m.onnx", "--json",
                                                              "r.json"], 1, ["r.json is a directory"]),
    ("bench-plot-jpg", None, ["--onnx", "m.onnx", "--plot", "p.jpg"], 1, ["--plot p.jpg", ".png"]),
    ("bench-batch-huge", None, ["--onnx", "m.onnx", "--batch", "100000"], 1,
     ["--batch 100000", "4096"]),
    ("bench-batch-zero", None, ["--onnx", "m.onnx", "--batch", "0"], 1, ["--batch 0"]),
    ("bench-batch-text", None, ["--onnx", "m.onnx", "--batch", "a,b"], 2, ["'a,b'"]),
    ("bench-num-crops-zero", None, ["--onnx", "m.onnx", "--num-crops", "0"], 1, ["--num-crops 0"]),
    ("bench-runs-zero", None, ["--onnx", "m.onnx", "--runs", "0"], 1, ["--runs 0"]),
    ("bench-warmup-negative", None, ["--onnx", "m.onnx", "--warmup", "-1"], 1, ["--warmup -1"]),
    ("bench-device-gpu", None, ["--onnx", "m.onnx", "--device", "gpu"], 1,
     ["--device gpu", "'cuda:N'"]),
    ("bench-device-cuda-without-provider", None, ["--onnx", "m.onnx", "--device", "cuda:0"], 1,
     ["device 'cuda:0'", "CUDA provider"]),
    ("bench-engine-on-cpu", None, ["--engine", "m.plan", "--device", "cpu"], 1,
     ["m.plan is a TensorRT engine", ".onnx"]),
    ("bench-truncated-graph", None, ["--onnx", "truncated.onnx"], 1, ["truncated.onnx"]),
    ("bench-crops-missing", None, ["--onnx", "m.onnx", "--crops", "nope"], 1, ["nope"]),
    ("bench-dataset-missing", None, ["--onnx", "m.onnx", "--dataset", "market1501", "nope"], 1,
     ["--dataset market1501 nope"]),
]


CASES = [(export_app, *c) for c in EXPORT_CASES + TRITON_CASES + OPENVINO_CASES +
                                      TRACKER_CASES + GRAPH_CASES] + \
    [(bench_app, *c) for c in BENCH_CASES]


@pytest.mark.parametrize("app, setup, args, code, fragments", [(c[0], *c[2:]) for c in CASES],
                         ids=[c[1] for c in CASES])
def test_command_line(ws, app, setup, args, code, fragments):
    if setup:
        setup(ws)
    run_cli(app, ws, args, code, *fragments)


def test_a_bad_thread_count_in_the_environment_is_named(ws, monkeypatch):
    monkeypatch.setenv("REID_TRT_THREADS", "two")
    run_cli(export_app, ws, ["openvino", "--onnx", "m.onnx", "-o", "m.xml"], 1,
            "REID_TRT_THREADS two:", "whole number of threads")
    run_cli(bench_app, ws, ["--onnx", "m.onnx", "--runs", "1"], 1, "REID_TRT_THREADS two:")


def test_outputs_get_normal_file_permissions(ws):
    """Atomic writes go through mkstemp (0600); results must not keep that mode."""
    import os

    mask = os.umask(0o022)
    try:
        run = __import__("typer.testing").testing.CliRunner().invoke(
            export_app, ["inspect", "m.onnx"])
        assert run.exit_code == 0
        from reid_trt.core.fileio import write_bytes_atomic

        write_bytes_atomic(ws / "out.json", b"{}")
        assert (ws / "out.json").stat().st_mode & 0o777 == 0o644
        (ws / "m.plan.json").chmod(0o640)
        write_bytes_atomic(ws / "m.plan.json", json.dumps({}).encode())  # an existing file
        assert (ws / "m.plan.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(mask)


def test_control_characters_in_what_is_echoed_are_escaped(tmp_path):
    """A path (or a file's words) carrying terminal escape sequences is echoed as text, so the
    one-line error cannot recolour, move or hide anything (issue 30)."""
    from typer.testing import CliRunner

    from reid_trt.cli.export import app

    name = "m\x1b[2J\x1b[31m\x07.onnx"
    result = CliRunner().invoke(app, ["inspect", str(tmp_path / name)])
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "m\\x1b[2J\\x1b[31m\\x07.onnx" in result.stderr


def test_bench_dataset_without_identities_across_cameras(ws):
    """A folder of crops whose names carry no identity or camera has nothing to retrieve; the
    Market-named crops beside it (two cameras) are scored (issue 29)."""
    import shutil

    (ws.root / "unnamed").mkdir()
    for i, crop in enumerate(sorted((ws.root / "crops").iterdir())):
        shutil.copy(crop, ws.root / "unnamed" / f"person{i}.jpg")
    run_cli(bench_app, ws, ["--onnx", "m.onnx", "--dataset", "folder", "unnamed"], 1,
            "no query/gallery split, and not crops of identities in two or more cameras")


def test_cut_short_jpegs_leave_no_chatter(ws):
    """libjpeg warns about a cut-short JPEG on the process's own stderr, below Python; such a
    file is skipped unread, so the error stays one line (a fresh process: fd 2 as a user's)."""
    import subprocess
    import sys

    (ws.root / "cut").mkdir()
    for crop in sorted((ws.root / "crops").iterdir()):
        (ws.root / "cut" / crop.name).write_bytes(crop.read_bytes()[:1500])
    before = snapshot(ws.root)
    command = Path(sys.executable).with_name("reid-export")
    run = subprocess.run([command, "calibrate", "--onnx", "m.onnx", "--calib-data", "cut"],
                         capture_output=True, text=True, cwd=ws.root, timeout=300)
    assert run.returncode == 1
    assert "Premature end" not in run.stderr
    assert "cut-short files are skipped" in one_line(run.stderr)
    assert snapshot(ws.root) == before
    # the same files, read by the one reader every path uses: skipped, not half-decoded
    from reid_trt.core.opencv import read_image

    assert all(read_image(p) is None for p in (ws.root / "cut").iterdir())
    assert all(read_image(p) is not None for p in (ws.root / "crops").iterdir())


def test_grpc_errors_leave_no_chatter(tmp_path):
    """gRPC's C core logs through absl ('All log messages before absl::InitializeLog() ...'),
    below Python; a refused connection is still one line (a fresh process: fd 2 as a user's)."""
    import subprocess
    import sys

    run = subprocess.run([Path(sys.executable).with_name("reid-bench"), "--triton",
                          "127.0.0.1:1/osnet"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert run.returncode == 1 and "absl" not in run.stderr
    assert "no Triton server answers at 127.0.0.1:1 (grpc)" in one_line(run.stderr)
    assert list(tmp_path.iterdir()) == []
