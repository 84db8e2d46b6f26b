"""One thread policy and one timing loop: every ONNX Runtime session and OpenVINO compile is made
in one place with one settings object, and every timing goes through core/timing.interleaved."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import reid_trt
from reid_trt.core import timing
from reid_trt.core.options import ConfigError, Spin
from reid_trt.core.threads import OFFLINE, RUNTIME, THREADS_ENV, ThreadSettings, for_backend
from reid_trt.runtime.embedder import Embedder

PACKAGE = Path(reid_trt.__file__).parent


def calls_named(name: str) -> dict[str, int]:
    """module path -> how many calls of `name` (as f() or x.f()) it makes."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        count = 0
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                count += called == name
        if count:
            found[str(path.relative_to(PACKAGE))] = count
    return found


def test_every_session_and_compile_is_made_in_one_place():
    assert calls_named("InferenceSession") == {"core/onnxio.py": 1}
    assert calls_named("compile_model") == {"core/openvino_ir.py": 1}


def test_the_timing_loop_is_written_once():
    """Quiet gaps are slept in core/timing.py alone (the other sleeps are polls: the Triton
    server's start-up, the trace lock): reid-bench, the CPU probe and the alternation all time
    through interleaved()."""
    assert set(calls_named("sleep")) == {"core/timing.py", "serving/server.py",
                                         "export/trace_cache.py"}
    for module in ("bench/timing.py", "bench/alternation.py", "runtime/cpu_choice.py"):
        assert "interleaved(" in (PACKAGE / module).read_text(), module


def test_settings_are_checked_and_defaults_are_one_each():
    assert RUNTIME.spin == Spin.CALL and OFFLINE.spin == Spin.NEVER
    assert RUNTIME.threads is None and not RUNTIME.pinning
    assert ThreadSettings("never").spin == Spin.NEVER
    with pytest.raises(ConfigError, match=r"threads=0: must be between 1 and"):
        ThreadSettings(threads=0)
    with pytest.raises(ConfigError, match=r"spin='sometimes'.*call, always, never"):
        ThreadSettings(spin="sometimes")
    assert ThreadSettings(threads=3, pinning=True).openvino_config("CPU") == {
        "ENABLE_CPU_PINNING": True, "INFERENCE_NUM_THREADS": 3}
    assert ThreadSettings(threads=3).openvino_config("GPU") == {}


def test_a_setting_a_backend_lacks_is_refused_by_name():
    assert for_backend("onnxruntime", "never", 1) == ThreadSettings(Spin.NEVER, 1)
    assert for_backend("openvino", None, 2) == ThreadSettings(Spin.CALL, 2)
    for backend, name, kwargs in [("openvino", "spin", {"spin": "never"}),
                                  ("tensorrt", "spin", {"spin": "call"}),
                                  ("tensorrt", "threads", {"threads": 2}),
                                  ("torch", "threads", {"threads": 2})]:
        with pytest.raises(ConfigError, match=rf"^{name}=.*the {backend} backend has no such "
                                              rf"setting.*leave {name} out$"):
            for_backend(backend, **kwargs)


def test_embedder_applies_threads_or_refuses_them(graphs, real_weights, tmp_path):
    graph = graphs["osnet_x0_25", "fp32"]
    with Embedder(graph, device="cpu", backend="onnxruntime", threads=1) as e:
        assert e.backend.session.get_session_options().intra_op_num_threads == 1
    with Embedder(graph, backend="openvino", threads=1) as e:
        assert int(e.backend.compiled.get_property("INFERENCE_NUM_THREADS")) == 1
        assert e.backend.compiled.get_property("ENABLE_CPU_PINNING") is False
    with pytest.raises(ConfigError, match="spin='never': the openvino backend has no such"):
        Embedder(graph, backend="openvino", spin="never")
    with pytest.raises(ConfigError, match="threads='2': the torch backend has no such"):
        Embedder(real_weights["msmt17"], device="cpu", threads=2)
    engine = tmp_path / "m.plan"
    engine.write_bytes(b"not read: the setting is refused first")
    with pytest.raises(ConfigError, match="spin='never': the tensorrt backend has no such"):
        Embedder(engine, spin="never")


def test_the_environment_sets_the_count_where_none_is_given(graphs, monkeypatch):
    """REID_TRT_THREADS: each process's share of the cores (as the test workers run), for every
    session and compile that sets no count; a count given wins; a bad value is refused by name."""
    graph = graphs["osnet_x0_25", "fp32"]
    monkeypatch.setenv(THREADS_ENV, "1")
    assert RUNTIME.count == OFFLINE.count == 1 and ThreadSettings(threads=2).count == 2
    assert RUNTIME.openvino_config("CPU")["INFERENCE_NUM_THREADS"] == 1
    with Embedder(graph, device="cpu", backend="onnxruntime") as e:
        assert e.backend.session.get_session_options().intra_op_num_threads == 1
    with Embedder(graph, device="cpu", backend="onnxruntime", threads=2) as e:
        assert e.backend.session.get_session_options().intra_op_num_threads == 2
    with Embedder(graph, backend="openvino") as e:
        assert int(e.backend.compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    monkeypatch.setenv(THREADS_ENV, " ")
    assert RUNTIME.count is None and "INFERENCE_NUM_THREADS" not in RUNTIME.openvino_config("CPU")
    for bad in ("0", "two", "-1", "1.5", "99999", "\u00b2"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ConfigError, match=rf"^REID_TRT_THREADS='{bad}': set it to a whole "
                                              r"number of threads from 1 to 1024, or unset it"):
            Embedder(graph, device="cpu", backend="onnxruntime")


def test_spin_given_picks_the_runtime_that_has_it(graphs, monkeypatch, tmp_path):
    monkeypatch.delenv("REID_TRT_CPU_BACKEND", raising=False)
    monkeypatch.setenv("REID_TRT_CACHE_DIR", str(tmp_path))
    with Embedder(graphs["osnet_x0_25", "fp32"], spin="never") as e:
        assert e.backend_name == "onnxruntime"
        assert "spin=never is an ONNX Runtime setting" in str(e.cpu_choice)
    assert not (tmp_path / "cpu_backend.json").exists()  # nothing measured, nothing recorded


def test_interleaved_warms_waits_and_rotates(monkeypatch):
    events = []
    monkeypatch.setattr(timing.time, "sleep", lambda s: events.append("quiet"))
    turns = {"a": lambda: events.append("a"),
             "b": timing.Turn(lambda: events.append("b"), before=lambda: events.append("n"))}
    got = timing.interleaved(turns, timing.split_runs(5, 2), warmup=1)
    assert {k: len(v) for k, v in got.items()} == {"a": 5, "b": 5}
    assert timing.split_runs(5, 2) == [3, 2] and timing.split_runs(2, 9) == [1, 1]
    assert events[:3] == ["a", "n", "b"]  # warm-up, untimed
    # round 0: a then b; round 1: b then a; each turn: quiet, one untimed call, the timed ones,
    # b's neighbour right before every call of b
    assert events[3:] == (["quiet"] + ["a"] * 4 + ["quiet"] + ["n", "b"] * 4
                          + ["quiet"] + ["n", "b"] * 3 + ["quiet"] + ["a"] * 3)
