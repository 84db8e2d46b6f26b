"""The export -> calibrate -> build pipeline checks everything before any long step runs."""

import cv2
import numpy as np
import pytest

from reid_trt.calibration.api import CalibrationConfig
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.options import ConfigError
from reid_trt.engine.pipeline import Pipeline, default_engine_path, default_int8_path


@pytest.fixture
def no_export(monkeypatch):
    """Records each export the pipeline starts (none should start in these tests)."""
    from reid_trt.export import api

    started = []
    monkeypatch.setattr(api, "export_onnx", lambda *a, **k: started.append(a))
    return started


def blank_crops(folder, n=12):
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}_c1s1_000001_00.png"), np.zeros((128, 64, 3), np.uint8))
    return folder


def test_a_degenerate_set_is_refused_before_the_export(real_weights, tmp_path, no_export):
    pipeline = Pipeline(weights=real_weights["msmt17"], calib_data=blank_crops(tmp_path / "d"),
                        calibration=CalibrationConfig())
    with pytest.raises(ReidTrtError, match="12 of the 12 calibration images are blank"):
        pipeline.calibrate(tmp_path / "m.int8.onnx")
    with pytest.raises(ReidTrtError, match="12 of the 12 calibration images are blank"):
        pipeline.engine(tmp_path / "m.plan")
    assert no_export == [] and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_a_file_that_is_no_checkpoint_is_refused_before_the_data_is_read(tmp_path, no_export):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    pipeline = Pipeline(weights=tmp_path / "notes.txt", calib_data=tmp_path / "missing",
                        calibration=CalibrationConfig())
    with pytest.raises(ReidTrtError, match="notes.txt"):
        pipeline.calibrate(tmp_path / "m.int8.onnx")
    assert no_export == []


def test_what_is_asked_is_checked_on_construction(tmp_path):
    with pytest.raises(ReidTrtError, match="exactly one of onnx .* or weights"):
        Pipeline()
    with pytest.raises(ConfigError, match="calib_data"):
        Pipeline(onnx_path=tmp_path / "m.onnx", calibration=CalibrationConfig())


def test_it_names_the_files_it_writes(tmp_path):
    assert default_int8_path(tmp_path / "osnet.pth").name == "osnet.int8.onnx"
    assert default_engine_path(tmp_path / "osnet.onnx", "fp16").name == "osnet.fp16.plan"
    assert default_engine_path(tmp_path / "osnet.onnx", None).name == "osnet.plan"
