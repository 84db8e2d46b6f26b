"""reid-bench times each subject in a process of its own, the rounds still interleaved."""

from __future__ import annotations

import os

import pytest

from reid_trt.bench.isolated import SubjectProcess, SubjectSpec
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.timing import interleaved


def test_a_subject_times_itself_in_another_process(graphs, market_crops):
    spec = SubjectSpec(str(graphs["osnet_x0_25", "fp32"]), "onnxruntime", "cpu", "call")
    worker = SubjectProcess(spec, "ort fp32")
    try:
        assert worker.process.pid != os.getpid() and worker.process.is_alive()
        turns = {mode: worker.turn(("ort", mode), mode, market_crops[:2])
                 for mode in ("end_to_end", "compute")}
        samples = interleaved(turns, [2, 1], warmup=1)
        assert {k: len(v) for k, v in samples.items()} == {"end_to_end": 3, "compute": 3}
        assert all(0 < s < 5 for v in samples.values() for s in v)
        assert worker.device_memory_bytes() is None  # a CPU backend does not tell
    finally:
        worker.close()
    assert not worker.process.is_alive()


def test_a_subject_that_cannot_open_there_is_one_line(tmp_path):
    spec = SubjectSpec(str(tmp_path / "missing.onnx"), "onnxruntime", "cpu", None)
    with pytest.raises(ReidTrtError, match=r"^reid-bench: timing 'gone' in its own process "
                                           r"failed: ReidTrtError: .*missing.onnx: no such file"):
        SubjectProcess(spec, "gone")
