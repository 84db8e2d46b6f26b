"""The Backend and Profiled protocols: every local backend times its own compute (reid-bench reads
nothing else), and Embedder.from_backend runs any object that keeps the Backend protocol."""

from __future__ import annotations

import numpy as np
import pytest

from reid_trt.core.errors import ReidTrtError
from reid_trt.core.metrics import cosine_rows
from reid_trt.runtime.backends.base import Backend, PreprocessingCompiledIn, Profiled
from reid_trt.runtime.embedder import Embedder

pytestmark = pytest.mark.slow  # the session's graphs exported


@pytest.fixture(scope="module")
def local(graphs, real_weights):
    opened = {"onnxruntime": Embedder(graphs["osnet_x0_25", "fp32"], backend="onnxruntime"),
              "openvino": Embedder(graphs["osnet_x0_25", "fp32"], backend="openvino"),
              "torch": Embedder(real_weights["msmt17"], device="cpu")}
    yield opened
    for e in opened.values():
        e.close()


def test_every_local_backend_times_its_own_compute(local, market_crops):
    for name, embedder in local.items():
        backend = embedder.backend
        assert isinstance(backend, Backend) and isinstance(backend, Profiled), name
        batch = embedder.preprocess(market_crops[:4])
        call = backend.compute_call(batch)
        call()  # the model alone on a staged batch: runs again and again
        call()
        assert backend.device_memory_bytes() is None  # on the CPU nothing to tell
        # Embedder says what the file states beside how it feeds the backend: the two CPU
        # runtimes take the resized uint8 batch where the graph takes normalised floats
        assert embedder.model_contract.input_format == "float", name
        compiled_in = name != "torch"
        assert isinstance(backend, PreprocessingCompiledIn) == compiled_in, name
        assert embedder.contract.input_format == ("uint8-bgr" if compiled_in else "float"), name


class Doubling:
    """A runtime of a user's own: the ONNX Runtime backend behind a wrapper that scales every
    embedding by 2 (Embedder's L2 normalisation must undo it)."""

    name, device, accepts_device_tensors = "mine", "cpu", False

    def __init__(self, inner):
        self.inner, self.contract, self.limits = inner, inner.contract, inner.limits
        self.calls = 0

    def run(self, batch):
        self.calls += 1
        return 2 * self.inner.run(batch)

    def run_device(self, tensor):
        raise ReidTrtError("host arrays only")

    def close(self):
        self.inner.close()


def test_from_backend_runs_a_backend_opened_elsewhere(graphs, market_crops):
    graph = graphs["osnet_x0_25", "fp32"]
    with Embedder(graph, backend="onnxruntime") as reference:
        expected = reference.embed(market_crops)
    inner = Embedder(graph, backend="onnxruntime").backend
    mine = Doubling(inner)
    with Embedder.from_backend(mine, max_batch=4) as embedder:
        got = embedder.embed(market_crops)
        assert embedder.path is None and embedder.backend_name == "mine"
        assert "opened backend" in repr(embedder)
        assert embedder.model_contract is embedder.contract is inner.contract  # as it says
    assert mine.calls == -(-len(market_crops) // 4)  # chunks of max_batch
    assert cosine_rows(got, expected).min() > 0.999999
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_from_backend_refuses_what_is_not_a_backend():
    with pytest.raises(ReidTrtError, match="^dict is not a Backend"):
        Embedder.from_backend({})
