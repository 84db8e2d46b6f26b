"""Files no reader may crash, hang or blow up on: image bombs, special files named like images,
and records of the product's own that were damaged. Each is skipped and counted, or dropped with
one warning line, in bounded time and memory."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid_trt.core.defaults import MAX_IMAGE_PIXELS
from reid_trt.core.opencv import image_size, read_image


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header for width x height RGB with one tiny compressed row: a decoder that
    trusts it allocates width x height x 3 bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def hostile_folder(root: Path, crop: np.ndarray) -> int:
    """A folder of crops with every kind of hostile file beside `real` good ones; returns the
    number of good ones."""
    root.mkdir()
    real = 3
    for k in range(real):
        cv2.imwrite(str(root / f"good{k}.jpg"), crop)
    (root / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 64  # a real image just over the pixel budget
    cv2.imwrite(str(root / "large.png"), np.zeros((side, side, 3), np.uint8))
    os.symlink("/dev/zero", root / "zero.jpg")
    os.mkfifo(root / "pipe.jpg")
    (root / "folder.jpg").mkdir()
    (root / "text.jpg").write_text("not an image")
    return real


def test_image_sizes_are_read_from_headers_alone(tmp_path):
    crop = np.full((37, 21, 3), 99, np.uint8)
    for suffix in (".jpg", ".png", ".bmp", ".webp"):
        ok, data = cv2.imencode(suffix, crop)
        assert ok and image_size(data.tobytes()) == (21, 37), suffix
    assert image_size(png_declaring(100_000, 7)) == (100_000, 7)
    assert image_size(b"GIF89a...") is None and image_size(b"\xff\xd8\xff") is None


def test_hostile_files_are_skipped_in_bounded_time_and_memory(tmp_path):
    """In a fresh process (its peak memory is its own): every hostile file is skipped, the good
    crops read, well under 1 GiB and in seconds; no FIFO read, nothing hangs."""
    real = hostile_folder(tmp_path / "crops", np.full((128, 64, 3), 80, np.uint8))
    # VmHWM: this process image's peak resident memory (ru_maxrss would carry the parent's
    # across fork and exec)
    code = ("import re, sys, time; from reid_trt.data.folder import read_crops; "
            "t = time.monotonic(); crops = read_crops(sys.argv[1]); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
            "print(len(crops), hwm, time.monotonic() - t)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "crops")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    count, peak_kib, seconds = out.stdout.split()
    assert int(count) == real
    assert int(peak_kib) < 1 << 20, f"peak {int(peak_kib) >> 10} MiB"  # VmHWM is in KiB
    assert float(seconds) < 30 and out.stderr == ""
    for name in ("bomb.png", "large.png", "zero.jpg", "pipe.jpg", "folder.jpg", "text.jpg"):
        assert read_image(tmp_path / "crops" / name) is None, name


def test_a_hostile_dataset_root_is_counted_not_fatal(tmp_path):
    """reid-bench --dataset on a Market-style root holding the same files: one report, the
    hostile files counted as unreadable."""
    from reid_trt.bench.accuracy import load_protocol

    crop = np.full((128, 64, 3), 80, np.uint8)
    root = tmp_path / "market"
    for part in ("query", "bounding_box_test"):
        folder = root / part
        folder.mkdir(parents=True)
        for pid, cam in ((1, 1), (2, 1)) if part == "query" else ((1, 2), (2, 2), (3, 2)):
            cv2.imwrite(str(folder / f"{pid:04d}_c{cam}s1_000001_00.jpg"), crop)
    (root / "query" / "0004_c1s1_000001_00.jpg").write_bytes(png_declaring(90_000, 90_000))
    os.mkfifo(root / "bounding_box_test" / "0005_c2s1_000001_00.jpg")
    protocol = load_protocol("market1501", root, None)
    assert protocol.unreadable == 2
    assert len(protocol.query) == 2 and len(protocol.gallery) == 3


@pytest.mark.parametrize("record", [
    {"version": "current", "choices": {"k": ["onnxruntime"], "j": "openvino", "i": 3}},
    {"version": "current", "choices": {"k": {"backend": "tensorflow"}}},
    {"version": "current", "choices": {"k": {"backend": "onnxruntime", "ms": {"1": "fast"}}}},
    {"version": "current", "choices": ["onnxruntime"]},
    "not json {",
    ["a", "list"],
])
def test_a_damaged_cpu_backend_record_is_dropped_with_one_warning(record, tmp_path, caplog):
    from reid_trt.runtime import cpu_choice

    path = tmp_path / "cpu_backend.json"
    if isinstance(record, dict):
        record = {**record, "version": cpu_choice.RECORD_VERSION}
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    got = cpu_choice._read_record(path)
    assert got["version"] == cpu_choice.RECORD_VERSION and got["choices"] == {}
    assert len(caplog.records) == (0 if isinstance(record, list) else 1)
    assert all(str(path) in r.getMessage() for r in caplog.records)


def test_embedder_measures_again_over_a_damaged_record(graphs, tmp_path, monkeypatch, caplog):
    """The record entry that crashed Embedder (a list where an object belongs): dropped, the
    backends measured again, the record rewritten whole."""
    from reid_trt.runtime import cpu_choice
    from reid_trt.runtime.embedder import Embedder

    monkeypatch.delenv("REID_TRT_CPU_BACKEND", raising=False)
    monkeypatch.setenv("REID_TRT_CACHE_DIR", str(tmp_path))
    graph = graphs["osnet_x0_25", "fp32"]
    with Embedder(graph) as first:
        assert not first.cpu_choice.cached
    path = cpu_choice.record_path()
    record = json.loads(path.read_text())
    (key,) = record["choices"]
    record["choices"][key] = ["onnxruntime"]
    path.write_text(json.dumps(record))
    with Embedder(graph) as again:
        assert not again.cpu_choice.cached and again.embed([np.zeros((64, 32, 3), np.uint8)]).shape
    assert "dropped 1 damaged entries of the CPU backend record" in caplog.text
    assert isinstance(json.loads(path.read_text())["choices"][key], dict)
    path.unlink()
    path.mkdir()  # not a file at all
    with Embedder(graph) as third:
        assert third.backend_name in ("onnxruntime", "openvino")
    assert "not a regular file" in caplog.text


def test_retrieval_sets_are_refused_or_taken_naming_their_option(tmp_path):
    """A set where no identity meets another camera is refused up front, naming the option it
    came by; an MSMT17 root with only its test split and lists is a retrieval set."""
    from reid_trt.bench.accuracy import load_protocol
    from reid_trt.core.errors import ReidTrtError

    crop = np.full((128, 64, 3), 80, np.uint8)
    one_camera = tmp_path / "market"
    for part in ("query", "bounding_box_test"):
        (one_camera / part).mkdir(parents=True)
        for pid in (1, 2):
            cv2.imwrite(str(one_camera / part / f"{pid:04d}_c1s1_00000{pid}_00.jpg"), crop)
    # (the command line writes the option as --dataset, Python as its argument's name)
    with pytest.raises(ReidTrtError, match=r"^dataset market1501 .*market: no query has a true "
                                           r"match in the gallery from another camera"):
        load_protocol("market1501", one_camera, None)

    msmt = tmp_path / "msmt17"
    names = {"query": ["0001_000_01_0303morning_0001_0.jpg", "0002_000_01_0303morning_0002_0.jpg"],
             "gallery": ["0001_001_02_0303morning_0003_0.jpg", "0002_001_03_0303morning_0004_0.jpg",
                         "0003_000_02_0303morning_0005_0.jpg"]}
    for part, files in names.items():
        lines = []
        for name in files:
            path = msmt / "test" / name[:4] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), crop)
            lines.append(f"{name[:4]}/{name} {int(name[:4])}")
        (msmt / f"list_{part}.txt").write_text("\n".join(lines) + "\n")
    protocol = load_protocol("auto", msmt, None)
    assert len(protocol.query) == 2 and len(protocol.gallery) == 3
